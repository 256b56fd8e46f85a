//! Model checking the real core with stateright: every state holds real
//! `hbd::cluster::Cluster`s (cloned copy-on-write through `Arc`, fingerprinted from
//! their full `Debug` rendering, so no field of the core is left out of the state),
//! driven through the public API exactly as the daemon drives them.
//!
//! The environment is the adversary, within a fault budget:
//! - a network of in-flight packets: the oldest is delivered for free; delivering
//!   another (reordering), losing one, duplicating one, and replaying any packet ever
//!   sent (deduplicated history) to any node, its own sender included, each cost a
//!   fault;
//! - node isolation (partition) costs a fault, healing is free;
//! - crash (daemon and resources gone) and daemon-only kill (resources stay up, the
//!   next daemon finds them: adoption or leftovers) cost a fault, restart is free and
//!   always comes with a higher incarnation;
//! - SIGTERM (release, or detach for a restart) costs a fault;
//! - group starts, stops and in-place restarts complete `OP_DELAY` after they were
//!   asked for; a failure (start failed, stop failed, restart failed) costs a fault,
//!   and so does a resource of a running group found down by the monitor.
//!
//! The clock is a fake one advanced by `Tick`: to the earliest deadline of any live
//! core or pending operation, firing every core that is due. Packets travel in zero
//! time and a `Tick` waits for the network to drain and due operations to complete,
//! so a fault-free run is a single path and all branching comes from faults.
//!
//! Properties:
//! - *always* no panic on any input;
//! - *always* no two live nodes that hear each other (not partitioned) both hold a
//!   group in Running or Starting for longer than `window` of model time (both
//!   Blocked, the documented exception, is not Running/Starting so it is allowed);
//! - *always* no two connected live nodes both have a group's resources up (truth:
//!   from start asked to stop done) for longer than `window`, unless both are
//!   Blocked (their stops failed: "How hbd decides" in README.md);
//! - *sometimes* a takeover (a group runs on a node other than its first holder);
//! - *sometimes* after a split (two nodes running a group while partitioned) and a
//!   heal, exactly one node holds it and the others have stopped.
//!
//! A counterexample prints as a list of steps to paste into a `#[test]` calling
//! [`replay`]. Bounds: `HBD_MODEL_DEPTH`, `HBD_MODEL_FAULTS`, `HBD_MODEL_THREADS` and
//! `HBD_MODEL_TIMEOUT` (seconds) override the CI defaults, `HBD_MODEL_WINDOW_MS` the
//! overlap window (tests/model_check.sh runs
//! deeper searches).

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use hbd::cluster::{
    Action, Cluster, Command, Found, GroupEvent, GroupId, LinkId, LocalGroupState, NodeId,
};
use hbd::config::{Algorithm, Builder, Config, Group, KeySet, Link};
use stateright::{Checker, Model, Property};

const KEEPALIVE_MS: u64 = 1000;
const DEADTIME_MS: u64 = 4000;
const OP_DELAY_MS: u64 = 500;

/// Every instant of every model state is `T0 + now`, so equal states render equally.
static T0: LazyLock<Instant> = LazyLock::new(Instant::now);

fn at(ms: u64) -> Instant {
    *T0 + Duration::from_millis(ms)
}

fn model_config(nodes: usize, groups: usize) -> Config {
    let ms = Duration::from_millis;
    let mut b = Builder::new("model")
        .timing(ms(KEEPALIVE_MS), ms(2000), ms(DEADTIME_MS), ms(8000))
        .link(Link::udp_broadcast("l0", "eth0"));
    for n in 0..nodes {
        b = b.node(format!("n{n}"));
    }
    for g in 0..groups {
        b = b.group(
            Group::new(format!("g{g}"), format!("n{}", g % nodes)).unit(format!("g{g}.service")),
        );
    }
    match b.build() {
        Ok(c) => c,
        Err(e) => panic!("model config: {e}"),
    }
}

fn keys() -> KeySet {
    let mut k = std::collections::BTreeMap::new();
    k.insert(1, b"model checking secret, 32 bytes".to_vec());
    KeySet::new(Algorithm::HmacSha256, 1, k)
}

/// One input the environment can give; a counterexample is a list of these.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Advance the clock to the next deadline and fire every due core.
    Tick,
    /// Deliver in-flight packet `k` (0 is free; any other is a reordering: a fault).
    Deliver(usize),
    /// Lose in-flight packet `k` (fault).
    Lose(usize),
    /// Deliver in-flight packet `k` and keep a copy in flight (fault).
    Duplicate(usize),
    /// Re-deliver packet `packet` of the history (every packet ever sent) to `to` (fault).
    Replay { packet: usize, to: usize },
    /// A due group operation completes; `ok: false` is a failure (fault).
    Complete { node: usize, op: usize, ok: bool },
    /// The monitor finds a resource of a running group down (fault): the core
    /// restarts it in place or moves the group.
    ResourceDown { node: usize, group: usize },
    /// kill -9 of the whole node: daemon and resources gone (fault).
    Crash(usize),
    /// kill -9 of the daemon only: resources stay up (fault).
    KillDaemon(usize),
    /// SIGTERM of the daemon: `restart` detaches (groups stay up for the next daemon
    /// to adopt), otherwise it releases every group and exits (fault).
    Stop { node: usize, restart: bool },
    /// Start the node's daemon again, with a higher incarnation.
    Restart(usize),
    /// Cut the node off from every other (fault).
    Isolate(usize),
    /// Undo every cut.
    Heal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum OpKind {
    Start,
    Stop,
    Restart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Op {
    group: usize,
    kind: OpKind,
    due: u64,
}

#[derive(Clone, Debug)]
struct Node {
    core: Option<Arc<Cluster>>,
    /// Hash of the core's whole `Debug` rendering, refreshed whenever it changes.
    core_hash: u64,
    /// Truth: the group's resources may be up here.
    up: Vec<bool>,
    /// Truth: a start or stop was under way when the daemon was killed.
    partly: Vec<bool>,
    ops: Vec<Op>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Packet {
    to: usize,
    bytes: Arc<[u8]>,
}

#[derive(Clone)]
pub struct State {
    now: u64,
    nodes: Vec<Node>,
    net: Vec<Packet>,
    history: BTreeSet<Arc<[u8]>>,
    cut: Vec<Vec<bool>>,
    faults: u32,
    next_incarnation: u64,
    /// Per group and pair: since when both have held it while hearing each other.
    both_since: Vec<Option<u64>>,
    /// Per group and pair: since when both have had its resources up while hearing
    /// each other, unless both are blocked.
    up_since: Vec<Option<u64>>,
    first_holder: Vec<Option<usize>>,
    took_over: bool,
    split: bool,
    converged_after_split: bool,
    panic: Option<String>,
}

/// Feeds a `Debug` rendering straight into a hasher.
struct HashWriter<'a, H: Hasher>(&'a mut H);

impl<H: Hasher> fmt::Write for HashWriter<'_, H> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.now.hash(h);
        for n in &self.nodes {
            n.core.is_some().hash(h);
            n.core_hash.hash(h);
            n.up.hash(h);
            n.partly.hash(h);
            n.ops.hash(h);
        }
        self.net.hash(h);
        self.history.hash(h);
        self.cut.hash(h);
        self.faults.hash(h);
        self.next_incarnation.hash(h);
        self.both_since.hash(h);
        self.up_since.hash(h);
        self.first_holder.hash(h);
        (self.took_over, self.split, self.converged_after_split).hash(h);
        self.panic.hash(h);
    }
}

fn fingerprint(s: &State) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        fingerprint(self) == fingerprint(other)
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}ms faults={}", self.now, self.faults)?;
        for (i, n) in self.nodes.iter().enumerate() {
            match &n.core {
                None => write!(f, " | n{i}: down")?,
                Some(c) => {
                    let st = c.status();
                    let groups: Vec<_> = st.groups.iter().map(|g| &g.local).collect();
                    let peers: Vec<_> = st.peers.iter().map(|p| p.state).collect();
                    write!(f, " | n{i}: groups {groups:?} peers {peers:?}")?
                }
            }
            write!(f, " up={:?} ops={:?}", n.up, n.ops)?;
        }
        write!(
            f,
            " | in flight {} history {}",
            self.net.len(),
            self.history.len()
        )?;
        if let Some(p) = &self.panic {
            write!(f, " | PANIC {p}")?;
        }
        Ok(())
    }
}

fn pair_index(n: usize, a: usize, b: usize) -> usize {
    a * n + b
}

#[derive(Clone)]
pub struct HbdModel {
    config: Config,
    nodes: usize,
    groups: usize,
    max_faults: u32,
    /// Longest model time two connected nodes may both hold a group.
    window_ms: u64,
    /// Which faults the adversary has.
    replay: bool,
    kill_daemon: bool,
}

impl HbdModel {
    pub fn new(nodes: usize, groups: usize, max_faults: u32) -> HbdModel {
        HbdModel {
            config: model_config(nodes, groups),
            nodes,
            groups,
            max_faults,
            // Two holders that hear each other must be down to one within a keepalive
            // to hear the other's claim, one more to confirm a restarted peer's new
            // incarnation, one per fault (a lost heartbeat), a start that must finish
            // before it can be undone and the stop. Well under a deadtime.
            window_ms: std::env::var("HBD_MODEL_WINDOW_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or((2 + u64::from(max_faults)) * KEEPALIVE_MS + 2 * OP_DELAY_MS),
            replay: true,
            kill_daemon: true,
        }
    }

    fn live(&self, s: &State, i: usize) -> bool {
        s.nodes[i].core.is_some()
    }

    fn connected(&self, s: &State, a: usize, b: usize) -> bool {
        self.live(s, a) && self.live(s, b) && !s.cut[a][b]
    }

    fn boot(&self, s: &mut State, i: usize) {
        let incarnation = s.next_incarnation;
        s.next_incarnation += 1;
        let now = at(s.now);
        let node = &s.nodes[i];
        let found: Vec<Found> = (0..self.groups)
            .map(|g| match (node.up[g], node.partly[g]) {
                (true, false) => Found::AllUp,
                (true, true) => Found::PartlyUp,
                (false, _) => Found::Down,
            })
            .collect();
        let config = &self.config;
        let made = catch_unwind(AssertUnwindSafe(|| {
            let mut c = Cluster::new(config, NodeId(i), keys(), incarnation, now);
            for (g, f) in found.into_iter().enumerate() {
                c.found(GroupId(g), f);
            }
            c
        }));
        match made {
            Ok(c) => {
                s.nodes[i].core = Some(Arc::new(c));
                s.nodes[i].partly.iter_mut().for_each(|p| *p = false);
                self.drain(s, i);
            }
            Err(p) => s.panic = Some(panic_text(p)),
        }
    }

    /// Run `f` on node `i`'s core (catching a panic), then carry out its actions.
    fn drive(&self, s: &mut State, i: usize, f: impl FnOnce(&mut Cluster, Instant)) {
        let now = at(s.now);
        let Some(core) = s.nodes[i].core.as_mut() else {
            return;
        };
        let c = Arc::make_mut(core);
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(c, now))) {
            s.panic = Some(panic_text(p));
            return;
        }
        self.drain(s, i);
    }

    fn drain(&self, s: &mut State, i: usize) {
        loop {
            let Some(core) = s.nodes[i].core.as_mut() else {
                return;
            };
            let Some(action) = Arc::make_mut(core).poll_action() else {
                // The whole core, every field: nothing is abstracted away.
                let mut h = DefaultHasher::new();
                let _ = write!(HashWriter(&mut h), "{core:?}");
                s.nodes[i].core_hash = h.finish();
                return;
            };
            let due = s.now + OP_DELAY_MS;
            match action {
                Action::Send(bytes) => {
                    let bytes: Arc<[u8]> = bytes.into();
                    s.history.insert(bytes.clone());
                    for to in 0..self.nodes {
                        if to != i && self.live(s, to) && !s.cut[i][to] {
                            s.net.push(Packet {
                                to,
                                bytes: bytes.clone(),
                            });
                        }
                    }
                }
                Action::StartGroup(g) => {
                    s.nodes[i].up[g.0] = true;
                    s.nodes[i].ops.push(Op {
                        group: g.0,
                        kind: OpKind::Start,
                        due,
                    });
                }
                Action::StopGroup(g) => s.nodes[i].ops.push(Op {
                    group: g.0,
                    kind: OpKind::Stop,
                    due,
                }),
                Action::RestartResources { group, .. } => s.nodes[i].ops.push(Op {
                    group: group.0,
                    kind: OpKind::Restart,
                    due,
                }),
                // The model's configs configure no fencing.
                Action::Event(_)
                | Action::Announce(_)
                | Action::FenceNode { .. }
                | Action::CancelFence { .. } => {}
                Action::Exit => {
                    let node = &mut s.nodes[i];
                    node.core = None;
                    node.core_hash = 0;
                    for op in node.ops.drain(..) {
                        node.partly[op.group] = node.up[op.group];
                    }
                    s.net.retain(|p| p.to != i);
                }
            }
        }
    }

    fn deliver(&self, s: &mut State, to: usize, bytes: &[u8]) {
        // Refusals (replays, earlier incarnations, own packets) are expected here;
        // only a panic or a wrong decision is a finding.
        self.drive(s, to, |c, now| {
            let _ = c.handle_packet(now, LinkId(0), bytes);
        });
    }

    fn next_deadline(&self, s: &State) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut consider = |t: u64| next = Some(next.map_or(t, |n: u64| n.min(t)));
        for n in &s.nodes {
            if let Some(c) = &n.core {
                if let Some(t) = c.poll_timeout() {
                    consider(t.saturating_duration_since(*T0).as_millis() as u64);
                }
            }
            for op in &n.ops {
                consider(op.due);
            }
        }
        next
    }

    /// Bookkeeping after every step: the overlap clocks and the witnesses.
    fn observe(&self, s: &mut State) {
        let n = self.nodes;
        // Each live core's state per group, read once (status() allocates).
        let local: Vec<Option<Vec<LocalGroupState>>> = s
            .nodes
            .iter()
            .map(|node| {
                node.core
                    .as_ref()
                    .map(|c| c.status().groups.into_iter().map(|g| g.local).collect())
            })
            .collect();
        let is = |i: usize, g: usize, f: fn(&LocalGroupState) -> bool| {
            local[i].as_ref().is_some_and(|l| f(&l[g]))
        };
        let holds =
            |l: &LocalGroupState| matches!(l, LocalGroupState::Running | LocalGroupState::Starting);
        let running = |l: &LocalGroupState| *l == LocalGroupState::Running;
        let blocked = |l: &LocalGroupState| *l == LocalGroupState::Blocked;
        let stopped = |l: &LocalGroupState| *l == LocalGroupState::Stopped;
        let all_connected = (0..n).all(|a| (0..n).all(|b| a == b || self.connected(s, a, b)));
        for g in 0..self.groups {
            for a in 0..n {
                for b in (a + 1)..n {
                    let connected = self.connected(s, a, b);
                    let both = connected && is(a, g, holds) && is(b, g, holds);
                    let k = g * n * n + pair_index(n, a, b);
                    s.both_since[k] = if both {
                        Some(s.both_since[k].unwrap_or(s.now))
                    } else {
                        None
                    };
                    let both_up = connected
                        && s.nodes[a].up[g]
                        && s.nodes[b].up[g]
                        && !(is(a, g, blocked) && is(b, g, blocked));
                    s.up_since[k] = if both_up {
                        Some(s.up_since[k].unwrap_or(s.now))
                    } else {
                        None
                    };
                }
            }
            let runners: Vec<usize> = (0..n).filter(|&i| is(i, g, running)).collect();
            for &r in &runners {
                match s.first_holder[g] {
                    None => s.first_holder[g] = Some(r),
                    Some(f) if f != r => s.took_over = true,
                    _ => {}
                }
            }
            if runners.len() >= 2 {
                s.split = true;
            }
            let others_stopped = (0..n).all(|i| runners.contains(&i) || is(i, g, stopped));
            if s.split && all_connected && runners.len() == 1 && others_stopped {
                s.converged_after_split = true;
            }
        }
    }

    /// A current overlap of two connected holders (`truth`: of resources up) beyond
    /// the window: (group, node, node, how long).
    fn overlap_violation(&self, s: &State, truth: bool) -> Option<(usize, usize, usize, u64)> {
        let n = self.nodes;
        let since = if truth { &s.up_since } else { &s.both_since };
        for g in 0..self.groups {
            for a in 0..n {
                for b in (a + 1)..n {
                    if let Some(since) = since[g * n * n + pair_index(n, a, b)] {
                        if s.now - since > self.window_ms {
                            return Some((g, a, b, s.now - since));
                        }
                    }
                }
            }
        }
        None
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

impl Model for HbdModel {
    type State = State;
    type Action = Step;

    fn init_states(&self) -> Vec<State> {
        let n = self.nodes;
        let mut s = State {
            now: 0,
            nodes: (0..n)
                .map(|_| Node {
                    core: None,
                    core_hash: 0,
                    up: vec![false; self.groups],
                    partly: vec![false; self.groups],
                    ops: Vec::new(),
                })
                .collect(),
            net: Vec::new(),
            history: BTreeSet::new(),
            cut: vec![vec![false; n]; n],
            faults: 0,
            next_incarnation: 1_000,
            both_since: vec![None; self.groups * n * n],
            up_since: vec![None; self.groups * n * n],
            first_holder: vec![None; self.groups],
            took_over: false,
            split: false,
            converged_after_split: false,
            panic: None,
        };
        for i in 0..n {
            self.boot(&mut s, i);
        }
        self.observe(&mut s);
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Step>) {
        if s.panic.is_some() {
            return;
        }
        let n = self.nodes;
        let fault = s.faults < self.max_faults;
        let due: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| {
                s.nodes[i]
                    .ops
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.due <= s.now)
                    .map(move |(k, _)| (i, k))
            })
            .collect();
        if s.net.is_empty() && due.is_empty() && self.next_deadline(s).is_some() {
            actions.push(Step::Tick);
        }
        for (k, _) in s.net.iter().enumerate() {
            if k == 0 || fault {
                actions.push(Step::Deliver(k));
            }
        }
        for &(node, op) in &due {
            actions.push(Step::Complete { node, op, ok: true });
            if fault {
                actions.push(Step::Complete {
                    node,
                    op,
                    ok: false,
                });
            }
        }
        for i in 0..n {
            if !self.live(s, i) {
                actions.push(Step::Restart(i));
            }
        }
        if s.cut.iter().flatten().any(|&c| c) {
            actions.push(Step::Heal);
        }
        if !fault {
            return;
        }
        for k in 0..s.net.len() {
            actions.push(Step::Lose(k));
            actions.push(Step::Duplicate(k));
        }
        if self.replay {
            for packet in 0..s.history.len() {
                for to in 0..n {
                    if self.live(s, to) {
                        actions.push(Step::Replay { packet, to });
                    }
                }
            }
        }
        for i in 0..n {
            if let Some(c) = &s.nodes[i].core {
                for (group, g) in c.status().groups.iter().enumerate() {
                    if g.local == LocalGroupState::Running && s.nodes[i].ops.is_empty() {
                        actions.push(Step::ResourceDown { node: i, group });
                    }
                }
            }
            if self.live(s, i) {
                actions.push(Step::Crash(i));
                if self.kill_daemon {
                    actions.push(Step::KillDaemon(i));
                    for restart in [false, true] {
                        actions.push(Step::Stop { node: i, restart });
                    }
                }
                if !s.cut[i].iter().any(|&c| c) {
                    actions.push(Step::Isolate(i));
                }
            }
        }
    }

    fn next_state(&self, last: &State, step: Step) -> Option<State> {
        let mut s = last.clone();
        let n = self.nodes;
        match step {
            Step::Tick => {
                let next = self.next_deadline(&s)?;
                s.now = s.now.max(next);
                let now = at(s.now);
                for i in 0..n {
                    let is_due = s.nodes[i]
                        .core
                        .as_ref()
                        .and_then(|c| c.poll_timeout())
                        .is_some_and(|t| t <= now);
                    if is_due {
                        self.drive(&mut s, i, |c, now| c.handle_timeout(now));
                    }
                }
            }
            Step::Deliver(k) => {
                if k > 0 {
                    s.faults += 1;
                }
                let p = s.net.remove(k);
                self.deliver(&mut s, p.to, &p.bytes);
            }
            Step::Lose(k) => {
                s.faults += 1;
                s.net.remove(k);
            }
            Step::Duplicate(k) => {
                s.faults += 1;
                let p = s.net[k].clone();
                self.deliver(&mut s, p.to, &p.bytes);
            }
            Step::Replay { packet, to } => {
                s.faults += 1;
                let bytes = s.history.iter().nth(packet)?.clone();
                self.deliver(&mut s, to, &bytes);
            }
            Step::Complete { node, op, ok } => {
                if !ok {
                    s.faults += 1;
                }
                let o = s.nodes[node].ops.remove(op);
                let g = o.group;
                let event = match (o.kind, ok) {
                    (OpKind::Start, true) => GroupEvent::Started,
                    (OpKind::Start, false) => {
                        s.nodes[node].up[g] = false;
                        GroupEvent::StartFailed {
                            reason: "model".into(),
                        }
                    }
                    (OpKind::Stop, true) => {
                        s.nodes[node].up[g] = false;
                        GroupEvent::Stopped
                    }
                    (OpKind::Stop, false) => GroupEvent::StopFailed {
                        reason: "model".into(),
                    },
                    (OpKind::Restart, true) => GroupEvent::Restarted,
                    (OpKind::Restart, false) => GroupEvent::RestartFailed {
                        reason: "model".into(),
                    },
                };
                self.drive(&mut s, node, |c, now| {
                    c.handle_group_event(now, GroupId(g), event)
                });
            }
            Step::ResourceDown { node, group } => {
                s.faults += 1;
                self.drive(&mut s, node, |c, now| {
                    c.handle_group_event(
                        now,
                        GroupId(group),
                        GroupEvent::ResourceDown {
                            resource: 0,
                            reason: "model".into(),
                        },
                    )
                });
            }
            Step::Crash(i) => {
                s.faults += 1;
                let node = &mut s.nodes[i];
                node.core = None;
                node.core_hash = 0;
                node.up.iter_mut().for_each(|u| *u = false);
                node.partly.iter_mut().for_each(|p| *p = false);
                node.ops.clear();
                s.net.retain(|p| p.to != i);
            }
            Step::KillDaemon(i) => {
                s.faults += 1;
                let node = &mut s.nodes[i];
                node.core = None;
                node.core_hash = 0;
                for op in node.ops.drain(..) {
                    node.partly[op.group] = node.up[op.group];
                }
                s.net.retain(|p| p.to != i);
            }
            Step::Stop { node, restart } => {
                s.faults += 1;
                self.drive(&mut s, node, |c, now| {
                    // A stop is never refused; the outcome says nothing new.
                    let _ = c.handle_command(now, Command::Stop { restart });
                });
            }
            Step::Restart(i) => self.boot(&mut s, i),
            Step::Isolate(i) => {
                s.faults += 1;
                for j in 0..n {
                    if j != i {
                        s.cut[i][j] = true;
                        s.cut[j][i] = true;
                    }
                }
            }
            Step::Heal => s.cut.iter_mut().flatten().for_each(|c| *c = false),
        }
        self.observe(&mut s);
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("no panic", |_, s: &State| s.panic.is_none()),
            Property::always(
                "no two connected holders beyond the window",
                |m: &HbdModel, s: &State| m.overlap_violation(s, false).is_none(),
            ),
            Property::always(
                "no resources up on two connected nodes beyond the window",
                |m: &HbdModel, s: &State| m.overlap_violation(s, true).is_none(),
            ),
            Property::sometimes("takeover", |_, s: &State| s.took_over),
            Property::sometimes("split healed to one holder", |_, s: &State| {
                s.converged_after_split
            }),
        ]
    }
}

/// Replay a list of steps (a printed counterexample) and panic at the first one that
/// breaks a property, describing the state.
pub fn replay(model: &HbdModel, steps: &[Step]) {
    let mut s = model.init_states().remove(0);
    for (i, step) in steps.iter().enumerate() {
        let mut enabled = Vec::new();
        model.actions(&s, &mut enabled);
        assert!(
            enabled.contains(step),
            "step {i} {step:?} not enabled in {s:?}"
        );
        s = model.next_state(&s, step.clone()).expect("step applies");
        eprintln!("{i:>3} {step:?}\n    {s:?}");
        assert!(s.panic.is_none(), "panic after step {i} {step:?}: {s:?}");
        if let Some((g, a, b, ms)) = model.overlap_violation(&s, false) {
            panic!("after step {i} {step:?}: n{a} and n{b} both hold g{g} for {ms} ms: {s:?}");
        }
        if let Some((g, a, b, ms)) = model.overlap_violation(&s, true) {
            panic!(
                "after step {i} {step:?}: g{g}'s resources up on n{a} and n{b} for {ms} ms: {s:?}"
            );
        }
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run a depth-bounded BFS, print what it explored, print any counterexample as a
/// pasteable test, and return the names of the properties with discoveries.
fn check(name: &str, model: HbdModel, depth: usize) -> Vec<&'static str> {
    let depth = env("HBD_MODEL_DEPTH", depth);
    let threads = env("HBD_MODEL_THREADS", 2);
    let (nodes, groups, faults) = (model.nodes, model.groups, model.max_faults);
    let start = Instant::now();
    let mut builder = model.checker().threads(threads).target_max_depth(depth);
    // A long run may stop at a time limit instead (then "max depth" says how far it got).
    if let Some(secs) = std::env::var("HBD_MODEL_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.timeout(Duration::from_secs(secs));
    }
    let checker = builder.spawn_bfs().join();
    let elapsed = start.elapsed();
    let line = format!(
        "model {name}: {nodes} nodes, {groups} groups, {faults} faults, depth bound {depth}: \
         {} states ({} unique), max depth {}, {:.1} s",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        elapsed.as_secs_f64()
    );
    // Straight to stderr, past the test harness's capture: CI logs show the figures.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
    let mut found = Vec::new();
    let model = checker.model();
    for (prop, path) in checker.discoveries() {
        found.push(prop);
        let steps = path.into_actions();
        let always = model
            .properties()
            .iter()
            .any(|p| p.name == prop && p.expectation == stateright::Expectation::Always);
        if always {
            eprintln!(
                "COUNTEREXAMPLE to \"{prop}\" ({} steps); paste into tests/model_check.rs:\n\
                 #[test]\nfn counterexample() {{\n    use Step::*;\n    replay(&HbdModel::new({nodes}, {groups}, {faults}), &{steps:?});\n}}",
                steps.len()
            );
        } else {
            eprintln!("example of \"{prop}\" in {} steps: {steps:?}", steps.len());
        }
    }
    found
}

fn assert_clean(name: &str, found: &[&str], witnesses: &[&str]) {
    for bad in [
        "no panic",
        "no two connected holders beyond the window",
        "no resources up on two connected nodes beyond the window",
    ] {
        assert!(
            !found.contains(&bad),
            "{name}: \"{bad}\" broken (counterexample above)"
        );
    }
    for w in witnesses {
        assert!(
            found.contains(w),
            "{name}: no example of \"{w}\" within the depth bound: the search is too shallow to mean much"
        );
    }
}

#[test]
fn two_nodes_one_group() {
    let faults = env("HBD_MODEL_FAULTS", 1) as u32;
    let found = check("2n1g", HbdModel::new(2, 1, faults), 30);
    assert_clean("2n1g", &found, &["takeover", "split healed to one holder"]);
}

/// Two faults at once (say a partition and a failed stop, or a loss and a replay),
/// at a shallower depth.
#[test]
fn two_nodes_one_group_two_faults() {
    let faults = env("HBD_MODEL_FAULTS", 2) as u32;
    let found = check("2n1g2f", HbdModel::new(2, 1, faults), 15);
    assert_clean("2n1g2f", &found, &[]);
}

#[test]
fn two_nodes_two_groups() {
    let faults = env("HBD_MODEL_FAULTS", 1) as u32;
    let found = check("2n2g", HbdModel::new(2, 2, faults), 24);
    assert_clean("2n2g", &found, &["takeover"]);
}

#[test]
fn three_nodes_one_group() {
    let faults = env("HBD_MODEL_FAULTS", 1) as u32;
    // Three nodes take more steps per keepalive (six deliveries): deeper bound, to
    // reach a split and its heal. With quorum's default (stop) an isolated holder gives
    // its group up and no split happens; `freeze` lets it keep the group while the
    // majority starts it too: the split whose heal must end with one holder.
    let mut model = HbdModel::new(3, 1, faults);
    model.config.failover.no_quorum = hbd::config::NoQuorum::Freeze;
    let found = check("3n1g", model, 60);
    assert_clean("3n1g", &found, &["takeover", "split healed to one holder"]);
}

/// Three nodes with quorum's default (`no_quorum = "stop"`): an isolated holder stops
/// its group; the safety properties hold throughout.
#[test]
fn three_nodes_one_group_quorum_stop() {
    let faults = env("HBD_MODEL_FAULTS", 1) as u32;
    let found = check("3n1gq", HbdModel::new(3, 1, faults), 40);
    assert_clean("3n1gq", &found, &["takeover"]);
}

/// The checker and the printed counterexample are live: with no tolerance for an
/// overlap, the conflict after a heal must be found, and its steps must replay to
/// the same failure.
#[test]
fn a_zero_window_is_caught_and_the_counterexample_replays() {
    let mut model = HbdModel::new(2, 1, 1);
    model.window_ms = 0;
    let checker = model
        .clone()
        .checker()
        .threads(1)
        .target_max_depth(24)
        .spawn_bfs()
        .join();
    let path = checker
        .discovery("no two connected holders beyond the window")
        .expect("an overlap after a heal");
    let steps = path.into_actions();
    eprintln!("zero-window counterexample: {steps:?}");
    assert!(steps.contains(&Step::Heal), "{steps:?}");
    let replayed = catch_unwind(AssertUnwindSafe(|| replay(&model, &steps)));
    let text = panic_text(replayed.expect_err("the replay fails as the search did"));
    assert!(text.contains("both hold g0"), "{text}");
}

/// The fault-free run is one path: it must settle with the group on its preferred
/// node and survive a clean shutdown command.
#[test]
fn fault_free_run_settles_on_preferred_node() {
    let model = HbdModel::new(2, 1, 0);
    let mut s = model.init_states().remove(0);
    for _ in 0..40 {
        let mut a = Vec::new();
        model.actions(&s, &mut a);
        let step = a.first().cloned().expect("always something to do");
        s = model.next_state(&s, step).expect("applies");
    }
    assert!(s.panic.is_none(), "{s:?}");
    let c0 = s.nodes[0].core.as_ref().expect("n0 up");
    let c1 = s.nodes[1].core.as_ref().expect("n1 up");
    assert_eq!(
        c0.status().groups[0].local,
        LocalGroupState::Running,
        "{s:?}"
    );
    assert_eq!(
        c1.status().groups[0].local,
        LocalGroupState::Stopped,
        "{s:?}"
    );
    let mut s2 = s.clone();
    model.drive(&mut s2, 0, |c, now| {
        let _ = c.handle_command(now, Command::Shutdown);
    });
    assert!(s2.panic.is_none());
}
