//! The core against a hostile network: replays of any age from any address, a
//! cloned node. Packets are captured and replayed by hand between `Cluster`s on a
//! fake clock (the lab's hostile tests do the same against running daemons).

mod sim;

use std::time::{Duration, Instant};

use hbd::cluster::{
    Action, Cluster, Event, GroupEvent, LinkId, LocalGroupState, NodeId, PeerState, Reject,
};
use hbd::config::Config;
use sim::{config, keys};

const L0: LinkId = LinkId(0);

/// One daemon: its core and what it has sent.
struct Node {
    core: Cluster,
    sent: Vec<Vec<u8>>,
    events: Vec<Event>,
    manual_ops: bool,
    now: Instant,
}

impl Node {
    fn new(c: &Config, id: usize, incarnation: u64, now: Instant) -> Node {
        let mut n = Node {
            core: Cluster::new(c, NodeId(id), keys(), incarnation, now),
            sent: Vec::new(),
            events: Vec::new(),
            manual_ops: false,
            now,
        };
        n.core.handle_timeout(now);
        n.drain();
        n
    }

    /// Carry out the core's actions; group starts and stops succeed at once, unless
    /// `manual_ops` (then the test completes them).
    fn drain(&mut self) {
        loop {
            let mut done = Vec::new();
            while let Some(a) = self.core.poll_action() {
                match a {
                    Action::Send(b) => self.sent.push(b),
                    Action::Event(e) => self.events.push(e),
                    Action::StartGroup(g) if !self.manual_ops => {
                        done.push((g, GroupEvent::Started))
                    }
                    Action::StopGroup(g) if !self.manual_ops => done.push((g, GroupEvent::Stopped)),
                    Action::StartGroup(_)
                    | Action::StopGroup(_)
                    | Action::RestartResources { .. }
                    | Action::Announce(_)
                    | Action::FenceNode { .. }
                    | Action::CancelFence { .. }
                    | Action::Exit => {}
                }
            }
            if done.is_empty() {
                return;
            }
            for (g, e) in done {
                self.core.handle_group_event(self.now, g, e);
            }
        }
    }

    fn take_sent(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.sent)
    }

    fn receive(&mut self, now: Instant, packet: &[u8]) -> Result<(), Reject> {
        self.now = now;
        let r = self.core.handle_packet(now, L0, packet);
        self.drain();
        r
    }

    fn peer_state(&self, name: &str) -> PeerState {
        let st = self.core.status();
        st.peers
            .iter()
            .find(|p| p.name == name)
            .expect("peer")
            .state
    }
}

/// Let the nodes talk for `d` (keepalive 100ms), delivering every packet at once.
fn talk(nodes: &mut [&mut Node], now: &mut Instant, d: Duration) {
    let end = *now + d;
    while *now < end {
        *now += Duration::from_millis(10);
        for n in nodes.iter_mut() {
            n.now = *now;
            n.core.handle_timeout(*now);
            n.drain();
        }
        let outs: Vec<Vec<Vec<u8>>> = nodes.iter_mut().map(|n| n.take_sent()).collect();
        for (from, out) in outs.iter().enumerate() {
            for (to, n) in nodes.iter_mut().enumerate() {
                if to != from {
                    for p in out {
                        let _ = n.receive(*now, p);
                    }
                }
            }
        }
    }
}

/// Two nodes (n0 incarnation 10, n1 incarnation 20) that have talked for `ms`.
fn talking_pair(groups: &[(&str, usize)], ms: u64) -> (Config, Instant, Node, Node) {
    let c = config(2, 1, groups);
    let mut now = Instant::now();
    let mut a = Node::new(&c, 0, 10, now);
    let mut b = Node::new(&c, 1, 20, now);
    talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(ms));
    (c, now, a, b)
}

#[test]
fn replays_within_one_incarnation_are_refused() {
    let (_c, now, mut a, mut b) = talking_pair(&[("web", 0)], 500);
    assert_eq!(b.peer_state("n0"), PeerState::Up);
    let old = a.sent.clone();
    // What a sends next is captured; b receives it, then its replay.
    a.core.handle_timeout(now + Duration::from_millis(100));
    a.drain();
    let p = a.take_sent().pop().expect("a heartbeat");
    assert_eq!(b.receive(now, &p), Ok(()));
    assert!(matches!(b.receive(now, &p), Err(Reject::Replay(_))));
    assert!(old.is_empty());
    // Our own packet looping back is recognised.
    assert_eq!(a.receive(now, &p), Err(Reject::Own));
}

/// Issue 15, hole 1: one captured packet of a peer's earlier incarnation, replayed to
/// a node that restarted since, used to be taken for a peer restart, after which
/// every genuine packet was refused as "earlier incarnation". Now it changes nothing.
#[test]
fn a_replayed_packet_of_an_earlier_incarnation_changes_nothing() {
    let (c, mut now, mut a, mut b) = talking_pair(&[("web", 0), ("db", 1)], 500);
    a.core.handle_timeout(now + Duration::from_millis(100));
    a.drain();
    let recorded = a.take_sent().pop().expect("a heartbeat of incarnation 10");
    // a restarts (incarnation 11), then b restarts (21): neither remembers 10.
    let mut a = Node::new(&c, 0, 11, now);
    talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(500));
    let mut b = Node::new(&c, 1, 21, now);
    talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(3000));
    assert_eq!(b.peer_state("n0"), PeerState::Up);
    let held = |n: &Node| -> Vec<LocalGroupState> {
        n.core
            .status()
            .groups
            .iter()
            .map(|g| g.local.clone())
            .collect()
    };
    let (before_a, before_b) = (held(&a), held(&b));
    // The replay, many times, from anywhere: refused, and nothing changes.
    for _ in 0..5 {
        assert_eq!(b.receive(now, &recorded), Err(Reject::OldIncarnation));
        talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(100));
    }
    assert_eq!(b.peer_state("n0"), PeerState::Up);
    assert!(
        !b.events
            .iter()
            .any(|e| matches!(e, Event::PeerRestarted { .. })),
        "b never took the replay for a restart"
    );
    talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(3000));
    assert_eq!((held(&a), held(&b)), (before_a, before_b));
    assert_eq!(
        a.core.status().groups[0].local,
        LocalGroupState::Running,
        "web stays on n0"
    );
    assert_eq!(
        b.core.status().groups[1].local,
        LocalGroupState::Running,
        "db stays on n1"
    );
}

/// The same replay reaching a node that has just started and never heard the peer:
/// a packet recorded before it started cannot ack its incarnation, so it is not
/// believed; the genuine peer is, within a heartbeat or two.
#[test]
fn a_fresh_node_believes_no_recorded_packet() {
    let (c, mut now, mut a, _b) = talking_pair(&[("web", 0)], 500);
    a.core.handle_timeout(now + Duration::from_millis(100));
    a.drain();
    let recorded = a.take_sent();
    // a dies; b restarts. Replays of a's packets must not make a look alive.
    let mut b = Node::new(&c, 1, 21, now);
    for _ in 0..30 {
        now += Duration::from_millis(100);
        for p in &recorded {
            assert_eq!(b.receive(now, p), Err(Reject::Unconfirmed));
        }
        b.core.handle_timeout(now);
        b.drain();
    }
    assert_ne!(b.peer_state("n0"), PeerState::Up);
    assert!(!b.events.iter().any(|e| matches!(e, Event::PeerUp { .. })));
    // The genuine a, restarted, is believed within two heartbeats of meeting b.
    let mut a = Node::new(&c, 0, 11, now);
    let met = now;
    while b.peer_state("n0") != PeerState::Up {
        talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(10));
        assert!(now - met <= Duration::from_millis(250), "a believed late");
    }
    assert_eq!(a.peer_state("n1"), PeerState::Up);
}

/// Issue 15, hole 4: a cloned node (same name, another incarnation, both live). Every
/// node notices and says so; the copy that started later releases what it holds;
/// nobody starts a group on the strength of the confusion.
#[test]
fn a_cloned_node_is_detected_and_takes_nothing() {
    let (c, mut now, mut a, mut b) = talking_pair(&[("web", 1)], 3000);
    assert_eq!(b.core.status().groups[0].local, LocalGroupState::Running);
    // The clone boots with a later incarnation and adopts web (its copy of the
    // resources came up with the VM).
    let mut clone = Node::new(&c, 1, 30, now);
    clone.manual_ops = true;
    clone.core.adopt(hbd::cluster::GroupId(0));
    clone.drain();
    talk(
        &mut [&mut a, &mut b, &mut clone],
        &mut now,
        Duration::from_millis(2000),
    );
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::DuplicatePeer { gone: false, .. })),
        "a reports two daemons claiming n1: {:?}",
        a.events
    );
    assert!(b.events.iter().any(|e| matches!(
        e,
        Event::DuplicateLocal {
            yielding: false,
            gone: false
        }
    )));
    assert!(clone.events.iter().any(|e| matches!(
        e,
        Event::DuplicateLocal {
            yielding: true,
            gone: false
        }
    )));
    assert_eq!(
        clone.core.status().groups[0].local,
        LocalGroupState::Stopping,
        "the later copy releases web"
    );
    assert_eq!(b.core.status().groups[0].local, LocalGroupState::Running);
    assert_eq!(
        a.core.status().groups[0].local,
        LocalGroupState::Stopped,
        "a takes nothing"
    );
    // The clone is switched off: the others carry on with the original.
    drop(clone);
    talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(3000));
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::DuplicatePeer { gone: true, .. }))
    );
    assert_eq!(a.peer_state("n1"), PeerState::Up);
    assert_eq!(b.core.status().groups[0].local, LocalGroupState::Running);
    assert_eq!(a.core.status().groups[0].local, LocalGroupState::Stopped);
}

/// Found in the lab (tests/lab_faults.rs, a cloned node): a copy of n1 that starts fresh
/// (its resources not up) is believed as "n1 restarted" as soon as it acks a; until the
/// original's next heartbeat shows it is a second live sender, a must not take the
/// original's claims for gone and start its group. A restart keeps the replaced
/// incarnation's claims for as long as a death would (deadtime of its silence).
#[test]
fn a_fresh_clone_does_not_make_the_original_s_groups_look_free() {
    let (c, mut now, mut a, mut b) = talking_pair(&[("web", 1)], 3000);
    assert_eq!(b.core.status().groups[0].local, LocalGroupState::Running);
    let mut clone = Node::new(&c, 1, 30, now);
    talk(
        &mut [&mut a, &mut b, &mut clone],
        &mut now,
        Duration::from_millis(2000),
    );
    let started = a.events.iter().any(|e| {
        matches!(
            e,
            Event::GroupState {
                state: LocalGroupState::Starting,
                ..
            }
        )
    });
    assert!(!started, "a started web while n1 ran it: {:?}", a.events);
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::DuplicatePeer { gone: false, .. })),
        "{:?}",
        a.events
    );
    assert_eq!(b.core.status().groups[0].local, LocalGroupState::Running);
    // The clone listened before deciding anything, heard the original, and took nothing.
    let clone_started = clone.events.iter().any(|e| {
        matches!(
            e,
            Event::GroupState {
                state: LocalGroupState::Starting,
                ..
            }
        )
    });
    assert!(!clone_started, "the clone started web: {:?}", clone.events);
}

/// Issue 15, hole 9: a late peer heard again produces an event (so STATUS= is
/// rewritten and no longer says "late").
#[test]
fn a_late_peer_heard_again_is_reported() {
    let (_c, mut now, mut a, mut b) = talking_pair(&[("web", 0)], 3000);
    // b is silent for 500ms (warntime 300ms, deadtime 1s).
    for _ in 0..50 {
        now += Duration::from_millis(10);
        a.core.handle_timeout(now);
        a.drain();
    }
    assert_eq!(a.peer_state("n1"), PeerState::Late);
    b.take_sent();
    talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(200));
    assert_eq!(a.peer_state("n1"), PeerState::Up);
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::PeerOnTime { .. }))
    );
}

/// Issue 15, hole 5: nodes whose cluster.toml differ. Ranks come from the config, so
/// crossed or swapped preferred nodes used to leave a group on both nodes or on
/// neither. Now both agree on exactly one holder, whatever the difference.
#[test]
fn nodes_with_different_configs_agree_on_one_holder() {
    let both_ways = [
        // (n0's preferred for web, n1's preferred for web)
        (0, 1),
        (1, 0),
    ];
    for (pa, pb) in both_ways {
        let ca = config(2, 1, &[("web", pa), ("db", 0)]);
        let cb = config(2, 1, &[("web", pb)]);
        let mut now = Instant::now();
        let mut a = Node::new(&ca, 0, 10, now);
        let mut b = Node::new(&cb, 1, 20, now);
        let running =
            |n: &Node, g: usize| n.core.status().groups[g].local == LocalGroupState::Running;
        let mut both_ms = 0;
        let mut worst_both_ms = 0;
        for _ in 0..600 {
            talk(&mut [&mut a, &mut b], &mut now, Duration::from_millis(10));
            if running(&a, 0) && running(&b, 0) {
                both_ms += 10;
                worst_both_ms = worst_both_ms.max(both_ms);
            } else {
                both_ms = 0;
            }
        }
        assert!(
            a.events
                .iter()
                .any(|e| matches!(e, Event::ConfigMismatch { .. })),
            "the difference is reported"
        );
        assert_eq!(
            u8::from(running(&a, 0)) + u8::from(running(&b, 0)),
            1,
            "web on exactly one node (preferred n{pa} on n0, n{pb} on n1)"
        );
        assert!(
            worst_both_ms <= 300,
            "web ran on both for {worst_both_ms} ms"
        );
        assert!(running(&a, 1), "db, only in n0's config, runs on n0");
    }
}

/// What the shell's heartbeat statistics read (`take_accepted`): the sender, link and
/// sequence of a packet the core believed, once; nothing for a refused one.
#[test]
fn take_accepted_names_believed_packets_only() {
    let (_c, now, mut a, mut b) = talking_pair(&[("web", 0)], 500);
    let _ = b.core.take_accepted();
    a.core.handle_timeout(now + Duration::from_millis(100));
    a.drain();
    let p = a.take_sent().pop().expect("a heartbeat");
    assert_eq!(b.receive(now, &p), Ok(()));
    let got = b.core.take_accepted().expect("the packet just believed");
    assert_eq!(got.peer, hbd::cluster::NodeId(0));
    assert_eq!(got.link, L0);
    assert!(got.seq > 0);
    assert_eq!(b.core.take_accepted(), None, "taken once");
    // A replay is refused and names nothing.
    assert!(matches!(b.receive(now, &p), Err(Reject::Replay(_))));
    assert_eq!(b.core.take_accepted(), None);
}
