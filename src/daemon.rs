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

mod fence;
mod gaps;
mod hooks;
mod incarnation;
mod intent;
mod journal;
mod links;
mod logging;
mod metrics;
mod node;
mod observe;
mod ping;
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
    Action, Cluster, Command, Event, Found, GroupEvent, GroupId, LinkId, NodeId, Reject, Retirement,
};
use crate::config::{self, Config};
use crate::control;
use crate::error::{Error, Result};
use crate::resource::{Failure, Manager, ResourceError};
use crate::systemd::notify::Notifier;
use crate::transport::Source;

use links::{Incoming, Links, Prefilter};
use ratelimit::RateLimiter;

pub use logging::init as init_logging;
pub use node::{hostname, local_node};
pub use status::status_line;

/// How long goodbyes queued at exit may take to leave.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// Window of the refused-packet rate limiter.
const REJECT_WINDOW: Duration = Duration::from_secs(60);
/// Longest a reload may spend reading and checking the files (off the loop).
const RELOAD_LIMIT: Duration = Duration::from_secs(10);

/// What a reload read: the config, the keys and the key file's warnings.
type ReloadRead = Result<(config::Loaded, config::KeySet, Vec<String>), ReloadFailure>;

/// Why a reload kept the running configuration (one sentence each).
#[derive(Debug, thiserror::Error)]
pub enum ReloadFailure {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Keys(#[from] config::keys::KeyError),
    #[error("node \"{0}\" is no longer at its place in the node list")]
    Moved(String),
    #[error(transparent)]
    Core(#[from] crate::cluster::ReloadError),
}

/// Why a reload (SIGHUP or the control API's `Reload`) kept the running
/// configuration: the sentence `hbd reload` prints, and the journal's after "SIGHUP: ".
/// Cloned to every caller waiting for the same reload.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadRefused {
    #[error(
        "reading the configuration took more than {}s: still running the previous configuration",
        .0.as_secs()
    )]
    TooSlow(Duration),
    #[error("reload failed, still running the previous configuration: {0}")]
    Failed(#[source] Arc<ReloadFailure>),
    #[error("cannot start reading the configuration: {0}")]
    Thread(#[source] Arc<std::io::Error>),
}

/// Results of work done off the loop, fed back to it.
enum Side {
    /// The files a reload read (generation, what it read).
    Reloaded(u64, Box<ReloadRead>),
    /// What systemd said about our SIGTERM: part of a restart?
    StopKind(bool),
    /// A group a reload removed was stopped here (or its stop failed).
    Retired(String, Result<(), ResourceError>),
    /// A fence finished (daemon/fence.rs).
    Fenced(fence::Done),
}

/// What `hbd run` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    /// `--node`; the host name when absent.
    pub node: Option<String>,
    /// The control API's peer-to-peer socket.
    pub control_socket: PathBuf,
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
            let mut daemon = Daemon::start(options.config_path, config, local).await?;
            daemon.control = Some(control::start(
                options.control_socket,
                daemon.manager.clone(),
            ));
            daemon.run().await
        }
        .instrument(span),
    )
}

/// Start the ping node rounds, if any ping node is configured.
fn spawn_ping(
    config: &Config,
    tx: &mpsc::UnboundedSender<usize>,
) -> Option<tokio::task::JoinHandle<()>> {
    let addrs = config.failover.ping.clone();
    if addrs.is_empty() {
        return None;
    }
    let interval = config.timing.keepalive.get();
    Some(tokio::spawn(
        ping::run(addrs, interval, tx.clone()).in_current_span(),
    ))
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

/// This node's identity on Heartbeat's wire (`srcuuid`): 16 bytes derived from the
/// cluster and node names, so that it stays the same across restarts and reinstalls.
fn heartbeat_uuid(cluster: &str, node: &str) -> [u8; 16] {
    use sha1::Digest;
    let d = sha1::Sha1::new()
        .chain_update(b"hbd heartbeat uuid\0")
        .chain_update(cluster.as_bytes())
        .chain_update(b"\0")
        .chain_update(node.as_bytes())
        .finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u
}

/// The first line of /proc/loadavg (Heartbeat's `ld` field); procfs never blocks.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "0.00 0.00 0.00 1/1 1".into())
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
    prefilter: std::sync::Arc<Prefilter>,
    incoming: mpsc::Receiver<Incoming>,
    /// Packets from unknown addresses and refusal reports: served after `incoming`.
    bulk: mpsc::Receiver<Incoming>,
    /// Results of group operations, by group name: a reload may move a group's index
    /// while its operation runs.
    results_tx: mpsc::UnboundedSender<(String, GroupEvent)>,
    results: mpsc::UnboundedReceiver<(String, GroupEvent)>,
    failures: mpsc::UnboundedReceiver<Failure>,
    signals: Signals,
    side_tx: mpsc::UnboundedSender<Side>,
    side: mpsc::UnboundedReceiver<Side>,
    /// A reload reading the files: its generation and deadline.
    reloading: Option<(u64, Instant)>,
    reload_generation: u64,
    /// SIGTERM received, waiting for systemd to say whether it is a restart.
    stop_pending: bool,
    rejects: RateLimiter<RejectKey>,
    ready: bool,
    shutting_down: bool,
    /// The control API (control/), wired in `run` once the daemon is set up.
    control: Option<control::Server>,
    maintenance: bool,
    /// Control API reload calls waiting for the reload under way.
    reload_replies: Vec<tokio::sync::oneshot::Sender<Result<String, ReloadRefused>>>,
    /// Ping node rounds (daemon/ping.rs): counts in, the task that sends them.
    ping_tx: mpsc::UnboundedSender<usize>,
    ping_rx: mpsc::UnboundedReceiver<usize>,
    ping_task: Option<tokio::task::JoinHandle<()>>,
    /// The operator's standby/takeover intents as last handed to the writer (intent.rs).
    saved_admin: Vec<crate::cluster::Admin>,
    intent_tx: tokio::sync::watch::Sender<Vec<(String, crate::cluster::Admin)>>,
    /// Fences under way.
    fencer: fence::Fencer,
    /// Metrics, heartbeat gaps, event hooks (observe.rs).
    observe: observe::Observer,
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
        let (incarnation, warning) = incarnation::next(&incarnation::state_dir());
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }

        let (failures_tx, failures) = mpsc::unbounded_channel();
        let manager = Manager::connect(config.clone(), failures_tx)
            .await
            .map_err(|e| Error::Runtime(format!("cannot set up the resource manager: {e}")))?;
        // What of each group is up here already (the daemon restarted under its
        // groups, or crashed mid-start): the core decides what to make of it.
        let mut found = Vec::new();
        for g in 0..config.groups.len() {
            let f = match manager.is_active(g).await {
                Ok(true) => Found::AllUp,
                Ok(false) => match manager.any_active(g).await {
                    Ok(true) => Found::PartlyUp,
                    Ok(false) => Found::Down,
                    Err(e) => Found::Unknown {
                        reason: e.to_string(),
                    },
                },
                Err(e) => Found::Unknown {
                    reason: e.to_string(),
                },
            };
            found.push(f);
        }

        let (incoming_tx, incoming) = mpsc::channel(256);
        let prefilter = Prefilter::new(&config);
        let (bulk_tx, bulk) = mpsc::channel(256);
        let (links, errors) =
            Links::open_all(&config, local, incoming_tx, bulk_tx, prefilter.clone());
        if links.open_count() == 0 {
            return Err(Error::Runtime(format!(
                "no heartbeat link could be opened: {}",
                errors.join("; ")
            )));
        }
        for e in &errors {
            tracing::warn!("{e} (retrying every {}s)", links::RETRY.as_secs());
        }

        let mut cluster = Cluster::new_shared(
            config.clone(),
            NodeId(local),
            keys,
            incarnation,
            Instant::now(),
        );
        for (g, f) in found.into_iter().enumerate() {
            cluster.found(GroupId(g), f);
        }
        if config.migration.heartbeat() {
            // A mixed cluster: Heartbeat's protocol on the links (core/src/cluster/mixed.rs).
            let path = config.migration.authkeys.clone().unwrap_or_default();
            let ring = config::keys::load_heartbeat(&path)?;
            let epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            cluster.speak_heartbeat(
                ring,
                heartbeat_uuid(&config.cluster.name, &node_name),
                epoch,
            );
            cluster.heartbeat_load(&loadavg());
            tracing::info!(
                "speaking Heartbeat 3.0.6's protocol on every link ([migration] protocol = \"heartbeat\"), signed with the key of {}",
                path.display()
            );
        }
        // Standby and takeover given before this start stand (intent.rs).
        let state_dir = incarnation::state_dir();
        let (intents, warnings) = intent::load(&state_dir);
        for w in warnings {
            tracing::warn!("{w}");
        }
        for name in cluster.restore_intents(&intents) {
            tracing::warn!(GROUP = %name, "a standby or takeover of group {name} was kept from the last run, but no group has that name any more: dropped");
        }
        for (name, admin) in cluster.intents() {
            let what = match admin {
                crate::cluster::Admin::Standby => "standby",
                _ => "takeover",
            };
            tracing::info!(GROUP = %name, "{what} of group {name} stands from before this start (`hbd takeover` or `hbd standby` changes it)");
        }
        let saved_admin = cluster.admin().to_vec();
        let intent_tx = intent::writer(state_dir);
        tracing::info!(
            "hbd {} starting as node {node_name} of cluster {} ({} of {} links open)",
            env!("CARGO_PKG_VERSION"),
            config.cluster.name,
            links.open_count(),
            config.links.len()
        );

        let (results_tx, results) = mpsc::unbounded_channel();
        let (side_tx, side) = mpsc::unbounded_channel();
        let observe = observe::Observer::new(&config, local, &manager);
        let (ping_tx, ping_rx) = mpsc::unbounded_channel();
        let ping_task = spawn_ping(&config, &ping_tx);
        Ok(Daemon {
            observe,
            config_path,
            config,
            local,
            cluster,
            manager,
            notifier: Notifier::from_env(),
            links,
            prefilter,
            incoming,
            bulk,
            results_tx,
            results,
            failures,
            signals,
            side_tx,
            side,
            reloading: None,
            reload_generation: 0,
            stop_pending: false,
            rejects: RateLimiter::new(REJECT_WINDOW),
            ready: false,
            shutting_down: false,
            control: None,
            maintenance: false,
            reload_replies: Vec::new(),
            ping_tx,
            ping_rx,
            ping_task,
            saved_admin,
            intent_tx,
            fencer: fence::Fencer::default(),
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
                // In this order, each branch only when ready: the core's deadline (a
                // heartbeat due, a peer's deadtime), signals and the watchdog, peers'
                // packets, group results, and last whatever came from addresses no peer
                // uses, so that a flood of it delays nothing else.
                biased;
                () = core_timer.wait(deadline) => self.cluster.handle_timeout(Instant::now()),
                Some(()) = self.signals.term.recv() => self.on_sigterm(),
                Some(()) = self.signals.int.recv() => self.shutdown("SIGINT"),
                Some(()) = self.signals.hup.recv() => self.reload(),
                Some(side) = self.side.recv() => self.on_side(side).await,
                () = sleep_until(self.reloading.map(|r| r.1)) => {
                    self.reloading = None;
                    self.refuse_reload(ReloadRefused::TooSlow(RELOAD_LIMIT));
                    self.reload_done();
                }
                _ = tick(&mut watchdog) => self.notifier.watchdog(),
                Some(msg) = self.incoming.recv() => self.on_incoming(msg),
                Some((name, event)) = self.results.recv() => {
                    if self.maintenance && event == GroupEvent::Started {
                        // Started during maintenance: not watched until it ends.
                        let m = self.manager.clone();
                        let name = name.clone();
                        tokio::spawn(async move { m.unmonitor_named(&name).await });
                    }
                    if let Some(group) = self.group_id(&name) {
                        self.log_group_result(group, &event);
                        self.cluster.handle_group_event(Instant::now(), group, event);
                    }
                }
                Some(n) = self.ping_rx.recv() => self.cluster.ping_count(Instant::now(), n),
                Some(f) = self.failures.recv() => {
                    if let Some(group) = self.group_id(&f.name) {
                        self.cluster.handle_group_event(
                            Instant::now(),
                            group,
                            GroupEvent::ResourceDown { resource: f.resource, reason: f.reason },
                        );
                    }
                }
                Some(req) = next_request(&mut self.control) => self.on_control(req).await,
                _ = retry.tick() => {
                    self.links.retry(&self.config, self.local);
                    if self.cluster.speaks_heartbeat() {
                        self.cluster.heartbeat_load(&loadavg());
                    }
                }
                // Nothing to report, nothing to wake up for.
                _ = flush.tick(), if !self.rejects.is_empty() => self.flush_rejects(),
                Some(msg) = self.bulk.recv() => self.on_incoming(msg),
            }
            exit = self.drain_actions();
            self.keep_intents();
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
                match self
                    .cluster
                    .handle_packet(Instant::now(), link, &datagram.bytes)
                {
                    Ok(()) => {
                        if let Source::Udp(a) = datagram.from {
                            self.prefilter.learn(a.ip());
                        }
                        if let Some(a) = self.cluster.take_accepted() {
                            self.observe.packet(Instant::now(), a, &self.config);
                        }
                    }
                    Err(reject) => self.log_reject(link, datagram.from, reject),
                }
            }
            Incoming::Refused { link, from, reason } => {
                self.log_reject(link, from, Reject::Decode(reason));
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
        let mut events = Vec::new();
        while let Some(action) = self.cluster.poll_action() {
            match action {
                Action::Send(bytes) => self.links.send(&bytes),
                Action::StartGroup(g) => self.spawn_group_op(g, true),
                Action::StopGroup(g) => self.spawn_group_op(g, false),
                Action::RestartResources { group, from } => self.spawn_restart(group, from),
                Action::Announce(group) => self.spawn_announce(group),
                Action::Event(event) => {
                    if event == Event::Ready && !self.ready {
                        self.ready = true;
                        self.notifier.ready();
                    }
                    {
                        // The catalog's MESSAGE_ID (units/hbd.catalog), as a field of
                        // the journal record.
                        let _id = journal::message_id(&event)
                            .filter(|_| logging::journal_active())
                            .map(|id| tracing::info_span!("event", MESSAGE_ID = id).entered());
                        self.log_event(&event);
                    }
                    events.push(event);
                    changed = true;
                }
                Action::Exit => exit = true,
                Action::FenceNode { node, attempt } => {
                    let done = self.side_tx.clone();
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    self.fencer.start(&self.config, node, attempt, tx);
                    tokio::spawn(async move {
                        if let Some(d) = rx.recv().await {
                            let _ = done.send(Side::Fenced(d));
                        }
                    });
                }
                Action::CancelFence { node, attempt } => self.fencer.cancel(node, attempt),
            }
        }
        if changed {
            self.update_status();
        }
        if !events.is_empty() || self.observe.refresh_due(Instant::now()) {
            let status = self.cluster.status();
            self.observe.events(&events, &status, &self.config);
        }
        exit
    }

    fn spawn_group_op(&self, group: GroupId, start: bool) {
        let manager = self.manager.clone();
        let results = self.results_tx.clone();
        let name = self.group_name(group).to_string();
        // The group as configured now: a reload while the task runs changes nothing.
        let Some(cfg) = self.config.groups.get(group.0).cloned() else {
            return;
        };
        tracing::debug!(GROUP = %name, "{} group {name}", if start { "starting" } else { "stopping" });
        let timing = self.observe.group_op(&name, start);
        tokio::spawn(
            async move {
                let t0 = Instant::now();
                let event = if start {
                    match manager.start(&cfg, group.0).await {
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
                    match manager.stop(&cfg, group.0).await {
                        Ok(()) => GroupEvent::Stopped,
                        Err(e) => GroupEvent::StopFailed {
                            reason: e.to_string(),
                        },
                    }
                };
                if let Some(h) = timing {
                    h.observe(t0.elapsed().as_secs_f64());
                }
                let _ = results.send((cfg.name, event));
            }
            .in_current_span(),
        );
    }

    /// Re-announce the group's addresses, off the loop (after a healed split brain).
    fn spawn_announce(&self, group: GroupId) {
        let manager = self.manager.clone();
        let name = self.group_name(group).to_string();
        tokio::spawn(
            async move {
                match manager.announce_group(group.0).await {
                    Ok(done) if done.is_empty() => {}
                    Ok(done) => tracing::info!(GROUP = %name, "group {name}: announced {} again", done.join(", ")),
                    Err(e) => tracing::warn!(GROUP = %name, "group {name}: cannot announce its addresses again: {e}"),
                }
            }
            .in_current_span(),
        );
    }

    fn spawn_restart(&self, group: GroupId, from: usize) {
        let manager = self.manager.clone();
        let results = self.results_tx.clone();
        let Some(cfg) = self.config.groups.get(group.0).cloned() else {
            return;
        };
        tokio::spawn(
            async move {
                let event = match manager.restart_from(&cfg, group.0, from).await {
                    Ok(()) => GroupEvent::Restarted,
                    Err(e) => GroupEvent::RestartFailed {
                        reason: e.to_string(),
                    },
                };
                let _ = results.send((cfg.name, event));
            }
            .in_current_span(),
        );
    }

    /// A reload changed the resources of a group running here: the old ones from
    /// `from` are stopped, the new ones started (reported as an in-place restart).
    fn spawn_replace(&self, old: config::Group, group: GroupId, from: usize) {
        let manager = self.manager.clone();
        let results = self.results_tx.clone();
        let Some(new) = self.config.groups.get(group.0).cloned() else {
            return;
        };
        tokio::spawn(
            async move {
                let event = match manager.replace_from(&old, &new, group.0, from).await {
                    Ok(()) => GroupEvent::Restarted,
                    Err(e) => GroupEvent::RestartFailed {
                        reason: e.to_string(),
                    },
                };
                let _ = results.send((new.name, event));
            }
            .in_current_span(),
        );
    }

    /// A reload removed a group running here: stop it with its old configuration.
    fn spawn_retire(&self, old: config::Group) {
        let manager = self.manager.clone();
        let side = self.side_tx.clone();
        tokio::spawn(
            async move {
                let r = manager.stop(&old, usize::MAX).await;
                let _ = side.send(Side::Retired(old.name, r));
            }
            .in_current_span(),
        );
    }

    fn shutdown(&mut self, signal: &str) {
        if self.shutting_down {
            tracing::info!("{signal}: already shutting down, waiting for groups to stop");
            return;
        }
        tracing::info!("{signal}: releasing every group, then exiting");
        self.shutting_down = true;
        self.notifier.stopping();
        let _ = self
            .cluster
            .handle_command(Instant::now(), Command::Shutdown);
        self.update_status();
    }

    /// SIGTERM: a restart of our unit detaches (the next hbd adopts the groups), any
    /// other stop releases them. Asking systemd which it is happens off the loop.
    fn on_sigterm(&mut self) {
        if self.shutting_down || self.stop_pending {
            self.shutdown("SIGTERM");
            return;
        }
        self.stop_pending = true;
        let side = self.side_tx.clone();
        tokio::spawn(
            async move {
                let _ = side.send(Side::StopKind(restart_pending().await));
            }
            .in_current_span(),
        );
    }

    async fn on_side(&mut self, side: Side) {
        match side {
            Side::StopKind(restart) => {
                self.stop_pending = false;
                if restart && !self.shutting_down {
                    tracing::info!(
                        "SIGTERM from `systemctl restart`: exiting and leaving the groups running for the next hbd to adopt"
                    );
                } else if !self.shutting_down {
                    tracing::info!("SIGTERM: releasing every group, then exiting");
                }
                self.shutting_down = true;
                self.notifier.stopping();
                let _ = self
                    .cluster
                    .handle_command(Instant::now(), Command::Stop { restart });
                self.update_status();
            }
            Side::Retired(name, result) => {
                let retirement = match &result {
                    Ok(()) => {
                        tracing::info!(GROUP = %name, "group {name}, removed from cluster.toml, is stopped here and forgotten");
                        Retirement::Stopped
                    }
                    Err(e) => {
                        tracing::error!(GROUP = %name, "group {name}, removed from cluster.toml, failed to stop: {e}; it stays blocked here until `hbd unblock {name}`");
                        Retirement::StopFailed
                    }
                };
                self.cluster.retired(Instant::now(), &name, retirement);
                self.update_status();
            }
            Side::Fenced((node, attempt, result)) => {
                self.fencer.finished(node, attempt);
                self.cluster
                    .handle_fence_result(Instant::now(), node, attempt, result);
                self.update_status();
            }
            Side::Reloaded(generation, read) => {
                if self.reloading.map(|r| r.0) != Some(generation) {
                    return; // Too late: already reported as timed out.
                }
                self.reloading = None;
                match (*read).and_then(|(loaded, keys, warnings)| {
                    for w in loaded.render_warnings().into_iter().chain(warnings) {
                        tracing::warn!("{w}");
                    }
                    self.apply_reload(loaded.config, keys)
                }) {
                    Ok((changed, summary)) => {
                        if !changed.is_empty() {
                            self.links.reopen(&self.config, self.local, &changed).await;
                        }
                        tracing::info!("SIGHUP: configuration reloaded{summary}");
                        self.answer_reload(Ok(format!("configuration reloaded{summary}")));
                    }
                    Err(e) => self.refuse_reload(ReloadRefused::Failed(Arc::new(e))),
                }
                self.reload_done();
            }
        }
    }

    /// SIGHUP: reread cluster.toml and the key file on a thread of its own (a file
    /// that hangs or a huge config must not stop the heartbeats), then apply them
    /// here. Any error keeps the running configuration and is logged as one sentence.
    fn reload(&mut self) {
        if self.reloading.is_some() {
            tracing::info!("SIGHUP: a reload is already reading the configuration");
            return;
        }
        self.notifier.reloading();
        self.reload_generation += 1;
        let generation = self.reload_generation;
        self.reloading = Some((generation, Instant::now() + RELOAD_LIMIT));
        let (path, side) = (self.config_path.clone(), self.side_tx.clone());
        let read = move || {
            let read = config::load(&path)
                .map_err(ReloadFailure::from)
                .and_then(|loaded| {
                    let (keys, warnings) = config::keys::load(&loaded.config.auth)?;
                    Ok((loaded, keys, warnings))
                });
            let _ = side.send(Side::Reloaded(generation, Box::new(read)));
        };
        // A plain thread, not the runtime's blocking pool: one that never returns
        // (a file that blocks forever) must not hold up the exit.
        if let Err(e) = std::thread::Builder::new()
            .name("hbd-reload".into())
            .spawn(read)
        {
            self.reloading = None;
            self.refuse_reload(ReloadRefused::Thread(Arc::new(e)));
            self.reload_done();
        }
    }

    fn reload_done(&mut self) {
        if self.ready {
            self.notifier.ready();
        }
        self.update_status();
    }

    /// A reload kept the running configuration: log why, and answer the callers.
    fn refuse_reload(&mut self, why: ReloadRefused) {
        tracing::error!("SIGHUP: {why}");
        self.answer_reload(Err(why));
    }

    /// Answer the control API's reload calls waiting for this reload.
    fn answer_reload(&mut self, result: Result<String, ReloadRefused>) {
        for reply in self.reload_replies.drain(..) {
            let _ = reply.send(result.clone());
        }
    }

    /// Apply the new config; returns the links to reopen and what changed in the
    /// groups (a clause for the log and the answer, empty when nothing did).
    fn apply_reload(
        &mut self,
        new: Config,
        keys: config::KeySet,
    ) -> Result<(Vec<usize>, String), ReloadFailure> {
        // Our own name must still be there, at the same place.
        let me = &self.config.nodes[self.local].name;
        if new.nodes.get(self.local).map(|n| &n.name) != Some(me) {
            return Err(ReloadFailure::Moved(me.clone()));
        }
        // One configuration, shared by the core, the resource manager and the shell.
        let new = Arc::new(new);
        let reloaded = self
            .cluster
            .reload_shared(Instant::now(), new.clone(), keys)?;
        let changed = changed_links(&self.config, &new);
        self.observe.reloaded(&self.config, &new);
        let ping_changed = new.failover.ping != self.config.failover.ping
            || new.timing.keepalive != self.config.timing.keepalive;
        if ping_changed {
            if let Some(t) = self.ping_task.take() {
                t.abort();
            }
            self.ping_task = spawn_ping(&new, &self.ping_tx);
        }
        self.manager.set_config(new.clone());
        self.prefilter.update(&new);
        self.config = new;
        // The core's config and ours are the new one from here on: the ids in its
        // next actions are the new ones. Intents are kept by name: write them again.
        self.saved_admin.clear();
        for old in &reloaded.release {
            self.spawn_retire(old.clone());
        }
        for (old, group, from) in &reloaded.restart {
            self.spawn_replace(old.clone(), *group, *from);
        }
        Ok((changed, reload_summary(&reloaded)))
    }

    /// Hand the operator's intents to the writer when they changed (a command, a
    /// failure ending a takeover wish, a newer takeover elsewhere, a reload).
    fn keep_intents(&mut self) {
        if self.cluster.admin() != self.saved_admin.as_slice() {
            self.saved_admin = self.cluster.admin().to_vec();
            let _ = self.intent_tx.send(self.cluster.intents());
        }
    }

    /// The current id of the group of this name.
    fn group_id(&self, name: &str) -> Option<GroupId> {
        let id = self.config.groups.iter().position(|g| g.name == name);
        if id.is_none() {
            tracing::debug!(GROUP = %name, "result for group {name}, no longer configured: ignored");
        }
        id.map(GroupId)
    }

    fn update_status(&mut self) {
        let line = status_line(&self.cluster.status(), self.shutting_down);
        self.notifier.status(&line);
        if let Some(c) = &self.control {
            c.changed(&line);
        }
    }

    /// A control API request (control/): answered at once, nothing here waits on a client.
    async fn on_control(&mut self, req: control::Request) {
        match req {
            control::Request::Status { reply } => {
                let now = Instant::now();
                let status = self.cluster.status_at(now);
                let gaps = self.observe.gap_report(now, &self.config, &status);
                let _ = reply.send(control::Snapshot {
                    gaps,
                    status,
                    cluster: self.config.cluster.name.clone(),
                    taken: std::time::SystemTime::now(),
                });
            }
            control::Request::Command { cmd, reply } => {
                let what = cmd.to_string();
                let maintenance = match cmd {
                    Command::Maintenance(on) => Some(on),
                    _ => None,
                };
                let result = self.cluster.handle_command(Instant::now(), cmd);
                match &result {
                    Ok(o) => tracing::info!("operator: {}", o.message),
                    Err(e) => tracing::warn!("operator: {what} refused: {e}"),
                }
                if result.is_ok()
                    && let Some(on) = maintenance
                {
                    self.set_maintenance(on);
                }
                let _ = reply.send(result);
                self.update_status();
            }
            control::Request::Reload { reply } => {
                // Answered when the reload (this one, or one already under way) ends.
                self.reload_replies.push(reply);
                self.reload();
            }
        }
    }

    /// Maintenance mode: resource monitoring stops (nothing is restarted in place)
    /// and resumes for the groups running here when it ends.
    fn set_maintenance(&mut self, on: bool) {
        self.maintenance = on;
        // Configurations taken now: a reload while the task runs moves nothing.
        let running: Vec<(usize, config::Group)> = self
            .cluster
            .status()
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.local == crate::cluster::LocalGroupState::Running)
            .filter_map(|(i, _)| Some((i, self.config.groups.get(i)?.clone())))
            .collect();
        let manager = self.manager.clone();
        let names: Vec<String> = self.config.groups.iter().map(|g| g.name.clone()).collect();
        tokio::spawn(async move {
            if on {
                for name in &names {
                    manager.unmonitor_named(name).await;
                }
            } else {
                for (i, g) in running {
                    if let Err(e) = manager.resume_monitor_of(&g, i) {
                        tracing::error!(GROUP = %g.name, "cannot watch group {} again: {e}", g.name);
                    }
                }
            }
        });
    }

    fn log_reject(&mut self, link: LinkId, from: Source, reject: Reject) {
        if reject == Reject::Own {
            return;
        }
        self.observe.refused(&reject);
        if reject == Reject::Unconfirmed {
            // Every peer restart starts so, and replays of recorded packets end so:
            // neither changes anything.
            tracing::debug!(LINK = %self.links.name(link), SOURCE = %from, "ignored packet from {from}: {reject}");
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
        let mut flush = self.rejects.flush(Instant::now());
        let dropped = self
            .prefilter
            .dropped
            .swap(0, std::sync::atomic::Ordering::Relaxed);
        self.observe.prefiltered(dropped);
        flush.unlisted += dropped;
        for (from, n) in flush.sources {
            let from = source_address(&from);
            tracing::warn!(SOURCE = %from, "{n} more refused packet(s) from {from} in the last minute");
        }
        if flush.unlisted > 0 {
            tracing::warn!(
                "{} more refused packet(s) in the last minute from sources not listed one by one (too many sources: a flood?)",
                flush.unlisted
            );
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
            GroupEvent::ResourceDown { .. } => {}
            GroupEvent::Restarted => {
                tracing::info!(GROUP = %name, "group {name}: restarted in place")
            }
            GroupEvent::RestartFailed { reason } => tracing::error!(
                GROUP = %name,
                "group {name}: restart in place failed: {reason}; moving the group"
            ),
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
            Event::ConfigAgreed { peer: p } => {
                let p = peer(p);
                tracing::info!(PEER = %p, "peer {p} now runs the same cluster.toml as this node")
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
            Event::RestartInPlace {
                group,
                resource,
                reason,
                attempt,
                max,
            } => {
                let g = self.group_name(*group);
                let r = self.resource_name(*group, *resource);
                tracing::warn!(GROUP = %g, "group {g}: {reason}; restarting {r} in place ({attempt}/{max})")
            }
            Event::RestartBudgetSpent {
                group,
                reason,
                restarts,
                window,
            } => {
                let g = self.group_name(*group);
                tracing::error!(
                    GROUP = %g,
                    "group {g}: {reason}; already restarted {restarts} times within {}, giving up here: the group moves",
                    crate::config::HumanDuration::from_millis(window.as_millis() as u64)
                )
            }
            Event::Adopted { group } => {
                let g = self.group_name(*group);
                tracing::info!(GROUP = %g, "group {g} is already running here: adopting it")
            }
            Event::Leftovers { group } => {
                let g = self.group_name(*group);
                tracing::warn!(GROUP = %g, "group {g} is partly up here: stopping its leftovers")
            }
            Event::FoundUnknown { group, reason } => {
                let g = self.group_name(*group);
                tracing::warn!(GROUP = %g, "cannot tell whether group {g} is running here: {reason}; assuming it is not")
            }
            Event::Stalled { gap } => tracing::warn!(
                "this process did not run for {}ms (frozen or suspended): peers get a grace period",
                gap.as_millis()
            ),
            Event::PeerOnTime { peer: p } => {
                let p = peer(p);
                tracing::info!(PEER = %p, "peer {p} is heard again: no longer late")
            }
            Event::DuplicatePeer {
                peer: p,
                gone: false,
            } => {
                let p = peer(p);
                tracing::error!(PEER = %p, "two live daemons claim to be node {p} (a cloned node or a second hbd?): the groups either may run are left where they are, and neither is asked to take one; stop the copy")
            }
            Event::DuplicatePeer {
                peer: p,
                gone: true,
            } => {
                let p = peer(p);
                tracing::warn!(PEER = %p, "only one daemon claims to be node {p} again")
            }
            Event::DuplicateLocal {
                yielding,
                gone: false,
            } => {
                if *yielding {
                    tracing::error!(
                        "another live daemon claims to be this node and started earlier: releasing every group here and taking none while it is heard; stop the copy"
                    )
                } else {
                    tracing::error!(
                        "another live daemon claims to be this node and started later: it releases its groups; taking no new group while it is heard; stop the copy"
                    )
                }
            }
            Event::DuplicateLocal { gone: true, .. } => {
                tracing::warn!("the other daemon claiming to be this node is silent now")
            }
            Event::Quorum {
                quorate: false,
                heard,
                nodes,
            } => {
                let what = match self.config.failover.no_quorum {
                    crate::config::NoQuorum::Stop => "its groups stop and none starts",
                    crate::config::NoQuorum::Freeze => {
                        "what runs here keeps running, nothing starts (no_quorum = \"freeze\")"
                    }
                };
                tracing::error!(
                    "no quorum: this node hears {heard} of {nodes} nodes (itself included), no majority: {what}"
                )
            }
            Event::Quorum { heard, nodes, .. } => {
                tracing::info!("quorum: this node hears {heard} of {nodes} nodes (itself included)")
            }
            Event::PingCount {
                reached,
                configured,
            } => {
                if *reached == 0 {
                    tracing::warn!(
                        "this node reaches no ping node (0 of {configured}): it starts no group and stops its own"
                    )
                } else {
                    tracing::info!("this node reaches {reached} of {configured} ping nodes")
                }
            }
            Event::SplitBrain {
                group,
                peer: p,
                view,
                ..
            } => {
                let (g, p) = (self.group_name(*group), peer(p));
                tracing::warn!(GROUP = %g, PEER = %p, "group {g}: {view}")
            }
            Event::SendFailed { reason } => tracing::error!(
                "cannot send a heartbeat: {reason}; peers will declare this node dead"
            ),
            Event::FenceStarted { peer: p, reason } => {
                let p = peer(p);
                tracing::warn!(PEER = %p, "fencing {p} ({reason}) before taking over its groups")
            }
            Event::Fenced { peer: p, by_ack } => {
                let p = peer(p);
                if *by_ack {
                    tracing::warn!(PEER = %p, "{p} confirmed off by the operator (hbd fence-ack): its groups may be taken over")
                } else {
                    tracing::warn!(PEER = %p, "{p} fenced: its groups may be taken over")
                }
            }
            Event::FenceFailed {
                peer: p,
                reason,
                retry_in,
            } => {
                let p = peer(p);
                tracing::error!(PEER = %p, "fencing {p} failed: {reason}; its groups stay stopped; trying again in {}s, or run `hbd fence-ack {p}` once it is off", retry_in.as_secs())
            }
            Event::Legacy { message, warning } => {
                if *warning {
                    tracing::warn!("heartbeat: {message}")
                } else {
                    tracing::info!("heartbeat: {message}")
                }
            }
        }
    }

    fn node_name(&self, n: NodeId) -> &str {
        self.config.nodes.get(n.0).map_or("?", |n| n.name.as_str())
    }

    fn resource_name(&self, g: GroupId, r: usize) -> String {
        self.config
            .groups
            .get(g.0)
            .and_then(|g| g.resources.get(r))
            .map_or_else(|| format!("resource {r}"), |r| r.to_string())
    }

    fn group_name(&self, g: GroupId) -> &str {
        self.config.groups.get(g.0).map_or("?", |g| g.name.as_str())
    }
}

/// What a reload did to the groups, as a clause after "configuration reloaded".
fn reload_summary(r: &crate::cluster::Reloaded) -> String {
    let mut parts = Vec::new();
    if !r.added.is_empty() {
        parts.push(format!("added {}", r.added.join(", ")));
    }
    if !r.removed.is_empty() {
        let here: Vec<&str> = r.release.iter().map(|g| g.name.as_str()).collect();
        let mut p = format!("removed {}", r.removed.join(", "));
        if !here.is_empty() {
            p += &format!(" (stopping {} here)", here.join(", "));
        }
        parts.push(p);
    }
    if !r.restart.is_empty() {
        let names: Vec<&str> = r.restart.iter().map(|(g, _, _)| g.name.as_str()).collect();
        parts.push(format!(
            "restarting {} in place (resources changed)",
            names.join(", ")
        ));
    }
    if !r.changed.is_empty() {
        parts.push(format!(
            "new resources for {} from its next start",
            r.changed.join(", ")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
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

/// The next control API request, or never when the API is not running.
async fn next_request(control: &mut Option<control::Server>) -> Option<control::Request> {
    match control {
        Some(c) => c.requests.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
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
