//! Split-brain defences in the simulated network: ping nodes (dampening, handover,
//! isolation), quorum (stop, freeze) and the keeper of a healed split brain.

mod sim;

use std::time::Duration;

use hbd::cluster::Event;
use hbd::config::{Builder, NoQuorum};
use sim::{Sim, build, builder, config};

#[allow(non_snake_case)]
fn MS(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Ping nodes 192.0.2.1 and 192.0.2.2, dampened 500ms.
fn ping(b: Builder) -> Builder {
    b.ping("192.0.2.1".parse().unwrap())
        .ping("192.0.2.2".parse().unwrap())
        .ping_dampen(MS(500))
}

/// Two nodes that both reach both ping nodes; n0 holds the group.
fn pinging_two() -> Sim {
    let mut s = Sim::new(build(ping(builder(2, 1, &[("web", 0)]))));
    s.nodes[0].ping = Some(2);
    s.nodes[1].ping = Some(2);
    s.run_for(MS(500));
    assert_eq!(s.owner(0), 0);
    s
}

#[test]
fn one_lost_echo_moves_nothing() {
    let mut s = pinging_two();
    // One round (a keepalive) short of a ping node, three times over.
    for _ in 0..3 {
        s.nodes[0].ping = Some(1);
        s.run_for(MS(100));
        s.nodes[0].ping = Some(2);
        s.run_for(MS(300));
    }
    assert_eq!(s.owner(0), 0);
    assert_eq!(s.nodes[1].starts[0], 0, "n1 never started it");
}

#[test]
fn fewer_ping_nodes_than_the_peer_hands_the_group_over_after_dampening() {
    let mut s = pinging_two();
    s.nodes[0].ping = Some(1);
    // Not before the dampening time.
    s.run_for(MS(400));
    assert_eq!(s.owner(0), 0, "still dampening");
    let t = s
        .run_until(Duration::from_secs(2), |s| s.owners(0) == vec![1])
        .expect("handed over to n1");
    assert!(t < MS(400), "handover {t:?} after the dampening time");
    assert_eq!(s.worst_overlap, Duration::ZERO);
    let st = s.nodes[0].core.as_ref().unwrap().status();
    assert_eq!(st.ping_reached, Some(1));
    assert_eq!(st.peers[0].ping_reached, Some(2));
    let why = st.groups[0].reason.clone().unwrap_or_default();
    assert!(why.contains("handed over to n1"), "{why}");
    // n1 keeps it; n0 does not take it back while it reaches fewer.
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 1);
    // A rise counts at once; it does not move the group back (no auto_failback).
    s.nodes[0].ping = Some(2);
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.owner(0), 1);
}

#[test]
fn a_node_that_reaches_no_ping_node_stops_and_only_the_other_side_holds() {
    let mut s = pinging_two();
    // Every link cut, and n0 is cut off from the ping nodes too.
    s.partition(&[0], &[1]);
    s.nodes[0].ping = Some(0);
    s.nodes[1].ping = Some(2);
    let mut holders_max = 0;
    for _ in 0..3000 {
        s.run_for(MS(1));
        holders_max = holders_max.max(s.owners(0).len());
    }
    assert_eq!(s.owners(0), vec![1], "n1 took it, n0 stopped it");
    assert_eq!(holders_max, 1, "never two holders during the partition");
    // Heal: still only n1, and n0 (still cut off from the ping nodes) starts nothing.
    s.heal();
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owners(0), vec![1]);
    let st = s.nodes[0].core.as_ref().unwrap().status();
    let why = st.groups[0].reason.clone().unwrap_or_default();
    assert!(why.contains("no ping node reachable"), "{why}");
}

#[test]
fn no_ping_report_yet_means_no_start() {
    let mut s = Sim::new(build(ping(builder(2, 1, &[("web", 0)]))));
    s.run_for(Duration::from_secs(3));
    assert!(s.owners(0).is_empty(), "nobody knows whether it is cut off");
    s.nodes[1].ping = Some(1);
    s.run_for(MS(500));
    assert_eq!(
        s.owners(0),
        vec![1],
        "the node that reaches a ping node takes it"
    );
}

#[test]
fn three_nodes_isolated_one_stops_its_groups_the_majority_runs_them() {
    let mut s = Sim::new(config(3, 1, &[("web", 0)]));
    s.run_for(MS(500));
    assert_eq!(s.owner(0), 0);
    s.partition(&[0], &[1, 2]);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owners(0), vec![1], "n0 stopped it, n1 runs it");
    let st = s.nodes[0].core.as_ref().unwrap().status();
    let q = st.quorum.expect("three nodes: a quorum");
    assert_eq!((q.heard, q.nodes, q.quorate), (1, 3, false));
    assert!(
        st.groups[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("no quorum")),
        "{:?}",
        st.groups[0].reason
    );
    s.heal();
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owners(0), vec![1]);
}

#[test]
fn freeze_keeps_what_runs_and_starts_nothing() {
    let b = builder(3, 1, &[("web", 0), ("db", 1)]).no_quorum(NoQuorum::Freeze);
    let mut s = Sim::new(build(b));
    s.run_for(MS(500));
    assert_eq!((s.owner(0), s.owner(1)), (0, 1));
    // n0 and n1 each alone, n2 alone too: nobody has quorum.
    s.partition(&[0], &[1, 2]);
    s.partition(&[1], &[2]);
    s.run_for(Duration::from_secs(3));
    assert_eq!(s.owners(0), vec![0], "frozen where it ran");
    assert_eq!(s.owners(1), vec![1], "frozen where it ran");
    assert_eq!(s.nodes[2].starts, vec![0, 0], "n2 started nothing");
    s.heal();
    s.run_for(Duration::from_secs(2));
    // One holder each (a node that regains quorum by hearing one peer before the
    // holder may start a group and win it by generation: it still ends with one).
    s.owner(0);
    s.owner(1);
}

#[test]
fn healed_split_brain_keeps_one_records_both_views_and_reannounces() {
    let mut s = Sim::new(config(2, 1, &[("web", 0)]));
    s.run_for(MS(500));
    assert_eq!(s.owner(0), 0);
    // Two nodes, no ping node, no quorum rule: both hold it during the partition.
    s.partition(&[0], &[1]);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owners(0), vec![0, 1], "documented: both sides run it");
    s.heal();
    // Exactly one holder within deadtime + a keepalive (here: far sooner).
    let t = s
        .run_until(Duration::from_secs(2), |s| s.owners(0).len() == 1)
        .expect("one holder");
    assert!(t <= MS(1100), "{t:?}");
    // n1 took over last (higher generation): it keeps the group.
    assert_eq!(s.owner(0), 1);
    let brain = |i: usize| {
        s.events(i)
            .filter_map(|e| match e {
                Event::SplitBrain {
                    kept,
                    view,
                    local_generation,
                    peer_generation,
                    ..
                } => Some((*kept, view.clone(), *local_generation, *peer_generation)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let (k0, k1) = (brain(0), brain(1));
    assert_eq!(k0.len(), 1, "{k0:?}");
    assert_eq!(k1.len(), 1, "{k1:?}");
    assert!(!k0[0].0 && k1[0].0, "n1 keeps, n0 releases");
    assert_eq!((k0[0].2, k0[0].3), (k1[0].3, k1[0].2), "both sides' view");
    assert!(k1[0].1.contains("n1 keeps it"), "{}", k1[0].1);
    // The keeper announced at once and again after n0 released.
    s.run_for(MS(500));
    assert_eq!(s.nodes[1].announces[0], 2);
    assert_eq!(s.nodes[0].announces[0], 0);
    // In "last transitions" on both sides.
    for i in [0, 1] {
        let st = s.nodes[i].core.as_ref().unwrap().status();
        assert!(
            st.transitions.iter().any(|t| t
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("split brain healed"))),
            "n{i}: {:?}",
            st.transitions
        );
    }
}

#[test]
fn keeper_reannounces_even_when_the_other_side_heard_first_and_is_already_stopping() {
    let mut s = Sim::new(config(2, 1, &[("web", 0)]));
    s.run_for(MS(500));
    s.partition(&[0], &[1]);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owners(0), vec![0, 1]);
    // n0 hears n1 first, yields and is stopping before n1 hears anything of it.
    s.cut[0][1][0] = false;
    s.run_until(MS(500), |s| {
        s.nodes[0]
            .core
            .as_ref()
            .is_some_and(|c| c.status().groups[0].local != hbd::cluster::LocalGroupState::Running)
    })
    .expect("n0 yields");
    s.cut[0][0][1] = false;
    s.run_for(MS(500));
    assert_eq!(s.owners(0), vec![1]);
    // The keeper never saw n0 hold it (n0 was done before n1 heard it): the loser
    // records the split brain, and the keeper re-announces for the returning peer.
    assert!(
        s.events(0)
            .any(|e| matches!(e, Event::SplitBrain { kept: false, .. })),
        "the loser records the split brain"
    );
    assert_eq!(s.nodes[1].announces[0], 1, "the keeper re-announces");
}
