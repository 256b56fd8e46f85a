//! Operator commands in the core: standby, takeover, maintenance and unblock, and
//! the bookkeeping that lets status say why things happened.
//!
//! The operator's intent travels in every heartbeat, so peers act on it without a
//! separate protocol:
//!
//! - **Standby** (of one group or all): this node releases the group and is not
//!   eligible for it any more (claim flag `standby`), until a takeover here. Refused
//!   when no live peer could take a group held here.
//! - **Takeover**: this node asks for the group (claim flag `wanted`). Every node then
//!   ranks the wanting node first for that group: the holder releases it (a
//!   handover, not a failure), and the wanting node starts it once nobody holds it.
//!   The wish stays until a standby here, a failure of the group here, or a newer
//!   takeover elsewhere (whoever asked last wins). Refused when the group is blocked,
//!   held by a node in maintenance, failed here, or when a live peer runs a different
//!   cluster.toml (unless forced).
//! - **Maintenance**: this node stops managing (no starts, stops, or failure
//!   handling), keeps heartbeating and keeps claiming exactly what it held
//!   (message flag `maintenance`), so peers neither take its groups nor give it new ones.
//! - **Unblock**: an operator cleaned up a group left blocked (a failed stop) or
//!   failed here; the group is treated as stopped here again.
//!
//! The refusals are [`CommandError`]s, each one sentence; nothing changes on a refusal.

use std::collections::VecDeque;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::proto::wire::{self, ClaimState, Kind, Message};

use super::ownership::Other;
use super::{Cluster, Event, GroupEvent, LocalGroupState, NodeId, PeerState};

/// How many transitions the core remembers for status.
pub const TRANSITIONS: usize = 32;

/// Commands fed to [`Cluster::handle_command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// SIGTERM: `restart` when systemd has a restart job queued for hbd's own unit
    /// (`systemctl restart hbd`, an upgrade). A restart detaches, keeping the groups
    /// running for the next hbd to adopt; any other stop releases them.
    Stop { restart: bool },
    /// Release every held group (last group first), tell peers, then emit
    /// [`super::Action::Exit`].
    Shutdown,
    /// Exit at once and keep every group running, for the next start of this daemon
    /// to adopt (`systemctl restart hbd`). Peers see only a short silence.
    Detach,
    /// Give up one group (or all, `None`) here and do not take it back until a
    /// takeover here. `force` accepts peers running a different cluster.toml.
    Standby { group: Option<String>, force: bool },
    /// Bring one group (or all) here: the holder releases, then this node starts.
    /// `force` accepts peers running a different cluster.toml.
    Takeover { group: Option<String>, force: bool },
    /// Stop (true) or resume (false) managing groups on this node.
    Maintenance(bool),
    /// Forget this node's standby or takeover for one group (or all): the normal
    /// rules place it again; nothing moves because of the command itself.
    Clear { group: Option<String> },
    /// An operator cleaned up a group blocked or failed here.
    Unblock { group: String },
    /// An operator confirms that `node` is off (`hbd fence-ack`): a takeover waiting
    /// for its fence proceeds.
    FenceAck { node: String },
}

impl std::fmt::Display for Command {
    /// How the journal names the command: `takeover of web`, `standby of every group`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let of = |g: &Option<String>| match g {
            Some(g) => format!("of {g}"),
            None => "of every group".to_string(),
        };
        match self {
            Command::Stop { restart } => {
                write!(
                    f,
                    "{}",
                    if *restart {
                        "stop for a restart"
                    } else {
                        "stop"
                    }
                )
            }
            Command::Shutdown => write!(f, "shutdown"),
            Command::Detach => write!(f, "detach"),
            Command::Standby { group, force } => {
                write!(
                    f,
                    "standby {}{}",
                    of(group),
                    if *force { " (forced)" } else { "" }
                )
            }
            Command::Takeover { group, force } => {
                write!(
                    f,
                    "takeover {}{}",
                    of(group),
                    if *force { " (forced)" } else { "" }
                )
            }
            Command::Maintenance(on) => write!(f, "maintenance {}", if *on { "on" } else { "off" }),
            Command::Clear { group } => write!(f, "clear {}", of(group)),
            Command::Unblock { group } => write!(f, "unblock of {group}"),
            Command::FenceAck { node } => write!(f, "fence-ack of {node}"),
        }
    }
}

/// The operator's intent for one group on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Admin {
    #[default]
    Normal,
    /// `hbd standby`: not eligible here.
    Standby,
    /// `hbd takeover`: ranked first here.
    Wanted,
}

/// What an accepted command did, and what to wait for to see it done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// One sentence for the operator.
    pub message: String,
    /// Groups still moving because of the command.
    pub wait: Vec<Wait>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub group: String,
    pub until: Until,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Until {
    /// Running on this node.
    Here,
    /// Not held by this node any more.
    Away,
}

/// Why a command was refused; each renders as one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no group is named \"{0}\" in cluster.toml")]
    UnknownGroup(String),
    /// Refused by Heartbeat's rules in a mixed cluster (`[migration]`): why, in one
    /// sentence.
    #[error("{0}")]
    Mixed(String),
    #[error("hbd is still starting up (waiting to hear its peers): try again in a few seconds")]
    NotReady,
    #[error("hbd is shutting down")]
    ShuttingDown,
    #[error("maintenance mode is on here: run `hbd maintenance off` first")]
    Maintenance,
    #[error("no other node can take group {group} ({why}): it stays here")]
    NoEligiblePeer { group: String, why: String },
    #[error(
        "node {peer} runs a different cluster.toml: make the files identical on every node, or use --force"
    )]
    PeerConfigDiffers { peer: String },
    #[error(
        "group {group} is blocked on {node}: clean it up there, then run `hbd unblock {group}` on {node}"
    )]
    Blocked { group: String, node: String },
    #[error("group {group} is held by {node}, which is in maintenance mode")]
    PeerInMaintenance { group: String, node: String },
    #[error(
        "group {group} failed on this node {ago}s ago: fix the cause, then run `hbd unblock {group}`"
    )]
    FailedHere { group: String, ago: u64 },
    #[error("group {group} is not blocked or failed here (it is {state})")]
    NotBlocked { group: String, state: String },
    #[error(
        "node {peer} runs an older hbd (wire version {version}) that cannot carry standby or takeover: upgrade it first"
    )]
    OldPeer { peer: String, version: u8 },
    #[error("no node is named \"{0}\" in cluster.toml")]
    UnknownNode(String),
    #[error(
        "{node} is this node: run `hbd fence-ack {node}` on a node that waits to take over from it"
    )]
    FenceAckSelf { node: String },
    #[error(
        "nothing here waits for {node} to be fenced (it is not dead with fencing configured, nor being fenced): nothing to confirm"
    )]
    NoFenceOwed { node: String },
}

/// One recorded change of a group's state on this node.
#[derive(Debug, Clone)]
pub(super) struct TransitionRec {
    pub at: Instant,
    pub group: usize,
    pub from: LocalGroupState,
    pub to: LocalGroupState,
    pub reason: Option<String>,
}

/// The core's operator state and history, next to membership and ownership.
#[derive(Debug, Clone)]
pub(super) struct Ops {
    pub maintenance: bool,
    pub admin: Vec<Admin>,
    /// Reason for the next transition of each group, set by whoever causes it.
    pending: Vec<Option<String>>,
    /// Reason of each group's last transition (why it failed, moved, blocked).
    pub reason: Vec<Option<String>>,
    /// Mirror of each group's state, to record transitions with their origin.
    state: Vec<LocalGroupState>,
    pub group_since: Vec<Option<Instant>>,
    pub transitions: VecDeque<TransitionRec>,
    pub peer_since: Vec<Option<Instant>>,
    pub link_since: Vec<Vec<Option<Instant>>>,
    pub peer_maintenance: Vec<bool>,
    /// Claim flags per peer and group from its latest heartbeat.
    pub peer_flags: Vec<Vec<u8>>,
    pub peer_digest: Vec<Option<[u8; 8]>>,
    /// The peer that last claimed each group, to say why this node takes it.
    pub last_holder: Vec<Option<usize>>,
    /// Highest wire version each peer speaks, with the incarnation that said so.
    pub peer_version: Vec<Option<(u64, u8)>>,
    /// When each peer's version was last heard (also from packets not yet believed,
    /// such as a restarted peer's before it acks us).
    version_heard: Vec<Option<Instant>>,
    /// Highest wire version this node speaks ([`Cluster::limit_wire_version`]).
    pub max_wire: u8,
}

impl Ops {
    pub fn new(nodes: usize, links: usize, groups: usize) -> Ops {
        Ops {
            maintenance: false,
            admin: vec![Admin::Normal; groups],
            pending: vec![None; groups],
            reason: vec![None; groups],
            state: vec![LocalGroupState::Stopped; groups],
            group_since: vec![None; groups],
            transitions: VecDeque::new(),
            peer_since: vec![None; nodes],
            link_since: vec![vec![None; links]; nodes],
            peer_maintenance: vec![false; nodes],
            peer_flags: vec![vec![0; groups]; nodes],
            peer_digest: vec![None; nodes],
            last_holder: vec![None; groups],
            peer_version: vec![None; nodes],
            version_heard: vec![None; nodes],
            max_wire: wire::VERSION,
        }
    }

    /// Rebuild the per-group tables in a reloaded config's order (`map[new]` is the
    /// old index of the same group); `new_flags[peer]` are the claim flags the peer's
    /// latest heartbeat gave the groups new here.
    pub fn remap_groups(&mut self, map: &[Option<usize>], new_flags: &[Vec<(usize, u8)>]) {
        use super::reload::remap;
        self.admin = remap(&self.admin, map, || Admin::Normal);
        self.pending = remap(&self.pending, map, || None);
        self.reason = remap(&self.reason, map, || None);
        self.state = remap(&self.state, map, || LocalGroupState::Stopped);
        self.group_since = remap(&self.group_since, map, || None);
        self.last_holder = remap(&self.last_holder, map, || None);
        for (p, flags) in self.peer_flags.iter_mut().enumerate() {
            *flags = remap(flags, map, || 0);
            for &(g, f) in new_flags.get(p).map(Vec::as_slice).unwrap_or_default() {
                flags[g] = f;
            }
        }
        // History of removed groups goes with them; the rest follows its group.
        let old_to_new = |o: usize| map.iter().position(|m| *m == Some(o));
        self.transitions = std::mem::take(&mut self.transitions)
            .into_iter()
            .filter_map(|mut t| {
                t.group = old_to_new(t.group)?;
                Some(t)
            })
            .collect();
    }

    /// Reason for the next transition of `g`.
    pub fn because(&mut self, g: usize, why: impl Into<String>) {
        if let Some(p) = self.pending.get_mut(g) {
            *p = Some(why.into());
        }
    }

    /// Watch every event the core emits, at `now`.
    pub fn observe(&mut self, e: &Event, now: Instant) {
        match e {
            Event::PeerUp { peer }
            | Event::PeerLate { peer, .. }
            | Event::PeerDead { peer }
            | Event::PeerLeft { peer } => {
                if let Some(s) = self.peer_since.get_mut(peer.0) {
                    *s = Some(now);
                }
                if !matches!(e, Event::PeerUp { .. } | Event::PeerLate { .. }) {
                    self.forget_peer(*peer);
                }
            }
            Event::PeerRestarted { peer } => self.forget_peer(*peer),
            Event::RestartBudgetSpent {
                group,
                reason,
                restarts,
                ..
            } => {
                self.because(
                    group.0,
                    format!("failed: {reason} (restarted {restarts} times already)"),
                );
                self.give_up_wish(group.0);
            }
            Event::LinkUp { peer, link } | Event::LinkDown { peer, link } => {
                if let Some(s) = self
                    .link_since
                    .get_mut(peer.0)
                    .and_then(|l| l.get_mut(link.0))
                {
                    *s = Some(now);
                }
            }
            Event::SplitBrain {
                group, kept, view, ..
            } => {
                let g = group.0;
                if !*kept {
                    // The release that follows carries it as its reason.
                    self.because(g, view.clone());
                    return;
                }
                let Some(state) = self.state.get(g).cloned() else {
                    return;
                };
                if self.transitions.len() == TRANSITIONS {
                    self.transitions.pop_front();
                }
                self.transitions.push_back(TransitionRec {
                    at: now,
                    group: g,
                    from: state.clone(),
                    to: state,
                    reason: Some(view.clone()),
                });
            }
            Event::GroupState { group, state } => {
                let g = group.0;
                let Some(from) = self.state.get(g).cloned() else {
                    return;
                };
                let reason = self.pending[g].take();
                // A transition without a reason (started, stopped) continues the story
                // of the one before: the reason stays.
                if reason.is_some() {
                    self.reason[g] = reason.clone();
                }
                self.state[g] = state.clone();
                self.group_since[g] = Some(now);
                if self.transitions.len() == TRANSITIONS {
                    self.transitions.pop_front();
                }
                self.transitions.push_back(TransitionRec {
                    at: now,
                    group: g,
                    from,
                    to: state.clone(),
                    reason,
                });
            }
            _ => {}
        }
    }

    /// An authenticated packet of `peer`'s `incarnation` showed it speaks up to `max`.
    /// Within one incarnation a peer cannot lose a version, so the highest seen stands
    /// (a new node talking version 1 for an older third node still counts as 2); another
    /// incarnation (a restart: an upgrade or a downgrade) is learnt anew.
    pub fn heard_version(&mut self, peer: usize, incarnation: u64, max: u8, now: Instant) {
        if let Some(v) = self.peer_version.get_mut(peer) {
            *v = match *v {
                Some((inc, old)) if inc == incarnation => Some((inc, old.max(max))),
                _ => Some((incarnation, max)),
            };
        }
        if let Some(t) = self.version_heard.get_mut(peer) {
            *t = Some(now);
        }
    }

    fn forget_peer(&mut self, peer: NodeId) {
        if let Some(f) = self.peer_flags.get_mut(peer.0) {
            f.iter_mut().for_each(|f| *f = 0);
        }
        if let Some(m) = self.peer_maintenance.get_mut(peer.0) {
            *m = false;
        }
    }

    /// Whether the peer's own flags make it ineligible for `g` (standby, maintenance).
    pub fn peer_ineligible(&self, peer: usize, g: usize) -> bool {
        self.peer_maintenance[peer] || self.peer_flags[peer][g] & wire::CLAIM_STANDBY != 0
    }

    fn peer_wants(&self, peer: usize, g: usize) -> bool {
        self.peer_flags[peer][g] & wire::CLAIM_WANTED != 0
    }

    /// Message flags this node adds to its heartbeats.
    pub fn message_flags(&self) -> u8 {
        if self.maintenance {
            wire::FLAG_MAINTENANCE
        } else {
            0
        }
    }

    /// Claim flags this node announces for `g`.
    pub fn claim_flags(&self, g: usize) -> u8 {
        match self.admin[g] {
            Admin::Normal => 0,
            Admin::Standby => wire::CLAIM_STANDBY,
            Admin::Wanted => wire::CLAIM_WANTED,
        }
    }

    /// Take in what a group result says (failure reasons).
    pub fn note_result(&mut self, g: usize, event: &GroupEvent) {
        match event {
            GroupEvent::StartFailed { reason } => {
                self.because(g, format!("start failed: {reason}"));
                self.give_up_wish(g);
            }
            GroupEvent::Failed { reason } => {
                self.because(g, format!("failed: {reason}"));
                self.give_up_wish(g);
            }
            GroupEvent::StopFailed { reason } => self.because(g, format!("stop failed: {reason}")),
            GroupEvent::RestartFailed { reason } => {
                self.because(g, format!("restart in place failed: {reason}"));
                self.give_up_wish(g);
            }
            // A resource down is restarted in place, or the budget is spent (see
            // `observe`): no reason before the core decides.
            GroupEvent::ResourceDown { .. }
            | GroupEvent::Restarted
            | GroupEvent::Started
            | GroupEvent::Stopped => {}
        }
    }

    /// A group that fails here is no longer asked for here: it may go elsewhere.
    fn give_up_wish(&mut self, g: usize) {
        if self.admin[g] == Admin::Wanted {
            self.admin[g] = Admin::Normal;
        }
    }
}

impl Cluster {
    /// The operator's standing intent per group here (standby or takeover), by group
    /// name, for the shell to keep across restarts of hbd. Groups in `normal` are left
    /// out.
    pub fn intents(&self) -> Vec<(String, Admin)> {
        self.config
            .groups
            .iter()
            .zip(&self.ops.admin)
            .filter(|(_, a)| **a != Admin::Normal)
            .map(|(g, a)| (g.name.clone(), *a))
            .collect()
    }

    /// The intent per group index, cheap to compare on every turn of the loop.
    pub fn admin(&self) -> &[Admin] {
        &self.ops.admin
    }

    /// At start-up, before the first timeout: take back the intents kept by an earlier
    /// run ([`Cluster::intents`]). Names no longer in cluster.toml are ignored and
    /// returned, for the log.
    pub fn restore_intents(&mut self, intents: &[(String, Admin)]) -> Vec<String> {
        let mut unknown = Vec::new();
        for (name, admin) in intents {
            match self.config.groups.iter().position(|g| &g.name == name) {
                Some(g) => self.ops.admin[g] = *admin,
                None => unknown.push(name.clone()),
            }
        }
        unknown
    }

    /// Speak at most wire version `v` and refuse newer packets, as an older hbd does
    /// (for tests of mixed versions, and to pin a cluster during a staged upgrade).
    pub fn limit_wire_version(&mut self, v: u8) {
        self.ops.max_wire = v.clamp(wire::MIN_VERSION, wire::VERSION);
    }

    /// The version to send in: the highest that every peer heard within deadtime
    /// speaks (heard, not only believed: a restarted older peer must read us to ack us).
    pub(super) fn wire_version(&self) -> u8 {
        let deadtime = self.config.timing.deadtime.get();
        (0..self.peers.len())
            .filter(|&i| i != self.local.0)
            .filter(|&i| {
                self.ops.version_heard[i]
                    .is_some_and(|t| self.last_input.saturating_duration_since(t) < deadtime)
            })
            .filter_map(|i| self.ops.peer_version[i].map(|(_, v)| v))
            .fold(self.ops.max_wire, u8::min)
    }

    /// A live peer too old for the claim flags, if any.
    fn old_peer(&self) -> Option<(usize, u8)> {
        (0..self.peers.len())
            .filter(|&i| i != self.local.0 && self.peers[i].alive())
            .find_map(|i| match self.ops.peer_version[i] {
                Some((_, v)) if v < 2 => Some((i, v)),
                _ => None,
            })
    }

    fn check_versions(&self) -> Result<(), CommandError> {
        match self.old_peer() {
            Some((i, version)) => Err(CommandError::OldPeer {
                peer: self.name(i).to_string(),
                version,
            }),
            None => Ok(()),
        }
    }

    /// Take in a peer's digest, maintenance flag and claim flags (from `apply`).
    pub(super) fn note_peer(&mut self, peer: NodeId, msg: &Message) {
        let p = peer.0;
        let differs = msg.digest != self.digest;
        self.ops.peer_digest[p] = Some(msg.digest);
        if differs != self.peers[p].digest_mismatch {
            self.peers[p].digest_mismatch = differs;
            self.event(if differs {
                Event::ConfigMismatch { peer }
            } else {
                Event::ConfigAgreed { peer }
            });
        }
        if msg.kind == Kind::Leave {
            self.ops.forget_peer(peer);
            return;
        }
        self.ops.peer_maintenance[p] = msg.flags & wire::FLAG_MAINTENANCE != 0;
        let mut flags = vec![0u8; self.config.groups.len()];
        for c in &msg.claims {
            if let Some(g) = self.config.groups.iter().position(|g| g.name == c.group) {
                flags[g] = c.flags;
                if c.state.holds() {
                    self.ops.last_holder[g] = Some(p);
                }
            }
        }
        for (g, &f) in flags.iter().enumerate() {
            let newly_wanted = f & wire::CLAIM_WANTED != 0 && !self.ops.peer_wants(p, g);
            if newly_wanted && self.ops.admin[g] == Admin::Wanted {
                // Whoever asked last wins: the peer's takeover is newer than ours.
                self.ops.admin[g] = Admin::Normal;
            }
        }
        self.ops.peer_flags[p] = flags;
    }

    /// The node ranked first for `g`: this node or a live peer when asked for there
    /// (`hbd takeover`), else the configured preferred node.
    pub(super) fn effective_preferred(&self, g: usize, preferred: usize) -> usize {
        if self.ops.admin[g] == Admin::Wanted {
            return self.local.0;
        }
        self.wanting_peer(g).unwrap_or(preferred)
    }

    /// Whether an operator's takeover (here or on a live peer) ranks a node first for
    /// `g`: every node sees the wish, so it ranks alike even across different files.
    pub(super) fn has_wish(&self, g: usize) -> bool {
        self.ops.admin[g] == Admin::Wanted || self.wanting_peer(g).is_some()
    }

    fn wanting_peer(&self, g: usize) -> Option<usize> {
        (0..self.peers.len()).find(|&i| {
            i != self.local.0
                && self.peers[i].alive()
                && !self.peers[i].leaving
                && !self.ops.peer_ineligible(i, g)
                && self.ops.peer_wants(i, g)
        })
    }

    /// Why a group running here must be released for an operator's command, if so.
    pub(super) fn release_reason(&self, g: usize, others: &[Other]) -> Option<String> {
        if self.ops.admin[g] == Admin::Standby {
            return Some("standby requested by the operator".into());
        }
        let p = self.wanting_peer(g)?;
        let eligible = others.iter().any(|o| o.node.0 == p && o.eligible);
        eligible.then(|| format!("handed over to {}: takeover requested there", self.name(p)))
    }

    /// Why this node starts `g` now (for status and the log).
    pub(super) fn start_reason(&self, g: usize) -> String {
        if self.ops.admin[g] == Admin::Wanted {
            return "takeover requested by the operator".into();
        }
        // The last peer that held it, and what became of it.
        if let Some(why) = self.ops.last_holder[g].and_then(|i| self.fenced_reason(i)) {
            return why;
        }
        match self.ops.last_holder[g].map(|i| (i, self.peers[i].state)) {
            Some((i, PeerState::Dead)) => format!("taken over: {} is dead", self.name(i)),
            Some((i, PeerState::Left)) => format!("taken over: {} left the cluster", self.name(i)),
            Some((i, _)) => format!("taken over: {} released it", self.name(i)),
            None => "no live node holds it and this node ranks first among the eligible".into(),
        }
    }

    fn name(&self, i: usize) -> &str {
        self.config.nodes.get(i).map_or("?", |n| n.name.as_str())
    }

    fn group_index(&self, name: &str) -> Result<usize, CommandError> {
        self.config
            .groups
            .iter()
            .position(|g| g.name == name)
            .ok_or_else(|| CommandError::UnknownGroup(name.to_string()))
    }

    fn groups_named(&self, group: &Option<String>) -> Result<Vec<usize>, CommandError> {
        match group {
            Some(name) => Ok(vec![self.group_index(name)?]),
            None => Ok((0..self.groups.len()).collect()),
        }
    }

    /// Live peers running a different cluster.toml.
    fn differing_peer(&self) -> Option<usize> {
        (0..self.peers.len())
            .find(|&i| i != self.local.0 && self.peers[i].alive() && self.peers[i].digest_mismatch)
    }

    /// Why no peer could take `g` from here, or None when one can.
    fn no_taker(&self, g: usize, force: bool) -> Option<String> {
        let mut why = Vec::new();
        for i in (0..self.peers.len()).filter(|&i| i != self.local.0) {
            let p = &self.peers[i];
            let reason = if !p.alive() {
                Some(match p.state {
                    PeerState::Left => "left",
                    PeerState::Unknown => "not heard yet",
                    _ => "dead",
                })
            } else if p.leaving {
                Some("shutting down")
            } else if self.ops.peer_maintenance[i] {
                Some("in maintenance")
            } else if self.ops.peer_flags[i][g] & wire::CLAIM_STANDBY != 0 {
                Some("in standby")
            } else if p.claims[g].0 == ClaimState::Failed {
                Some("failed with it")
            } else if p.digest_mismatch && !force {
                Some("runs a different cluster.toml; --force to accept")
            } else {
                None
            };
            match reason {
                None => return None,
                Some(r) => why.push(format!("{} {r}", self.name(i))),
            }
        }
        if why.is_empty() {
            why.push("this is the only node".into());
        }
        Some(why.join(", "))
    }

    fn held_here(&self, g: usize) -> bool {
        self.groups[g].holds()
    }

    fn check_managing(&self) -> Result<(), CommandError> {
        if self.shutting_down {
            return Err(CommandError::ShuttingDown);
        }
        if self.ops.maintenance {
            return Err(CommandError::Maintenance);
        }
        if !self.ready {
            return Err(CommandError::NotReady);
        }
        Ok(())
    }

    /// Standby, takeover, maintenance and unblock (from `handle_command`).
    pub(super) fn operator_command(
        &mut self,
        now: Instant,
        cmd: Command,
    ) -> Result<CommandOutcome, CommandError> {
        let outcome = match cmd {
            Command::Standby { group, force } => self.standby(&group, force)?,
            Command::Takeover { group, force } => self.takeover(now, &group, force)?,
            Command::Maintenance(on) => self.maintenance(on)?,
            Command::Clear { group } => self.clear(&group)?,
            Command::Unblock { group } => self.unblock(&group)?,
            Command::FenceAck { node } => self.fence_ack(now, &node)?,
            Command::Stop { .. } | Command::Shutdown | Command::Detach => unreachable_outcome(),
        };
        self.evaluate(now);
        self.send_heartbeat();
        Ok(outcome)
    }

    fn standby(
        &mut self,
        group: &Option<String>,
        force: bool,
    ) -> Result<CommandOutcome, CommandError> {
        let groups = self.groups_named(group)?;
        self.check_managing()?;
        self.check_versions()?;
        // Check every group first: a refusal changes nothing.
        for &g in &groups {
            if self.groups[g].state == LocalGroupState::Blocked {
                return Err(CommandError::Blocked {
                    group: self.config.groups[g].name.clone(),
                    node: self.name(self.local.0).to_string(),
                });
            }
            if self.held_here(g)
                && let Some(why) = self.no_taker(g, force)
            {
                return Err(CommandError::NoEligiblePeer {
                    group: self.config.groups[g].name.clone(),
                    why,
                });
            }
        }
        let mut wait = Vec::new();
        for &g in &groups {
            self.ops.admin[g] = Admin::Standby;
            if self.held_here(g) {
                wait.push(Wait {
                    group: self.config.groups[g].name.clone(),
                    until: Until::Away,
                });
            }
        }
        let names = self.names(&groups);
        let message = if wait.is_empty() {
            format!(
                "standby: {names} will not run on this node until `hbd takeover` or `hbd clear` here"
            )
        } else {
            format!(
                "standby: releasing {} here; {names} will not run on this node until `hbd takeover` or `hbd clear` here",
                self.names_of(&wait)
            )
        };
        Ok(CommandOutcome { message, wait })
    }

    fn takeover(
        &mut self,
        now: Instant,
        group: &Option<String>,
        force: bool,
    ) -> Result<CommandOutcome, CommandError> {
        let groups = self.groups_named(group)?;
        self.check_managing()?;
        self.check_versions()?;
        if !force && let Some(p) = self.differing_peer() {
            return Err(CommandError::PeerConfigDiffers {
                peer: self.name(p).to_string(),
            });
        }
        for &g in &groups {
            let name = self.config.groups[g].name.clone();
            let local = &self.groups[g];
            match local.state {
                LocalGroupState::Blocked => {
                    return Err(CommandError::Blocked {
                        group: name,
                        node: self.name(self.local.0).to_string(),
                    });
                }
                LocalGroupState::Failed => {
                    let since = self.ops.group_since[g].unwrap_or(now);
                    return Err(CommandError::FailedHere {
                        group: name,
                        ago: now.saturating_duration_since(since).as_secs(),
                    });
                }
                _ => {}
            }
            for i in (0..self.peers.len()).filter(|&i| i != self.local.0) {
                let p = &self.peers[i];
                if !p.alive() || !p.claims[g].0.holds() {
                    continue;
                }
                if p.claims[g].0 == ClaimState::Blocked {
                    return Err(CommandError::Blocked {
                        group: name,
                        node: self.name(i).to_string(),
                    });
                }
                if self.ops.peer_maintenance[i] {
                    return Err(CommandError::PeerInMaintenance {
                        group: name,
                        node: self.name(i).to_string(),
                    });
                }
            }
        }
        let mut wait = Vec::new();
        for &g in &groups {
            self.ops.admin[g] = Admin::Wanted;
            if self.groups[g].state != LocalGroupState::Running {
                wait.push(Wait {
                    group: self.config.groups[g].name.clone(),
                    until: Until::Here,
                });
            }
        }
        let message = if wait.is_empty() {
            format!("takeover: {} already running here", self.names(&groups))
        } else {
            format!(
                "takeover: bringing {} here (the holder releases first)",
                self.names_of(&wait)
            )
        };
        Ok(CommandOutcome { message, wait })
    }

    fn maintenance(&mut self, on: bool) -> Result<CommandOutcome, CommandError> {
        if self.shutting_down {
            return Err(CommandError::ShuttingDown);
        }
        let message = match (self.ops.maintenance, on) {
            (true, true) => "maintenance mode is already on".to_string(),
            (false, false) => "maintenance mode is already off".to_string(),
            (false, true) => "maintenance mode on: hbd leaves every resource as it is and keeps heartbeating; peers will not take this node's groups".to_string(),
            (true, false) => "maintenance mode off: managing groups again".to_string(),
        };
        self.ops.maintenance = on;
        Ok(CommandOutcome {
            message,
            wait: Vec::new(),
        })
    }

    fn clear(&mut self, group: &Option<String>) -> Result<CommandOutcome, CommandError> {
        let groups = self.groups_named(group)?;
        if self.shutting_down {
            return Err(CommandError::ShuttingDown);
        }
        let mut cleared = Vec::new();
        for &g in &groups {
            let was = std::mem::take(&mut self.ops.admin[g]);
            match was {
                Admin::Normal => {}
                Admin::Standby => {
                    cleared.push(format!("standby of {}", self.config.groups[g].name))
                }
                Admin::Wanted => {
                    cleared.push(format!("takeover of {}", self.config.groups[g].name))
                }
            }
        }
        let message = if cleared.is_empty() {
            format!(
                "clear: nothing to clear, {} had no standby or takeover here",
                self.names(&groups)
            )
        } else {
            format!(
                "clear: forgot the {} here; the normal rules place {} again",
                cleared.join(", "),
                self.names(&groups)
            )
        };
        Ok(CommandOutcome {
            message,
            wait: Vec::new(),
        })
    }

    fn unblock(&mut self, group: &str) -> Result<CommandOutcome, CommandError> {
        if self.group_index(group).is_err() && self.unblock_retired(group) {
            return Ok(CommandOutcome {
                message: format!(
                    "unblocked {group}: it is no longer in cluster.toml and is forgotten here"
                ),
                wait: Vec::new(),
            });
        }
        let g = self.group_index(group)?;
        if self.shutting_down {
            return Err(CommandError::ShuttingDown);
        }
        let state = self.groups[g].state.clone();
        if !matches!(state, LocalGroupState::Blocked | LocalGroupState::Failed) {
            if let Some(i) = (0..self.peers.len()).find(|&i| {
                i != self.local.0
                    && self.peers[i].alive()
                    && self.peers[i].claims[g].0 == ClaimState::Blocked
            }) {
                return Err(CommandError::Blocked {
                    group: group.to_string(),
                    node: self.name(i).to_string(),
                });
            }
            return Err(CommandError::NotBlocked {
                group: group.to_string(),
                state: super::status::state_name(&state).to_string(),
            });
        }
        self.groups[g].failed_until = None;
        self.groups[g].fail_after_stop = false;
        self.ops.because(g, "unblocked by the operator");
        self.set_state(g, LocalGroupState::Stopped);
        Ok(CommandOutcome {
            message: format!(
                "unblocked {group}: it counts as stopped here and may be started where it belongs"
            ),
            wait: Vec::new(),
        })
    }

    fn names(&self, groups: &[usize]) -> String {
        let n: Vec<&str> = groups
            .iter()
            .map(|&g| self.config.groups[g].name.as_str())
            .collect();
        if n.is_empty() {
            "no group".into()
        } else {
            n.join(", ")
        }
    }

    fn names_of(&self, wait: &[Wait]) -> String {
        wait.iter()
            .map(|w| w.group.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Shutdown and Detach are handled by `handle_command` itself.
fn unreachable_outcome() -> CommandOutcome {
    CommandOutcome {
        message: String::new(),
        wait: Vec::new(),
    }
}

/// Milliseconds between `then` and `now` (0 when `then` is later).
pub(super) fn ago(now: Instant, then: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(then).as_millis()).unwrap_or(u64::MAX)
}
