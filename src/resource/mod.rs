//! Resource groups brought up and down through systemd (units, mounts, legacy
//! scripts) and netlink (virtual IPs).
//!
//! The daemon talks to one [`Manager`]: start a group (in order, rolling back on
//! failure), stop it (in reverse order; a failed stop is reported, never ignored),
//! ask whether a group is already fully active (adoption after a daemon restart), and
//! receive [`Failure`]s for groups whose resources failed beyond their in-place
//! restart budget.
//!
//! Layout: [`group`] sequences any [`group::Resource`] (tested with fakes); [`unit`](mod@unit),
//! [`mount`] and [`script`] are the systemd kinds; [`ip`] and [`arp`] the virtual IPs;
//! [`monitor`] watches running groups (signals and netlink events, no polling).

pub mod arp;
pub mod group;
pub mod ip;
pub mod monitor;
pub mod mount;
pub mod script;
pub mod unit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;

use crate::config::{Config, Group, IpResource, Resource as ResourceConfig};
use group::{GroupError, OpError, Resource};
use mount::MountRes;
use script::ScriptRes;
use unit::{SystemdLink, UnitRes};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResourceError {
    #[error("group index {0} is not in the configuration")]
    NoSuchGroup(usize),
    /// A start or stop failed: rolled back and down here, or blocked (a stop failed,
    /// also during a rollback: something may still be up here, so the group must not
    /// be started elsewhere until an operator clears it).
    #[error(transparent)]
    Group(Box<GroupError>),
    /// Whether a resource is up here could not be told.
    #[error(transparent)]
    Check(Box<OpError>),
    #[error("cannot open a netlink socket: {0}")]
    Netlink(String),
    #[error("group {group}: mount {source}")]
    MountName {
        group: String,
        source: crate::systemd::escape::EscapeError,
    },
    /// Re-announcing the group's addresses failed for these.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Announce(Vec<ip::IpError>),
}

impl From<GroupError> for ResourceError {
    fn from(e: GroupError) -> Self {
        ResourceError::Group(Box::new(e))
    }
}

impl From<OpError> for ResourceError {
    fn from(e: OpError) -> Self {
        ResourceError::Check(Box::new(e))
    }
}

impl ResourceError {
    /// Whether the group is left blocked here.
    pub fn is_blocked(&self) -> bool {
        matches!(self, ResourceError::Group(e) if e.is_blocked())
    }
}

/// A group that failed at runtime and should move to another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The group's index when its monitor started (a reload may have moved it since:
    /// the daemon goes by `name`).
    pub group: usize,
    pub name: String,
    /// Index of the resource (in the group) found down.
    pub resource: usize,
    pub reason: String,
}

/// Told of every resource start and stop (the daemon's metrics).
pub trait Observe: Send + Sync {
    fn resource_done(&self, group: &str, resource: &str, start: bool, took: Duration, ok: bool);
}

/// A resource whose starts and stops are timed and told to an [`Observe`].
struct Timed {
    inner: Box<dyn Resource>,
    group: String,
    observer: Arc<dyn Observe>,
}

impl Timed {
    async fn timed(&self, start: bool) -> Result<(), OpError> {
        let t0 = std::time::Instant::now();
        let r = if start {
            self.inner.start().await
        } else {
            self.inner.stop().await
        };
        self.observer.resource_done(
            &self.group,
            &self.inner.name(),
            start,
            t0.elapsed(),
            r.is_ok(),
        );
        r
    }
}

impl Resource for Timed {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn start(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(self.timed(true))
    }
    fn stop(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(self.timed(false))
    }
    fn is_active(&self) -> BoxFuture<'_, Result<bool, OpError>> {
        self.inner.is_active()
    }
}

/// A virtual IP as a group member.
struct IpRes {
    nl: rtnetlink::Handle,
    cfg: IpResource,
}

impl Resource for IpRes {
    fn name(&self) -> String {
        format!("ip {}", self.cfg.address)
    }
    fn start(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move {
            let t0 = std::time::Instant::now();
            let p = ip::add(&self.nl, &self.cfg).await?;
            tracing::info!(
                "{}/{} up on {} ({:?})",
                p.addr,
                p.prefix,
                p.ifname,
                t0.elapsed()
            );
            Ok(())
        })
    }
    fn stop(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move { Ok(ip::remove(&self.nl, &self.cfg).await?) })
    }
    fn is_active(&self) -> BoxFuture<'_, Result<bool, OpError>> {
        Box::pin(async move { Ok(ip::is_present(&self.nl, &self.cfg).await?) })
    }
}

#[derive(Default)]
struct State {
    /// Per group name: serializes start, stop and in-place restarts.
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Per group name (indexes move on reload): the running monitor.
    monitors: HashMap<String, tokio::task::JoinHandle<()>>,
}

/// Handle on the resource layer; cheap to clone into tasks.
#[derive(Clone)]
pub struct Manager {
    config: Arc<Mutex<Arc<Config>>>,
    failures: UnboundedSender<Failure>,
    sd: SystemdLink,
    nl: rtnetlink::Handle,
    state: Arc<Mutex<State>>,
    prepared: unit::Prepared,
    observer: Arc<std::sync::OnceLock<Arc<dyn Observe>>>,
}

impl Manager {
    /// Time every resource start and stop from now on and tell `observer` (once).
    pub fn set_observer(&self, observer: Arc<dyn Observe>) {
        let _ = self.observer.set(observer);
    }

    /// Open the netlink connection (must run inside a Tokio runtime). systemd is
    /// reached on first use, so a node whose groups hold only IPs needs no bus.
    pub async fn connect(
        config: Arc<Config>,
        failures: UnboundedSender<Failure>,
    ) -> Result<Manager, ResourceError> {
        let (conn, nl, _) =
            rtnetlink::new_connection().map_err(|e| ResourceError::Netlink(e.to_string()))?;
        tokio::spawn(conn);
        let m = Manager {
            config: Arc::new(Mutex::new(config.clone())),
            failures,
            sd: SystemdLink::default(),
            nl,
            state: Arc::new(Mutex::new(State::default())),
            prepared: unit::Prepared::default(),
            observer: Arc::default(),
        };
        // The announcement socket, opened before any takeover needs it.
        if let Err(e) = arp::Announcer::get() {
            tracing::warn!("cannot open the socket for gratuitous ARPs yet: {e}");
        }
        let needs_systemd = config
            .groups
            .iter()
            .flat_map(|g| &g.resources)
            .any(|r| !matches!(r, ResourceConfig::Ip(_)));
        if needs_systemd && let Err(e) = m.sd.get().await {
            tracing::warn!("{e}; will retry when a group starts");
        }
        m.prepare(&config);
        Ok(m)
    }

    /// Prepare every unit resource ahead of a takeover (drop-ins, one daemon-reload,
    /// warnings), in the background.
    fn prepare(&self, config: &Config) {
        let units: Vec<String> = config
            .groups
            .iter()
            .flat_map(|g| &g.resources)
            .filter_map(|r| match r {
                ResourceConfig::Unit(u) => Some(u.unit.clone()),
                _ => None,
            })
            .collect();
        if units.is_empty() {
            return;
        }
        let (sd, prepared) = (self.sd.clone(), self.prepared.clone());
        tokio::spawn(async move { unit::prepare(&sd, &prepared, &units).await }.in_current_span());
    }

    fn config(&self) -> Arc<Config> {
        match self.config.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Use a reloaded configuration for later operations.
    pub fn set_config(&self, config: Arc<Config>) {
        self.prepare(&config);
        match self.config.lock() {
            Ok(mut c) => *c = config,
            Err(p) => *p.into_inner() = config,
        }
    }

    /// The group at `index` in the configuration in use now.
    pub fn group(&self, index: usize) -> Result<Group, ResourceError> {
        self.config()
            .groups
            .get(index)
            .cloned()
            .ok_or(ResourceError::NoSuchGroup(index))
    }

    fn build(&self, cfg: &Config, group: usize) -> Result<Plan, ResourceError> {
        let g = cfg
            .groups
            .get(group)
            .ok_or(ResourceError::NoSuchGroup(group))?;
        self.build_group(g, group)
    }

    /// The plan of a group given by its configuration (which may be an older one, to
    /// stop what a reload removed or changed); `index` only labels its failures.
    fn build_group(&self, g: &Group, index: usize) -> Result<Plan, ResourceError> {
        let mut resources: Vec<Box<dyn Resource>> = Vec::new();
        let mut watches = Vec::new();
        for r in &g.resources {
            match r {
                ResourceConfig::Ip(c) => {
                    watches.push(monitor::Watch::Address(c.address.addr));
                    resources.push(Box::new(IpRes {
                        nl: self.nl.clone(),
                        cfg: c.clone(),
                    }));
                }
                ResourceConfig::Unit(c) => {
                    watches.push(monitor::Watch::Unit(c.unit.clone()));
                    resources.push(Box::new(UnitRes {
                        sd: self.sd.clone(),
                        unit: c.unit.clone(),
                        timeout: c.timeout.get(),
                        prepared: self.prepared.clone(),
                    }));
                }
                ResourceConfig::Mount(c) => {
                    let m = MountRes {
                        sd: self.sd.clone(),
                        cfg: c.clone(),
                    };
                    let unit =
                        crate::systemd::escape::mount_unit_name(&c.r#where).map_err(|source| {
                            ResourceError::MountName {
                                group: g.name.clone(),
                                source,
                            }
                        })?;
                    watches.push(monitor::Watch::Unit(unit));
                    resources.push(Box::new(m));
                }
                ResourceConfig::Script(c) => {
                    watches.push(monitor::Watch::Unit(script::script_unit_name(c)));
                    resources.push(Box::new(ScriptRes {
                        sd: self.sd.clone(),
                        cfg: c.clone(),
                    }));
                }
            }
        }
        if let Some(observer) = self.observer.get() {
            resources = resources
                .into_iter()
                .map(|inner| -> Box<dyn Resource> {
                    Box::new(Timed {
                        inner,
                        group: g.name.clone(),
                        observer: observer.clone(),
                    })
                })
                .collect();
        }
        let lock = self
            .state()
            .locks
            .entry(g.name.clone())
            .or_default()
            .clone();
        Ok(Plan {
            index,
            name: g.name.clone(),
            resources: Arc::new(resources),
            watches,
            lock,
        })
    }

    /// Stop watching a group (before it is stopped or restarted), and wait until the
    /// watcher is gone.
    pub async fn unmonitor(&self, group: usize) {
        if let Ok(g) = self.group(group) {
            self.unmonitor_named(&g.name).await;
        }
    }

    /// Stop watching the group of this name, and wait until the watcher is gone.
    pub async fn unmonitor_named(&self, name: &str) {
        let h = self.state().monitors.remove(name);
        if let Some(h) = h {
            h.abort();
            let _ = h.await;
        }
    }

    fn monitor(&self, _group: usize, plan: Plan) {
        let mut st = self.state();
        if st
            .monitors
            .get(&plan.name)
            .is_some_and(|h| !h.is_finished())
        {
            return;
        }
        let name = plan.name.clone();
        let task = monitor::Plan {
            group: plan.index,
            name: plan.name,
            resources: plan.resources,
            watches: plan.watches,
            sd: self.sd.clone(),
            lock: plan.lock,
            failures: self.failures.clone(),
        };
        st.monitors.insert(name, tokio::spawn(monitor::run(task)));
    }

    /// Whether a monitor is watching the group.
    pub fn is_monitored(&self, group: usize) -> bool {
        let Ok(g) = self.group(group) else {
            return false;
        };
        self.state()
            .monitors
            .get(&g.name)
            .is_some_and(|h| !h.is_finished())
    }

    /// Start the group's resources first to last; on failure stop the started ones
    /// last to first and return the first error. On success the group is monitored.
    pub async fn start_group(&self, group: usize) -> Result<(), ResourceError> {
        let g = self.group(group)?;
        self.start(&g, group).await
    }

    /// [`Manager::start_group`] of a group given by its configuration.
    pub async fn start(&self, g: &Group, group: usize) -> Result<(), ResourceError> {
        let plan = self.build_group(g, group)?;
        self.unmonitor_named(&g.name).await;
        {
            let _g = plan.lock.lock().await;
            let t0 = std::time::Instant::now();
            group::start_all(plan.resources.as_slice()).await?;
            tracing::info!("group {} started ({:?})", plan.name, t0.elapsed());
        }
        self.monitor(group, plan);
        Ok(())
    }

    /// Restart resources `from..` of a running group in place: stop them last to first,
    /// start them first to last, under the group's lock (so its monitor looks again
    /// only once they are back). The core decides when (its restart budget).
    pub async fn restart_in_place(&self, group: usize, from: usize) -> Result<(), ResourceError> {
        let g = self.group(group)?;
        self.restart_from(&g, group, from).await
    }

    /// [`Manager::restart_in_place`] of a group given by its configuration.
    pub async fn restart_from(
        &self,
        g: &Group,
        group: usize,
        from: usize,
    ) -> Result<(), ResourceError> {
        let plan = self.build_group(g, group)?;
        let _g = plan.lock.lock().await;
        let t0 = std::time::Instant::now();
        group::stop_down_to(plan.resources.as_slice(), from).await?;
        group::start_from(plan.resources.as_slice(), from).await?;
        tracing::info!(
            "group {}: restarted in place ({:?})",
            plan.name,
            t0.elapsed()
        );
        Ok(())
    }

    /// Stop the group's resources last to first (monitoring ends first, so the stop is
    /// never taken for a failure). A failed stop leaves the group blocked here.
    pub async fn stop_group(&self, group: usize) -> Result<(), ResourceError> {
        let g = self.group(group)?;
        self.stop(&g, group).await
    }

    /// A group whose resources a reload changed while it ran: stop the old resources
    /// `from..` last to first, start the new ones `from..` first to last, under the
    /// group's lock and with its monitor off meanwhile (watching the new ones after).
    pub async fn replace_from(
        &self,
        old: &Group,
        new: &Group,
        group: usize,
        from: usize,
    ) -> Result<(), ResourceError> {
        let before = self.build_group(old, group)?;
        let after = self.build_group(new, group)?;
        self.unmonitor_named(&new.name).await;
        {
            let _g = after.lock.lock().await;
            let t0 = std::time::Instant::now();
            group::stop_down_to(before.resources.as_slice(), from).await?;
            group::start_from(after.resources.as_slice(), from).await?;
            tracing::info!(
                "group {}: changed resources restarted in place ({:?})",
                after.name,
                t0.elapsed()
            );
        }
        if !after.resources.is_empty() {
            self.monitor(group, after);
        }
        Ok(())
    }

    /// [`Manager::stop_group`] of a group given by its configuration (an older one for
    /// a group a reload removed).
    pub async fn stop(&self, g: &Group, group: usize) -> Result<(), ResourceError> {
        let plan = self.build_group(g, group)?;
        self.unmonitor_named(&g.name).await;
        let _g = plan.lock.lock().await;
        let t0 = std::time::Instant::now();
        group::stop_all(plan.resources.as_slice()).await?;
        tracing::info!("group {} stopped ({:?})", plan.name, t0.elapsed());
        Ok(())
    }

    /// Re-announce every virtual IP of the group that is up here (after a healed
    /// split brain). Returns the addresses announced; every address is tried even
    /// when one fails, and the failures are joined into the error.
    pub async fn announce_group(&self, group: usize) -> Result<Vec<String>, ResourceError> {
        let cfg = self.config();
        let g = cfg
            .groups
            .get(group)
            .ok_or(ResourceError::NoSuchGroup(group))?;
        let (mut done, mut errors) = (Vec::new(), Vec::new());
        for r in &g.resources {
            if let ResourceConfig::Ip(c) = r {
                match ip::reannounce(&self.nl, c).await {
                    Ok(Some(p)) => done.push(format!("{} on {}", p.addr, p.ifname)),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        if errors.is_empty() {
            Ok(done)
        } else {
            Err(ResourceError::Announce(errors))
        }
    }

    /// Whether every resource of the group is already active here (adoption). When it
    /// is, the group is monitored from now on, as if `start_group` had run; nothing is
    /// restarted.
    pub async fn is_active(&self, group: usize) -> Result<bool, ResourceError> {
        let cfg = self.config();
        let plan = self.build(&cfg, group)?;
        let active = group::all_active(plan.resources.as_slice()).await?;
        if active && !plan.resources.is_empty() {
            self.monitor(group, plan);
        }
        Ok(active)
    }
}

impl Manager {
    /// Whether any resource of the group is active here: leftovers of a group that is
    /// not fully up (after a crash mid-start, say) that `stop_group` should clean up
    /// before the group runs elsewhere.
    pub async fn any_active(&self, group: usize) -> Result<bool, ResourceError> {
        let cfg = self.config();
        let plan = self.build(&cfg, group)?;
        for r in plan.resources.iter() {
            if r.is_active().await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

struct Plan {
    index: usize,
    name: String,
    resources: Arc<Vec<Box<dyn Resource>>>,
    watches: Vec<monitor::Watch>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// One resource as `hbd status` shows it: what it is and its state on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceState {
    /// "ip", "unit", "mount" or "script".
    pub kind: &'static str,
    /// The address, unit name, mount point or script unit.
    pub name: String,
    /// systemd's ActiveState of the unit ("active", "inactive", "failed", ...), or for
    /// a virtual IP "present"/"absent"; "unknown" when it cannot be asked.
    pub state: String,
}

impl Manager {
    /// The state of each resource of the group on this node, as systemd (or netlink)
    /// reports it. Read-only; never starts anything.
    pub async fn resource_states(&self, group: usize) -> Result<Vec<ResourceState>, ResourceError> {
        let g = self.group(group)?;
        self.resource_states_of(&g, group).await
    }

    /// The group of this name in the configuration in use now, with its index.
    pub fn group_named(&self, name: &str) -> Option<(usize, Group)> {
        let cfg = self.config();
        let i = cfg.groups.iter().position(|g| g.name == name)?;
        Some((i, cfg.groups[i].clone()))
    }

    /// [`Manager::resource_states`] of a group given by its configuration.
    pub async fn resource_states_of(
        &self,
        g: &Group,
        group: usize,
    ) -> Result<Vec<ResourceState>, ResourceError> {
        let plan = self.build_group(g, group)?;
        let sd = if plan
            .watches
            .iter()
            .any(|w| matches!(w, monitor::Watch::Unit(_)))
        {
            self.sd.get().await.ok()
        } else {
            None
        };
        let mut out = Vec::new();
        for (r, w) in g.resources.iter().zip(&plan.watches) {
            let kind = match r {
                ResourceConfig::Ip(_) => "ip",
                ResourceConfig::Unit(_) => "unit",
                ResourceConfig::Mount(_) => "mount",
                ResourceConfig::Script(_) => "script",
            };
            let (name, state) = match (r, w) {
                (ResourceConfig::Ip(c), _) => (
                    c.address.to_string(),
                    match ip::is_present(&self.nl, c).await {
                        Ok(true) => "present".to_string(),
                        Ok(false) => "absent".to_string(),
                        Err(_) => "unknown".to_string(),
                    },
                ),
                (_, monitor::Watch::Unit(unit)) => {
                    let state = match &sd {
                        Some(sd) => sd
                            .active_state(unit)
                            .await
                            .unwrap_or_else(|_| "unknown".into()),
                        None => "unknown".into(),
                    };
                    (unit.clone(), state)
                }
                (_, monitor::Watch::Address(a)) => (a.to_string(), "unknown".into()),
            };
            out.push(ResourceState { kind, name, state });
        }
        Ok(out)
    }

    /// Watch a running group again (after maintenance mode): a resource found down
    /// is handled as if it had just failed (restart in place, then a failure).
    pub fn resume_monitor(&self, group: usize) -> Result<(), ResourceError> {
        let g = self.group(group)?;
        self.resume_monitor_of(&g, group)
    }

    /// [`Manager::resume_monitor`] of a group given by its configuration.
    pub fn resume_monitor_of(&self, g: &Group, group: usize) -> Result<(), ResourceError> {
        let plan = self.build_group(g, group)?;
        if !plan.resources.is_empty() {
            self.monitor(group, plan);
        }
        Ok(())
    }
}
