//! The sans-IO heart of hbd: membership (who is alive, over which links) and
//! ownership (which node runs each resource group).
//!
//! [`Cluster`] owns no socket, clock, thread or bus. The daemon feeds it inputs —
//! a packet received at `now`, a timeout at `now`, the result of a group start or
//! stop, an operator command — and drains [`Action`]s: packets to send, groups to
//! start or stop, events to log and report. Time is always a parameter (a local
//! monotonic `Instant`; wall clocks are never compared across nodes), so tests drive
//! hours of simulated time in milliseconds.

mod command;
mod defence;
pub mod fence;
mod membership;
mod mixed;
pub mod ownership;
mod reload;
pub mod restart;
mod status;

pub use command::{Admin, Command, CommandError, CommandOutcome, Until, Wait};
pub use fence::{FenceResult, FenceStatus};
pub use reload::{Reloaded, Retirement};
pub use status::{
    GroupStatus, LinkStatus, PeerStatus, Quorum, RemovedStatus, Status, Transition,
    peer_state_name, state_name,
};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, KeySet};
use crate::proto::wire::{self, Claim, ClaimState, Kind, Message};

use membership::Peer;
use ownership::{Decision, Other, View};

/// Index of a node in `config.nodes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);
/// Index of a link in `config.links`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub usize);
/// Index of a group in `config.groups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub usize);

/// What the daemon must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to every peer on every link.
    Send(Vec<u8>),
    /// Bring the group's resources up, in order; report with [`GroupEvent`].
    StartGroup(GroupId),
    /// Take the group's resources down, in reverse order; report with [`GroupEvent`].
    StopGroup(GroupId),
    /// Restart resources `from..` of a running group in place (stop them last to
    /// first, start them first to last); report `Restarted` or `RestartFailed`.
    RestartResources { group: GroupId, from: usize },
    /// Re-announce every address of the running group at once (gratuitous ARP,
    /// unsolicited NA), as after a takeover: a split brain has healed and this node
    /// keeps the group, but switches and clients may have learnt the other side's MAC.
    Announce(GroupId),
    /// Something to log and reflect in the status line.
    Event(Event),
    /// A requested shutdown has completed: every group is released.
    Exit,
    /// Fence (power off) `node` with its configured unit or command; report with
    /// [`Cluster::handle_fence_result`] and this `attempt`.
    FenceNode { node: NodeId, attempt: u64 },
    /// The fence `attempt` of `node` timed out or was confirmed by hand: stop it
    /// (its result, should one still come, is ignored).
    CancelFence { node: NodeId, attempt: u64 },
}

/// Results of group operations and resource monitoring, fed back by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    Started,
    /// Start failed; the resources already started were rolled back (stopped).
    StartFailed {
        reason: String,
    },
    Stopped,
    /// A stop failed (also the rollback of a failed start): the group may still be
    /// partly up here; it stays blocked on this node.
    StopFailed {
        reason: String,
    },
    /// A running group failed and cannot stay here: it must move.
    Failed {
        reason: String,
    },
    /// Resource `resource` of a running group is down. The core restarts it in place
    /// (with the resources after it) while the group's budget (`max_restarts` within
    /// `restart_window`) lasts, then moves the group.
    ResourceDown {
        resource: usize,
        reason: String,
    },
    /// An in-place restart completed.
    Restarted,
    /// An in-place restart failed: the group moves.
    RestartFailed {
        reason: String,
    },
}

/// What the daemon found of a group's resources on this node at start-up (its
/// previous run may have left them up: `systemctl restart hbd`, a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Every resource is up.
    AllUp,
    /// Some are up, some not (hbd died mid-start or mid-stop).
    PartlyUp,
    /// Nothing is up.
    Down,
    /// The daemon could not tell.
    Unknown { reason: String },
}

/// Membership state of a peer as seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Not heard since start-up and initdead has not yet passed.
    Unknown,
    Up,
    /// Silent longer than warntime on every link.
    Late,
    /// Silent longer than deadtime (or initdead at start-up).
    Dead,
    /// Said goodbye (clean shutdown): treated as dead without waiting.
    Left,
}

/// This node's state for one group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalGroupState {
    Stopped,
    Starting,
    Running,
    Stopping,
    /// Start or runtime failure here; this node is passed over until `hold_down` ends.
    Failed,
    /// A stop failed: resources may be up; this node keeps claiming the group so no
    /// other node starts it, until an operator intervenes or this node dies.
    Blocked,
}

/// Why a packet was refused. The daemon logs these rate-limited per source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Not a well-formed, authentic message for this cluster.
    #[error(transparent)]
    Decode(#[from] wire::DecodeError),
    #[error("packet from unknown node \"{0}\"")]
    UnknownNode(String),
    #[error("packet on unknown link {0}")]
    UnknownLink(usize),
    #[error("replayed or duplicate packet (sequence {0})")]
    Replay(u64),
    #[error("packet from an earlier incarnation of the sender")]
    OldIncarnation,
    /// A later incarnation of the sender (it restarted) that has not yet proved it is
    /// live by acking ours: it is acked back and believed from its next packet. Also
    /// what a replay of a packet recorded before this node started gets.
    #[error("packet from a new incarnation of the sender, not yet confirmed")]
    Unconfirmed,
    /// Our own packet looped back (broadcast): not worth logging.
    #[error("own packet")]
    Own,
    #[error("another daemon claims to be this node \"{0}\": check node names and --node")]
    DuplicateNode(String),
    /// From an incarnation of a node that was fenced (it should be off).
    #[error("packet from node \"{0}\", which was fenced: ignored until it restarts")]
    Fenced(String),
    /// Not a well-formed, authentic Heartbeat message (`[migration] protocol =
    /// "heartbeat"`).
    #[error(transparent)]
    Heartbeat(#[from] crate::proto::heartbeat::speaker::RecvError),
    /// A Heartbeat packet where hbd's protocol is spoken: a node still running
    /// Heartbeat, or a converted one that has not switched yet (it follows at once).
    #[error(
        "a Heartbeat packet, but this node speaks hbd's protocol (a node still runs Heartbeat, or has not switched yet)"
    )]
    HeartbeatPacket,
}

/// A deadline in the core's timer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The next heartbeat is due.
    Heartbeat,
    /// The start-up listening phase ends; peers not heard are dead.
    Initdead,
    /// The peer is silent for warntime.
    PeerLate(NodeId),
    /// The peer is silent for deadtime.
    PeerDead(NodeId),
    /// The link to the peer is silent for deadtime.
    LinkDown(NodeId, LinkId),
    /// The preferred peer has been up for the hold-down (auto_failback).
    Failback(NodeId),
    /// A second sender with the peer's name falls silent.
    DuplicatePeer(NodeId),
    /// The claims of the peer's replaced incarnation expire (membership::Previous).
    PreviousIncarnation(NodeId),
    /// A second daemon with our name falls silent.
    DuplicateLocal,
    /// This node is no longer passed over for the group.
    HoldDown(GroupId),
    /// A drop in this node's ping count has lasted `ping_dampen`: it counts.
    PingDampen,
    /// The wait for fresh heartbeats after a stall ends (see `Cluster::resync_until`).
    Resync,
    /// A fence of the node times out, or a failed one is tried again.
    Fence(NodeId),
    /// A deadline of Heartbeat's resource rules (mixed clusters, mixed.rs).
    Legacy,
}

/// Why a reloaded configuration cannot be applied to the running core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error("the list of nodes changed: restart hbd on every node to apply it")]
    Nodes,
    /// `[migration]` changed in a way a reload cannot apply.
    #[error("{0}")]
    Protocol(String),
    #[error("the list of links changed: restart hbd to apply it")]
    Links,
    #[error("hbd is shutting down")]
    ShuttingDown,
    /// A group the reload removes or changes is between states here.
    #[error(
        "group {group} is {state} here and the new cluster.toml {change} it: reload again once it has settled"
    )]
    Busy {
        group: String,
        state: &'static str,
        change: &'static str,
    },
    #[error(
        "group {group} is blocked here and the new cluster.toml {change} it: clean it up, run `hbd unblock {group}`, then reload"
    )]
    Blocked { group: String, change: &'static str },
    #[error(
        "maintenance mode is on here and the new cluster.toml {change} group {group}, which runs here: run `hbd maintenance off` first"
    )]
    Maintenance { group: String, change: &'static str },
    #[error(
        "group {group}, no longer in cluster.toml, is still being released here: reload again once it is stopped"
    )]
    StillReleasing { group: String },
    #[error(
        "group {group} is back in cluster.toml while its earlier copy is still being released here: reload again once it is stopped"
    )]
    Returning { group: String },
    #[error(
        "the new cluster.toml and the groups still being released here need {groups} claims in a heartbeat (at most {max}): reload again once they are stopped"
    )]
    TooManyClaims { groups: usize, max: usize },
}

/// Things worth a log line; the daemon adds NODE/PEER/LINK/GROUP fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start-up listening phase is over (initdead passed or every peer heard).
    Ready,
    PeerUp {
        peer: NodeId,
    },
    PeerLate {
        peer: NodeId,
        silent: Duration,
    },
    /// A late peer is heard again before deadtime.
    PeerOnTime {
        peer: NodeId,
    },
    PeerDead {
        peer: NodeId,
    },
    PeerLeft {
        peer: NodeId,
    },
    /// The peer's daemon restarted (new incarnation).
    PeerRestarted {
        peer: NodeId,
    },
    /// Two live senders claim to be `peer` (a cloned node, a daemon started twice):
    /// the claims of both are respected. `gone` once the second one falls silent.
    DuplicatePeer {
        peer: NodeId,
        gone: bool,
    },
    /// Another live daemon claims to be this node. The newer of the two (`yielding`)
    /// releases its groups; neither takes a group while the other is heard.
    DuplicateLocal {
        yielding: bool,
        gone: bool,
    },
    LinkUp {
        peer: NodeId,
        link: LinkId,
    },
    LinkDown {
        peer: NodeId,
        link: LinkId,
    },
    GroupState {
        group: GroupId,
        state: LocalGroupState,
    },
    /// The peer runs a configuration with another digest.
    ConfigMismatch {
        peer: NodeId,
    },
    /// The peer's configuration digest matches this node's again.
    ConfigAgreed {
        peer: NodeId,
    },
    /// Both this node and `peer` hold `group`; `release` says whether we give it up.
    Conflict {
        group: GroupId,
        peer: NodeId,
        release: bool,
    },
    /// A resource of the group went down: restarting it in place (`attempt` of `max`
    /// within the restart window).
    RestartInPlace {
        group: GroupId,
        resource: usize,
        reason: String,
        attempt: usize,
        max: u32,
    },
    /// A resource went down with the restart budget spent: the group moves.
    RestartBudgetSpent {
        group: GroupId,
        reason: String,
        restarts: usize,
        window: Duration,
    },
    /// The group was found running here at start-up: held, nothing restarted.
    Adopted {
        group: GroupId,
    },
    /// The group was found partly up at start-up: its leftovers are being stopped.
    Leftovers {
        group: GroupId,
    },
    /// Whether the group is up here could not be told at start-up: taken as down.
    FoundUnknown {
        group: GroupId,
        reason: String,
    },
    /// This process did not run for `gap` (frozen, suspended): peers get a grace period.
    Stalled {
        gap: Duration,
    },
    /// A heartbeat could not be encoded or signed, so nothing was sent: peers will
    /// declare this node dead. Always an error in the journal.
    SendFailed {
        reason: String,
    },
    /// With three or more nodes: this node lost (`quorate: false`) or regained quorum,
    /// hearing `heard` of `nodes` nodes (itself included).
    Quorum {
        quorate: bool,
        heard: usize,
        nodes: usize,
    },
    /// The number of ping nodes this node reaches changed (after dampening, for a drop).
    PingCount {
        reached: u8,
        configured: usize,
    },
    /// Two holders of `group` met (a healed partition): exactly one keeps it by the
    /// ownership rule. `view` says what each side held and who keeps it; `kept` whether
    /// this node does (it then re-announces the group's addresses).
    SplitBrain {
        group: GroupId,
        peer: NodeId,
        local_generation: u64,
        peer_generation: u64,
        kept: bool,
        view: String,
    },
    /// Fencing `peer` before a takeover (`reason`: why it is owed one).
    FenceStarted {
        peer: NodeId,
        reason: String,
    },
    /// `peer` is off: fenced, or confirmed by the operator (`hbd fence-ack`).
    Fenced {
        peer: NodeId,
        by_ack: bool,
    },
    /// Fencing `peer` failed or timed out: what waited for it stays stopped; tried
    /// again in `retry_in`.
    FenceFailed {
        peer: NodeId,
        reason: String,
        retry_in: Duration,
    },
    /// A step of Heartbeat's resource rules in a mixed cluster (mixed.rs), as Heartbeat
    /// would log it.
    Legacy {
        message: String,
        warning: bool,
    },
}

/// The membership and ownership state machine of one node. `Clone` and `Debug` let
/// the model checker (tests/model_check.rs) branch and fingerprint real cores.
#[derive(Clone, Debug)]
pub struct Cluster {
    config: Arc<Config>,
    keys: KeySet,
    local: NodeId,
    incarnation: u64,
    seq: u64,
    cluster_id: u32,
    digest: [u8; 8],
    started: Instant,
    /// Last time any input reached us, to notice that this process was frozen.
    last_input: Instant,
    /// After a stall (SIGSTOP, a VM pause) the packets read first waited in the socket
    /// through it: the claims they carry may be long stale (a peer's takeover attempt
    /// that has since failed). Until this instant, two keepalives after the stall, no
    /// group is yielded or started on a peer's claim: fresh heartbeats replace the
    /// stale ones first.
    resync_until: Option<Instant>,
    /// Pending deadlines (see [`Cluster::sync_timers`]).
    timers: Vec<(Timer, Instant)>,
    next_send: Instant,
    ready: bool,
    shutting_down: bool,
    exited: bool,
    /// Another live daemon with this node's name (see [`Event::DuplicateLocal`]):
    /// its incarnation, when last heard live, and whether it proved it is live.
    twin: Option<(u64, Instant, bool)>,
    /// Peers by node index; the local node's slot is unused.
    peers: Vec<Peer>,
    groups: Vec<Local>,
    actions: VecDeque<Action>,
    /// Operator state and history (command.rs).
    ops: command::Ops,
    /// This node's ping count (defence.rs).
    ping: defence::Ping,
    /// Whether this node had quorum when last evaluated (defence.rs).
    was_quorate: bool,
    /// Groups a reload removed while they ran here, claimed until stopped (reload.rs).
    retiring: Vec<reload::Retiring>,
    /// Fencing of peers (fence.rs).
    fence: fence::Fencing,
    /// The latest packet believed from a peer (for the shell's gap statistics).
    accepted: Option<Accepted>,
    /// Speaking Heartbeat's protocol (a mixed cluster): its codec and sequence state.
    speaker: Option<Box<crate::proto::heartbeat::speaker::Speaker>>,
    /// Heartbeat's resource rules' state (at rest unless `speaker` is set).
    mixed: Box<mixed::Mixed>,
}

/// A packet believed from a peer: who sent it, on which link, its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub peer: NodeId,
    pub link: LinkId,
    pub seq: u64,
}

/// This node's own state for one group.
#[derive(Debug, Clone)]
struct Local {
    state: LocalGroupState,
    /// Our takeover generation while holding; the highest seen otherwise.
    generation: u64,
    /// While failed: passed over until then.
    failed_until: Option<Instant>,
    /// A stop in progress that ends in `Failed` (runtime failure) rather than `Stopped`.
    fail_after_stop: bool,
    /// Conflict already reported for this peer (one event per conflict).
    conflict_reported: Option<NodeId>,
    /// In-place restarts within the restart window.
    restarts: restart::RestartBudget,
    /// An in-place restart is under way.
    restarting: bool,
    /// Kept after a split brain with this peer: announce again once it has released.
    announce_after: Option<NodeId>,
}

impl Local {
    /// A group this node has never held (start-up, a group a reload added).
    fn stopped() -> Local {
        Local {
            state: LocalGroupState::Stopped,
            generation: 0,
            failed_until: None,
            fail_after_stop: false,
            conflict_reported: None,
            restarts: restart::RestartBudget::default(),
            restarting: false,
            announce_after: None,
        }
    }
}

impl Local {
    fn claim(&self) -> ClaimState {
        match self.state {
            LocalGroupState::Stopped => ClaimState::None,
            LocalGroupState::Starting => ClaimState::Starting,
            LocalGroupState::Running => ClaimState::Running,
            LocalGroupState::Stopping => ClaimState::Stopping,
            LocalGroupState::Failed => ClaimState::Failed,
            LocalGroupState::Blocked => ClaimState::Blocked,
        }
    }
    fn holds(&self) -> bool {
        self.claim().holds()
    }
}

impl Cluster {
    /// `incarnation` must be above every earlier one of this node (the daemon derives
    /// it from the clock and a persisted floor); `now` is the start time.
    pub fn new(
        config: &Config,
        local: NodeId,
        keys: KeySet,
        incarnation: u64,
        now: Instant,
    ) -> Cluster {
        Cluster::new_shared(Arc::new(config.clone()), local, keys, incarnation, now)
    }

    /// [`Cluster::new`] with the configuration the caller shares (the daemon, the
    /// resource manager and the core hold one copy, replaced as a whole on reload).
    pub fn new_shared(
        config: Arc<Config>,
        local: NodeId,
        keys: KeySet,
        incarnation: u64,
        now: Instant,
    ) -> Cluster {
        let (nl, ng) = (config.links.len(), config.groups.len());
        let nn = config.nodes.len();
        let mut c = Cluster {
            cluster_id: config.cluster_id(),
            digest: config.digest(),
            config,
            keys,
            local,
            incarnation,
            seq: 0,
            started: now,
            last_input: now,
            resync_until: None,
            timers: Vec::new(),
            next_send: now,
            ready: false,
            shutting_down: false,
            exited: false,
            twin: None,
            peers: (0..nn).map(|_| Peer::new(nl, ng)).collect(),
            groups: (0..ng).map(|_| Local::stopped()).collect(),
            actions: VecDeque::new(),
            ops: command::Ops::new(nn, nl, ng),
            ping: defence::Ping::default(),
            was_quorate: true,
            retiring: Vec::new(),
            fence: fence::Fencing::new(nn, ng),
            accepted: None,
            speaker: None,
            mixed: Box::default(),
        };
        c.sync_timers();
        c
    }

    fn timing(&self) -> (Duration, Duration, Duration, Duration) {
        let t = &self.config.timing;
        (
            t.keepalive.get(),
            t.warntime.get(),
            t.deadtime.get(),
            t.initdead.get(),
        )
    }

    /// Warntime and deadtime by which `peer`'s silence is judged: the longer of this
    /// node's and the peer's own (announced in its heartbeats), so that two nodes whose
    /// cluster.toml differ in timing judge each other alike and neither flaps the other
    /// dead/up while it keeps its own pace.
    fn peer_times(&self, peer: usize) -> (Duration, Duration) {
        let (_, warntime, deadtime, _) = self.timing();
        match self.peers.get(peer).and_then(|p| p.announced) {
            Some(t) => (
                warntime.max(Duration::from_millis(t.warntime_ms.into())),
                deadtime.max(Duration::from_millis(t.deadtime_ms.into())),
            ),
            None => (warntime, deadtime),
        }
    }

    /// This node's timing as its heartbeats announce it.
    fn own_timing(&self) -> wire::SenderTiming {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let (keepalive, warntime, deadtime, _) = self.timing();
        wire::SenderTiming {
            keepalive_ms: ms(keepalive),
            warntime_ms: ms(warntime),
            deadtime_ms: ms(deadtime),
        }
    }

    fn event(&mut self, e: Event) {
        self.ops.observe(&e, self.last_input);
        self.actions.push_back(Action::Event(e));
    }

    fn set_state(&mut self, g: usize, state: LocalGroupState) {
        if self.groups[g].state != state {
            self.groups[g].state = state.clone();
            self.event(Event::GroupState {
                group: GroupId(g),
                state,
            });
        }
    }

    /// Before the first timeout: what the daemon found of `group` here. A group whose
    /// resources are all up is held without restarting anything (a group without
    /// resources never is: "all up" is vacuously true on every node, and every node
    /// would hold it); leftovers of a group only partly up are stopped before the
    /// group may run anywhere (claiming it meanwhile; a stop that fails leaves it
    /// blocked here).
    pub fn found(&mut self, group: GroupId, found: Found) {
        self.found_inner(group, found);
        self.sync_timers();
    }

    fn found_inner(&mut self, group: GroupId, found: Found) {
        let g = group.0;
        let Some(cfg) = self.config.groups.get(g) else {
            return;
        };
        if self.groups[g].state != LocalGroupState::Stopped {
            return;
        }
        match found {
            Found::AllUp if cfg.resources.is_empty() => {}
            Found::AllUp => {
                self.event(Event::Adopted { group });
                self.set_state(g, LocalGroupState::Running);
            }
            Found::PartlyUp => {
                self.event(Event::Leftovers { group });
                self.stop(g, false);
            }
            Found::Down => {}
            Found::Unknown { reason } => self.event(Event::FoundUnknown { group, reason }),
        }
    }

    /// Hold `group` as running without looking (tests; the daemon reports [`Found`]).
    pub fn adopt(&mut self, group: GroupId) {
        self.adopt_inner(group);
        self.sync_timers();
    }

    fn adopt_inner(&mut self, group: GroupId) {
        if let Some(l) = self.groups.get_mut(group.0) {
            if l.state == LocalGroupState::Stopped {
                self.set_state(group.0, LocalGroupState::Running);
            }
        }
    }

    /// Notice a gap in our own execution and forgive peers the silence it caused.
    fn note_input(&mut self, now: Instant) {
        let (keepalive, warntime, _, _) = self.timing();
        let gap = now.saturating_duration_since(self.last_input);
        if gap > keepalive + warntime {
            for (i, p) in self.peers.iter_mut().enumerate() {
                if i != self.local.0 {
                    p.forgive(gap);
                }
            }
            self.event(Event::Stalled { gap });
            self.resync_until = Some(now + keepalive * 2);
        }
        if now > self.last_input {
            self.last_input = now;
        }
    }

    fn handle_packet_inner(
        &mut self,
        now: Instant,
        link: LinkId,
        bytes: &[u8],
    ) -> Result<(), Reject> {
        self.note_input(now);
        let (msg, versions, extras) = wire::decode_extras(bytes, &self.keys, self.cluster_id)?;
        if versions.packet > self.ops.max_wire {
            return Err(wire::DecodeError::BadVersion(versions.packet).into());
        }
        let sender = self
            .config
            .node_index(&msg.sender)
            .ok_or_else(|| Reject::UnknownNode(msg.sender.clone()))?;
        let proves_fresh = msg.acks.contains(&self.incarnation);
        if sender == self.local.0 {
            if msg.incarnation == self.incarnation {
                return Err(Reject::Own);
            }
            self.hear_twin(now, msg.incarnation, proves_fresh);
            return Err(Reject::DuplicateNode(msg.sender.clone()));
        }
        if link.0 >= self.config.links.len() {
            return Err(Reject::UnknownLink(link.0));
        }
        let peer_id = NodeId(sender);
        if self.fence_refuses(sender, msg.incarnation) {
            return Err(Reject::Fenced(msg.sender.clone()));
        }
        // Before any replay or incarnation check: a restarted peer must be answered in
        // a version it reads, or it can never ack us.
        self.ops
            .heard_version(sender, msg.incarnation, versions.max, now);
        let ack_before = self.peers[sender].ack();
        let verdict = self.peers[sender].hear(now, link.0, msg.incarnation, msg.seq, proves_fresh);
        if self.peers[sender].ack() != ack_before {
            // A new incarnation to confirm: ack it now rather than a keepalive later.
            // Replays cannot raise it (they carry earlier incarnations), so this is
            // at most one extra heartbeat per real restart.
            self.send_heartbeat();
        }
        let heard = verdict?;
        if !heard.twin {
            self.accepted = Some(Accepted {
                peer: peer_id,
                link,
                seq: msg.seq,
            });
        }
        if heard.twin {
            let p = &mut self.peers[sender];
            let first = p.twin.is_none();
            let mut claims = vec![(ClaimState::None, 0); self.config.groups.len()];
            for c in &msg.claims {
                if let Some(g) = self.config.groups.iter().position(|g| g.name == c.group) {
                    claims[g] = (c.state, c.generation);
                }
            }
            p.twin = Some(membership::Twin {
                last_heard: now,
                claims,
            });
            // The replaced incarnation is live after all: its claims come with it.
            p.previous = None;
            if first {
                self.event(Event::DuplicatePeer {
                    peer: peer_id,
                    gone: false,
                });
            }
            self.evaluate(now);
            return Ok(());
        }
        if heard.restarted {
            self.event(Event::PeerRestarted { peer: peer_id });
        }
        if heard.link_up {
            self.event(Event::LinkUp {
                peer: peer_id,
                link,
            });
        }
        if heard.peer_up {
            self.peers[sender].failback_at = self
                .config
                .failover
                .auto_failback
                .then(|| now + self.config.failover.hold_down.get());
            self.event(Event::PeerUp { peer: peer_id });
        }
        if heard.on_time {
            self.event(Event::PeerOnTime { peer: peer_id });
        }
        if heard.fresh {
            self.peers[sender].announced = extras.timing;
            // At most the configured count: a count above it is not believed beyond it.
            self.peers[sender].ping = extras
                .ping
                .map(|n| n.min(u8::try_from(self.config.failover.ping.len()).unwrap_or(u8::MAX)));
            self.apply(peer_id, &msg);
        }
        self.fence_refresh(now);
        self.check_ready(now);
        self.evaluate(now);
        if heard.peer_up {
            self.announce_to_returning_peer();
        }
        Ok(())
    }

    /// A packet with our own name and another incarnation. A replay of one of our own
    /// earlier packets cannot ack our current incarnation; a live twin can, once it
    /// has heard us (we ack its incarnation so that it can tell the same of us).
    fn hear_twin(&mut self, now: Instant, incarnation: u64, proves_fresh: bool) {
        let known = self.twin.is_some_and(|(_, _, live)| live);
        match self.twin {
            Some((i, _, _)) if i > incarnation && !proves_fresh => return,
            _ => {}
        }
        self.twin = Some((incarnation, now, proves_fresh || known));
        if proves_fresh && !known {
            self.event(Event::DuplicateLocal {
                yielding: incarnation < self.incarnation,
                gone: false,
            });
            self.send_heartbeat();
            self.evaluate(now);
        }
    }

    /// A live twin of this node was heard within deadtime.
    fn twin_alive(&self, now: Instant) -> Option<u64> {
        let deadtime = self.config.timing.deadtime.get();
        self.twin
            .filter(|&(_, t, live)| live && now.saturating_duration_since(t) < deadtime)
            .map(|(i, _, _)| i)
    }

    /// Take in the content of a new message from `peer`.
    fn apply(&mut self, peer: NodeId, msg: &Message) {
        self.note_peer(peer, msg);
        if msg.kind == Kind::Leave {
            let p = &mut self.peers[peer.0];
            p.clear_claims();
            p.previous = None;
            p.state = PeerState::Left;
            for l in &mut p.links {
                l.up = false;
            }
            self.event(Event::PeerLeft { peer });
            return;
        }
        let p = &mut self.peers[peer.0];
        p.leaving = msg.flags & wire::FLAG_LEAVING != 0;
        p.last_claims = msg.claims.clone();
        for c in p.claims.iter_mut() {
            c.0 = ClaimState::None;
        }
        for claim in &msg.claims {
            if let Some(g) = self
                .config
                .groups
                .iter()
                .position(|g| g.name == claim.group)
            {
                p.claims[g] = (claim.state, claim.generation);
                let local = &mut self.groups[g];
                if !local.holds() && claim.generation > local.generation {
                    local.generation = claim.generation;
                }
            }
        }
    }

    fn handle_timeout_inner(&mut self, now: Instant) {
        self.note_input(now);
        let (keepalive, _, local_deadtime, initdead) = self.timing();
        for i in 0..self.peers.len() {
            if i == self.local.0 {
                continue;
            }
            let peer = NodeId(i);
            let (warntime, deadtime) = self.peer_times(i);
            for li in 0..self.config.links.len() {
                let l = &mut self.peers[i].links[li];
                if l.up
                    && l.last_heard
                        .is_some_and(|t| now.saturating_duration_since(t) >= deadtime)
                {
                    l.up = false;
                    self.event(Event::LinkDown {
                        peer,
                        link: LinkId(li),
                    });
                }
            }
            let p = &mut self.peers[i];
            match p.state {
                PeerState::Unknown => {
                    if now.saturating_duration_since(self.started) >= initdead {
                        p.state = PeerState::Dead;
                        self.event(Event::PeerDead { peer });
                    }
                }
                PeerState::Up | PeerState::Late => {
                    let silent = p
                        .last_heard
                        .map(|t| now.saturating_duration_since(t))
                        .unwrap_or_default();
                    if silent >= deadtime {
                        p.state = PeerState::Dead;
                        p.clear_claims();
                        p.previous = None;
                        for l in &mut p.links {
                            l.up = false;
                        }
                        self.event(Event::PeerDead { peer });
                    } else if silent >= warntime && !p.warned_late {
                        p.warned_late = true;
                        p.state = PeerState::Late;
                        self.event(Event::PeerLate { peer, silent });
                    }
                }
                PeerState::Dead | PeerState::Left => {}
            }
        }
        for p in &mut self.peers {
            if p.failback_at.is_some_and(|t| now >= t) {
                p.failback_at = None;
            }
        }
        for l in &mut self.groups {
            if l.failed_until.is_some_and(|t| now >= t) {
                l.failed_until = None;
            }
        }
        if self.resync_until.is_some_and(|t| now >= t) {
            self.resync_until = None;
        }
        for g in 0..self.groups.len() {
            if self.groups[g].state == LocalGroupState::Failed
                && self.groups[g].failed_until.is_none()
            {
                self.set_state(g, LocalGroupState::Stopped);
            }
        }
        self.expire_twins(now, local_deadtime);
        for p in &mut self.peers {
            if p.previous
                .as_ref()
                .is_some_and(|v| now.saturating_duration_since(v.last_heard) >= local_deadtime)
            {
                p.previous = None;
            }
        }
        self.fence_refresh(now);
        self.fence_timeouts(now);
        self.check_ready(now);
        self.ping_timeout(now);
        self.evaluate(now);
        if now >= self.next_send {
            self.send_heartbeat();
            self.next_send = now + keepalive;
        }
    }

    /// Forget second senders silent for deadtime.
    fn expire_twins(&mut self, now: Instant, deadtime: Duration) {
        for i in 0..self.peers.len() {
            let expired = self.peers[i]
                .twin
                .as_ref()
                .is_some_and(|t| now.saturating_duration_since(t.last_heard) >= deadtime);
            if expired {
                self.peers[i].twin = None;
                self.event(Event::DuplicatePeer {
                    peer: NodeId(i),
                    gone: true,
                });
            }
        }
        if let Some((_, t, live)) = self.twin {
            if now.saturating_duration_since(t) >= deadtime {
                self.twin = None;
                if live {
                    self.event(Event::DuplicateLocal {
                        yielding: false,
                        gone: true,
                    });
                }
            }
        }
    }

    fn check_ready(&mut self, now: Instant) {
        if self.ready {
            return;
        }
        let (keepalive, _, _, initdead) = self.timing();
        let all_known = self
            .peers
            .iter()
            .enumerate()
            .all(|(i, p)| i == self.local.0 || p.state != PeerState::Unknown);
        // Even with every peer heard, listen for two keepalives: another live daemon
        // with this node's name (a cloned VM) is heard within that time, before this
        // one starts anything (its heartbeats are not in the peers' heartbeats).
        let up = now.saturating_duration_since(self.started);
        if (all_known && up >= keepalive * 2) || up >= initdead {
            self.ready = true;
            self.event(Event::Ready);
        }
    }

    /// Apply the ownership rules to every group and act on the result.
    /// Before ready only conflicts are resolved (yielding a group a heard peer wins is
    /// always safe); starts and failbacks wait until this node has heard its peers.
    fn evaluate(&mut self, now: Instant) {
        if self.exited || self.ops.maintenance {
            return;
        }
        if self.speaker.is_some() {
            self.mixed_evaluate(now);
            return;
        }
        self.note_quorum();
        let mut changed = false;
        let waited = std::mem::replace(&mut self.fence.waiting, vec![None; self.groups.len()]);
        for g in 0..self.groups.len() {
            changed |= self.evaluate_group(now, g);
        }
        for (g, w) in waited.iter().enumerate() {
            // No longer waiting for a fence without having started: the reason is stale.
            if w.is_some()
                && self.fence.waiting[g].is_none()
                && self.groups[g].state == LocalGroupState::Stopped
            {
                self.ops.reason[g] = None;
            }
        }
        if self.shutting_down {
            changed |= self.continue_shutdown();
        }
        if changed {
            self.send_heartbeat();
        }
    }

    fn evaluate_group(&mut self, now: Instant, g: usize) -> bool {
        let Some(preferred) = self.config.node_index(&self.config.groups[g].preferred) else {
            return false;
        };
        let preferred = self.effective_preferred(g, preferred);
        let wish = self.has_wish(g);
        let others: Vec<Other> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.local.0)
            .map(|(i, p)| {
                let (mut claim, mut generation) = p.claims[g];
                // A second sender with this name may run the group: respect its claim.
                if let Some(t) = &p.twin {
                    if t.claims[g].0.holds() && !claim.holds() {
                        (claim, generation) = t.claims[g];
                    }
                }
                // A restart cannot make an earlier incarnation's claim vanish faster
                // than its death would (see membership::Previous).
                if let Some(prev) = &p.previous {
                    if prev.claims[g].0.holds() && !claim.holds() {
                        (claim, generation) = prev.claims[g];
                    }
                }
                let alive = p.alive() || (p.twin.is_some() && claim.holds());
                Other {
                    same_config: !p.digest_mismatch || wish,
                    name_cmp: self.config.nodes[i]
                        .name
                        .cmp(&self.config.nodes[self.local.0].name),
                    knows_group: p
                        .last_claims
                        .iter()
                        .any(|c| c.group == self.config.groups[g].name),
                    node: NodeId(i),
                    alive,
                    // Two senders with one name: neither is asked to take a group.
                    eligible: p.alive()
                        && !p.leaving
                        && claim != ClaimState::Failed
                        && p.twin.is_none()
                        && !self.ops.peer_ineligible(i, g)
                        && self.ping_eligible(i),
                    claim: if alive { claim } else { ClaimState::None },
                    generation,
                    up_since: p.up_since,
                }
            })
            .collect();
        self.announce_after_release(g);
        let twin = self.twin_alive(now);
        let local = &self.groups[g];
        let view = View {
            local: self.local,
            nodes: self.config.nodes.len(),
            preferred: NodeId(preferred),
            auto_failback: self.config.failover.auto_failback,
            hold_down: self.config.failover.hold_down.get(),
            now,
            local_eligible: !self.shutting_down
                && local.state == LocalGroupState::Stopped
                && twin.is_none()
                && self.ops.admin[g] != Admin::Standby
                && self.defences_allow_start(),
            local_generation: local.generation,
            others: &others,
        };
        if local.state == LocalGroupState::Running && twin.is_some_and(|t| t < self.incarnation) {
            // Another daemon with our name started before us and is live: it keeps
            // the groups, we release ours.
            self.stop(g, false);
            return true;
        }
        if local.state == LocalGroupState::Running
            && let Some(why) = self.defence_release(&others)
        {
            self.ops.because(g, why);
            self.stop(g, false);
            return true;
        }
        if local.state == LocalGroupState::Running
            && let Some(why) = self.release_reason(g, &others)
        {
            self.ops.because(g, why);
            self.stop(g, false);
            return true;
        }
        let resyncing = self.resync_until.is_some_and(|t| now < t);
        // Not on claims that may be stale (resyncing): a fence is not undone.
        let escalate = (local.state == LocalGroupState::Stopped && self.ready && !resyncing)
            .then(|| self.fence_escalation(&view))
            .flatten();
        match local.state {
            LocalGroupState::Running => match ownership::decide_holder(&view) {
                Decision::YieldTo(_) if resyncing => false,
                // A blocked holder with fencing is fenced rather than yielded to.
                Decision::YieldTo(peer) if self.fence_instead_of_yield(now, g, peer.0) => false,
                Decision::YieldTo(peer) => {
                    self.ops.because(
                        g,
                        format!(
                            "also held by {}, which keeps it",
                            self.config.nodes[peer.0].name
                        ),
                    );
                    self.event(Event::Conflict {
                        group: GroupId(g),
                        peer,
                        release: true,
                    });
                    if self.peers[peer.0].claims[g].0 != ClaimState::Blocked {
                        self.split_brain(g, peer, peer);
                    }
                    self.stop(g, false);
                    true
                }
                Decision::FailBack(p) if self.ready => {
                    self.ops.because(
                        g,
                        format!("failing back to {}", self.config.nodes[p.0].name),
                    );
                    self.stop(g, false);
                    true
                }
                Decision::Keep | Decision::Start | Decision::FailBack(_) => {
                    // Report a conflict we win once, so the log explains the peer's release.
                    // A peer already stopping its copy counts: it heard us first and
                    // yielded (nobody starts a group while another stops it), and this
                    // node must still re-announce the group's addresses.
                    let rival = others.iter().find(|o| {
                        o.alive
                            && matches!(
                                o.claim,
                                ClaimState::Running | ClaimState::Starting | ClaimState::Stopping
                            )
                    });
                    let rival = rival.map(|o| o.node);
                    if rival != self.groups[g].conflict_reported {
                        self.groups[g].conflict_reported = rival;
                        if let Some(peer) = rival {
                            self.event(Event::Conflict {
                                group: GroupId(g),
                                peer,
                                release: false,
                            });
                            self.split_brain(g, peer, self.local);
                        }
                    }
                    false
                }
            },
            LocalGroupState::Stopped if self.ready => match ownership::decide_idle(&view) {
                Decision::Start if resyncing => false,
                Decision::Start if self.fence_gate(now, g) => false,
                Decision::Keep if let Some(p) = escalate => self.fence_escalate(now, g, p),
                Decision::Start => {
                    self.ops.because(g, self.start_reason(g));
                    let l = &mut self.groups[g];
                    // Saturating: a peer may announce generation u64::MAX (fuzz/corpus/packet/crash-951d…).
                    l.generation = l.generation.saturating_add(1);
                    l.conflict_reported = None;
                    self.set_state(g, LocalGroupState::Starting);
                    self.actions.push_back(Action::StartGroup(GroupId(g)));
                    true
                }
                _ => false,
            },
            // Waiting for a start or stop to finish, failed here, or blocked.
            _ => false,
        }
    }

    fn stop(&mut self, g: usize, fail_after: bool) {
        self.groups[g].fail_after_stop = fail_after;
        self.groups[g].restarting = false;
        self.set_state(g, LocalGroupState::Stopping);
        self.actions.push_back(Action::StopGroup(GroupId(g)));
    }

    /// During shutdown: stop held groups one at a time, last group first; leave when
    /// nothing is held. Returns whether anything changed.
    fn continue_shutdown(&mut self) -> bool {
        if self.exited {
            return false;
        }
        let busy = self.groups.iter().any(|l| {
            matches!(
                l.state,
                LocalGroupState::Starting | LocalGroupState::Stopping
            )
        });
        // A group a reload removed is still being stopped: wait for it too.
        if busy || self.retiring.iter().any(|r| !r.blocked) {
            return false;
        }
        if let Some(g) = (0..self.groups.len())
            .rev()
            .find(|&g| self.groups[g].state == LocalGroupState::Running)
        {
            self.stop(g, false);
            return true;
        }
        self.exited = true;
        if self
            .groups
            .iter()
            .any(|l| l.state == LocalGroupState::Blocked)
            || !self.retiring.is_empty()
        {
            // Resources may still be up here: do not tell peers we hold nothing. They
            // will take over only after deadtime, as if this node had died.
            self.send_heartbeat();
        } else {
            self.send(Kind::Leave);
        }
        self.actions.push_back(Action::Exit);
        false
    }

    fn handle_group_event_inner(&mut self, now: Instant, group: GroupId, event: GroupEvent) {
        self.note_input(now);
        let g = group.0;
        let Some(local) = self.groups.get(g) else {
            return;
        };
        if self.ops.maintenance {
            match event {
                // Not managing: a failure noticed late changes nothing.
                GroupEvent::Failed { .. } | GroupEvent::ResourceDown { .. } => return,
                GroupEvent::Restarted | GroupEvent::RestartFailed { .. } => {
                    self.groups[g].restarting = false;
                    return;
                }
                _ => {}
            }
        }
        self.ops.note_result(g, &event);
        let hold_down = self.config.failover.hold_down.get();
        match (local.state.clone(), event) {
            (LocalGroupState::Starting, GroupEvent::Started) => {
                self.set_state(g, LocalGroupState::Running);
            }
            (LocalGroupState::Starting, GroupEvent::StartFailed { .. }) => {
                self.groups[g].failed_until = Some(now + hold_down);
                self.set_state(g, LocalGroupState::Failed);
            }
            (LocalGroupState::Stopping, GroupEvent::Stopped) => {
                if std::mem::take(&mut self.groups[g].fail_after_stop) {
                    self.groups[g].failed_until = Some(now + hold_down);
                    self.set_state(g, LocalGroupState::Failed);
                } else {
                    self.set_state(g, LocalGroupState::Stopped);
                }
            }
            (
                LocalGroupState::Stopping | LocalGroupState::Starting,
                GroupEvent::StopFailed { .. },
            ) => {
                self.groups[g].fail_after_stop = false;
                self.set_state(g, LocalGroupState::Blocked);
            }
            (LocalGroupState::Running, GroupEvent::Failed { .. }) => {
                self.stop(g, true);
            }
            (LocalGroupState::Running, GroupEvent::ResourceDown { resource, reason }) => {
                if self.groups[g].restarting {
                    return; // The restart under way covers it.
                }
                let cfg = &self.config.groups[g];
                let (max, window) = (cfg.max_restarts, cfg.restart_window.get());
                let l = &mut self.groups[g];
                match l.restarts.take(now, max, window) {
                    Err(used) => {
                        self.event(Event::RestartBudgetSpent {
                            group,
                            reason,
                            restarts: used,
                            window,
                        });
                        self.stop(g, true);
                    }
                    Ok(attempt) => {
                        l.restarting = true;
                        self.event(Event::RestartInPlace {
                            group,
                            resource,
                            reason,
                            attempt,
                            max,
                        });
                        self.actions.push_back(Action::RestartResources {
                            group,
                            from: resource,
                        });
                        return;
                    }
                }
            }
            (LocalGroupState::Running, GroupEvent::Restarted) => {
                self.groups[g].restarting = false;
                return;
            }
            (LocalGroupState::Running, GroupEvent::RestartFailed { .. }) => {
                self.groups[g].restarting = false;
                self.stop(g, true);
            }
            // Late or duplicate reports (e.g. a failure of a group already stopping).
            _ => return,
        }
        self.send_heartbeat();
        self.evaluate(now);
    }

    fn handle_command_inner(
        &mut self,
        now: Instant,
        cmd: Command,
    ) -> Result<CommandOutcome, CommandError> {
        self.note_input(now);
        match cmd {
            Command::Shutdown => {
                if !self.shutting_down {
                    // A stop in maintenance still releases: peers must not wait deadtime.
                    self.ops.maintenance = false;
                    self.shutting_down = true;
                    // Shutting down before ready: nothing was started, leave at once.
                    self.ready = true;
                    self.send_heartbeat();
                    if self.speaker.is_some() {
                        // Heartbeat's order: say "holding nothing", release, shutdone.
                        self.evaluate(now);
                    } else {
                        self.continue_shutdown();
                    }
                }
            }
            Command::Stop { restart } => {
                let next = if restart && !self.shutting_down {
                    Command::Detach
                } else {
                    Command::Shutdown
                };
                return self.handle_command_inner(now, next);
            }
            Command::Detach => {
                if !self.exited {
                    self.exited = true;
                    self.actions.push_back(Action::Exit);
                }
            }
            other if self.speaker.is_some() => return self.mixed_command(now, other),
            other => return self.operator_command(now, other),
        }
        Ok(CommandOutcome {
            message: "shutting down".into(),
            wait: Vec::new(),
        })
    }

    /// Apply a reloaded config (reload.rs): timing, failover, keys, groups and their
    /// resources may change; nodes and links (names and order) may not. A refusal
    /// says why in one sentence and changes nothing.
    pub fn reload(
        &mut self,
        now: Instant,
        config: &Config,
        keys: KeySet,
    ) -> Result<Reloaded, ReloadError> {
        self.reload_shared(now, Arc::new(config.clone()), keys)
    }

    /// [`Cluster::reload`] with the configuration the caller shares.
    pub fn reload_shared(
        &mut self,
        now: Instant,
        config: Arc<Config>,
        keys: KeySet,
    ) -> Result<Reloaded, ReloadError> {
        let r = self.reload_inner(now, &config, keys);
        if r.is_ok() && self.speaker.is_some() && !config.migration.heartbeat() {
            self.switch_to_hbd(now);
        }
        self.sync_timers();
        r
    }

    /// When `handle_timeout` should next be called: the earliest entry of the timer
    /// table, which every input brings up to date.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().map(|&(_, t)| t).min()
    }

    /// The pending deadlines, for tests and diagnostics.
    pub fn timers(&self) -> &[(Timer, Instant)] {
        &self.timers
    }

    /// Rebuild the timer table from the state. Every deadline in it is pending: each
    /// is consumed by the `handle_timeout` that reaches it (a peer turns late or dead,
    /// a link down, a hold-down or a failback wait ends, initdead passes), so none can
    /// make the timer fire in a loop.
    fn sync_timers(&mut self) {
        self.timers.clear();
        if self.exited {
            return;
        }
        let (_, _, deadtime, initdead) = self.timing();
        let mut t: Vec<(Timer, Instant)> = vec![(Timer::Heartbeat, self.next_send)];
        let initdead_at = self.started + initdead;
        let mut initdead_pending = !self.ready;
        for (i, p) in self.peers.iter().enumerate() {
            if i == self.local.0 {
                continue;
            }
            let peer = NodeId(i);
            let (warntime, peer_deadtime) = self.peer_times(i);
            match p.state {
                PeerState::Unknown => initdead_pending = true,
                PeerState::Up | PeerState::Late => {
                    if let Some(h) = p.last_heard {
                        if !p.warned_late {
                            t.push((Timer::PeerLate(peer), h + warntime));
                        }
                        t.push((Timer::PeerDead(peer), h + peer_deadtime));
                    }
                }
                PeerState::Dead | PeerState::Left => {}
            }
            for (li, l) in p.links.iter().enumerate() {
                if let (true, Some(h)) = (l.up, l.last_heard) {
                    t.push((Timer::LinkDown(peer, LinkId(li)), h + peer_deadtime));
                }
            }
            if let Some(w) = &p.twin {
                t.push((Timer::DuplicatePeer(peer), w.last_heard + deadtime));
            }
            if let Some(v) = &p.previous {
                t.push((Timer::PreviousIncarnation(peer), v.last_heard + deadtime));
            }
            if let Some(f) = p.failback_at {
                t.push((Timer::Failback(peer), f));
            }
        }
        if initdead_pending {
            t.push((Timer::Initdead, initdead_at));
        }
        if let Some((_, h, _)) = self.twin {
            t.push((Timer::DuplicateLocal, h + deadtime));
        }
        for (g, l) in self.groups.iter().enumerate() {
            if let Some(until) = l.failed_until {
                t.push((Timer::HoldDown(GroupId(g)), until));
            }
        }
        if let Some(at) = self.ping_deadline() {
            t.push((Timer::PingDampen, at));
        }
        if let Some(until) = self.resync_until {
            t.push((Timer::Resync, until));
        }
        self.fence_timers(&mut t);
        self.mixed_timers(&mut t);
        self.timers = t;
    }

    pub fn handle_packet(
        &mut self,
        now: Instant,
        link: LinkId,
        bytes: &[u8],
    ) -> Result<(), Reject> {
        let r = if self.speaker.is_some() {
            self.mixed_packet(now, link, bytes)
        } else if crate::proto::heartbeat::is_framed(bytes) {
            Err(Reject::HeartbeatPacket)
        } else {
            self.handle_packet_inner(now, link, bytes)
        };
        self.sync_timers();
        r
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_timeout_inner(now);
        self.sync_timers();
    }

    pub fn handle_group_event(&mut self, now: Instant, group: GroupId, event: GroupEvent) {
        self.handle_group_event_inner(now, group, event);
        self.sync_timers();
    }

    /// Carry out an operator command; a refusal changes nothing and says why.
    pub fn handle_command(
        &mut self,
        now: Instant,
        cmd: Command,
    ) -> Result<CommandOutcome, CommandError> {
        let r = self.handle_command_inner(now, cmd);
        self.sync_timers();
        r
    }

    /// The latest packet believed from a peer, taken (once) by the caller: after
    /// `handle_packet` returned `Ok`, the packet it just took.
    pub fn take_accepted(&mut self) -> Option<Accepted> {
        self.accepted.take()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn send_heartbeat(&mut self) {
        self.send(Kind::Heartbeat);
    }

    fn send(&mut self, kind: Kind) {
        if self.speaker.is_some() {
            self.mixed_send(kind);
            return;
        }
        self.seq += 1;
        let claims = self
            .config
            .groups
            .iter()
            .zip(&self.groups)
            .enumerate()
            .map(|(g, (cfg, l))| Claim {
                group: cfg.name.clone(),
                state: if kind == Kind::Leave {
                    ClaimState::None
                } else {
                    l.claim()
                },
                generation: l.generation,
                flags: if kind == Kind::Leave {
                    0
                } else {
                    self.ops.claim_flags(g)
                },
            })
            .chain(self.retiring.iter().map(|r| r.claim()))
            .collect();
        let msg = Message {
            kind,
            key_id: self.keys.send_id,
            flags: if self.shutting_down {
                wire::FLAG_LEAVING
            } else {
                0
            } | self.ops.message_flags(),
            cluster_id: self.cluster_id,
            digest: self.digest,
            incarnation: self.incarnation,
            seq: self.seq,
            sender: self.config.nodes[self.local.0].name.clone(),
            claims,
            acks: self.acks(),
        };
        // Validation refuses configs whose heartbeat cannot be encoded; should one fail
        // anyway (a key that vanished on reload), say so every time: peers are about to
        // declare this node dead while it may still hold groups.
        let extras = wire::Extras {
            timing: Some(self.own_timing()),
            ping: if kind == Kind::Heartbeat && !self.config.failover.ping.is_empty() {
                self.ping.effective
            } else {
                None
            },
        };
        match wire::encode_extras(&msg, &self.keys, self.wire_version(), &extras) {
            Ok(bytes) => self.actions.push_back(Action::Send(bytes)),
            Err(e) => self.event(Event::SendFailed {
                reason: e.to_string(),
            }),
        }
    }

    /// The incarnations we ack: every peer's (believed or candidate) and a twin's.
    fn acks(&self) -> Vec<u64> {
        let mut acks: Vec<u64> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.local.0)
            .filter_map(|(_, p)| p.ack())
            .collect();
        if let Some((i, _, _)) = self.twin {
            acks.push(i);
        }
        acks.truncate(wire::MAX_ACKS);
        acks
    }

    pub fn local(&self) -> NodeId {
        self.local
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }
}
