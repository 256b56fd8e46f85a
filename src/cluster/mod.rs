//! The sans-IO heart of hbd: membership (who is alive, over which links) and
//! ownership (which node runs each resource group).
//!
//! [`Cluster`] owns no socket, clock, thread or bus. The daemon feeds it inputs —
//! a packet received at `now`, a timeout at `now`, the result of a group start or
//! stop, an operator command — and drains [`Action`]s: packets to send, groups to
//! start or stop, events to log and report. Time is always a parameter (a local
//! monotonic `Instant`; wall clocks are never compared across nodes), so tests drive
//! hours of simulated time in milliseconds.

use std::time::{Duration, Instant};

use crate::config::{Config, KeySet};

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
    /// Something to log and reflect in the status line.
    Event(Event),
    /// A requested shutdown has completed: every group is released.
    Exit,
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
    /// Stop failed: the group may still be partly up here; it stays blocked on this node.
    StopFailed {
        reason: String,
    },
    /// A running group failed beyond its in-place restart budget: it must move.
    Failed {
        reason: String,
    },
}

/// Operator commands (the seam for standby/takeover in a later issue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Release every held group (last group first), tell peers, then emit [`Action::Exit`].
    Shutdown,
}

/// Membership state of a peer as seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    #[error("packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("packet too long ({0} bytes)")]
    TooLong(usize),
    #[error("not an hbd packet (bad magic)")]
    BadMagic,
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    #[error("packet from another cluster (id {0:#010x})")]
    OtherCluster(u32),
    #[error("packet from unknown node \"{0}\"")]
    UnknownNode(String),
    #[error("packet signed with unknown key id {0}")]
    UnknownKey(u8),
    #[error("bad MAC: wrong key or forged packet")]
    BadMac,
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("replayed or duplicate packet (sequence {0})")]
    Replay(u64),
    #[error("packet from an earlier incarnation of the sender")]
    OldIncarnation,
    /// Our own packet looped back (broadcast): not worth logging.
    #[error("own packet")]
    Own,
    #[error("another daemon claims to be this node \"{0}\": check node names and --node")]
    DuplicateNode(String),
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
    /// Both this node and `peer` hold `group`; `release` says whether we give it up.
    Conflict {
        group: GroupId,
        peer: NodeId,
        release: bool,
    },
    /// This process did not run for `gap` (frozen, suspended): peers get a grace period.
    Stalled {
        gap: Duration,
    },
}

/// A snapshot for STATUS= and (later) `hbd status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub local: String,
    pub ready: bool,
    pub peers: Vec<PeerStatus>,
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub state: PeerState,
    pub links_up: usize,
    pub links_total: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub name: String,
    pub local: LocalGroupState,
    /// The node this node believes holds the group, if any.
    pub owner: Option<String>,
}

/// The membership and ownership state machine of one node.
pub struct Cluster {
    _private: (),
}

impl Cluster {
    /// `incarnation` must be fresh per daemon start (random); `now` is the start time.
    pub fn new(
        _config: &Config,
        _local: NodeId,
        _keys: KeySet,
        _incarnation: u64,
        _now: Instant,
    ) -> Cluster {
        todo!("issue 3: core")
    }
    /// Before the first timeout: this group's resources were found running here
    /// (daemon restart); hold it without restarting anything.
    pub fn adopt(&mut self, _group: GroupId) {
        todo!()
    }
    pub fn handle_packet(
        &mut self,
        _now: Instant,
        _link: LinkId,
        _bytes: &[u8],
    ) -> Result<(), Reject> {
        todo!()
    }
    pub fn handle_timeout(&mut self, _now: Instant) {
        todo!()
    }
    pub fn handle_group_event(&mut self, _now: Instant, _group: GroupId, _event: GroupEvent) {
        todo!()
    }
    pub fn handle_command(&mut self, _now: Instant, _cmd: Command) {
        todo!()
    }
    /// Apply a reloaded config. Timing, failover and keys may change; nodes, links and
    /// groups (names and order) may not: the error says why and nothing changes.
    pub fn reload(&mut self, _now: Instant, _config: &Config, _keys: KeySet) -> Result<(), String> {
        todo!()
    }
    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!()
    }
    pub fn status(&self) -> Status {
        todo!()
    }
}
