//! The daemon loop: feeds the core with packets, timers, resource results and
//! signals, and carries out its actions.
//!
//! Everything that decides lives in [`crate::cluster::Cluster`]; this is the shell
//! around it, one select loop on a current-thread tokio runtime:
//!
//! ```text
//!   packets (link readers) ─┐
//!   core's next deadline ───┤
//!   group op results ───────┤──> Cluster::handle_* ──> poll_action():
//!   resource failures ──────┤      Send        → every link's writer queue
//!   SIGTERM/SIGINT/SIGHUP ──┤      Start/Stop  → a task calling resource::Manager
//!   watchdog, link retry ───┘      Event       → log + STATUS= (+ READY=1)
//!                                  Exit        → return
//! ```
//!
//! `Instant::now()` is read here and only here, and passed to the core.

mod links;
mod logging;
mod node;
mod ratelimit;
mod status;
mod timer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};
use tracing::Instrument;

use crate::cluster::{
    Action, Cluster, Command, Event, GroupEvent, GroupId, LinkId, NodeId, Reject,
};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::resource::{Failure, Manager};
use crate::systemd::notify::Notifier;
use crate::transport::Source;

use links::{Incoming, Links};
use ratelimit::RateLimiter;

pub use logging::init as init_logging;
pub use node::{hostname, local_node};
pub use status::status_line;

/// How long goodbyes queued at exit may take to leave.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// Window of the refused-packet rate limiter.
const REJECT_WINDOW: Duration = Duration::from_secs(60);

/// What `hbd run` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    /// `--node`; the host name when absent.
    pub node: Option<String>,
}

/// Run the daemon until a requested shutdown completes.
pub fn run(options: Options) -> Result<()> {
    logging::init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    let (config, local) = identify(&options)?;
    // Every record of this process carries NODE.
    let span = tracing::info_span!("hbd", NODE = %config.nodes[local].name);
    runtime.block_on(
        async {
            let daemon = Daemon::start(options.config_path, config, local).await?;
            daemon.run().await
        }
        .instrument(span),
    )
}

/// Load cluster.toml and find which of its nodes we are.
fn identify(options: &Options) -> Result<(Arc<Config>, usize)> {
    let loaded = config::load(&options.config_path)?;
    for w in loaded.render_warnings() {
        tracing::warn!("{w}");
    }
    let host = match &options.node {
        Some(_) => String::new(),
        None => hostname()?,
    };
    let local = local_node(&loaded.config, options.node.as_deref(), &host)?;
    Ok((Arc::new(loaded.config), local))
}

/// Key of the refused-packet rate limiter: one line per source and reason.
/// Refused packets are counted per source address (not per port: a sender's port
/// changes with every socket).
type RejectKey = Source;

struct Daemon {
    config_path: PathBuf,
    config: Arc<Config>,
    local: usize,
    cluster: Cluster,
    manager: Manager,
    notifier: Notifier,
    links: Links,
    incoming: mpsc::Receiver<Incoming>,
    results_tx: mpsc::UnboundedSender<(GroupId, GroupEvent)>,
    results: mpsc::UnboundedReceiver<(GroupId, GroupEvent)>,
    failures: mpsc::UnboundedReceiver<Failure>,
    signals: Signals,
    rejects: RateLimiter<RejectKey>,
    ready: bool,
    shutting_down: bool,
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        let s = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::io(format!("cannot handle {name}"), e))
        };
        Ok(Signals {
            term: s(SignalKind::terminate(), "SIGTERM")?,
            int: s(SignalKind::interrupt(), "SIGINT")?,
            hup: s(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

impl Daemon {
    /// Load the keys, open links, build the core and adopt groups already running
    /// here.
    async fn start(config_path: PathBuf, config: Arc<Config>, local: usize) -> Result<Daemon> {
        // Signals first: a SIGTERM during start-up must not kill us half-way.
        let signals = Signals::install()?;
        let node_name = config.nodes[local].name.clone();

        let (keys, key_warnings) = config::keys::load(&config.auth)?;
        for w in key_warnings {
            tracing::warn!("{w}");
        }
        let incarnation = getrandom::u64()
            .map_err(|e| Error::Runtime(format!("cannot get random bytes from the kernel: {e}")))?;

        let (failures_tx, failures) = mpsc::unbounded_channel();
        let manager = Manager::connect(config.clone(), failures_tx)
            .await
            .map_err(|e| Error::Runtime(format!("cannot set up the resource manager: {e}")))?;
        // Groups whose resources are all up already (the daemon restarted under
        // them): held without a restart.
        let mut adopt = Vec::new();
        let mut blocked = Vec::new();
        for (g, group) in config.groups.iter().enumerate() {
            match manager.is_active(g).await {
                // Nothing of a group without resources can be running here: "all of its
                // resources are up" is vacuously true on every node, and adopting it
                // would make every node that starts an owner.
                Ok(true) if group.resources.is_empty() => {}
                Ok(true) => adopt.push(g),
                Ok(false) => {
                    // Leftovers of a group that is only partly up (hbd died mid-start):
                    // clean them up before the group may run on another node.
                    if let Ok(true) = manager.any_active(g).await {
                        tracing::warn!(GROUP = %group.name, "group {} is partly up here: stopping its leftovers", group.name);
                        if let Err(e) = manager.stop_group(g).await {
                            tracing::error!(
                                GROUP = %group.name,
                                "cannot stop the leftovers of group {}: {e}; it stays blocked on this node",
                                group.name
                            );
                            blocked.push(g);
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    GROUP = %group.name,
                    "cannot tell whether group {} is running here: {e}; assuming it is not",
                    group.name
                ),
            }
        }

        let (incoming_tx, incoming) = mpsc::channel(256);
        let (links, errors) = Links::open_all(&config, local, incoming_tx);
        if links.open_count() == 0 {
            return Err(Error::Runtime(format!(
                "no heartbeat link could be opened: {}",
                errors.join("; ")
            )));
        }
        for e in &errors {
            tracing::warn!("{e} (retrying every {}s)", links::RETRY.as_secs());
        }

        let mut cluster = Cluster::new(&config, NodeId(local), keys, incarnation, Instant::now());
        for g in adopt {
            tracing::info!(GROUP = %config.groups[g].name, "group {} is already running here: adopting it", config.groups[g].name);
            cluster.adopt(GroupId(g));
        }
        for g in blocked {
            cluster.adopt_blocked(GroupId(g));
        }
        tracing::info!(
            "hbd {} starting as node {node_name} of cluster {} ({} of {} links open)",
            env!("CARGO_PKG_VERSION"),
            config.cluster.name,
            links.open_count(),
            config.links.len()
        );

        let (results_tx, results) = mpsc::unbounded_channel();
        Ok(Daemon {
            config_path,
            config,
            local,
            cluster,
            manager,
            notifier: Notifier::from_env(),
            links,
            incoming,
            results_tx,
            results,
            failures,
            signals,
            rejects: RateLimiter::new(REJECT_WINDOW),
            ready: false,
            shutting_down: false,
        })
    }

    async fn run(mut self) -> Result<()> {
        let mut watchdog = self.notifier.watchdog_interval().map(interval);
        let mut retry = interval(links::RETRY);
        let mut flush = interval(REJECT_WINDOW);
        let mut core_timer =
            timer::Deadline::new().map_err(|e| Error::io("cannot create the daemon's timer", e))?;
        // The core may have something to say before any input (e.g. first heartbeat).
        let mut exit = self.drain_actions();
        self.update_status();

        while !exit {
            let deadline = self.cluster.poll_timeout();
            tokio::select! {
                Some(msg) = self.incoming.recv() => self.on_incoming(msg),
                () = core_timer.wait(deadline) => self.cluster.handle_timeout(Instant::now()),
                Some((group, event)) = self.results.recv() => {
                    self.log_group_result(group, &event);
                    self.cluster.handle_group_event(Instant::now(), group, event);
                }
                Some(f) = self.failures.recv() => {
                    let name = self.group_name(GroupId(f.group)).to_string();
                    tracing::error!(GROUP = %name, "group {name} failed: {}", f.reason);
                    self.cluster.handle_group_event(
                        Instant::now(),
                        GroupId(f.group),
                        GroupEvent::Failed { reason: f.reason },
                    );
                }
                Some(()) = self.signals.term.recv() => {
                    if !self.shutting_down && restart_pending().await {
                        self.detach();
                    } else {
                        self.shutdown("SIGTERM");
                    }
                }
                Some(()) = self.signals.int.recv() => self.shutdown("SIGINT"),
                Some(()) = self.signals.hup.recv() => self.reload().await,
                _ = tick(&mut watchdog) => self.notifier.watchdog(),
                _ = retry.tick() => self.links.retry(&self.config, self.local),
                // Nothing to report, nothing to wake up for.
                _ = flush.tick(), if !self.rejects.is_empty() => self.flush_rejects(),
            }
            exit = self.drain_actions();
        }

        tracing::info!("every group is released: exiting");
        self.links.shutdown(EXIT_GRACE).await;
        Ok(())
    }

    fn on_incoming(&mut self, msg: Incoming) {
        match msg {
            Incoming::Packet {
                link,
                generation,
                datagram,
            } => {
                if !self.links.is_current(link, generation) {
                    return;
                }
                if let Err(reject) =
                    self.cluster
                        .handle_packet(Instant::now(), link, &datagram.bytes)
                {
                    self.log_reject(link, datagram.from, reject);
                }
            }
            Incoming::Failed {
                link,
                generation,
                error,
            } => {
                if !self.links.is_current(link, generation) {
                    return;
                }
                let name = self.links.name(link).to_string();
                tracing::warn!(LINK = %name, "link {name} failed: {error}; reopening in {}s", links::RETRY.as_secs());
                self.links.close(link, error);
            }
        }
    }

    /// Carry out everything the core asked for; true once it says Exit.
    fn drain_actions(&mut self) -> bool {
        let mut exit = false;
        let mut changed = false;
        while let Some(action) = self.cluster.poll_action() {
            match action {
                Action::Send(bytes) => self.links.send(&bytes),
                Action::StartGroup(g) => self.spawn_group_op(g, true),
                Action::StopGroup(g) => self.spawn_group_op(g, false),
                Action::Event(event) => {
                    if event == Event::Ready && !self.ready {
                        self.ready = true;
                        self.notifier.ready();
                    }
                    self.log_event(&event);
                    changed = true;
                }
                Action::Exit => exit = true,
            }
        }
        if changed {
            self.update_status();
        }
        exit
    }

    fn spawn_group_op(&self, group: GroupId, start: bool) {
        let manager = self.manager.clone();
        let results = self.results_tx.clone();
        let name = self.group_name(group).to_string();
        tracing::debug!(GROUP = %name, "{} group {name}", if start { "starting" } else { "stopping" });
        tokio::spawn(
            async move {
                let event = if start {
                    match manager.start_group(group.0).await {
                        Ok(()) => GroupEvent::Started,
                        // The rollback could not stop everything: blocked here.
                        Err(e) if e.is_blocked() => GroupEvent::StopFailed {
                            reason: e.to_string(),
                        },
                        Err(e) => GroupEvent::StartFailed {
                            reason: e.to_string(),
                        },
                    }
                } else {
                    match manager.stop_group(group.0).await {
                        Ok(()) => GroupEvent::Stopped,
                        Err(e) => GroupEvent::StopFailed {
                            reason: e.to_string(),
                        },
                    }
                };
                let _ = results.send((group, event));
            }
            .in_current_span(),
        );
    }

    /// `systemctl restart hbd`: exit at once and leave every group running; the next
    /// hbd adopts them without restarting anything. Peers only see a short silence.
    fn detach(&mut self) {
        tracing::info!(
            "SIGTERM from `systemctl restart`: exiting and leaving the groups running for the next hbd to adopt"
        );
        self.shutting_down = true;
        self.notifier.stopping();
        self.cluster.handle_command(Instant::now(), Command::Detach);
    }

    fn shutdown(&mut self, signal: &str) {
        if self.shutting_down {
            tracing::info!("{signal}: already shutting down, waiting for groups to stop");
            return;
        }
        tracing::info!("{signal}: releasing every group, then exiting");
        self.shutting_down = true;
        self.notifier.stopping();
        self.cluster
            .handle_command(Instant::now(), Command::Shutdown);
        self.update_status();
    }

    /// SIGHUP: reread cluster.toml and the key file. Any error keeps the running
    /// configuration and is logged as one sentence.
    async fn reload(&mut self) {
        self.notifier.reloading();
        match self.try_reload() {
            Ok(changed) => {
                if !changed.is_empty() {
                    self.links.reopen(&self.config, self.local, &changed).await;
                }
                tracing::info!("SIGHUP: configuration reloaded")
            }
            Err(e) => {
                tracing::error!(
                    "SIGHUP: reload failed, still running the previous configuration: {e}"
                )
            }
        }
        if self.ready {
            self.notifier.ready();
        }
        self.update_status();
    }

    /// Apply the new config; returns the links to reopen.
    fn try_reload(&mut self) -> Result<Vec<usize>, String> {
        let loaded = config::load(&self.config_path).map_err(|e| e.to_string())?;
        for w in loaded.render_warnings() {
            tracing::warn!("{w}");
        }
        let new = loaded.config;
        // Our own name must still be there, at the same place.
        let me = &self.config.nodes[self.local].name;
        if new.nodes.get(self.local).map(|n| &n.name) != Some(me) {
            return Err(format!(
                "node \"{me}\" is no longer at its place in the node list"
            ));
        }
        let (keys, warnings) = config::keys::load(&new.auth).map_err(|e| e.to_string())?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        self.cluster.reload(Instant::now(), &new, keys)?;
        let changed = changed_links(&self.config, &new);
        let new = Arc::new(new);
        self.manager.set_config(new.clone());
        self.config = new;
        Ok(changed)
    }

    fn update_status(&mut self) {
        let line = status_line(&self.cluster.status(), self.shutting_down);
        self.notifier.status(&line);
    }

    fn log_reject(&mut self, link: LinkId, from: Source, reject: Reject) {
        if reject == Reject::Own {
            return;
        }
        // One line per source per window, whatever the reason: a foreign cluster
        // or a node with the wrong key must not flood the journal.
        let key = match from {
            Source::Udp(a) => Source::Udp(std::net::SocketAddr::new(a.ip(), 0)),
            Source::Serial => Source::Serial,
        };
        let Some(suppressed) = self.rejects.check(Instant::now(), &key) else {
            return;
        };
        let more = if suppressed > 0 {
            format!(" ({suppressed} more since the last report)")
        } else {
            String::new()
        };
        let link = self.links.name(link).to_string();
        if matches!(reject, Reject::DuplicateNode(_)) {
            tracing::error!(LINK = %link, SOURCE = %from, "refused packet from {from} on link {link}: {reject}{more}");
        } else {
            tracing::warn!(LINK = %link, SOURCE = %from, "refused packet from {from} on link {link}: {reject}{more}");
        }
    }

    /// Closing lines for floods that stopped within the last window: one line per
    /// source address with the count of packets not reported.
    fn flush_rejects(&mut self) {
        for (from, n) in self.rejects.flush(Instant::now()) {
            let from = source_address(&from);
            tracing::warn!(SOURCE = %from, "{n} more refused packet(s) from {from} in the last minute");
        }
    }

    fn log_group_result(&self, group: GroupId, event: &GroupEvent) {
        let name = self.group_name(group);
        match event {
            // The core's GroupState event that follows says it at info level.
            GroupEvent::Started => tracing::debug!(GROUP = %name, "group {name} started"),
            GroupEvent::Stopped => tracing::debug!(GROUP = %name, "group {name} stopped"),
            GroupEvent::StartFailed { reason } => {
                tracing::error!(GROUP = %name, "group {name} failed to start: {reason}")
            }
            GroupEvent::StopFailed { reason } => tracing::error!(
                GROUP = %name,
                "group {name} failed to stop: {reason}; it stays blocked on this node"
            ),
            GroupEvent::Failed { reason } => {
                tracing::error!(GROUP = %name, "group {name} failed: {reason}")
            }
        }
    }

    fn log_event(&self, event: &Event) {
        let peer = |p: &NodeId| self.node_name(*p).to_string();
        match event {
            Event::Ready => tracing::info!("start-up listening phase over: ready"),
            Event::PeerUp { peer: p } => {
                let p = peer(p);
                tracing::info!(PEER = %p, "peer {p} is up")
            }
            Event::PeerLate { peer: p, silent } => {
                let p = peer(p);
                tracing::warn!(PEER = %p, "peer {p} is late: silent for {}ms", silent.as_millis())
            }
            Event::PeerDead { peer: p } => {
                let p = peer(p);
                tracing::warn!(PEER = %p, "peer {p} is dead")
            }
            Event::PeerLeft { peer: p } => {
                let p = peer(p);
                tracing::info!(PEER = %p, "peer {p} left the cluster (clean shutdown)")
            }
            Event::PeerRestarted { peer: p } => {
                let p = peer(p);
                tracing::info!(PEER = %p, "peer {p} restarted (new incarnation)")
            }
            Event::LinkUp { peer: p, link } => {
                let (p, l) = (peer(p), self.links.name(*link));
                tracing::info!(PEER = %p, LINK = %l, "link {l} to {p} is up")
            }
            Event::LinkDown { peer: p, link } => {
                let (p, l) = (peer(p), self.links.name(*link));
                tracing::warn!(PEER = %p, LINK = %l, "link {l} to {p} is down")
            }
            Event::GroupState { group, state } => {
                let g = self.group_name(*group);
                tracing::info!(GROUP = %g, STATE = %status::group_state(state), "group {g} is {}", status::group_state(state))
            }
            Event::ConfigMismatch { peer: p } => {
                let p = peer(p);
                tracing::warn!(PEER = %p, "peer {p} runs a different cluster.toml: make it identical on every node")
            }
            Event::Conflict {
                group,
                peer: p,
                release,
            } => {
                let (g, p) = (self.group_name(*group), peer(p));
                if *release {
                    tracing::warn!(GROUP = %g, PEER = %p, "group {g} is also held by {p}: releasing it here")
                } else {
                    tracing::warn!(GROUP = %g, PEER = %p, "group {g} is also held by {p}: keeping it, {p} releases")
                }
            }
            Event::Stalled { gap } => tracing::warn!(
                "this process did not run for {}ms (frozen or suspended): peers get a grace period",
                gap.as_millis()
            ),
        }
    }

    fn node_name(&self, n: NodeId) -> &str {
        self.config.nodes.get(n.0).map_or("?", |n| n.name.as_str())
    }

    fn group_name(&self, g: GroupId) -> &str {
        self.config.groups.get(g.0).map_or("?", |g| g.name.as_str())
    }
}

/// Links whose transport must be reopened after a reload: their own settings or
/// any node's address on them changed.
fn changed_links(old: &Config, new: &Config) -> Vec<usize> {
    (0..new.links.len())
        .filter(|&i| {
            let (Some(a), Some(b)) = (old.links.get(i), new.links.get(i)) else {
                return true;
            };
            let addrs = |c: &Config| -> Vec<_> {
                c.nodes
                    .iter()
                    .map(|n| n.address.get(a.name()).copied())
                    .collect()
            };
            a != b || addrs(old) != addrs(new)
        })
        .collect()
}

/// A source as the closing line names it: the address alone, or the serial peer.
fn source_address(from: &Source) -> String {
    match from {
        Source::Udp(a) => a.ip().to_string(),
        Source::Serial => from.to_string(),
    }
}

fn interval(period: Duration) -> Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn tick(i: &mut Option<Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether the SIGTERM we got is the stop half of a restart of our own unit: systemd
/// then has a "restart" job queued for it. Anything else (a stop, a shutdown, no
/// systemd at all, an error asking) means a real stop, which releases the groups.
async fn restart_pending() -> bool {
    let ask = async {
        let sd = crate::systemd::manager::Systemd::connect().await?;
        sd.job_type_of_pid(std::process::id()).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), ask).await {
        Ok(Ok(job)) => job.as_deref() == Some("restart"),
        Ok(Err(e)) => {
            tracing::debug!("cannot ask systemd whether this is a restart: {e}");
            false
        }
        Err(_) => {
            tracing::warn!(
                "systemd did not say within 2s whether this is a restart: releasing the groups"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_by_address() {
        let udp = Source::Udp("10.0.0.9:0".parse().unwrap());
        assert_eq!(source_address(&udp), "10.0.0.9");
        assert_eq!(source_address(&Source::Serial), Source::Serial.to_string());
    }
}
