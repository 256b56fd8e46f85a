//! A deterministic simulated network of hbd cores with a fake clock.
//!
//! Each node is a `Cluster` driven exactly as the daemon drives it; the network
//! delivers packets with a fixed latency over per-link, per-direction switches;
//! group starts and stops complete after a fixed delay unless a test scripts a
//! failure. Frozen nodes queue packets (like a socket buffer) and run no timers;
//! crashed nodes lose everything, their resources included.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use hbd::cluster::{
    Action, Cluster, Command, CommandError, CommandOutcome, Event, FenceResult, Found, GroupEvent,
    GroupId, LinkId, LocalGroupState, NodeId, Reject, ReloadError, Reloaded, Retirement,
};
use hbd::config::{Algorithm, Builder, Config, Group, KeySet, Link};
use hbd::proto::wire::DecodeError;

/// The simulated cluster "sim": `nodes` nodes n0…, `links` broadcast links l0… on
/// eth0…, and each group `(name, preferred node)` with one unit `name.service`;
/// keepalive 100ms, warntime 300ms, deadtime 1s, initdead 2s.
pub fn builder(nodes: usize, links: usize, groups: &[(&str, usize)]) -> Builder {
    let ms = Duration::from_millis;
    let mut b = Builder::new("sim").timing(ms(100), ms(300), ms(1000), ms(2000));
    for l in 0..links {
        b = b.link(Link::udp_broadcast(format!("l{l}"), format!("eth{l}")));
    }
    for n in 0..nodes {
        b = b.node(format!("n{n}"));
    }
    for (g, pref) in groups {
        b = b.group(Group::new(*g, format!("n{pref}")).unit(format!("{g}.service")));
    }
    b
}

/// [`builder`]'s config as it is.
pub fn config(nodes: usize, links: usize, groups: &[(&str, usize)]) -> Config {
    build(builder(nodes, links, groups))
}

/// A config every node of a simulation can load.
pub fn build(b: Builder) -> Config {
    match b.clone().build() {
        Ok(c) => c,
        Err(e) => panic!("sim config: {e}\n{}", b.to_toml()),
    }
}

/// The property tests' configuration: CI runs a fixed set of `cases` (a fixed seed, and
/// the persisted regressions, which proptest replays first), so the suite gives the same
/// verdict on every run. The hunt for fresh cases is a separate command (tests/hunt.sh):
/// `HBD_FRESH_CASES=1` draws a random seed, `PROPTEST_CASES` sets how many.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut c = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("HBD_FRESH_CASES").is_none()
        && std::env::var_os("PROPTEST_RNG_SEED").is_none()
    {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x6862_6421);
    }
    c
}

pub fn keys() -> KeySet {
    let mut k = BTreeMap::new();
    k.insert(1, b"simulation secret, 32 bytes long".to_vec());
    KeySet::new(Algorithm::HmacSha256, 1, k)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    /// Never completes (a hung resource).
    Hang,
    /// A start whose rollback failed: reported as a failed stop.
    Blocked,
}

pub struct SimNode {
    pub core: Option<Cluster>,
    pub frozen: bool,
    /// Packets that arrived while frozen, delivered on thaw.
    pub queued: Vec<(LinkId, Vec<u8>)>,
    /// Truth: resources of each group may be up here (from start issued to stop done).
    pub up: Vec<bool>,
    pub exited: bool,
    pub events: Vec<(Duration, Event)>,
    /// Scripted outcomes of the next starts / stops per group.
    pub start_outcome: Vec<VecDeque<Outcome>>,
    pub stop_outcome: Vec<VecDeque<Outcome>>,
    pub starts: Vec<u32>,
    /// In-place restarts asked for, per group.
    pub restarts: Vec<u32>,
    /// Re-announcements of each group's addresses asked for (Action::Announce).
    pub announces: Vec<u32>,
    /// Ping nodes this node reaches, reported every keepalive while set.
    pub ping: Option<usize>,
    /// Scripted outcomes of the next fences this node carries out (default Ok).
    pub fence_outcome: VecDeque<Outcome>,
    /// Fences this node asked for: (target, attempt).
    pub fences: Vec<(usize, u64)>,
}

pub struct Sim {
    /// The config every node starts with (see `configs` for each node's own).
    pub config: Config,
    /// Each node's cluster.toml (they differ after `with_configs` or `reload`).
    pub configs: Vec<Config>,
    /// Every group name any node has known, in order of appearance: the index of the
    /// per-group truth (`up`, outcomes, counters), stable across reloads. Equal to the
    /// config's group index for the starting config.
    pub names: Vec<String>,
    /// Removed groups being stopped: (done at, node, group).
    retires: Vec<(Instant, usize, usize)>,
    pub t0: Instant,
    pub now: Instant,
    pub nodes: Vec<SimNode>,
    /// `cut[link][from][to]`: packets dropped.
    pub cut: Vec<Vec<Vec<bool>>>,
    pub latency: Duration,
    pub op_delay: Duration,
    in_flight: Vec<(Instant, usize, LinkId, Vec<u8>)>,
    /// Group operations in flight: (done at, node, group by `names` index, result).
    ops: Vec<(Instant, usize, usize, GroupEvent)>,
    next_incarnation: u64,
    /// Longest time two connected nodes both had a group's resources up.
    pub worst_overlap: Duration,
    overlap_since: BTreeMap<(usize, usize, usize), Instant>,
    pub log: bool,
    /// Packets refused for their protocol version (mixed-version tests).
    pub version_rejects: u32,
    /// Next round of ping reports (nodes with `ping` set).
    next_ping: Instant,
    /// Fences under way: (due, fencer, target, attempt, result).
    fence_ops: Vec<(Instant, usize, usize, u64, FenceResult)>,
    /// A successful fence powers the target off (crash); false: it stays up (a fence
    /// that lies, or a test unit).
    pub fence_powers_off: bool,
    pub fence_delay: Duration,
    /// A mixed cluster (`[migration] protocol = "heartbeat"`): booted cores speak
    /// Heartbeat's protocol, signed with this keyring.
    pub heartbeat: Option<hbd::proto::heartbeat::Keyring>,
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        let n = config.nodes.len();
        Sim::with_configs(vec![config; n])
    }

    /// Nodes each with its own cluster.toml (same nodes and links; timing, groups or
    /// anything else may differ).
    pub fn with_configs(configs: Vec<Config>) -> Sim {
        let config = configs[0].clone();
        let mut names: Vec<String> = Vec::new();
        for c in &configs {
            for g in &c.groups {
                if !names.contains(&g.name) {
                    names.push(g.name.clone());
                }
            }
        }
        let now = Instant::now();
        let n = config.nodes.len();
        let nl = config.links.len();
        let ng = names.len();
        let heartbeat = config.migration.heartbeat().then(|| {
            use hbd::proto::heartbeat::{Keyring, Method};
            Keyring::new(1, vec![(1, Method::Sha1(b"sim heartbeat secret".to_vec()))])
                .expect("keyring")
        });
        let mut sim = Sim {
            configs,
            names,
            retires: Vec::new(),
            t0: now,
            now,
            nodes: Vec::new(),
            cut: vec![vec![vec![false; n]; n]; nl],
            latency: Duration::from_millis(1),
            op_delay: Duration::from_millis(50),
            in_flight: Vec::new(),
            ops: Vec::new(),
            next_incarnation: 1,
            worst_overlap: Duration::ZERO,
            overlap_since: BTreeMap::new(),
            log: std::env::var_os("SIM_LOG").is_some(),
            version_rejects: 0,
            next_ping: now,
            fence_ops: Vec::new(),
            fence_powers_off: true,
            fence_delay: Duration::from_millis(200),
            heartbeat,
            config,
        };
        for _ in 0..n {
            sim.nodes.push(SimNode {
                core: None,
                frozen: false,
                queued: Vec::new(),
                up: vec![false; ng],
                exited: false,
                events: Vec::new(),
                start_outcome: vec![VecDeque::new(); ng],
                stop_outcome: vec![VecDeque::new(); ng],
                starts: vec![0; ng],
                restarts: vec![0; ng],
                announces: vec![0; ng],
                ping: None,
                fence_outcome: VecDeque::new(),
                fences: Vec::new(),
            });
        }
        for i in 0..n {
            sim.boot(i);
        }
        sim
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Start (or restart) node `i`'s daemon; `adopt` lists groups found running.
    pub fn boot_adopting(&mut self, i: usize, adopt: &[usize]) {
        let found: Vec<(usize, Found)> = adopt.iter().map(|&g| (g, Found::AllUp)).collect();
        self.boot_found(i, &found);
    }

    /// Start (or restart) node `i`'s daemon, which finds groups in the given states.
    pub fn boot_found(&mut self, i: usize, found: &[(usize, Found)]) {
        // Incarnations only grow, as the daemon's do (wall clock and a persisted floor).
        let inc = 1_000_000 + self.next_incarnation;
        self.next_incarnation += 1;
        let mut c = Cluster::new(&self.configs[i], NodeId(i), keys(), inc, self.now);
        for (g, f) in found {
            c.found(GroupId(*g), f.clone());
        }
        if let Some(ring) = &self.heartbeat {
            let epoch = 1_700_000_000 + (self.now - self.t0).as_secs();
            c.speak_heartbeat(ring.clone(), [i as u8; 16], epoch);
        }
        let node = &mut self.nodes[i];
        node.core = Some(c);
        node.frozen = false;
        node.exited = false;
        node.queued.clear();
        self.drain(i);
    }

    pub fn boot(&mut self, i: usize) {
        self.boot_adopting(i, &[]);
    }

    /// kill -9 of the whole node: daemon and resources gone.
    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.core = None;
        node.frozen = false;
        node.queued.clear();
        node.up.iter_mut().for_each(|u| *u = false);
        self.ops.retain(|(_, n, _, _)| *n != i);
        self.retires.retain(|(_, n, _)| *n != i);
    }

    /// kill -9 of the daemon only: resources stay up.
    pub fn kill_daemon(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.core = None;
        node.queued.clear();
        self.ops.retain(|(_, n, _, _)| *n != i);
        self.retires.retain(|(_, n, _)| *n != i);
    }

    /// The `names` index of node `i`'s group `g`, added when new.
    fn uidx(&mut self, i: usize, g: GroupId) -> usize {
        let name = &self.configs[i].groups[g.0].name;
        match self.names.iter().position(|n| n == name) {
            Some(u) => u,
            None => {
                self.names.push(name.clone());
                for node in &mut self.nodes {
                    node.up.push(false);
                    node.start_outcome.push(VecDeque::new());
                    node.stop_outcome.push(VecDeque::new());
                    node.starts.push(0);
                    node.restarts.push(0);
                }
                self.names.len() - 1
            }
        }
    }

    /// Node `i`'s current group id for the `names` index `u`, if it has the group.
    pub fn core_group(&self, i: usize, u: usize) -> Option<GroupId> {
        let name = self.names.get(u)?;
        self.configs[i]
            .groups
            .iter()
            .position(|g| &g.name == name)
            .map(GroupId)
    }

    /// The `names` index of a group name.
    pub fn group(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no group {name} in the simulation"))
    }

    /// Reload node `i` with `config`, doing what the daemon does with the answer:
    /// removed groups that ran here are stopped (then reported retired), changed ones
    /// restarted in place, each after `op_delay`.
    pub fn reload(&mut self, i: usize, config: Config) -> Result<Reloaded, ReloadError> {
        let now = self.now;
        let Some(c) = self.nodes[i].core.as_mut() else {
            return Err(ReloadError::ShuttingDown);
        };
        let r = c.reload(now, &config, keys())?;
        self.configs[i] = config;
        for g in 0..self.configs[i].groups.len() {
            self.uidx(i, GroupId(g));
        }
        for old in &r.release {
            let u = self.group(&old.name);
            self.retires.push((now + self.op_delay, i, u));
        }
        for (_, g, _) in &r.restart {
            let u = self.uidx(i, *g);
            self.nodes[i].restarts[u] += 1;
            self.ops
                .push((now + self.op_delay, i, u, GroupEvent::Restarted));
        }
        self.drain(i);
        Ok(r)
    }

    pub fn freeze(&mut self, i: usize) {
        self.nodes[i].frozen = true;
    }

    pub fn thaw(&mut self, i: usize) {
        self.nodes[i].frozen = false;
        let queued = std::mem::take(&mut self.nodes[i].queued);
        let now = self.now;
        for (link, bytes) in queued {
            if let Some(c) = self.nodes[i].core.as_mut() {
                let _ = c.handle_packet(now, link, &bytes);
            }
            self.drain(i);
        }
    }

    pub fn command(&mut self, i: usize, cmd: Command) {
        let _ = self.op(i, cmd);
    }

    /// Feed an operator command to node `i` now and return its answer; None when its
    /// daemon is not running.
    pub fn op(&mut self, i: usize, cmd: Command) -> Option<Result<CommandOutcome, CommandError>> {
        let now = self.now;
        let r = self.nodes[i]
            .core
            .as_mut()
            .map(|c| c.handle_command(now, cmd));
        self.drain(i);
        r
    }

    pub fn set_link(&mut self, link: usize, a: usize, b: usize, up: bool) {
        self.cut[link][a][b] = !up;
        self.cut[link][b][a] = !up;
    }

    /// Cut every link between the two sides.
    pub fn partition(&mut self, side_a: &[usize], side_b: &[usize]) {
        for l in 0..self.cut.len() {
            for &a in side_a {
                for &b in side_b {
                    self.set_link(l, a, b, false);
                }
            }
        }
    }

    pub fn heal(&mut self) {
        for l in &mut self.cut {
            for row in l.iter_mut() {
                row.iter_mut().for_each(|c| *c = false);
            }
        }
    }

    /// Whether a and b can exchange packets (both ways, some link, both running).
    pub fn connected(&self, a: usize, b: usize) -> bool {
        let live = |i: usize| {
            self.nodes[i].core.is_some() && !self.nodes[i].frozen && !self.nodes[i].exited
        };
        live(a) && live(b) && (0..self.cut.len()).any(|l| !self.cut[l][a][b] && !self.cut[l][b][a])
    }

    fn drain(&mut self, i: usize) {
        let now = self.now;
        loop {
            let Some(c) = self.nodes[i].core.as_mut() else {
                return;
            };
            let Some(action) = c.poll_action() else {
                return;
            };
            match action {
                Action::Send(bytes) => {
                    for l in 0..self.cut.len() {
                        for to in 0..self.nodes.len() {
                            if to != i && !self.cut[l][i][to] {
                                self.in_flight.push((
                                    now + self.latency,
                                    to,
                                    LinkId(l),
                                    bytes.clone(),
                                ));
                            }
                        }
                    }
                }
                Action::StartGroup(g) => {
                    let g = self.uidx(i, g);
                    let node = &mut self.nodes[i];
                    node.up[g] = true;
                    node.starts[g] += 1;
                    match node.start_outcome[g].pop_front().unwrap_or(Outcome::Ok) {
                        Outcome::Ok => {
                            self.ops
                                .push((now + self.op_delay, i, g, GroupEvent::Started))
                        }
                        Outcome::Fail => self.ops.push((
                            now + self.op_delay,
                            i,
                            g,
                            GroupEvent::StartFailed {
                                reason: "scripted".into(),
                            },
                        )),
                        Outcome::Blocked => self.ops.push((
                            now + self.op_delay,
                            i,
                            g,
                            GroupEvent::StopFailed {
                                reason: "scripted rollback failure".into(),
                            },
                        )),
                        Outcome::Hang => {}
                    }
                }
                Action::StopGroup(g) => {
                    let g = self.uidx(i, g);
                    match self.nodes[i].stop_outcome[g]
                        .pop_front()
                        .unwrap_or(Outcome::Ok)
                    {
                        Outcome::Ok => {
                            self.ops
                                .push((now + self.op_delay, i, g, GroupEvent::Stopped))
                        }
                        Outcome::Fail | Outcome::Blocked => self.ops.push((
                            now + self.op_delay,
                            i,
                            g,
                            GroupEvent::StopFailed {
                                reason: "scripted".into(),
                            },
                        )),
                        Outcome::Hang => {}
                    }
                }
                Action::RestartResources { group, .. } => {
                    let group = self.uidx(i, group);
                    self.nodes[i].restarts[group] += 1;
                    self.ops
                        .push((now + self.op_delay, i, group, GroupEvent::Restarted));
                }
                Action::Announce(g) => self.nodes[i].announces[g.0] += 1,
                Action::Event(e) => {
                    if self.log {
                        eprintln!("{:>9.3}s n{i}: {e:?}", (now - self.t0).as_secs_f64());
                    }
                    self.nodes[i].events.push((now - self.t0, e));
                }
                Action::Exit => {
                    self.nodes[i].exited = true;
                    self.nodes[i].core = None;
                }
                Action::FenceNode { node, attempt } => {
                    self.nodes[i].fences.push((node.0, attempt));
                    let due = now + self.fence_delay;
                    let r = match self.nodes[i]
                        .fence_outcome
                        .pop_front()
                        .unwrap_or(Outcome::Ok)
                    {
                        Outcome::Ok => Some(FenceResult::Fenced),
                        Outcome::Hang => None,
                        Outcome::Fail | Outcome::Blocked => Some(FenceResult::FenceFailed {
                            reason: "scripted fence failure".into(),
                        }),
                    };
                    if let Some(r) = r {
                        self.fence_ops.push((due, i, node.0, attempt, r));
                    }
                }
                Action::CancelFence { node, attempt } => {
                    self.fence_ops
                        .retain(|f| !(f.1 == i && f.2 == node.0 && f.3 == attempt));
                }
            }
        }
    }

    /// Feed a group result to node `i` now (for scripted runtime failures).
    pub fn group_event(&mut self, i: usize, g: usize, e: GroupEvent) {
        let now = self.now;
        let g = self.core_group(i, g);
        if let (Some(c), Some(g)) = (self.nodes[i].core.as_mut(), g) {
            c.handle_group_event(now, g, e);
        }
        self.drain(i);
    }

    /// Advance simulated time by `d`, processing every event in order.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let mut next = end;
            for n in &self.nodes {
                if let (Some(c), false) = (n.core.as_ref(), n.frozen) {
                    if let Some(t) = c.poll_timeout() {
                        next = next.min(t);
                    }
                }
            }
            for (t, ..) in &self.in_flight {
                next = next.min(*t);
            }
            for (t, ..) in &self.ops {
                next = next.min(*t);
            }
            for (t, ..) in &self.retires {
                next = next.min(*t);
            }
            for (t, ..) in &self.fence_ops {
                next = next.min(*t);
            }
            let pinging = self.nodes.iter().any(|n| n.ping.is_some());
            if pinging {
                next = next.min(self.next_ping);
            }
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            self.check_overlap();
            let now = self.now;
            // Deliver due packets.
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|p| p.0 <= now);
            self.in_flight = rest;
            for (_, to, link, bytes) in due {
                let node = &mut self.nodes[to];
                match (node.core.as_mut(), node.frozen) {
                    (None, _) => {}
                    (Some(_), true) => node.queued.push((link, bytes)),
                    (Some(c), false) => {
                        match c.handle_packet(now, link, &bytes) {
                            // A peer's new incarnation is believed once it has heard
                            // us; packets of a replaced one may still be in flight.
                            Ok(()) | Err(Reject::Unconfirmed | Reject::OldIncarnation) => {}
                            // A fenced node that stayed up (fence_powers_off = false).
                            Err(Reject::Fenced(_)) => {}
                            // A mixed cluster's switch: the peer follows within a keepalive.
                            Err(Reject::HeartbeatPacket) => {}
                            // An older node refusing a newer version (mixed versions).
                            Err(Reject::Decode(DecodeError::BadVersion(_))) => {
                                self.version_rejects += 1
                            }
                            Err(r) => panic!("n{to} rejected a packet: {r}"),
                        }
                        self.drain(to);
                    }
                }
            }
            // Complete due group operations.
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ops)
                .into_iter()
                .partition(|o| o.0 <= now);
            self.ops = rest;
            for (_, i, g, e) in due {
                if self.nodes[i].frozen {
                    self.ops.push((now + Duration::from_millis(1), i, g, e));
                    continue;
                }
                if matches!(e, GroupEvent::Stopped) {
                    self.nodes[i].up[g] = false;
                }
                if matches!(e, GroupEvent::StartFailed { .. }) {
                    self.nodes[i].up[g] = false;
                }
                // Matched by name, as the daemon does: a reload may have moved it.
                let cg = self.core_group(i, g);
                if let (Some(c), Some(cg)) = (self.nodes[i].core.as_mut(), cg) {
                    c.handle_group_event(now, cg, e);
                }
                self.drain(i);
            }
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retires)
                .into_iter()
                .partition(|o| o.0 <= now);
            self.retires = rest;
            for (_, i, u) in due {
                // Scripted like any stop: a failure leaves the resources up.
                let result = match self.nodes[i].stop_outcome[u].pop_front() {
                    Some(Outcome::Fail | Outcome::Blocked) => Retirement::StopFailed,
                    _ => {
                        self.nodes[i].up[u] = false;
                        Retirement::Stopped
                    }
                };
                let name = self.names[u].clone();
                if let Some(c) = self.nodes[i].core.as_mut() {
                    c.retired(now, &name, result);
                }
                self.drain(i);
            }
            // Complete due fences: the target goes off, then the fencer hears of it.
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.fence_ops)
                .into_iter()
                .partition(|f| f.0 <= now);
            self.fence_ops = rest;
            for (_, i, target, attempt, r) in due {
                if r == FenceResult::Fenced && self.fence_powers_off {
                    self.crash(target);
                }
                if let Some(c) = self.nodes[i].core.as_mut() {
                    c.handle_fence_result(now, NodeId(target), attempt, r);
                }
                self.drain(i);
            }
            // Ping rounds: one report per keepalive from every live node that pings.
            if pinging && self.next_ping <= now {
                self.next_ping = now + self.config.timing.keepalive.get();
                for i in 0..self.nodes.len() {
                    let Some(n) = self.nodes[i].ping else {
                        continue;
                    };
                    if self.nodes[i].frozen {
                        continue;
                    }
                    if let Some(c) = self.nodes[i].core.as_mut() {
                        c.ping_count(now, n);
                    }
                    self.drain(i);
                }
            }
            // Timers.
            for i in 0..self.nodes.len() {
                let due = match (&self.nodes[i].core, self.nodes[i].frozen) {
                    (Some(c), false) => c.poll_timeout().is_some_and(|t| t <= now),
                    _ => false,
                };
                if due {
                    if let Some(c) = self.nodes[i].core.as_mut() {
                        c.handle_timeout(now);
                        // Every deadline reached was consumed: the timer never spins.
                        if let Some(t) = c.poll_timeout() {
                            assert!(
                                t > now,
                                "n{i}: a deadline at or before now after handle_timeout: {:?}",
                                c.timers()
                            );
                        }
                    }
                    self.drain(i);
                }
            }
            if next == end {
                break;
            }
        }
        self.now = end;
        self.check_overlap();
    }

    /// Whether node `i`'s daemon reports group `g` blocked (a stop failed there).
    pub fn blocked(&self, i: usize, g: usize) -> bool {
        let Some(cg) = self.core_group(i, g) else {
            return false;
        };
        self.nodes[i]
            .core
            .as_ref()
            .is_some_and(|c| c.status().groups[cg.0].local == LocalGroupState::Blocked)
    }

    /// Track how long two connected nodes both have a group up. The one documented
    /// exception ("How hbd decides"): two nodes whose stops of the group both failed
    /// (both blocked) cannot release it; they stay blocked, claiming it so that no
    /// third node starts it, until an operator (or fencing) resolves it.
    fn check_overlap(&mut self) {
        let n = self.nodes.len();
        for g in 0..self.names.len() {
            for a in 0..n {
                for b in (a + 1)..n {
                    let key = (g, a, b);
                    let both = self.nodes[a].up[g]
                        && self.nodes[b].up[g]
                        && self.connected(a, b)
                        && !(self.blocked(a, g) && self.blocked(b, g));
                    if both {
                        let since = *self.overlap_since.entry(key).or_insert(self.now);
                        self.worst_overlap = self.worst_overlap.max(self.now - since);
                    } else {
                        self.overlap_since.remove(&key);
                    }
                }
            }
        }
    }

    /// Nodes whose resources for group `g` are up.
    pub fn owners(&self, g: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up[g])
            .collect()
    }

    /// The single owner of `g`, or a panic describing the situation.
    pub fn owner(&self, g: usize) -> usize {
        let o = self.owners(g);
        assert_eq!(
            o.len(),
            1,
            "group {g}: expected one owner, have {o:?} at {:?}",
            self.elapsed()
        );
        o[0]
    }

    /// Run until `cond` holds (checked every millisecond of simulated time) or `limit` passes.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        while self.now - start < limit {
            if cond(self) {
                return Some(self.now - start);
            }
            self.run_for(Duration::from_millis(1));
        }
        cond(self).then(|| self.now - start)
    }

    pub fn events(&self, i: usize) -> impl Iterator<Item = &Event> {
        self.nodes[i].events.iter().map(|(_, e)| e)
    }
}
