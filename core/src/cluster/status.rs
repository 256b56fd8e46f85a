//! A snapshot of one node's view, for STATUS=, the control API and `hbd status`.
//!
//! Times are ages in milliseconds before the snapshot (the core has no wall clock);
//! the daemon turns them into dates. The snapshot is serializable so tests and tools
//! can keep it; the documented JSON of `hbd status --json` is the daemon's report
//! built from it.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::proto::wire::ClaimState;

use super::command::{Admin, ago};
use super::{Cluster, LocalGroupState, PeerState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub local: String,
    pub ready: bool,
    pub maintenance: bool,
    pub shutting_down: bool,
    /// Milliseconds since this hbd started.
    pub up_ms: u64,
    /// This node's config digest, hex.
    pub digest: String,
    /// The wire version this node sends in now (the highest every live peer speaks).
    pub wire_version: u8,
    pub peers: Vec<PeerStatus>,
    pub groups: Vec<GroupStatus>,
    /// Last transitions of groups on this node, oldest first.
    pub transitions: Vec<Transition>,
    /// Ping nodes configured (`[failover] ping`); 0 when none.
    #[serde(default)]
    pub ping_configured: usize,
    /// How many of them this node reaches (dampened), once measured.
    #[serde(default)]
    pub ping_reached: Option<u8>,
    /// With three or more nodes: the nodes this node hears (itself included), of the
    /// configured ones, and whether that is a majority.
    #[serde(default)]
    pub quorum: Option<Quorum>,
    /// Groups a reload removed while they ran here, still claimed until stopped.
    #[serde(default)]
    pub removed: Vec<RemovedStatus>,
    /// This node speaks Heartbeat 3.0.6's protocol (a mixed cluster, `[migration]`).
    #[serde(default)]
    pub heartbeat_protocol: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    pub heard: usize,
    pub nodes: usize,
    pub quorate: bool,
}

/// A group no longer in cluster.toml that this node still claims (see reload.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedStatus {
    pub name: String,
    /// Its stop failed: resources may still be up here (`hbd unblock NAME`).
    pub blocked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    pub state: PeerState,
    /// Milliseconds since the state began, if it changed since start-up.
    pub since_ms: Option<u64>,
    pub links_up: usize,
    pub links_total: usize,
    pub links: Vec<LinkStatus>,
    /// The peer's config digest from its latest heartbeat, hex.
    pub digest: Option<String>,
    /// The peer's digest differs from this node's.
    pub config_differs: bool,
    pub maintenance: bool,
    /// Highest wire version the peer speaks, once heard.
    pub version: Option<u8>,
    /// How many ping nodes the peer reaches, as its latest heartbeat says (live peers).
    #[serde(default)]
    pub ping_reached: Option<u8>,
    /// Fencing of the peer, when one is owed, under way, failed or done.
    #[serde(default)]
    pub fence: Option<super::FenceStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub name: String,
    pub up: bool,
    pub since_ms: Option<u64>,
    pub last_heard_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    pub preferred: String,
    /// This node's state for the group.
    pub local: LocalGroupState,
    /// The node this node believes holds the group, if any.
    pub owner: Option<String>,
    /// The holder's state (this node's or the claim a peer announces).
    pub state: LocalGroupState,
    /// Operator intent here: normal, standby, wanted.
    pub admin: Admin,
    /// A peer that asked for the group (`hbd takeover` there).
    pub wanted_by: Option<String>,
    /// Live peers that announce the group failed there (passed over for hold_down).
    pub failed_on: Vec<String>,
    /// Why the group is in its state here (failure, move), when known.
    pub reason: Option<String>,
    pub since_ms: Option<u64>,
    /// The node whose fence holds back a start of the group here.
    #[serde(default)]
    pub fence_wait: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub ago_ms: u64,
    pub group: String,
    pub from: LocalGroupState,
    pub to: LocalGroupState,
    pub reason: Option<String>,
}

/// The lower-case name of a group state, as status and the log write it.
pub fn state_name(s: &LocalGroupState) -> &'static str {
    match s {
        LocalGroupState::Stopped => "stopped",
        LocalGroupState::Starting => "starting",
        LocalGroupState::Running => "running",
        LocalGroupState::Stopping => "stopping",
        LocalGroupState::Failed => "failed",
        LocalGroupState::Blocked => "blocked",
    }
}

pub fn peer_state_name(s: PeerState) -> &'static str {
    match s {
        PeerState::Unknown => "unknown",
        PeerState::Up => "up",
        PeerState::Late => "late",
        PeerState::Dead => "dead",
        PeerState::Left => "left",
    }
}

fn claim_state(c: ClaimState) -> LocalGroupState {
    match c {
        ClaimState::None => LocalGroupState::Stopped,
        ClaimState::Starting => LocalGroupState::Starting,
        ClaimState::Running => LocalGroupState::Running,
        ClaimState::Stopping => LocalGroupState::Stopping,
        ClaimState::Failed => LocalGroupState::Failed,
        ClaimState::Blocked => LocalGroupState::Blocked,
    }
}

impl Cluster {
    /// The snapshot as of the latest input.
    pub fn status(&self) -> Status {
        self.status_at(self.last_input)
    }

    /// The snapshot with ages measured at `now`.
    pub fn status_at(&self, now: Instant) -> Status {
        let age = |t: Option<Instant>| t.map(|t| ago(now, t));
        let local = self.local.0;
        let peers = self
            .peers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != local)
            .map(|(i, p)| PeerStatus {
                name: self.config.nodes[i].name.clone(),
                state: p.state,
                since_ms: age(self.ops.peer_since[i]),
                links_up: p.links_up(),
                links_total: p.links.len(),
                links: p
                    .links
                    .iter()
                    .enumerate()
                    .map(|(li, l)| LinkStatus {
                        name: self
                            .config
                            .links
                            .get(li)
                            .map_or("?", |l| l.name())
                            .to_string(),
                        up: l.up,
                        since_ms: age(self.ops.link_since[i][li]),
                        last_heard_ms: age(l.last_heard),
                    })
                    .collect(),
                digest: self.ops.peer_digest[i].map(|d| to_hex(&d)),
                config_differs: p.digest_mismatch,
                maintenance: p.alive() && self.ops.peer_maintenance[i],
                version: self.ops.peer_version[i].map(|(_, v)| v),
                ping_reached: self.ping_of(i),
                fence: self.fence_status(i, now),
            })
            .collect();
        let groups = self
            .config
            .groups
            .iter()
            .enumerate()
            .map(|(g, cfg)| {
                let l = &self.groups[g];
                let holder = (0..self.peers.len())
                    .filter(|&i| i != local)
                    .find(|&i| self.peers[i].alive() && self.peers[i].claims[g].0.holds());
                let (owner, state) = if l.holds() || holder.is_none() {
                    let owner = l.holds().then(|| self.config.nodes[local].name.clone());
                    (owner, l.state.clone())
                } else {
                    let i = holder.unwrap_or(local);
                    (
                        Some(self.config.nodes[i].name.clone()),
                        claim_state(self.peers[i].claims[g].0),
                    )
                };
                let wanted_by = (0..self.peers.len())
                    .filter(|&i| i != local && self.peers[i].alive())
                    .find(|&i| self.ops.peer_flags[i][g] & crate::proto::wire::CLAIM_WANTED != 0)
                    .map(|i| self.config.nodes[i].name.clone());
                let failed_on = (0..self.peers.len())
                    .filter(|&i| {
                        i != local
                            && self.peers[i].alive()
                            && self.peers[i].claims[g].0 == ClaimState::Failed
                    })
                    .map(|i| self.config.nodes[i].name.clone())
                    .collect();
                GroupStatus {
                    name: cfg.name.clone(),
                    failed_on,
                    preferred: cfg.preferred.clone(),
                    local: l.state.clone(),
                    owner,
                    state,
                    admin: self.ops.admin[g],
                    wanted_by,
                    reason: self.ops.reason[g].clone(),
                    since_ms: age(self.ops.group_since[g]),
                    fence_wait: self.fence_waiting(g),
                }
            })
            .collect();
        let transitions = self
            .ops
            .transitions
            .iter()
            .map(|t| Transition {
                ago_ms: ago(now, t.at),
                group: self
                    .config
                    .groups
                    .get(t.group)
                    .map_or("?", |g| g.name.as_str())
                    .to_string(),
                from: t.from.clone(),
                to: t.to.clone(),
                reason: t.reason.clone(),
            })
            .collect();
        Status {
            local: self.config.nodes[local].name.clone(),
            ready: self.ready,
            maintenance: self.ops.maintenance,
            shutting_down: self.shutting_down,
            up_ms: ago(now, self.started),
            digest: to_hex(&self.digest),
            wire_version: self.wire_version(),
            peers,
            groups,
            transitions,
            ping_configured: self.config.failover.ping.len(),
            ping_reached: self.ping_of(local),
            quorum: (self.config.nodes.len() >= 3).then(|| {
                let (heard, nodes) = self.quorum();
                Quorum {
                    heard,
                    nodes,
                    quorate: self.quorate(),
                }
            }),
            heartbeat_protocol: self.speaks_heartbeat(),
            removed: self
                .retiring()
                .into_iter()
                .map(|(name, blocked)| RemovedStatus { name, blocked })
                .collect(),
        }
    }
}

impl Status {
    /// One line for systemd's STATUS=, e.g. `owner of web; peers: beta up (2/2 links)`.
    pub fn summary_line(&self) -> String {
        let owned: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| g.owner.as_deref() == Some(self.local.as_str()))
            .map(|g| g.name.as_str())
            .collect();
        let mut s = if !self.ready {
            "starting".to_string()
        } else if owned.is_empty() {
            "standing by".to_string()
        } else {
            format!("owner of {}", owned.join(","))
        };
        let trouble: Vec<String> = self
            .groups
            .iter()
            .filter(|g| matches!(g.local, LocalGroupState::Failed | LocalGroupState::Blocked))
            .map(|g| format!("{} {}", g.name, state_name(&g.local)))
            .collect();
        if !trouble.is_empty() {
            s += &format!("; {}", trouble.join(", "));
        }
        let fencing: Vec<String> = self
            .peers
            .iter()
            .filter_map(|p| match p.fence.as_ref()?.state.as_str() {
                "pending" => Some(format!("fencing {}", p.name)),
                "failed" => Some(format!("fence of {} failed", p.name)),
                _ => None,
            })
            .collect();
        if !fencing.is_empty() {
            s += &format!("; {}", fencing.join(", "));
        }
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|p| {
                let st = peer_state_name(p.state);
                if matches!(p.state, PeerState::Up | PeerState::Late) {
                    format!("{} {} ({}/{} links)", p.name, st, p.links_up, p.links_total)
                } else {
                    format!("{} {}", p.name, st)
                }
            })
            .collect();
        s += &format!("; peers: {}", peers.join(", "));
        s
    }
}

/// Lower-case hex of a digest.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
