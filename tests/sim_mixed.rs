//! Mixed clusters in simulated time (issue 22): hbd cores speaking Heartbeat 3.0.6's
//! protocol and resource rules (`[migration] protocol = "heartbeat"`), as two converted
//! nodes do before the switch, and the switch itself. The real Heartbeat peer is in the
//! lab (tests/lab_migration.rs); what both sides send is checked against captured
//! Heartbeat traffic in tests/heartbeat_wire.rs.

mod sim;

use std::time::Duration;

use hbd::cluster::{Command, CommandError, Event};
use hbd::config::{Config, Migration, Protocol};
use sim::{Sim, build, builder};

/// Two nodes and two links speaking Heartbeat's protocol (authkeys
/// /etc/ha.d/authkeys), web preferring n0 and db n1.
fn migrating(auto_failback: bool) -> Config {
    build(
        builder(2, 2, &[("web", 0), ("db", 1)])
            .migration(Migration {
                protocol: Protocol::Heartbeat,
                authkeys: Some("/etc/ha.d/authkeys".into()),
            })
            .auto_failback(auto_failback),
    )
}

fn mixed(auto_failback: bool) -> Sim {
    let mut s = Sim::new(migrating(auto_failback));
    s.boot(0);
    s.boot(1);
    // Both starting at once: neither is stable until Heartbeat's RQSTDELAY passes.
    s.run_for(Duration::from_secs(12));
    s
}

fn legacy_lines(s: &Sim, i: usize) -> Vec<String> {
    s.events(i)
        .filter_map(|e| match e {
            Event::Legacy { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn each_node_takes_its_local_groups_and_nothing_overlaps() {
    let s = mixed(false);
    assert_eq!(s.owner(0), 0, "web prefers n0");
    assert_eq!(s.owner(1), 1, "db prefers n1");
    assert_eq!(s.worst_overlap, Duration::ZERO);
    let status = s.nodes[0].core.as_ref().unwrap().status();
    let db = status.groups.iter().find(|g| g.name == "db").unwrap();
    assert_eq!(
        db.owner.as_deref(),
        Some("n1"),
        "n0 sees what n1 holds: {status:?}"
    );
}

#[test]
fn a_dead_node_s_groups_are_taken_within_deadtime() {
    let mut s = mixed(false);
    s.crash(0);
    let took = s
        .run_until(Duration::from_secs(5), |s| s.owners(0) == vec![1])
        .expect("n1 takes web");
    assert!(
        took <= Duration::from_millis(1200),
        "deadtime 1s: took {took:?}"
    );
    // Back again with auto_failback off: web stays on n1.
    s.boot(0);
    s.run_for(Duration::from_secs(15));
    assert_eq!(s.owners(0), vec![1]);
    assert_eq!(s.owners(1), vec![1]);
    assert_eq!(s.worst_overlap, Duration::ZERO);
}

#[test]
fn auto_failback_gives_the_group_back_by_heartbeat_s_standby() {
    let mut s = mixed(true);
    s.crash(0);
    s.run_for(Duration::from_secs(3));
    assert_eq!(s.owners(0), vec![1]);
    s.boot(0);
    let back = s
        .run_until(Duration::from_secs(20), |s| s.owners(0) == vec![0])
        .expect("web goes back to n0");
    eprintln!("failback after {back:?}");
    assert_eq!(s.owners(1), vec![1], "db stays on n1");
    assert_eq!(s.worst_overlap, Duration::ZERO);
    let lines = legacy_lines(&s, 1).join("\n");
    assert!(lines.contains("auto_failback"), "{lines}");
}

#[test]
fn standby_moves_every_group_and_is_refused_per_group() {
    let mut s = mixed(false);
    let r = s.op(
        1,
        Command::Standby {
            group: Some("db".into()),
            force: false,
        },
    );
    assert!(matches!(r, Some(Err(CommandError::Mixed(_)))), "{r:?}");
    let r = s.op(
        1,
        Command::Takeover {
            group: None,
            force: false,
        },
    );
    assert!(matches!(r, Some(Err(CommandError::Mixed(_)))), "{r:?}");
    let r = s.op(
        1,
        Command::Standby {
            group: None,
            force: false,
        },
    );
    assert!(matches!(r, Some(Ok(_))), "{r:?}");
    s.run_until(Duration::from_secs(5), |s| s.owners(1) == vec![0])
        .expect("db moves to n0");
    assert_eq!(s.owners(0), vec![0]);
    assert_eq!(s.worst_overlap, Duration::ZERO);
    // And back: standby on n0 hands both to n1.
    s.run_for(Duration::from_secs(1));
    let r = s.op(
        0,
        Command::Standby {
            group: None,
            force: false,
        },
    );
    assert!(matches!(r, Some(Ok(_))), "{r:?}");
    s.run_until(Duration::from_secs(5), |s| {
        s.owners(0) == vec![1] && s.owners(1) == vec![1]
    })
    .expect("both move to n1");
    assert_eq!(s.worst_overlap, Duration::ZERO);
}

#[test]
fn a_clean_stop_hands_over_at_once() {
    let mut s = mixed(false);
    s.command(0, Command::Shutdown);
    let took = s
        .run_until(Duration::from_secs(5), |s| s.owners(0) == vec![1])
        .expect("n1 takes web");
    assert!(
        took < Duration::from_millis(600),
        "shutdone, not deadtime: {took:?}"
    );
    assert!(s.nodes[0].exited);
    assert_eq!(s.worst_overlap, Duration::ZERO);
}

#[test]
fn a_failed_group_moves_with_its_set() {
    let mut s = mixed(false);
    s.group_event(
        0,
        0,
        hbd::cluster::GroupEvent::Failed {
            reason: "scripted".into(),
        },
    );
    s.run_until(Duration::from_secs(15), |s| s.owners(0) == vec![1])
        .expect("web moves to n1");
    assert_eq!(s.worst_overlap, Duration::ZERO);
}

#[test]
fn switching_to_hbd_s_protocol_moves_nothing_and_the_peer_follows() {
    let mut s = mixed(false);
    assert!(
        s.nodes[1]
            .core
            .as_ref()
            .unwrap()
            .status()
            .heartbeat_protocol
    );
    let mut hbd = s.configs[0].clone();
    hbd.migration = Default::default();
    s.reload(0, hbd.clone()).expect("reload to protocol = hbd");
    s.run_for(Duration::from_secs(5));
    assert!(!s.nodes[0].core.as_ref().unwrap().speaks_heartbeat());
    assert!(
        !s.nodes[1].core.as_ref().unwrap().speaks_heartbeat(),
        "n1 follows n0"
    );
    assert!(
        !s.nodes[1]
            .core
            .as_ref()
            .unwrap()
            .status()
            .heartbeat_protocol
    );
    assert_eq!(s.owners(0), vec![0]);
    assert_eq!(s.owners(1), vec![1]);
    assert_eq!(s.nodes[0].starts[0], 1, "web was never restarted");
    assert_eq!(s.nodes[1].starts[1], 1, "db was never restarted");
    // hbd's protocol runs the cluster now: a crash is taken over as usual.
    s.configs[1] = hbd;
    s.crash(1);
    s.run_until(Duration::from_secs(5), |s| s.owners(1) == vec![0])
        .expect("n0 takes db over hbd's protocol");
    assert_eq!(s.worst_overlap, Duration::ZERO);
}

#[test]
fn replayed_heartbeat_packets_do_not_keep_a_dead_peer_alive() {
    use hbd::cluster::LinkId;
    let mut s = mixed(false);
    // n0's own statuses as it sent them (same key, uuid and generation as the sim's n0).
    let mut forger = speaker_as_n0(s.heartbeat.clone().unwrap(), 1_000_001);
    let old: Vec<Vec<u8>> = (0..20)
        .map(|_| forger.status("active", 1_700_000_000, "0.00").unwrap())
        .collect();
    s.crash(0);
    let start = s.now;
    let mut took = None;
    while s.now - start < std::time::Duration::from_secs(4) {
        s.run_for(Duration::from_millis(50));
        let now = s.now;
        if let Some(c) = s.nodes[1].core.as_mut() {
            for p in &old {
                let _ = c.handle_packet(now, LinkId(0), p);
            }
        }
        if took.is_none() && s.owners(0) == vec![1] {
            took = Some(s.now - start);
        }
    }
    let took = took.expect("n1 takes web despite the replays");
    assert!(took <= Duration::from_millis(1300), "took {took:?}");
}

// Authentic but arbitrary Heartbeat messages from the peer (a buggy or hostile node
// holding the key): the core never panics and keeps running.
proptest::proptest! {
    #![proptest_config(sim::proptest_config(64))]
    #[test]
    fn arbitrary_signed_messages_never_break_the_rules(
        msgs in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "starting", "resource", "ask_resources", "shutdone", "status",
                    "hb_takeover", "ip-request", "NS_rexmit", "NS_ackmsg", "weird",
                ]),
                proptest::sample::select(vec!["none", "local", "foreign", "all", "", "bogus"]),
                proptest::sample::select(vec!["me", "other", "done", "not", "", "x"]),
                proptest::sample::select(vec!["0", "1", "", "2"]),
                0u64..400,
            ),
            1..40,
        )
    ) {
        use hbd::cluster::LinkId;
        use hbd::proto::heartbeat::Message;
        let mut s = Sim::new(migrating(true));
        s.crash(0);
        s.boot(1);
        let mut peer = speaker_as_n0(s.heartbeat.clone().unwrap(), 5);
        for (t, hold, info, stable, wait) in msgs {
            let mut m = Message::new();
            m.push_str("t", t).unwrap();
            if !hold.is_empty() { m.push_str("rsc_hold", hold).unwrap(); }
            if !info.is_empty() { m.push_str("info", info).unwrap(); }
            if !stable.is_empty() { m.push_str("isstable", stable).unwrap(); }
            if t == "status" { m.push_str("st", "active").unwrap(); }
            let bytes = peer.message(m, 1_700_000_000, "0.00").unwrap();
            let now = s.now;
            if let Some(c) = s.nodes[1].core.as_mut() {
                let _ = c.handle_packet(now, LinkId(0), &bytes);
            }
            s.run_for(Duration::from_millis(wait));
        }
        // Past initdead: ready even if no message made n0 look alive.
        s.run_for(Duration::from_secs(3));
        let c = s.nodes[1].core.as_ref();
        proptest::prop_assert!(c.is_some_and(|c| c.is_ready()), "n1 stopped or never got ready");
    }
}

/// A Heartbeat speaker in n0's name and uuid, of `generation` (the sim's first n0 is
/// 1_000_001), signing with `ring`.
fn speaker_as_n0(
    ring: hbd::proto::heartbeat::Keyring,
    generation: u64,
) -> hbd::proto::heartbeat::speaker::Speaker {
    use hbd::proto::heartbeat::speaker::{Identity, Speaker};
    let id = Identity {
        node: "n0".into(),
        uuid: [0; 16],
        generation,
        deadtime_ms: 1000,
        ttl: 3,
        nodes: vec!["n0".into(), "n1".into()],
    };
    Speaker::new(id, ring)
}

#[test]
fn statuses_after_a_shutdown_notice_are_no_sign_of_life() {
    use hbd::cluster::{LinkId, PeerState};
    let mut s = mixed(false);
    // What Heartbeat does after `t=shutdone`: statuses with new sequence numbers of the
    // same generation, for a few seconds, until it exits.
    let mut hb = speaker_as_n0(s.heartbeat.clone().unwrap(), 1_000_001);
    let tail: Vec<Vec<u8>> = (0..600)
        .map(|_| hb.status("active", 1_700_000_000, "0.00").unwrap())
        .skip(580)
        .collect();
    s.command(0, Command::Shutdown);
    s.run_until(Duration::from_secs(5), |s| s.owners(0) == vec![1])
        .expect("n1 takes web at the shutdown notice");
    for p in &tail {
        let now = s.now;
        let c = s.nodes[1].core.as_mut().unwrap();
        let _ = c.handle_packet(now, LinkId(0), p);
        s.run_for(Duration::from_millis(100));
    }
    let st = s.nodes[1].core.as_ref().unwrap().status();
    let n0 = st.peers.iter().find(|p| p.name == "n0").unwrap();
    assert!(
        matches!(n0.state, PeerState::Left | PeerState::Dead),
        "n0 said shutdone: {:?}",
        n0.state
    );
}

#[test]
fn packets_in_the_peer_s_name_that_fail_authentication_hold_a_takeover_back() {
    use hbd::cluster::LinkId;
    use hbd::proto::heartbeat::{Keyring, Method};
    let mut s = Sim::new(migrating(false));
    // n0 runs with another authkeys: its packets arrive, none authenticates.
    let wrong = Keyring::new(1, vec![(1, Method::Sha1(b"another secret".to_vec()))]).unwrap();
    let mut n0 = speaker_as_n0(wrong, 1_000_001);
    s.crash(0);
    s.boot(1);
    for _ in 0..60 {
        let p = n0.status("active", 1_700_000_000, "0.00").unwrap();
        let now = s.now;
        let c = s.nodes[1].core.as_mut().unwrap();
        assert!(c.handle_packet(now, LinkId(0), &p).is_err());
        s.run_for(Duration::from_millis(100));
    }
    assert!(
        s.owners(0).is_empty() && s.owners(1).is_empty(),
        "in doubt, nothing starts"
    );
    let lines = legacy_lines(&s, 1).join("\n");
    assert!(lines.contains("fail authentication"), "{lines}");
    // They stop (n0 is really gone): after deadtime n1 takes everything.
    s.run_until(Duration::from_secs(3), |s| {
        s.owners(0) == vec![1] && s.owners(1) == vec![1]
    })
    .expect("n1 takes over once the forged packets stop");
}
