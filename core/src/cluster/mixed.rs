//! Mixed clusters (rolling migration from Heartbeat 3.0.6, `[migration] protocol =
//! "heartbeat"`): this node speaks Heartbeat's protocol on its links and follows
//! Heartbeat's haresources-mode resource rules (`nice_failback`, what `auto_failback
//! on|off` selects in 3.0.6), so that a Heartbeat peer and this node agree on who holds
//! what. hbd's own ownership rules are not used in this mode.
//!
//! The rules, from Heartbeat's `hb_resource.c` (two nodes; "local" groups are those a
//! node is first on in haresources — hbd's `preferred` — and "foreign" the other's):
//!
//! - A node that comes up sends `t=starting`; the other answers `t=resource
//!   rsc_hold=none|local|foreign|all rtype=full isstable=0|1` (what it holds, from its
//!   own point of view). Once the other side says it is stable, the newcomer takes its
//!   local groups unless the other holds them (`req_our_resources`), then says
//!   `isstable=1` itself. Nobody stable within [`REQUEST_DELAY`]: local groups nobody
//!   holds are taken.
//! - Standby is a three-step exchange of `t=ask_resources rsc_hold=… info=me|other|done`:
//!   the node going standby says `me`, the other `other`, the first releases and says
//!   `done`, the other acquires and says `done`. hb_standby (there) and `hbd standby`
//!   (here) start it; with auto_failback a node holding foreign groups starts it for
//!   them once their owner is back and stable.
//! - A peer's `t=shutdone` (clean stop): take everything at once. A dead peer
//!   (deadtime, or never heard by initdead): take everything.
//!
//! Safety over liveness: a group is never started here while the Heartbeat peer is
//! alive and says it holds it; anything unknown is logged once and ignored.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::proto::heartbeat::speaker::{Event as HbEvent, Identity, RecvError, Speaker};
use crate::proto::heartbeat::{Keyring, Message};
use crate::proto::wire::{ClaimState, Kind};

use super::{
    Action, Cluster, Command, CommandError, CommandOutcome, Event, GroupId, LinkId,
    LocalGroupState, NodeId, PeerState, Reject, Timer, Until, Wait,
};

/// Heartbeat's resource sets, as bits from the sender's point of view.
pub const NONE: u8 = 0;
pub const LOCAL: u8 = 1;
pub const FOREIGN: u8 = 2;
pub const ALL: u8 = LOCAL | FOREIGN;

/// Heartbeat's `RQSTDELAY`: after the other side's answer, how long to wait for it to
/// become stable before taking the local groups nobody holds.
pub const REQUEST_DELAY: Duration = Duration::from_secs(10);
/// Heartbeat's `STANDBY_INIT_TO_MS`: a standby request nobody answers is cancelled.
pub const STANDBY_REPLY: Duration = Duration::from_secs(10);
/// Heartbeat's `HB_STANDBY_RSC_TO_MS`: longest a standby exchange may take.
pub const STANDBY_LIMIT: Duration = Duration::from_secs(3600);
/// Auto failback waiting for both sides to settle tries again this often.
const FAILBACK_RETRY: Duration = Duration::from_secs(1);

fn set_name(bits: u8) -> &'static str {
    match bits & ALL {
        LOCAL => "local",
        FOREIGN => "foreign",
        ALL => "all",
        _ => "none",
    }
}

fn set_bits(s: &str) -> Option<u8> {
    match s {
        "none" => Some(NONE),
        "local" => Some(LOCAL),
        "foreign" => Some(FOREIGN),
        "all" => Some(ALL),
        _ => None,
    }
}

/// The same set seen from the other node (its local groups are our foreign ones).
fn mirror(bits: u8) -> u8 {
    ((bits & LOCAL) << 1) | ((bits & FOREIGN) >> 1)
}

/// Heartbeat's `hb_rsc_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RState {
    /// Not ready yet: `starting` not sent.
    Init,
    Starting,
    BothStarting,
    /// The other side answered; waiting for it to be stable.
    Received,
    Stable,
    Shutdown,
}

/// Heartbeat's `going_standby`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standby {
    Not,
    /// This node goes standby.
    Me,
    /// The other node goes standby.
    Other,
    Done,
}

/// What to say once a step's groups have settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// `t=resource … isstable=1` (the end of `req_our_resources`).
    Held,
    /// `t=ask_resources info=done` (the end of `go_standby`).
    StandbyDone,
}

/// Groups being started (`acquire`) or stopped for a protocol step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    acquire: bool,
    /// Our own sets (LOCAL: groups preferring this node).
    bits: u8,
    then: After,
}

/// The Heartbeat side of a [`Cluster`] in a mixed cluster: the state of Heartbeat's
/// resource rules. Always there (at rest unless the cluster speaks Heartbeat), so that
/// no code path can find it missing; the [`Speaker`] beside it is what says whether
/// this node speaks Heartbeat's protocol.
#[derive(Debug, Clone)]
pub(super) struct Mixed {
    /// Wall clock (epoch seconds) at `Cluster::started`: Heartbeat's `ts` fields.
    epoch0: u64,
    load: String,
    peer: NodeId,
    rstate: RState,
    i_hold: u8,
    other_holds: u8,
    other_stable: bool,
    standby: Standby,
    standby_set: u8,
    standby_until: Option<Instant>,
    request_at: Option<Instant>,
    failback_at: Option<Instant>,
    needs_failback: bool,
    peer_alive: bool,
    steps: Vec<Step>,
    /// Our own messages, delivered to ourselves after sending (Heartbeat does).
    own: Vec<Message>,
    gave_up: bool,
    /// Message types logged once as ignored.
    ignored: BTreeSet<String>,
    /// The peer's generation when it said `shutdone`: its statuses until it exits are
    /// no sign of life (Heartbeat goes on sending them for a few seconds).
    departed: Option<u64>,
    /// Last Heartbeat packet in the peer's name that failed authentication.
    unauthenticated: Option<Instant>,
    /// A takeover held back because of those (a wrong authkeys on one side).
    held_off: bool,
}

impl Mixed {
    fn new(peer: NodeId, epoch0: u64) -> Mixed {
        Mixed {
            epoch0,
            load: "0.00 0.00 0.00 1/1 1".into(),
            peer,
            rstate: RState::Init,
            i_hold: NONE,
            other_holds: NONE,
            other_stable: false,
            standby: Standby::Not,
            standby_set: ALL,
            standby_until: None,
            request_at: None,
            failback_at: None,
            needs_failback: false,
            peer_alive: false,
            steps: Vec::new(),
            own: Vec::new(),
            gave_up: false,
            ignored: BTreeSet::new(),
            departed: None,
            unauthenticated: None,
            held_off: false,
        }
    }
}

impl Default for Mixed {
    fn default() -> Mixed {
        Mixed::new(NodeId(0), 0)
    }
}

impl Cluster {
    /// Speak Heartbeat 3.0.6's protocol from now on (`[migration] protocol =
    /// "heartbeat"`), signing with `keys` (the authkeys file), as `uuid` (stable across
    /// restarts). `epoch` is the wall clock now, in seconds; call before the first input.
    pub fn speak_heartbeat(&mut self, keys: Keyring, uuid: [u8; 16], epoch: u64) {
        let local = self.local.0;
        let peer = NodeId(usize::from(local == 0));
        let nodes: Vec<String> = self.config.nodes.iter().map(|n| n.name.clone()).collect();
        let id = Identity {
            node: nodes[local].clone(),
            uuid,
            generation: self.incarnation,
            deadtime_ms: u64::try_from(self.config.timing.deadtime.get().as_millis())
                .unwrap_or(u64::MAX),
            ttl: 1 + nodes.len() as u32,
            nodes,
        };
        let since = self
            .last_input
            .saturating_duration_since(self.started)
            .as_secs();
        let mut speaker = Speaker::new(id, keys);
        speaker.announce_hbd("1");
        self.speaker = Some(Box::new(speaker));
        *self.mixed = Mixed::new(peer, epoch.saturating_sub(since));
        // Groups found running at start-up are held (Heartbeat's i_hold_resources).
        let held: u8 = (0..self.groups.len())
            .filter(|&g| self.groups[g].holds())
            .fold(NONE, |b, g| b | self.class(g));
        self.mixed.i_hold = held;
        self.sync_timers();
    }

    /// Whether this node speaks Heartbeat's protocol.
    pub fn speaks_heartbeat(&self) -> bool {
        self.speaker.is_some()
    }

    /// The first line of /proc/loadavg, sent in Heartbeat's `ld` field.
    pub fn heartbeat_load(&mut self, load: &str) {
        if self.speaker.is_some() {
            self.mixed.load = load.chars().filter(|c| !c.is_control()).take(64).collect();
        }
    }

    /// LOCAL for a group that prefers this node, FOREIGN otherwise.
    fn class(&self, g: usize) -> u8 {
        if self.config.groups[g].preferred == self.config.nodes[self.local.0].name {
            LOCAL
        } else {
            FOREIGN
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        self.mixed.epoch0 + now.saturating_duration_since(self.started).as_secs()
    }

    fn say(&mut self, message: String, warning: bool) {
        self.event(Event::Legacy { message, warning });
    }

    /// Sign and send a sequenced message to every node; deliver it to ourselves too.
    fn broadcast(&mut self, m: Message) {
        let now = self.last_input;
        let epoch = self.epoch(now);
        let Some(speaker) = self.speaker.as_mut() else {
            return;
        };
        match speaker.message(m.clone(), epoch, &self.mixed.load) {
            Ok(bytes) => {
                self.mixed.own.push(m);
                self.actions.push_back(Action::Send(bytes));
            }
            Err(e) => self.event(Event::SendFailed {
                reason: e.to_string(),
            }),
        }
    }

    fn message(fields: &[(&str, &str)]) -> Message {
        let mut m = Message::new();
        for (n, v) in fields {
            // Names and values here are ours and valid: a failure is a bug, and the
            // message goes out without the field rather than not at all.
            let _ = m.push_str(n, v);
        }
        m
    }

    /// `hb_send_resources_held`.
    fn send_held(&mut self, stable: bool, comment: Option<&str>) {
        if self.speaker.is_none() {
            return;
        }
        let held = self.mixed.i_hold;
        let stable = if stable { "1" } else { "0" };
        let mut f = vec![
            ("t", "resource"),
            ("rsc_hold", set_name(held)),
            ("rtype", "full"),
            ("isstable", stable),
        ];
        if let Some(c) = comment {
            f.push(("info", c));
        }
        self.broadcast(Self::message(&f));
    }

    /// `send_standby_msg`.
    fn send_standby(&mut self, info: &str) {
        if self.speaker.is_none() {
            return;
        }
        let set = self.mixed.standby_set;
        let m = Self::message(&[
            ("t", "ask_resources"),
            ("rsc_hold", set_name(set)),
            ("info", info),
        ]);
        self.broadcast(m);
    }

    /// Status heartbeat (`Kind::Heartbeat`) or, leaving, `t=shutdone`.
    pub(super) fn mixed_send(&mut self, kind: Kind) {
        let now = self.last_input;
        let epoch = self.epoch(now);
        let st = if self.ready { "active" } else { "up" };
        if kind == Kind::Leave {
            self.broadcast(Self::message(&[("t", "shutdone"), ("st", "dead")]));
            return;
        }
        let Some(speaker) = self.speaker.as_mut() else {
            return;
        };
        match speaker.status(st, epoch, &self.mixed.load) {
            Ok(bytes) => self.actions.push_back(Action::Send(bytes)),
            Err(e) => self.event(Event::SendFailed {
                reason: e.to_string(),
            }),
        }
    }

    pub(super) fn mixed_packet(
        &mut self,
        now: Instant,
        link: LinkId,
        bytes: &[u8],
    ) -> Result<(), Reject> {
        if !crate::proto::heartbeat::is_framed(bytes) {
            return self.maybe_follow(now, link, bytes);
        }
        self.note_input(now);
        if link.0 >= self.config.links.len() {
            return Err(Reject::UnknownLink(link.0));
        }
        let epoch = self.epoch(now);
        let Some(speaker) = self.speaker.as_mut() else {
            return Err(Reject::Own);
        };
        let mx = &mut self.mixed;
        let r = match speaker.receive(bytes, epoch, &mx.load) {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, RecvError::Auth(_)) {
                    let peer = self.config.nodes[mx.peer.0].name.as_str();
                    let claims_peer = crate::proto::heartbeat::decode(bytes)
                        .is_ok_and(|p| p.message.get("src") == Some(peer));
                    if claims_peer {
                        mx.unauthenticated = Some(now);
                    }
                }
                return Err(e.into());
            }
        };
        // Only a new sequenced message proves the peer alive: a copy (the same message on
        // the other link, or a replay of a recent one) and an unsequenced control message
        // keep the link up, nothing more, so replays cannot keep a dead peer alive.
        let (node, fresh) = match &r.event {
            // A node shutting down says `st=dead` in its last statuses.
            HbEvent::Status { node, status } => (node.clone(), status != "dead"),
            HbEvent::Message { node, .. } => (node.clone(), true),
            HbEvent::Control { node, .. } | HbEvent::Duplicate { node, .. } => {
                (node.clone(), false)
            }
            HbEvent::Replay { .. } => return Err(Reject::OldIncarnation),
            HbEvent::NotForUs => return Err(Reject::Own),
            HbEvent::Stranger { node } => return Err(Reject::UnknownNode(node.clone())),
        };
        let Some(p) = self.config.node_index(&node) else {
            return Err(Reject::UnknownNode(node));
        };
        let generation = self.speaker.as_ref().and_then(|s| s.peer_generation(&node));
        let mx = self.mx();
        let fresh = fresh && (mx.departed.is_none() || mx.departed != generation);
        if mx.departed.is_some() && mx.departed != generation {
            mx.departed = None;
        }
        for b in r.send {
            self.actions.push_back(Action::Send(b));
        }
        self.heard(now, NodeId(p), link, fresh);
        if let Some(m) = r.message {
            if m.kind() != Some("status") {
                self.mixed_message(now, false, &m);
            }
        }
        self.flush_own(now);
        self.evaluate(now);
        Ok(())
    }

    /// An hbd packet in a mixed cluster: a peer that switched to hbd's protocol
    /// (`[migration] protocol = "hbd"` and a reload there). An authentic one from the
    /// other node makes this node switch too, at once, so that the two never stop
    /// hearing each other; anything else is refused as in hbd's protocol.
    fn maybe_follow(&mut self, now: Instant, link: LinkId, bytes: &[u8]) -> Result<(), Reject> {
        let msg = crate::proto::wire::decode(bytes, &self.keys, self.cluster_id)?;
        let peer = self.mx().peer;
        if msg.sender != self.config.nodes[peer.0].name {
            return self.handle_packet_inner(now, link, bytes);
        }
        // An hbd node sends Heartbeat's `hg` and hbd's incarnation alike: a packet of an
        // earlier incarnation than the one heard speaking Heartbeat is a replay.
        if self
            .speaker
            .as_ref()
            .and_then(|s| s.peer_generation(&msg.sender))
            .is_some_and(|hg| msg.incarnation < hg)
        {
            return Err(Reject::OldIncarnation);
        }
        self.say(
            format!(
                "{} speaks hbd's protocol now (it switched from Heartbeat's): switching too",
                msg.sender
            ),
            false,
        );
        self.switch_to_hbd(now);
        self.handle_packet_inner(now, link, bytes)
    }

    /// Why this node may not switch to hbd's protocol now, if so: the other node still
    /// runs Heartbeat (it would stop hearing this node and take its groups).
    pub fn switch_refused(&self) -> Option<String> {
        let speaker = self.speaker.as_ref()?;
        let peer = self.mixed.peer.0;
        let name = &self.config.nodes[peer].name;
        (self.peers[peer].alive() && !speaker.peer_is_hbd(name)).then(|| {
            format!("{name} still runs Heartbeat: convert it to hbd first (protocol = \"hbd\" only once every node runs hbd)")
        })
    }

    /// Leave Heartbeat's protocol for hbd's (the last node has moved): groups stay
    /// where they run; for two keepalives nothing is started or yielded on a peer's
    /// claim (as after a stall), so both sides' first hbd heartbeats are heard first.
    pub fn switch_to_hbd(&mut self, now: Instant) {
        if self.speaker.take().is_none() {
            return;
        }
        *self.mixed = Mixed::default();
        let keepalive = self.config.timing.keepalive.get();
        self.resync_until = Some(now + keepalive * 2);
        self.next_send = now;
        self.event(Event::Legacy {
            message: "switched to hbd's own protocol".into(),
            warning: false,
        });
        self.sync_timers();
    }

    /// An authentic packet from `peer` on `link`: it is alive there.
    fn heard(&mut self, now: Instant, peer: NodeId, link: LinkId, fresh: bool) {
        let p = &mut self.peers[peer.0];
        let alive = p.alive();
        let l = &mut p.links[link.0];
        let link_up = !l.up && (fresh || alive);
        if fresh || l.up || link_up {
            l.up = true;
            l.last_heard = Some(now);
        }
        if link_up {
            self.event(Event::LinkUp { peer, link });
        }
        if !fresh {
            return;
        }
        let p = &mut self.peers[peer.0];
        p.last_heard = Some(now);
        p.warned_late = false;
        let was = p.state;
        if !p.alive() {
            p.state = PeerState::Up;
            p.up_since = Some(now);
            p.leaving = false;
        } else {
            p.state = PeerState::Up;
        }
        match was {
            PeerState::Up => {}
            PeerState::Late => self.event(Event::PeerOnTime { peer }),
            _ => self.event(Event::PeerUp { peer }),
        }
    }

    /// Our own messages come back to us, as Heartbeat delivers its own.
    fn flush_own(&mut self, now: Instant) {
        for _ in 0..16 {
            if self.mixed.own.is_empty() {
                return;
            }
            let own = std::mem::take(&mut self.mixed.own);
            for m in own {
                self.mixed_message(now, true, &m);
            }
        }
    }

    fn mixed_message(&mut self, now: Instant, from_me: bool, m: &Message) {
        let kind = m.kind().unwrap_or("").to_string();
        match kind.as_str() {
            "starting" if !from_me => self.on_starting(),
            "resource" if !from_me => self.on_resource(now, m),
            "ask_resources" => self.on_ask_resources(now, from_me, m),
            "shutdone" if !from_me => self.on_shutdone(now),
            "starting" | "resource" | "shutdone" => {}
            // Heartbeat's own bookkeeping, answered by the speaker or of no concern to
            // the resource rules.
            "reqnodes" | "repnodes" | "ip-request" | "ip-request-resp" | "hb_takeover"
            | "ask_release" | "ack_release" | "NS_st" => {}
            other => {
                let mx = self.mx();
                let first = mx.ignored.len() < 64 && mx.ignored.insert(other.into());
                if first {
                    self.say(
                        format!(
                            "Heartbeat message type \"{}\" is not supported here: ignored (logged once)",
                            other.escape_debug()
                        ),
                        true,
                    );
                }
            }
        }
    }

    fn mx(&mut self) -> &mut Mixed {
        &mut self.mixed
    }

    fn peer_name(&self) -> String {
        self.config.nodes[self.mixed.peer.0].name.clone()
    }

    /// `t=starting` from the peer: it (re)started and asks what we hold.
    fn on_starting(&mut self) {
        let m = self.mx();
        match m.rstate {
            RState::Received | RState::Stable | RState::Shutdown => {}
            RState::Starting => m.rstate = RState::BothStarting,
            RState::Init | RState::BothStarting => return,
        }
        m.other_stable = false;
        let stable = m.rstate == RState::Stable;
        self.send_held(stable, None);
    }

    fn on_resource(&mut self, now: Instant, msg: &Message) {
        let Some(n) = msg.get("rsc_hold").and_then(set_bits) else {
            self.say(
                format!(
                    "{} sent a resource message without a valid rsc_hold: ignored",
                    self.peer_name()
                ),
                true,
            );
            return;
        };
        let full = msg.get("rtype") == Some("full");
        let stable = msg.get("isstable");
        let m = self.mx();
        match m.rstate {
            RState::Starting | RState::BothStarting => m.rstate = RState::Received,
            RState::Received | RState::Stable | RState::Shutdown => {}
            RState::Init => return,
        }
        m.other_holds = if full || n == NONE {
            n
        } else {
            n | m.other_holds
        };
        let mut became_stable = false;
        match stable {
            Some("1") if !m.other_stable => {
                m.other_stable = true;
                became_stable = true;
            }
            Some("1") | None => {}
            Some(_) => m.other_stable = false,
        }
        self.note_peer_holds();
        if became_stable {
            self.say(
                format!("{}: remote resource transition completed", self.peer_name()),
                false,
            );
            let st = self.mx().rstate == RState::Stable;
            self.send_held(st, None);
            self.perform_failback(now);
        }
        let m = self.mx();
        if !matches!(m.rstate, RState::Stable | RState::Shutdown) && m.other_stable {
            self.request_ours(false);
            self.mx().rstate = RState::Stable;
            self.perform_failback(now);
        }
        let m = self.mx();
        if m.rstate == RState::Received && m.request_at.is_none() {
            m.request_at = Some(now + REQUEST_DELAY);
        }
        self.audit();
    }

    /// Reflect what the peer holds in its claims (status, and the start guard).
    fn note_peer_holds(&mut self) {
        if self.speaker.is_none() {
            return;
        }
        let (peer, theirs) = (self.mixed.peer.0, mirror(self.mixed.other_holds));
        for g in 0..self.groups.len() {
            let holds = theirs & self.class(g) != 0;
            self.peers[peer].claims[g] = if holds {
                (ClaimState::Running, 1)
            } else {
                (ClaimState::None, 0)
            };
        }
    }

    /// `req_our_resources`: take the local groups unless someone holds them.
    fn request_ours(&mut self, anyway: bool) {
        let m = self.mx();
        if (m.other_holds & FOREIGN != 0 || m.i_hold & LOCAL != 0)
            && !anyway
            && m.standby == Standby::Not
        {
            // Someone holds our local groups already: nothing to take.
            self.send_held(true, Some("req_our_resources()"));
            return;
        }
        m.i_hold |= LOCAL;
        self.acquire(LOCAL, After::Held);
    }

    /// Start the stopped groups of `bits` (our sets), then say `then`.
    fn acquire(&mut self, bits: u8, then: After) {
        let mixed = self.speaker.is_some();
        let peer_alive = mixed && self.peers[self.mixed.peer.0].alive();
        let theirs = if mixed {
            mirror(self.mixed.other_holds)
        } else {
            NONE
        };
        for g in 0..self.groups.len() {
            let class = self.class(g);
            if class & bits == 0 || self.groups[g].state != LocalGroupState::Stopped {
                continue;
            }
            if peer_alive && theirs & class != 0 {
                let name = self.config.groups[g].name.clone();
                self.say(
                    format!(
                        "not starting group {name}: {} says it holds it (Heartbeat's {} resources)",
                        self.peer_name(),
                        set_name(mirror(class))
                    ),
                    true,
                );
                continue;
            }
            self.ops.because(
                g,
                format!(
                    "Heartbeat's resource rules give it to this node ({} resources)",
                    set_name(class)
                ),
            );
            self.set_state(g, LocalGroupState::Starting);
            self.actions.push_back(Action::StartGroup(GroupId(g)));
        }
        self.mx().steps.push(Step {
            acquire: true,
            bits,
            then,
        });
    }

    /// Stop the groups of `bits` (last first), then say `then`.
    fn release(&mut self, bits: u8, then: After) {
        self.mx().steps.push(Step {
            acquire: false,
            bits,
            then,
        });
        self.drive_steps();
    }

    /// Stop what a release step still finds running; finish settled steps.
    fn drive_steps(&mut self) {
        let steps = self.mixed.steps.clone();
        let mut done = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let mut busy = false;
            for g in (0..self.groups.len()).rev() {
                if self.class(g) & s.bits == 0 {
                    continue;
                }
                match self.groups[g].state {
                    LocalGroupState::Starting | LocalGroupState::Stopping => busy = true,
                    LocalGroupState::Running if !s.acquire => {
                        self.ops.because(g, "released by Heartbeat's standby");
                        self.stop(g, false);
                        busy = true;
                    }
                    // Its stop failed: resources may still be up here, so the peer is
                    // not told to take it (until `hbd unblock`).
                    LocalGroupState::Blocked if !s.acquire => busy = true,
                    _ => {}
                }
            }
            if !busy {
                done.push(i);
            }
        }
        for &i in done.iter().rev() {
            let s = self.mx().steps.remove(i);
            match s.then {
                After::Held => self.send_held(true, Some("req_our_resources()")),
                After::StandbyDone => self.send_standby("done"),
            }
        }
    }

    /// `PerformAutoFailback`: give foreign groups back once their owner is stable.
    fn perform_failback(&mut self, now: Instant) {
        let auto = self.config.failover.auto_failback;
        let shutting = self.shutting_down;
        let m = self.mx();
        if shutting || m.i_hold & FOREIGN == 0 || !m.needs_failback || !auto {
            m.needs_failback = false;
            return;
        }
        if m.standby != Standby::Not || !m.other_stable || m.rstate != RState::Stable {
            m.failback_at = Some(now + FAILBACK_RETRY);
            return;
        }
        m.failback_at = None;
        m.needs_failback = false;
        m.standby_set = FOREIGN;
        self.say(
            format!(
                "auto_failback: giving the foreign groups back to {}",
                self.peer_name()
            ),
            false,
        );
        self.send_standby("me");
    }

    /// `ask_for_resources`: the standby exchange.
    fn on_ask_resources(&mut self, now: Instant, from_me: bool, msg: &Message) {
        let Some(info) = msg.get("info").map(str::to_string) else {
            return;
        };
        let set = msg.get("rsc_hold").and_then(set_bits).unwrap_or(ALL);
        let from = if from_me {
            self.config.nodes[self.local.0].name.clone()
        } else {
            self.peer_name()
        };
        let m = self.mx();
        if m.rstate == RState::Shutdown {
            return;
        }
        if m.standby_until.is_some_and(|t| now < t) && info == "me" && m.standby != Standby::Not {
            self.say(
                format!("standby in progress: new request from {from} ignored"),
                true,
            );
            return;
        }
        let mut ignored = false;
        match m.standby {
            Standby::Not => {
                if !m.other_stable {
                    self.say(format!("standby message [{info}] from {from} ignored: the other side is in flux"), true);
                    return;
                }
                if m.rstate != RState::Stable {
                    self.say(
                        format!(
                            "standby message [{info}] from {from} ignored: local resources in flux"
                        ),
                        true,
                    );
                    return;
                }
                m.standby_set = set;
                if info == "me" {
                    m.other_stable = false;
                    if from_me {
                        m.standby_until = Some(now + STANDBY_REPLY);
                        m.standby = Standby::Me;
                    } else {
                        m.standby = Standby::Other;
                        m.standby_until = Some(now + STANDBY_LIMIT);
                        self.send_standby("other");
                    }
                    self.say(
                        format!("{from} wants to go standby [{}]", set_name(set)),
                        false,
                    );
                } else {
                    ignored = true;
                }
            }
            Standby::Me => {
                if !from_me {
                    m.standby_set = set;
                    m.standby_until = Some(now + STANDBY_LIMIT);
                    if info == "other" {
                        self.say(
                            format!("standby: {from} can take our {} groups", set_name(set)),
                            false,
                        );
                        self.go_standby_me(set);
                    } else {
                        ignored = true;
                    }
                } else if info == "done" {
                    m.standby = Standby::Done;
                    m.i_hold &= !m.standby_set;
                    m.standby_until = Some(now + STANDBY_LIMIT);
                    self.say(
                        format!("local standby completed [{}]", set_name(set)),
                        false,
                    );
                } else if info != "me" {
                    ignored = true;
                }
            }
            Standby::Other => {
                m.standby_set = set;
                if info == "done" {
                    m.standby_until = Some(now + STANDBY_LIMIT);
                    if !from_me {
                        m.standby = Standby::Done;
                        self.say(
                            format!("standby: acquiring [{}] groups from {from}", set_name(set)),
                            false,
                        );
                        // Their `set` from their side: ours is its mirror.
                        self.acquire(mirror(set), After::StandbyDone);
                    } else {
                        ignored = true;
                    }
                } else if !from_me || info != "other" {
                    ignored = true;
                }
            }
            Standby::Done => {
                m.standby_set = set;
                if info == "done" {
                    m.standby_until = None;
                    m.standby = Standby::Not;
                    if from_me {
                        m.i_hold |= mirror(set);
                        self.say(
                            format!("standby acquisition done [{}]", set_name(set)),
                            false,
                        );
                    } else {
                        m.other_stable = true;
                        self.say(
                            format!(
                                "{from} completed the standby takeover of {} groups",
                                set_name(set)
                            ),
                            false,
                        );
                    }
                    self.send_held(true, None);
                } else {
                    ignored = true;
                }
            }
        }
        if ignored {
            self.say(
                format!("ignored standby message [{info}] from {from}"),
                true,
            );
        }
    }

    /// Give up our `set` groups for a standby (`go_standby(ME, …)`).
    fn go_standby_me(&mut self, set: u8) {
        let m = self.mx();
        m.other_stable = false;
        m.i_hold &= !set;
        self.send_held(false, Some("standby"));
        self.release(set, After::StandbyDone);
    }

    /// The peer stopped cleanly: take everything now.
    fn on_shutdone(&mut self, now: Instant) {
        let peer = self.mx().peer;
        let shutting = self.shutting_down;
        let m = self.mx();
        m.other_stable = true;
        m.other_holds = NONE;
        m.standby = Standby::Not;
        m.standby_until = None;
        let p = &mut self.peers[peer.0];
        if p.alive() {
            p.state = PeerState::Left;
            p.leaving = true;
            p.clear_claims();
            for l in &mut p.links {
                l.up = false;
            }
            self.event(Event::PeerLeft { peer });
        }
        self.mx().peer_alive = false;
        let name = self.peer_name();
        let generation = self.speaker.as_ref().and_then(|s| s.peer_generation(&name));
        self.mx().departed = generation;
        self.say(format!("received shutdown notice from {name}"), false);
        if !shutting && self.mx().i_hold != ALL {
            self.take_all(now);
        }
    }

    /// Hold everything (a dead or departed peer).
    fn take_all(&mut self, _now: Instant) {
        let m = self.mx();
        m.needs_failback = true;
        m.i_hold = ALL;
        m.other_holds = NONE;
        m.other_stable = true;
        if m.rstate != RState::Shutdown {
            m.rstate = RState::Stable;
        }
        self.note_peer_holds();
        self.acquire(ALL, After::Held);
    }

    /// `hb_rsc_recover_dead_resources`.
    fn on_peer_dead(&mut self, now: Instant) {
        let deadtime = self.config.timing.deadtime.get();
        let shutting = self.shutting_down;
        let m = self.mx();
        if m.standby != Standby::Not {
            m.standby = Standby::Not;
            m.standby_until = None;
        }
        if shutting {
            return;
        }
        // Packets in the peer's name keep coming but fail authentication: most likely
        // it is alive with another authkeys (a conversion gone wrong). In doubt, start
        // nothing until they have stopped for deadtime.
        if m.unauthenticated
            .is_some_and(|t| now.saturating_duration_since(t) < deadtime)
        {
            if !m.held_off {
                m.held_off = true;
                let name = self.peer_name();
                self.say(
                    format!("{name} is silent, but packets in its name fail authentication (a different authkeys there?): not taking over its groups while they come"),
                    true,
                );
                for g in 0..self.groups.len() {
                    if !self.groups[g].holds() {
                        self.ops.because(g, format!("not taken over: packets in {name}'s name fail authentication; check migration.authkeys on both nodes"));
                    }
                }
            }
            return;
        }
        self.mx().held_off = false;
        self.say(
            format!("{} is dead: taking over its groups", self.peer_name()),
            false,
        );
        self.take_all(now);
    }

    /// `AuditResources`: both nodes holding one set is logged (and never caused here).
    fn audit(&mut self) {
        let m = self.mx();
        let both = m.i_hold & mirror(m.other_holds);
        if both != 0 {
            let msg = format!(
                "both nodes hold the {} groups (this node and {})",
                set_name(both),
                self.peer_name()
            );
            self.say(msg, true);
        }
    }

    /// Timeouts of the resource protocol, then the rules after any input.
    pub(super) fn mixed_evaluate(&mut self, now: Instant) {
        if self.speaker.is_none() {
            return;
        }
        self.flush_own(now);
        if !self.ready || self.exited {
            return;
        }
        let peer = self.mx().peer;
        if self.mx().rstate == RState::Init && !self.shutting_down {
            self.mx().rstate = RState::Starting;
            self.broadcast(Self::message(&[("t", "starting")]));
        }
        let alive = self.peers[peer.0].alive();
        let was = std::mem::replace(&mut self.mx().peer_alive, alive);
        let never_heard = self.peers[peer.0].state == PeerState::Dead && !was;
        if (was && !alive && self.peers[peer.0].state == PeerState::Dead)
            || (never_heard && self.mx().i_hold != ALL && self.mx().rstate == RState::Starting)
        {
            self.on_peer_dead(now);
        }
        let deadtime = self.config.timing.deadtime.get();
        let m = self.mx();
        if alive {
            m.held_off = false;
        }
        if m.held_off
            && !alive
            && m.unauthenticated
                .is_none_or(|t| now.saturating_duration_since(t) >= deadtime)
        {
            self.on_peer_dead(now);
        }
        let m = self.mx();
        if m.request_at.is_some_and(|t| now >= t) {
            m.request_at = None;
            if m.rstate == RState::Received {
                self.say(
                    "the other side did not become stable: taking the local groups nobody holds"
                        .into(),
                    true,
                );
                self.request_ours(false);
                self.mx().rstate = RState::Stable;
            }
        }
        let m = self.mx();
        if m.standby_until.is_some_and(|t| now >= t) {
            m.standby_until = None;
            if m.standby != Standby::Not {
                m.standby = Standby::Not;
                m.other_stable = true;
                self.say("no reply to the standby request: cancelled".into(), true);
                self.send_held(true, None);
            }
        }
        if self.mx().failback_at.is_some_and(|t| now >= t) {
            self.mx().failback_at = None;
            self.perform_failback(now);
        }
        self.failed_groups();
        self.drive_steps();
        self.flush_own(now);
        if self.shutting_down {
            let m = self.mx();
            if !m.gave_up && m.steps.is_empty() && m.standby == Standby::Not {
                m.gave_up = true;
                m.rstate = RState::Shutdown;
                m.i_hold = NONE;
                self.send_held(false, Some("shutdown"));
            }
            if self.mx().gave_up {
                self.continue_shutdown();
            }
        }
    }

    /// A group that failed here moves with its set to a live, stable peer (a standby
    /// of that set); with nobody to take it, it is started again after its hold-down.
    fn failed_groups(&mut self) {
        let peer = self.mx().peer;
        let peer_ok = self.peers[peer.0].alive();
        let shutting = self.shutting_down;
        let m = self.mx();
        let settled = m.steps.is_empty() && m.standby == Standby::Not && m.rstate == RState::Stable;
        let (held, other_stable, theirs) = (m.i_hold, m.other_stable, mirror(m.other_holds));
        if !settled || shutting {
            return;
        }
        for g in 0..self.groups.len() {
            let class = self.class(g);
            if held & class == 0 {
                continue;
            }
            let state = self.groups[g].state.clone();
            match state {
                LocalGroupState::Failed if peer_ok && other_stable => {
                    let name = self.config.groups[g].name.clone();
                    self.say(
                        format!(
                            "group {name} failed here: asking {} to take the {} groups",
                            self.peer_name(),
                            set_name(class)
                        ),
                        true,
                    );
                    self.mx().standby_set = class;
                    self.send_standby("me");
                    return;
                }
                LocalGroupState::Stopped if !peer_ok || theirs & class == 0 => {
                    self.acquire(class, After::Held);
                    return;
                }
                _ => {}
            }
        }
    }

    pub(super) fn mixed_timers(&self, t: &mut Vec<(Timer, Instant)>) {
        if self.speaker.is_some() {
            let m = &self.mixed;
            let deadtime = self.config.timing.deadtime.get();
            let held = m
                .unauthenticated
                .filter(|_| m.held_off)
                .map(|t| t + deadtime);
            if let Some(at) = [m.request_at, m.standby_until, m.failback_at, held]
                .into_iter()
                .flatten()
                .min()
            {
                t.push((Timer::Legacy, at));
            }
        }
    }

    /// Operator commands that differ in a mixed cluster.
    pub(super) fn mixed_command(
        &mut self,
        now: Instant,
        cmd: Command,
    ) -> Result<CommandOutcome, CommandError> {
        let peer = self.mx().peer;
        match cmd {
            Command::Standby { group: Some(_), .. } => Err(CommandError::Mixed(
                "with protocol = \"heartbeat\" a standby moves every group at once, as hb_standby does: run `hbd standby` without a group".into(),
            )),
            Command::Standby { group: None, .. } => {
                if !self.ready {
                    return Err(CommandError::NotReady);
                }
                if self.shutting_down {
                    return Err(CommandError::ShuttingDown);
                }
                if !self.peers[peer.0].alive() {
                    return Err(CommandError::Mixed(format!(
                        "{} is not alive: nobody could take the groups, they stay here",
                        self.peer_name()
                    )));
                }
                let m = self.mx();
                if m.i_hold == NONE {
                    return Ok(CommandOutcome {
                        message: "this node holds no group".into(),
                        wait: Vec::new(),
                    });
                }
                if m.standby != Standby::Not || !m.other_stable || m.rstate != RState::Stable {
                    return Err(CommandError::Mixed(
                        "a resource transition is under way (Heartbeat's resources are in flux): try again in a few seconds".into(),
                    ));
                }
                m.standby_set = ALL;
                self.send_standby("me");
                self.flush_own(now);
                let wait = (0..self.groups.len())
                    .filter(|&g| self.groups[g].holds())
                    .map(|g| Wait {
                        group: self.config.groups[g].name.clone(),
                        until: Until::Away,
                    })
                    .collect();
                Ok(CommandOutcome {
                    message: format!("asked {} to take every group (Heartbeat's standby)", self.peer_name()),
                    wait,
                })
            }
            Command::Takeover { .. } => Err(CommandError::Mixed(format!(
                "Heartbeat cannot be asked to hand groups over: run `hb_standby` on {} (or `hbd standby` there once it runs hbd)",
                self.peer_name()
            ))),
            Command::Clear { .. } => Ok(CommandOutcome {
                message: "nothing to clear: with protocol = \"heartbeat\" standby is not kept".into(),
                wait: Vec::new(),
            }),
            other => self.operator_command(now, other),
        }
    }
}
