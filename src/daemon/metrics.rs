//! The Prometheus endpoint (`[metrics] listen`): counters and gauges kept here in
//! the shell, fed by the core's events, its status snapshots and the daemon's own
//! measurements (packets, refusals, group and resource operations), served in
//! Prometheus' text format (prometheus-client) over HTTP (hyper) by tasks of their
//! own on the daemon's runtime.
//!
//! The event loop only bumps atomics; a scrape encodes the registry in the server's
//! task, so a scrape never waits for the loop (it answers during a takeover) and a
//! slow scraper never holds the loop. At most [`MAX_CONNECTIONS`] scrapes at a time;
//! each connection gets [`HEADER_LIMIT`] to send its request and [`CONNECTION_LIMIT`]
//! in all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text::{CONTENT_TYPE, encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::cluster::{LocalGroupState, PeerState, Status};

pub const MAX_CONNECTIONS: usize = 16;
pub const CONNECTION_LIMIT: Duration = Duration::from_secs(10);
/// A client that has not sent its request headers by then is dropped (idle
/// connections must not hold the slots).
pub const HEADER_LIMIT: Duration = Duration::from_secs(2);

const STATES: [LocalGroupState; 6] = [
    LocalGroupState::Stopped,
    LocalGroupState::Starting,
    LocalGroupState::Running,
    LocalGroupState::Stopping,
    LocalGroupState::Failed,
    LocalGroupState::Blocked,
];

/// Heartbeat inter-arrival buckets (seconds): from sub-keepalive jitter to past any
/// sane deadtime.
const GAP_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
];
/// Group and resource operation buckets (seconds).
const OP_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    pub peer: String,
    pub link: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupStateLabels {
    pub group: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HolderLabels {
    pub group: String,
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub group: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub group: String,
    pub resource: String,
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoLabels {
    pub version: String,
    pub node: String,
    pub cluster: String,
}

fn gap_histogram() -> Histogram {
    Histogram::new(GAP_BUCKETS)
}

fn op_histogram() -> Histogram {
    Histogram::new(OP_BUCKETS)
}

/// Every metric hbd exports. Cheap to clone (each family is shared).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub peer_up: Family<PeerLabels, Gauge>,
    pub link_up: Family<LinkLabels, Gauge>,
    pub received: Family<LinkLabels, Counter>,
    pub lost: Family<LinkLabels, Counter>,
    pub interval: Family<LinkLabels, Histogram, fn() -> Histogram>,
    pub link_down: Family<LinkLabels, Counter>,
    pub late: Family<PeerLabels, Counter>,
    pub dead: Family<PeerLabels, Counter>,
    pub config_agrees: Family<PeerLabels, Gauge>,
    pub group_state: Family<GroupStateLabels, Gauge>,
    pub holder: Family<HolderLabels, Gauge>,
    pub transitions: Family<TransitionLabels, Counter>,
    pub last_transition: Family<GroupLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub takeover: Family<GroupLabels, Histogram, fn() -> Histogram>,
    pub stop: Family<GroupLabels, Histogram, fn() -> Histogram>,
    pub resource_duration: Family<ResourceLabels, Histogram, fn() -> Histogram>,
    pub resource_failures: Family<ResourceLabels, Counter>,
    pub refused: Family<ReasonLabels, Counter>,
    pub ready: Gauge,
    pub events_dropped: Counter,
}

impl Metrics {
    pub fn new(version: &str, node: &str, cluster: &str) -> Metrics {
        let mut r = Registry::with_prefix("hbd");
        let info: Family<InfoLabels, Gauge> = Family::default();
        info.get_or_create(&InfoLabels {
            version: version.into(),
            node: node.into(),
            cluster: cluster.into(),
        })
        .set(1);
        r.register(
            "build_info",
            "hbd's version, node and cluster (always 1)",
            info,
        );
        let m = Metrics {
            registry: Arc::new(Registry::default()),
            peer_up: Family::default(),
            link_up: Family::default(),
            received: Family::default(),
            lost: Family::default(),
            interval: Family::new_with_constructor(gap_histogram),
            link_down: Family::default(),
            late: Family::default(),
            dead: Family::default(),
            config_agrees: Family::default(),
            group_state: Family::default(),
            holder: Family::default(),
            transitions: Family::default(),
            last_transition: Family::default(),
            takeover: Family::new_with_constructor(op_histogram),
            stop: Family::new_with_constructor(op_histogram),
            resource_duration: Family::new_with_constructor(op_histogram),
            resource_failures: Family::default(),
            refused: Family::default(),
            ready: Gauge::default(),
            events_dropped: Counter::default(),
        };
        r.register(
            "ready",
            "1 once the start-up listening phase is over",
            m.ready.clone(),
        );
        r.register(
            "peer_up",
            "1 while the peer is up or late, else 0",
            m.peer_up.clone(),
        );
        r.register(
            "link_up",
            "1 while the link hears the peer, else 0",
            m.link_up.clone(),
        );
        r.register(
            "heartbeats_received",
            "Heartbeats believed from the peer on the link",
            m.received.clone(),
        );
        r.register(
            "heartbeats_lost",
            "Heartbeats of the peer that never arrived on the link (sequence numbers skipped)",
            m.lost.clone(),
        );
        r.register(
            "heartbeat_interval_seconds",
            "Time between two heartbeats of the peer on the link",
            m.interval.clone(),
        );
        r.register(
            "link_down",
            "Times the link to the peer went down (silent for deadtime)",
            m.link_down.clone(),
        );
        r.register(
            "peer_late",
            "Times the peer was late (silent for warntime)",
            m.late.clone(),
        );
        r.register(
            "peer_dead",
            "Times the peer was declared dead",
            m.dead.clone(),
        );
        r.register(
            "config_agreement",
            "1 while the peer's cluster.toml digest equals this node's, 0 while it differs",
            m.config_agrees.clone(),
        );
        r.register(
            "group_state",
            "1 for the group's state as this node sees it (the holder's), 0 for the others",
            m.group_state.clone(),
        );
        r.register(
            "group_holder",
            "1 for the node this node believes holds the group, 0 for the others",
            m.holder.clone(),
        );
        r.register(
            "group_transitions",
            "Group state changes on this node, by reason",
            m.transitions.clone(),
        );
        r.register(
            "group_last_transition_timestamp_seconds",
            "When the group last changed state on this node (Unix time)",
            m.last_transition.clone(),
        );
        r.register(
            "group_takeover_duration_seconds",
            "How long starting the group's resources took on this node",
            m.takeover.clone(),
        );
        r.register(
            "group_stop_duration_seconds",
            "How long stopping the group's resources took on this node",
            m.stop.clone(),
        );
        r.register(
            "resource_duration_seconds",
            "How long a resource's start or stop took on this node",
            m.resource_duration.clone(),
        );
        r.register(
            "resource_failures",
            "Failed starts and stops of a resource on this node",
            m.resource_failures.clone(),
        );
        r.register(
            "refused_packets",
            "Packets refused, by reason",
            m.refused.clone(),
        );
        r.register(
            "event_hooks_dropped",
            "Event hooks not run because the queue was full",
            m.events_dropped.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            ..m
        }
    }

    /// Gauges from a status snapshot: peers, links, config agreement, groups.
    pub fn status(&self, s: &Status) {
        self.ready.set(i64::from(s.ready));
        for p in &s.peers {
            let peer = PeerLabels {
                peer: p.name.clone(),
            };
            self.peer_up.get_or_create(&peer).set(i64::from(matches!(
                p.state,
                PeerState::Up | PeerState::Late
            )));
            if p.digest.is_some() {
                self.config_agrees
                    .get_or_create(&peer)
                    .set(i64::from(!p.config_differs));
            }
            for l in &p.links {
                self.link_up
                    .get_or_create(&LinkLabels {
                        peer: p.name.clone(),
                        link: l.name.clone(),
                    })
                    .set(i64::from(l.up));
            }
        }
        let mut nodes: Vec<&str> = s.peers.iter().map(|p| p.name.as_str()).collect();
        nodes.push(&s.local);
        for g in &s.groups {
            for st in &STATES {
                self.group_state
                    .get_or_create(&GroupStateLabels {
                        group: g.name.clone(),
                        state: crate::cluster::state_name(st).into(),
                    })
                    .set(i64::from(*st == g.state));
            }
            for n in &nodes {
                self.holder
                    .get_or_create(&HolderLabels {
                        group: g.name.clone(),
                        node: n.to_string(),
                    })
                    .set(i64::from(g.owner.as_deref() == Some(n)));
            }
        }
    }

    pub fn transition(&self, group: &str, from: &str, to: &str, reason: &str) {
        self.transitions
            .get_or_create(&TransitionLabels {
                group: group.into(),
                from: from.into(),
                to: to.into(),
                reason: reason.into(),
            })
            .inc();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_transition
            .get_or_create(&GroupLabels {
                group: group.into(),
            })
            .set(now);
    }

    pub fn refused(&self, reason: &str, n: u64) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc_by(n);
    }

    /// The text a scrape returns.
    #[cfg(test)]
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = encode(&mut out, registry) {
        tracing::warn!("cannot encode the metrics: {e}");
    }
    out
}

impl crate::resource::Observe for Metrics {
    fn resource_done(&self, group: &str, resource: &str, start: bool, took: Duration, ok: bool) {
        let labels = ResourceLabels {
            group: group.into(),
            resource: resource.into(),
            op: if start { "start" } else { "stop" }.into(),
        };
        self.resource_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.resource_failures.get_or_create(&labels).inc();
        }
    }
}

/// A stable, low-cardinality name for a transition's reason (the core's reasons are
/// sentences naming nodes and errors; see command.rs).
pub fn reason_class(reason: Option<&str>) -> &'static str {
    let Some(r) = reason else {
        return "none";
    };
    const CLASSES: &[(&str, &str)] = &[
        ("no live node holds it", "initial"),
        ("takeover requested by the operator", "operator_takeover"),
        ("standby requested by the operator", "operator_standby"),
        ("handed over to ", "handed_over"),
        ("start failed", "start_failed"),
        ("stop failed", "stop_failed"),
        ("restart in place failed", "restart_failed"),
        ("failed", "failed"),
        ("unblocked", "unblocked"),
    ];
    if let Some(rest) = r.strip_prefix("taken over: ") {
        return if rest.ends_with(" is dead") {
            "peer_dead"
        } else if rest.ends_with(" left the cluster") {
            "peer_left"
        } else {
            "peer_released"
        };
    }
    CLASSES
        .iter()
        .find(|(p, _)| r.starts_with(p))
        .map_or("other", |(_, c)| c)
}

/// Refusal reasons as metric labels.
pub fn reject_class(r: &crate::cluster::Reject) -> &'static str {
    use crate::cluster::Reject;
    match r {
        Reject::Decode(d) => {
            use crate::proto::wire::DecodeError as D;
            match d {
                D::TooShort(_) | D::TooLong(_) | D::BadMagic | D::Malformed(_) => "malformed",
                D::BadVersion(_) => "bad_version",
                D::OtherCluster(_) => "other_cluster",
                D::UnknownKey(_) => "unknown_key",
                D::BadMac => "bad_mac",
                #[allow(unreachable_patterns)]
                _ => "decode",
            }
        }
        Reject::UnknownNode(_) => "unknown_node",
        Reject::UnknownLink(_) => "unknown_link",
        Reject::Replay(_) => "replay",
        Reject::OldIncarnation => "old_incarnation",
        Reject::Unconfirmed => "unconfirmed",
        Reject::Own => "own",
        Reject::DuplicateNode(_) => "duplicate_node",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

/// `[metrics] listen` could not be served (the address is taken, not ours).
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source}")]
pub struct ServeError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Serve `/metrics` on `addr` from tasks of their own. An error is returned (the
/// daemon runs on without metrics) when the address cannot be listened on.
pub fn serve(addr: SocketAddr, metrics: Metrics) -> Result<(), ServeError> {
    let err = |source| ServeError { addr, source };
    let std = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(err)?;
    let listener = tokio::net::TcpListener::from_std(std).map_err(err)?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let registry = metrics.registry.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::debug!("metrics: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream); // Too many scrapes at once.
                continue;
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let registry = registry.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&req, &registry)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_LIMIT)
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_LIMIT, conn).await;
                drop(slot);
            });
        }
    });
    Ok(())
}

fn answer<B>(req: &Request<B>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET /metrics\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(StatusCode::OK, CONTENT_TYPE, render(registry)),
        "/" => reply(
            StatusCode::OK,
            "text/plain",
            "hbd: metrics at /metrics\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fall_in_few_classes() {
        for (r, c) in [
            (None, "none"),
            (Some("taken over: n1 is dead"), "peer_dead"),
            (Some("taken over: n1 left the cluster"), "peer_left"),
            (Some("taken over: n1 released it"), "peer_released"),
            (
                Some("no live node holds it and this node ranks first among the eligible"),
                "initial",
            ),
            (
                Some("takeover requested by the operator"),
                "operator_takeover",
            ),
            (
                Some("standby requested by the operator"),
                "operator_standby",
            ),
            (
                Some("handed over to n2: takeover requested there"),
                "handed_over",
            ),
            (Some("start failed: ip 10.0.0.1/24: busy"), "start_failed"),
            (Some("stop failed: x"), "stop_failed"),
            (Some("restart in place failed: x"), "restart_failed"),
            (
                Some("failed: unit x failed (restarted 3 times already)"),
                "failed",
            ),
            (Some("unblocked by the operator"), "unblocked"),
            (Some("something new"), "other"),
        ] {
            assert_eq!(reason_class(r), c, "{r:?}");
        }
    }

    /// Not a limit: prints what one scrape's encoding costs on the loop's thread for a
    /// cluster of 8 peers with 2 links each and 4 groups.
    #[test]
    fn encoding_cost() {
        let m = Metrics::new("0.1.0", "n1", "lab");
        for p in 0..8 {
            for l in ["a", "b"] {
                let labels = LinkLabels {
                    peer: format!("n{p}"),
                    link: l.into(),
                };
                m.received.get_or_create(&labels).inc();
                m.interval.get_or_create(&labels).observe(0.2);
            }
        }
        for g in 0..4 {
            m.takeover
                .get_or_create(&GroupLabels {
                    group: format!("g{g}"),
                })
                .observe(1.0);
        }
        let t0 = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..100 {
            bytes = m.render().len();
        }
        eprintln!(
            "one scrape: {bytes} bytes encoded in {:?}",
            t0.elapsed() / 100
        );
        assert!(bytes > 0);
    }

    #[test]
    fn refusals_are_labelled_by_cause() {
        use crate::cluster::Reject;
        use crate::proto::wire::DecodeError;
        assert_eq!(
            reject_class(&Reject::Decode(DecodeError::BadMac)),
            "bad_mac"
        );
        assert_eq!(
            reject_class(&Reject::Decode(DecodeError::OtherCluster(7))),
            "other_cluster"
        );
        assert_eq!(
            reject_class(&Reject::Decode(DecodeError::BadMagic)),
            "malformed"
        );
        assert_eq!(reject_class(&Reject::Replay(3)), "replay");
    }

    #[test]
    fn the_text_names_every_family() {
        let m = Metrics::new("0.1.0", "n1", "lab");
        m.received
            .get_or_create(&LinkLabels {
                peer: "n2".into(),
                link: "a".into(),
            })
            .inc();
        m.refused("bad_mac", 3);
        m.takeover
            .get_or_create(&GroupLabels {
                group: "web".into(),
            })
            .observe(0.3);
        let text = m.render();
        for want in [
            "hbd_build_info{version=\"0.1.0\",node=\"n1\",cluster=\"lab\"} 1",
            "hbd_heartbeats_received_total{peer=\"n2\",link=\"a\"} 1",
            "hbd_refused_packets_total{reason=\"bad_mac\"} 3",
            "# TYPE hbd_group_takeover_duration_seconds histogram",
            "hbd_group_takeover_duration_seconds_bucket{group=\"web\",le=\"0.5\"} 1",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }
}
