//! Fencing in the core, on a fake clock: a takeover from a dead peer waits for its
//! fence; failure and timeout leave the group stopped and are retried; `fence-ack`
//! lets it proceed; a failed stop is escalated to a fence of the blocked node.
//! Timing: keepalive 100ms, deadtime 1s, initdead 2s; fences take 200ms here.

mod sim;

use std::time::Duration;

use hbd::cluster::{Command, CommandError, Event, GroupEvent, LocalGroupState, NodeId};
use hbd::config::{Config, Fence, HumanDuration};
use sim::{Outcome, Sim, build, builder};

const MS: fn(u64) -> Duration = Duration::from_millis;
const DEADTIME: Duration = Duration::from_secs(1);

/// `nodes` nodes, every one fenced by a unit, group web preferring n0.
fn fenced(nodes: usize, groups: &[(&str, usize)]) -> Config {
    build(
        builder(nodes, 1, groups)
            .fence_timeout(Duration::from_secs(2))
            .with(|c| {
                for (i, n) in c.nodes.iter_mut().enumerate() {
                    n.fence = Some(Fence::unit(format!("fence-test@n{i}.service")));
                }
            }),
    )
}

fn settled(c: Config) -> Sim {
    let mut s = Sim::new(c);
    s.run_for(MS(500));
    s
}

fn status(s: &Sim, i: usize) -> hbd::cluster::Status {
    s.nodes[i].core.as_ref().expect("running").status()
}

fn peer<'a>(st: &'a hbd::cluster::Status, name: &str) -> &'a hbd::cluster::PeerStatus {
    st.peers.iter().find(|p| p.name == name).expect("peer")
}

#[test]
fn takeover_waits_for_a_successful_fence() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    assert_eq!(s.owner(0), 0);
    assert!(
        s.nodes[1].fences.is_empty(),
        "nobody is fenced while all are up"
    );
    s.crash(0);
    let took = s
        .run_until(Duration::from_secs(5), |s| s.nodes[1].up[0])
        .expect("takeover");
    // Deadtime, then the 200ms fence, then the start.
    assert!(
        took >= DEADTIME + MS(100),
        "the start waited for the fence: {took:?}"
    );
    assert_eq!(s.nodes[1].fences, vec![(0, 1)]);
    let ev: Vec<&Event> = s.events(1).collect();
    let fenced_at = ev
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::Fenced {
                    peer: NodeId(0),
                    by_ack: false
                }
            )
        })
        .expect("Fenced event");
    let starting_at = ev
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::GroupState {
                    state: LocalGroupState::Starting,
                    ..
                }
            )
        })
        .expect("start");
    assert!(fenced_at < starting_at, "fenced before the start: {ev:?}");
    s.run_for(MS(200));
    assert_eq!(s.owner(0), 1);
    let st = status(&s, 1);
    let f = peer(&st, "n0").fence.as_ref().expect("fence state");
    assert_eq!(f.state, "fenced");
    assert!(!f.by_ack);
    assert_eq!(st.groups[0].fence_wait, None);
}

#[test]
fn a_failed_fence_leaves_the_group_stopped_and_is_retried_after_deadtime() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    s.nodes[1].fence_outcome.push_back(Outcome::Fail);
    s.crash(0);
    s.run_for(DEADTIME + MS(400));
    assert!(s.owners(0).is_empty(), "no start after a failed fence");
    let st = status(&s, 1);
    assert_eq!(st.groups[0].local, LocalGroupState::Stopped);
    assert_eq!(st.groups[0].fence_wait.as_deref(), Some("n0"));
    let why = st.groups[0].reason.clone().unwrap_or_default();
    assert!(
        why.contains("fencing n0 failed (scripted fence failure)"),
        "{why}"
    );
    assert!(why.contains("hbd fence-ack n0"), "{why}");
    let f = peer(&st, "n0").fence.clone().expect("fence state");
    assert_eq!(f.state, "failed");
    assert_eq!(f.reason.as_deref(), Some("scripted fence failure"));
    assert!(f.retry_in_ms.is_some_and(|ms| ms <= 1000));
    assert!(s.events(1).any(|e| matches!(e, Event::FenceFailed { .. })));
    let line = st.summary_line();
    assert!(line.contains("fence of n0 failed"), "{line}");
    // Retried after deadtime; the second attempt succeeds.
    s.run_until(Duration::from_secs(3), |s| s.nodes[1].up[0])
        .expect("takeover after the retry");
    assert_eq!(s.nodes[1].fences.len(), 2);
    assert_eq!(s.owner(0), 1);
}

#[test]
fn a_hung_fence_times_out_at_fence_timeout() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    s.nodes[1].fence_outcome.push_back(Outcome::Hang);
    s.nodes[1].fence_outcome.push_back(Outcome::Hang);
    s.crash(0);
    s.run_for(DEADTIME + MS(1900));
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").fence.as_ref().unwrap().state, "pending");
    assert_eq!(st.groups[0].fence_wait.as_deref(), Some("n0"));
    assert!(
        st.groups[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("waiting for n0 to be fenced")
    );
    s.run_for(MS(200));
    let st = status(&s, 1);
    let f = peer(&st, "n0").fence.clone().unwrap();
    assert_eq!(f.state, "failed");
    assert_eq!(f.reason.as_deref(), Some("timed out after 2s"));
    assert!(s.owners(0).is_empty());
    // Retried after deadtime (hangs again), then confirmed by hand.
    s.run_for(DEADTIME + MS(100));
    assert_eq!(s.nodes[1].fences.len(), 2);
    let r = s.op(1, Command::FenceAck { node: "n0".into() }).unwrap();
    let msg = r.expect("fence-ack accepted").message;
    assert!(msg.contains("n0 confirmed off"), "{msg}");
    s.run_for(MS(200));
    assert_eq!(s.owner(0), 1);
    let st = status(&s, 1);
    let f = peer(&st, "n0").fence.clone().unwrap();
    assert_eq!((f.state.as_str(), f.by_ack), ("fenced", true));
}

#[test]
fn fence_ack_refuses_what_it_cannot_confirm() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    let ack = |s: &mut Sim, node: &str| s.op(1, Command::FenceAck { node: node.into() }).unwrap();
    assert!(matches!(
        ack(&mut s, "nx"),
        Err(CommandError::UnknownNode(_))
    ));
    assert!(matches!(
        ack(&mut s, "n1"),
        Err(CommandError::FenceAckSelf { .. })
    ));
    let e = ack(&mut s, "n0").unwrap_err();
    assert!(matches!(e, CommandError::NoFenceOwed { .. }), "{e}");
    assert!(e.to_string().contains("nothing to confirm"), "{e}");
    assert_eq!(s.owner(0), 0, "a refusal changes nothing");
}

#[test]
fn only_the_node_that_takes_the_group_fences() {
    let mut s = settled(fenced(3, &[("web", 0)]));
    s.crash(0);
    s.run_for(DEADTIME + MS(800));
    assert_eq!(s.owner(0), 1);
    assert_eq!(s.nodes[1].fences.len(), 1);
    assert!(
        s.nodes[2].fences.is_empty(),
        "n2 ranks below n1: it does not fence"
    );
}

#[test]
fn a_peer_heard_again_during_its_fence_is_still_fenced() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    s.fence_delay = MS(500);
    s.freeze(0);
    s.run_until(Duration::from_secs(3), |s| !s.nodes[1].fences.is_empty())
        .expect("fence started");
    // n0 wakes up and is heard before the fence completes: the fence is completed.
    s.thaw(0);
    s.run_for(MS(100));
    s.run_until(Duration::from_secs(2), |s| s.nodes[1].up[0])
        .expect("takeover after the fence");
    assert!(s.nodes[0].core.is_none(), "n0 was powered off");
    s.run_for(MS(200));
    assert_eq!(s.owner(0), 1);
}

#[test]
fn a_peer_back_before_any_fence_is_owed_nothing() {
    // n1 holds nothing of n0's and has no reason to start: n0 is owed a fence while
    // dead, and owed nothing once heard again.
    let mut s = settled(fenced(2, &[("web", 1)]));
    s.freeze(0);
    s.run_for(DEADTIME + MS(200));
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").fence.as_ref().unwrap().state, "owed");
    s.thaw(0);
    s.run_for(MS(300));
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").fence, None);
    assert!(s.nodes[1].fences.is_empty());
    assert_eq!(s.owner(0), 1);
}

#[test]
fn a_peer_never_heard_at_start_up_is_fenced_before_its_groups_start() {
    let mut s = Sim::new(fenced(2, &[("web", 0)]));
    s.crash(0);
    s.run_for(Duration::from_secs(2) + MS(100));
    assert_eq!(s.nodes[1].fences.len(), 1, "startup fencing at initdead");
    assert!(s.owners(0).is_empty());
    s.run_for(MS(300));
    assert_eq!(s.owner(0), 1);
}

#[test]
fn a_failed_stop_is_escalated_to_a_fence_and_the_group_moves() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    s.nodes[0].stop_outcome[0].push_back(Outcome::Fail);
    s.group_event(
        0,
        0,
        GroupEvent::Failed {
            reason: "broken".into(),
        },
    );
    s.run_until(Duration::from_secs(1), |s| s.blocked(0, 0))
        .expect("n0 blocked");
    s.run_until(Duration::from_secs(3), |s| s.nodes[1].up[0])
        .expect("n1 takes the group after fencing n0");
    assert_eq!(s.nodes[1].fences, vec![(0, 1)]);
    assert!(s.nodes[0].core.is_none(), "n0 was powered off");
    assert!(s.events(1).any(|e| matches!(
        e,
        Event::FenceStarted { peer: NodeId(0), reason } if reason == "stop of web failed there"
    )));
    s.run_for(MS(200));
    assert_eq!(s.owner(0), 1);
    assert_eq!(s.worst_overlap, Duration::ZERO, "{:?}", s.worst_overlap);
}

#[test]
fn the_next_best_node_fences_a_blocked_one_in_a_three_node_cluster() {
    let mut s = settled(fenced(3, &[("web", 0)]));
    s.nodes[0].stop_outcome[0].push_back(Outcome::Fail);
    s.group_event(
        0,
        0,
        GroupEvent::Failed {
            reason: "broken".into(),
        },
    );
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 1);
    assert_eq!(s.nodes[1].fences.len(), 1);
    assert!(s.nodes[2].fences.is_empty());
}

#[test]
fn a_blocked_node_stays_blocked_when_its_fence_fails_until_fence_ack() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    s.nodes[0].stop_outcome[0].push_back(Outcome::Fail);
    s.nodes[1].fence_outcome.push_back(Outcome::Fail);
    s.nodes[1].fence_outcome.push_back(Outcome::Fail);
    s.group_event(
        0,
        0,
        GroupEvent::Failed {
            reason: "broken".into(),
        },
    );
    s.run_for(MS(800));
    assert!(s.blocked(0, 0));
    assert_eq!(s.owners(0), vec![0], "nobody starts a second copy");
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").fence.as_ref().unwrap().state, "failed");
    // The operator powered n0 off by hand and says so.
    s.fence_powers_off = false;
    s.crash(0);
    s.op(1, Command::FenceAck { node: "n0".into() })
        .unwrap()
        .expect("accepted");
    s.run_for(MS(200));
    assert_eq!(s.owner(0), 1);
}

#[test]
fn a_fenced_node_that_stays_up_is_ignored_until_it_restarts() {
    let mut s = settled(fenced(2, &[("web", 0)]));
    s.fence_powers_off = false;
    s.nodes[0].stop_outcome[0].push_back(Outcome::Fail);
    s.group_event(
        0,
        0,
        GroupEvent::Failed {
            reason: "broken".into(),
        },
    );
    s.run_for(Duration::from_secs(2));
    assert!(s.nodes[1].up[0], "n1 runs the group");
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").state, hbd::cluster::PeerState::Dead);
    // n0's daemon restarts (as after the reboot a real fence causes): believed again.
    s.crash(0);
    s.boot(0);
    s.run_for(MS(500));
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").state, hbd::cluster::PeerState::Up);
    assert_eq!(peer(&st, "n0").fence, None);
    assert_eq!(s.owner(0), 1);
}

#[test]
fn fence_timeout_per_node_overrides_the_default() {
    let mut c = fenced(2, &[("web", 0)]);
    c.nodes[0].fence.as_mut().unwrap().timeout = Some(HumanDuration::from_millis(500));
    let mut s = settled(c);
    s.nodes[1].fence_outcome.push_back(Outcome::Hang);
    s.crash(0);
    s.run_for(DEADTIME + MS(600));
    let st = status(&s, 1);
    let f = peer(&st, "n0").fence.clone().unwrap();
    assert_eq!(f.state, "failed");
    assert!(f.reason.unwrap().starts_with("timed out"));
}

#[test]
fn in_a_split_the_node_with_a_fence_delay_survives() {
    // Active-active: each node holds a group, so after a split each would fence the
    // other. n0's fence waits 1s: n1 is fenced first and n0 runs both groups.
    let mut c = fenced(2, &[("web", 0), ("db", 1)]);
    c.nodes[0].fence.as_mut().unwrap().delay = Some(HumanDuration::from_secs(1));
    let mut s = settled(c);
    s.partition(&[0], &[1]);
    // Both declare the other dead; n0's fence of n1 takes 200ms, n1 waits out n0's delay.
    s.run_for(DEADTIME + MS(120));
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").fence.as_ref().unwrap().state, "owed");
    assert!(
        st.groups[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("fence delay"),
        "{:?}",
        st.groups[0].reason
    );
    s.run_for(Duration::from_secs(2));
    assert!(s.nodes[1].core.is_none(), "n1 was fenced");
    assert!(s.nodes[0].core.is_some(), "n0 survived");
    assert_eq!(s.nodes[0].fences, vec![(1, 1)]);
    assert!(s.nodes[1].fences.is_empty(), "n1 never got to fence n0");
    assert_eq!(s.owner(0), 0);
    assert_eq!(s.owner(1), 0);
}

#[test]
fn stray_fence_results_change_nothing() {
    use hbd::cluster::FenceResult;
    let mut s = settled(fenced(2, &[("web", 0)]));
    let now = s.now;
    let c = s.nodes[1].core.as_mut().unwrap();
    // Unknown node, this node itself, a node nothing is owed of, a made-up attempt.
    for (node, attempt) in [(99, 1), (1, 1), (0, 1), (0, u64::MAX)] {
        c.handle_fence_result(now, NodeId(node), attempt, FenceResult::Fenced);
    }
    s.run_for(MS(500));
    let st = status(&s, 1);
    assert_eq!(peer(&st, "n0").fence, None);
    assert_eq!(peer(&st, "n0").state, hbd::cluster::PeerState::Up);
    assert_eq!(s.owner(0), 0);
}
