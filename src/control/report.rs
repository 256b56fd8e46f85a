//! The status report: what `Status` on the control API returns and what
//! `hbd status --json` prints. Its shape is stable (documented in the README):
//! fields are only ever added, and `format` changes if one has to change meaning.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cluster::{Status, peer_state_name, state_name};
use crate::resource::ResourceState;

/// Version of the report's shape.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    /// hbd's version on this node.
    pub version: String,
    pub cluster: String,
    /// The node that answered.
    pub node: String,
    /// When the report was made (RFC 3339, UTC).
    pub time: String,
    pub ready: bool,
    pub maintenance: bool,
    pub shutting_down: bool,
    /// Digest of this node's cluster.toml (hex), as carried in every heartbeat.
    pub config_digest: String,
    pub nodes: Vec<NodeReport>,
    pub groups: Vec<GroupReport>,
    /// The last transitions of groups on this node, oldest first.
    pub transitions: Vec<TransitionReport>,
    /// Ping nodes configured (`[failover] ping`); each node's count is in `nodes`.
    #[serde(default)]
    pub ping_nodes: usize,
    /// Three or more nodes: how many the answering node hears (itself included) of
    /// the configured ones, and whether that is a majority. Null for two nodes.
    #[serde(default)]
    pub quorum: Option<QuorumReport>,
    /// Groups a reload removed from cluster.toml while they ran on this node, still
    /// claimed here until stopped (absent from older hbd's reports).
    #[serde(default)]
    pub removed_groups: Vec<RemovedGroupReport>,
    /// Heartbeat gaps per peer and link, with the deadtime advice (added in 0.1: absent
    /// from older daemons' reports).
    #[serde(default)]
    pub heartbeat_gaps: Vec<GapReport>,
    /// The links speak: "hbd", or "heartbeat" in a mixed cluster (`[migration]`).
    #[serde(default = "hbd_protocol")]
    pub protocol: String,
}

fn hbd_protocol() -> String {
    "hbd".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumReport {
    pub heard: usize,
    pub nodes: usize,
    pub quorate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedGroupReport {
    pub name: String,
    /// "stopping", or "blocked" when its stop failed (`hbd unblock NAME` after cleaning up).
    pub state: String,
}

/// The gaps between one peer's heartbeats on one link, as observed by the
/// answering node, and what they say about deadtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapReport {
    pub peer: String,
    pub link: String,
    /// Gaps measured (heartbeats heard after one before).
    pub gaps: u64,
    /// How long the link has been observed.
    pub observed_ms: u64,
    /// The worst gap over the last hour and the last 24 hours.
    pub worst_hour_ms: Option<u64>,
    pub worst_day_ms: Option<u64>,
    /// The advice in one sentence (rule: README, "Deadtime advice").
    pub advice: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    pub name: String,
    /// The node that answered.
    pub local: bool,
    /// "up", "late", "dead", "left" or "unknown" (not heard since start-up).
    pub state: String,
    /// Since when it is in that state (for the answering node: since its hbd started;
    /// null for a peer: since the answering hbd started).
    pub since: Option<String>,
    pub config_digest: Option<String>,
    /// Its cluster.toml differs from the answering node's.
    pub config_differs: bool,
    pub maintenance: bool,
    /// Highest heartbeat wire version it speaks (for the answering node: the version
    /// it sends in now, the highest every live peer speaks).
    pub wire_version: Option<u8>,
    pub links: Vec<LinkReport>,
    /// How many ping nodes it reaches (the answering node's own count, or the one a
    /// live peer advertises); null when unknown or none are configured.
    #[serde(default)]
    pub ping_reached: Option<u8>,
    /// Fencing of this node as the answering node sees it; null when none is owed
    /// or done.
    #[serde(default)]
    pub fence: Option<FenceReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceReport {
    /// "owed" (dead or blocked, not fenced yet), "pending" (under way), "failed"
    /// (last attempt failed or timed out) or "fenced" (off).
    pub state: String,
    /// Why it is owed a fence: "dead", or "stop of GROUP failed there".
    pub why: Option<String>,
    /// Since when it is owed one (or, fenced: when it was fenced).
    pub since: String,
    /// Pending: when this attempt started.
    pub attempt_since: Option<String>,
    /// Failed: why, and when the next attempt is due.
    pub reason: Option<String>,
    pub retry_at: Option<String>,
    /// Fenced by the operator's word (`hbd fence-ack`) rather than by the fence.
    pub by_ack: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    pub name: String,
    pub up: bool,
    pub since: Option<String>,
    pub last_heard: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    pub name: String,
    pub preferred: String,
    /// The node holding it, if any.
    pub holder: Option<String>,
    /// The holder's state: "starting", "running", "stopping", "failed", "blocked",
    /// or "stopped" when nobody holds it.
    pub state: String,
    /// The answering node's own state for it.
    pub local_state: String,
    /// The operator's intent on the answering node: "normal", "standby", "wanted".
    pub admin: String,
    /// A node that asked for the group with `hbd takeover`.
    pub wanted_by: Option<String>,
    /// Other nodes where the group failed recently (they are passed over for it).
    pub failed_on: Vec<String>,
    /// Why the group is in its state here (a failure, a move), when known.
    pub reason: Option<String>,
    pub since: Option<String>,
    /// Each resource's state on the answering node.
    pub resources: Vec<ResourceReport>,
    /// A node whose fence holds back the start of the group here.
    #[serde(default)]
    pub fence_wait: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceReport {
    pub kind: String,
    pub name: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionReport {
    pub time: String,
    pub group: String,
    pub node: String,
    pub from: String,
    pub to: String,
    pub reason: Option<String>,
}

/// Build the report from the core's snapshot taken at wall-clock `taken`, and each
/// group's resource states (same order as the groups; missing ones are left empty).
pub fn build(
    cluster: &str,
    status: &Status,
    taken: SystemTime,
    resources: Vec<Vec<ResourceState>>,
) -> Report {
    let at = |ms: Option<u64>| ms.map(|ms| rfc3339(taken - Duration::from_millis(ms)));
    let mut nodes = vec![NodeReport {
        name: status.local.clone(),
        local: true,
        state: "up".into(),
        since: Some(rfc3339(taken - Duration::from_millis(status.up_ms))),
        config_digest: Some(status.digest.clone()),
        config_differs: false,
        maintenance: status.maintenance,
        wire_version: Some(status.wire_version),
        links: Vec::new(),
        ping_reached: status.ping_reached,
        fence: None,
    }];
    nodes.extend(status.peers.iter().map(|p| {
        NodeReport {
            name: p.name.clone(),
            local: false,
            state: peer_state_name(p.state).into(),
            since: at(p.since_ms),
            config_digest: p.digest.clone(),
            config_differs: p.config_differs,
            maintenance: p.maintenance,
            wire_version: p.version,
            ping_reached: p.ping_reached,
            links: p
                .links
                .iter()
                .map(|l| LinkReport {
                    name: l.name.clone(),
                    up: l.up,
                    since: at(l.since_ms),
                    last_heard: at(l.last_heard_ms),
                })
                .collect(),
            fence: p.fence.as_ref().map(|f| FenceReport {
                state: f.state.clone(),
                why: f.why.clone(),
                since: rfc3339(taken - Duration::from_millis(f.since_ms)),
                attempt_since: at(f.attempt_ms),
                reason: f.reason.clone(),
                retry_at: f
                    .retry_in_ms
                    .map(|ms| rfc3339(taken + Duration::from_millis(ms))),
                by_ack: f.by_ack,
            }),
        }
    }));
    let mut resources = resources.into_iter();
    let groups = status
        .groups
        .iter()
        .map(|g| GroupReport {
            name: g.name.clone(),
            preferred: g.preferred.clone(),
            holder: g.owner.clone(),
            state: state_name(&g.state).into(),
            local_state: state_name(&g.local).into(),
            admin: match g.admin {
                crate::cluster::Admin::Normal => "normal",
                crate::cluster::Admin::Standby => "standby",
                crate::cluster::Admin::Wanted => "wanted",
            }
            .into(),
            wanted_by: g.wanted_by.clone(),
            failed_on: g.failed_on.clone(),
            reason: g.reason.clone(),
            since: at(g.since_ms),
            resources: resources
                .next()
                .unwrap_or_default()
                .into_iter()
                .map(|r| ResourceReport {
                    kind: r.kind.into(),
                    name: r.name,
                    state: r.state,
                })
                .collect(),
            fence_wait: g.fence_wait.clone(),
        })
        .collect();
    let transitions = status
        .transitions
        .iter()
        .map(|t| TransitionReport {
            time: rfc3339(taken - Duration::from_millis(t.ago_ms)),
            group: t.group.clone(),
            node: status.local.clone(),
            from: state_name(&t.from).into(),
            to: state_name(&t.to).into(),
            reason: t.reason.clone(),
        })
        .collect();
    Report {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").into(),
        cluster: cluster.into(),
        node: status.local.clone(),
        time: rfc3339(taken),
        ready: status.ready,
        maintenance: status.maintenance,
        shutting_down: status.shutting_down,
        config_digest: status.digest.clone(),
        protocol: if status.heartbeat_protocol {
            "heartbeat".into()
        } else {
            hbd_protocol()
        },
        nodes,
        groups,
        transitions,
        ping_nodes: status.ping_configured,
        quorum: status.quorum.map(|q| QuorumReport {
            heard: q.heard,
            nodes: q.nodes,
            quorate: q.quorate,
        }),
        removed_groups: status
            .removed
            .iter()
            .map(|r| RemovedGroupReport {
                name: r.name.clone(),
                state: if r.blocked { "blocked" } else { "stopping" }.into(),
            })
            .collect(),
        heartbeat_gaps: Vec::new(),
    }
}

/// `2026-12-01T11:20:05Z` (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_123_045);
        assert_eq!(rfc3339(t), "2026-12-01T11:04:05Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
