//! What the daemon observes for people and tools: metrics (metrics.rs), heartbeat
//! gaps and the deadtime advice (gaps.rs), event hooks (hooks.rs). Fed by the event
//! loop with the core's events, its status and accepted packets; nothing here
//! decides anything or blocks the loop.

use std::collections::HashMap;
use std::time::Instant;

use super::gaps::{self, Gaps};
use super::hooks::{Hook, Hooks};
use super::metrics::{self, LinkLabels, Metrics, PeerLabels};
use crate::cluster::{Accepted, Event, Reject, Status, state_name};
use crate::config::Config;
use crate::control::report::GapReport;

pub struct Observer {
    pub metrics: Metrics,
    serving: bool,
    hooks: Option<Hooks>,
    /// Per (peer, link) index.
    gaps: HashMap<(usize, usize), Gaps>,
    origin: Instant,
    /// When the gauges were last set from a status snapshot.
    refreshed: Option<Instant>,
}

/// The gauges follow the status at least this often (claims in peers' heartbeats
/// change holders without an event here).
const REFRESH: std::time::Duration = std::time::Duration::from_millis(500);

impl Observer {
    pub fn new(config: &Config, local: usize, manager: &crate::resource::Manager) -> Observer {
        let node = config.nodes.get(local).map_or("?", |n| n.name.as_str());
        let metrics = Metrics::new(env!("CARGO_PKG_VERSION"), node, &config.cluster.name);
        let mut serving = false;
        if let Some(addr) = config.metrics.listen {
            match metrics::serve(addr, metrics.clone()) {
                Ok(()) => {
                    serving = true;
                    manager.set_observer(std::sync::Arc::new(metrics.clone()));
                    tracing::info!("serving metrics on http://{addr}/metrics");
                }
                Err(e) => tracing::error!("{e}; running without metrics"),
            }
        }
        let hooks = config.events.unit.as_ref().map(|u| {
            tracing::info!("event hooks: starting {u} on every peer and group transition");
            Hooks::start(u.clone(), config.events.timeout.get())
        });
        Observer {
            metrics,
            serving,
            hooks,
            gaps: HashMap::new(),
            origin: Instant::now(),
            refreshed: None,
        }
    }

    /// `[metrics]`/`[events]` are read at start-up only.
    /// Gap statistics are kept by node and link index, gauges by name: when the nodes,
    /// links or groups change, both start afresh (counters keep their history).
    pub fn reloaded(&mut self, old: &Config, new: &Config) {
        if old.metrics != new.metrics || old.events != new.events {
            tracing::warn!(
                "SIGHUP: changes to [metrics] and [events] take effect when hbd restarts"
            );
        }
        let names = |c: &Config| {
            (
                c.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
                c.links
                    .iter()
                    .map(|l| l.name().to_string())
                    .collect::<Vec<_>>(),
                c.groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>(),
            )
        };
        if names(old) != names(new) {
            self.gaps.clear();
            let m = &self.metrics;
            m.peer_up.clear();
            m.link_up.clear();
            m.config_agrees.clear();
            m.group_state.clear();
            m.holder.clear();
            self.refreshed = None;
        }
    }

    /// A packet the core believed.
    pub fn packet(&mut self, now: Instant, a: Accepted, config: &Config) {
        let origin = self.origin;
        let g = self
            .gaps
            .entry((a.peer.0, a.link.0))
            .or_insert_with(|| Gaps::new(origin));
        let measured = g.heard(now, a.seq);
        if !self.serving {
            return;
        }
        let labels = link_labels(config, a.peer.0, a.link.0);
        self.metrics.received.get_or_create(&labels).inc();
        if let Some((gap, lost)) = measured {
            self.metrics
                .interval
                .get_or_create(&labels)
                .observe(gap.as_secs_f64());
            if lost > 0 {
                self.metrics.lost.get_or_create(&labels).inc_by(lost);
            }
        }
    }

    pub fn refused(&self, r: &Reject) {
        if self.serving {
            self.metrics.refused(metrics::reject_class(r), 1);
        }
    }

    /// Packets from unknown sources dropped because their queue was full (links.rs).
    pub fn prefiltered(&self, n: u64) {
        if self.serving && n > 0 {
            self.metrics.refused("bulk_queue_full", n);
        }
    }

    /// Whether the gauges are due for a refresh from the status (metrics served only).
    pub fn refresh_due(&self, now: Instant) -> bool {
        self.serving
            && self
                .refreshed
                .is_none_or(|t| now.saturating_duration_since(t) >= REFRESH)
    }

    /// The core's events of one drain, then the status after them.
    pub fn events(&mut self, events: &[Event], status: &Status, config: &Config) {
        // The GroupState events of this batch are the last transitions, in order.
        let n = events
            .iter()
            .filter(|e| matches!(e, Event::GroupState { .. }))
            .count();
        let mut transitions = status
            .transitions
            .iter()
            .skip(status.transitions.len().saturating_sub(n));
        let wall = crate::control::report::rfc3339(std::time::SystemTime::now());
        for e in events {
            let peer_name = |p: usize| config.nodes.get(p).map_or("?", |n| n.name.as_str());
            let mut env: Vec<(String, String)> = vec![
                ("HBD_TIME".into(), wall.clone()),
                ("HBD_NODE".into(), status.local.clone()),
                ("HBD_CLUSTER".into(), config.cluster.name.clone()),
            ];
            let event: Option<String> = match e {
                Event::PeerUp { peer }
                | Event::PeerLate { peer, .. }
                | Event::PeerOnTime { peer }
                | Event::PeerDead { peer }
                | Event::PeerLeft { peer }
                | Event::PeerRestarted { peer }
                | Event::ConfigMismatch { peer }
                | Event::ConfigAgreed { peer } => {
                    let labels = PeerLabels {
                        peer: peer_name(peer.0).into(),
                    };
                    match e {
                        Event::PeerLate { .. } if self.serving => {
                            self.metrics.late.get_or_create(&labels).inc();
                        }
                        Event::PeerDead { .. } if self.serving => {
                            self.metrics.dead.get_or_create(&labels).inc();
                        }
                        _ => {}
                    }
                    if matches!(
                        e,
                        Event::PeerDead { .. }
                            | Event::PeerLeft { .. }
                            | Event::PeerRestarted { .. }
                    ) {
                        for ((p, _), g) in self.gaps.iter_mut() {
                            if *p == peer.0 {
                                g.reset();
                            }
                        }
                    }
                    if let Event::PeerLate { silent, .. } = e {
                        env.push(("HBD_SILENT_MS".into(), silent.as_millis().to_string()));
                    }
                    env.push(("HBD_PEER".into(), labels.peer.clone()));
                    super::journal::kind(e).map(String::from)
                }
                Event::LinkUp { peer, link } | Event::LinkDown { peer, link } => {
                    let labels = link_labels(config, peer.0, link.0);
                    if let Event::LinkDown { .. } = e {
                        if let Some(g) = self.gaps.get_mut(&(peer.0, link.0)) {
                            g.reset();
                        }
                        if self.serving {
                            self.metrics.link_down.get_or_create(&labels).inc();
                        }
                    }
                    env.push(("HBD_PEER".into(), labels.peer));
                    env.push(("HBD_LINK".into(), labels.link));
                    super::journal::kind(e).map(String::from)
                }
                Event::GroupState { group, state } => {
                    let name = config.groups.get(group.0).map_or("?", |g| g.name.as_str());
                    let t = transitions.next();
                    let from = t.map_or("?", |t| state_name(&t.from));
                    let reason = t.and_then(|t| t.reason.clone());
                    if self.serving {
                        self.metrics.transition(
                            name,
                            from,
                            state_name(state),
                            metrics::reason_class(reason.as_deref()),
                        );
                    }
                    env.push(("HBD_GROUP".into(), name.into()));
                    env.push(("HBD_FROM".into(), from.into()));
                    env.push(("HBD_STATE".into(), state_name(state).into()));
                    if let Some(r) = reason {
                        env.push(("HBD_REASON".into(), r));
                    }
                    Some(format!("group-{}", state_name(state)))
                }
                Event::FenceStarted { peer, reason } | Event::FenceFailed { peer, reason, .. } => {
                    env.push(("HBD_PEER".into(), peer_name(peer.0).into()));
                    env.push(("HBD_REASON".into(), reason.clone()));
                    super::journal::kind(e).map(String::from)
                }
                Event::SplitBrain {
                    group, peer, view, ..
                } => {
                    let name = config.groups.get(group.0).map_or("?", |g| g.name.as_str());
                    env.push(("HBD_GROUP".into(), name.into()));
                    env.push(("HBD_PEER".into(), peer_name(peer.0).into()));
                    env.push(("HBD_REASON".into(), view.clone()));
                    super::journal::kind(e).map(String::from)
                }
                Event::Quorum { heard, nodes, .. } => {
                    env.push((
                        "HBD_REASON".into(),
                        format!("hears {heard} of {nodes} nodes"),
                    ));
                    super::journal::kind(e).map(String::from)
                }
                Event::Fenced { peer, by_ack } => {
                    env.push(("HBD_PEER".into(), peer_name(peer.0).into()));
                    if *by_ack {
                        env.push(("HBD_REASON".into(), "confirmed by hbd fence-ack".into()));
                    }
                    super::journal::kind(e).map(String::from)
                }
                _ => None,
            };
            if let (Some(hooks), Some(event)) = (self.hooks.as_mut(), event) {
                hooks.push(Hook { event, env }, &self.metrics.events_dropped);
            }
        }
        if self.serving {
            self.metrics.status(status);
            self.refreshed = Some(Instant::now());
        }
    }

    /// A histogram for the duration of a group start (takeover) or stop.
    pub fn group_op(
        &self,
        group: &str,
        start: bool,
    ) -> Option<prometheus_client::metrics::histogram::Histogram> {
        if !self.serving {
            return None;
        }
        let l = metrics::GroupLabels {
            group: group.into(),
        };
        Some(if start {
            self.metrics.takeover.get_or_create(&l).clone()
        } else {
            self.metrics.stop.get_or_create(&l).clone()
        })
    }

    /// The gaps of every peer's links, with the advice, for `hbd status`.
    pub fn gap_report(&self, now: Instant, config: &Config, status: &Status) -> Vec<GapReport> {
        let t = &config.timing;
        let (ka, warn, dead) = (
            t.keepalive.as_millis(),
            t.warntime.as_millis(),
            t.deadtime.as_millis(),
        );
        let mut out = Vec::new();
        for (pi, node) in config.nodes.iter().enumerate() {
            if node.name == status.local {
                continue;
            }
            for (li, link) in config.links.iter().enumerate() {
                let Some(g) = self.gaps.get(&(pi, li)) else {
                    continue;
                };
                let summary = g.summary(now);
                out.push(GapReport {
                    peer: node.name.clone(),
                    link: link.name().to_string(),
                    advice: gaps::sentence(&summary, ka, warn, dead),
                    gaps: summary.gaps,
                    observed_ms: summary.observed_ms,
                    worst_hour_ms: summary.worst_hour_ms,
                    worst_day_ms: summary.worst_day_ms,
                });
            }
        }
        out
    }
}

fn link_labels(config: &Config, peer: usize, link: usize) -> LinkLabels {
    LinkLabels {
        peer: config
            .nodes
            .get(peer)
            .map_or("?", |n| n.name.as_str())
            .into(),
        link: config.links.get(link).map_or("?", |l| l.name()).into(),
    }
}
