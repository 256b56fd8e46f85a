//! Scripted scenarios for the membership/ownership core, on a fake clock.
//! Timing in every scenario: keepalive 100ms, warntime 300ms, deadtime 1s, initdead 2s.

mod sim;

use std::time::Duration;

use hbd::cluster::{Command, Event, Found, GroupEvent, LocalGroupState, PeerState};
use sim::{Outcome, Sim, build, builder, config};

const MS: fn(u64) -> Duration = Duration::from_millis;
const DEADTIME: Duration = Duration::from_secs(1);

fn settled_two() -> Sim {
    let mut s = Sim::new(config(2, 2, &[("web", 0)]));
    s.run_for(MS(500));
    s
}

#[test]
fn cold_start_gives_each_group_to_its_preferred_node() {
    let mut s = Sim::new(config(3, 2, &[("web", 0), ("db", 1), ("mail", 2)]));
    s.run_for(MS(500));
    assert_eq!(s.owner(0), 0);
    assert_eq!(s.owner(1), 1);
    assert_eq!(s.owner(2), 2);
    // Everyone heard everyone: ready well before initdead.
    for i in 0..3 {
        assert!(s.events(i).any(|e| *e == Event::Ready));
        let st = s.nodes[i].core.as_ref().unwrap().status();
        assert!(
            st.peers
                .iter()
                .all(|p| p.state == PeerState::Up && p.links_up == 2)
        );
    }
}

#[test]
fn a_lone_node_waits_initdead_then_takes_everything() {
    let mut s = Sim::new(config(2, 1, &[("web", 1)]));
    s.crash(1);
    s.run_for(MS(1900));
    assert!(s.owners(0).is_empty(), "nothing may start before initdead");
    s.run_for(MS(300));
    assert_eq!(s.owner(0), 0);
}

#[test]
fn owner_death_moves_the_group_within_deadtime() {
    let mut s = settled_two();
    assert_eq!(s.owner(0), 0);
    s.crash(0);
    let took = s
        .run_until(Duration::from_secs(5), |s| s.nodes[1].up[0])
        .expect("takeover");
    eprintln!("takeover started {took:?} after the owner died (deadtime {DEADTIME:?})");
    assert!(took >= DEADTIME - MS(110), "not before deadtime: {took:?}");
    assert!(took <= DEADTIME + MS(10), "within deadtime: {took:?}");
    s.run_for(MS(200));
    assert_eq!(s.owner(0), 1);
    assert!(s.events(1).any(|e| matches!(e, Event::PeerDead { .. })));
}

#[test]
fn one_lost_link_is_reported_but_moves_nothing() {
    let mut s = settled_two();
    s.set_link(0, 0, 1, false);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.owner(0), 0);
    assert_eq!(s.nodes[1].starts[0], 0);
    assert!(s.events(1).any(|e| matches!(e, Event::LinkDown { .. })));
    assert!(!s.events(1).any(|e| matches!(e, Event::PeerDead { .. })));
    let st = s.nodes[1].core.as_ref().unwrap().status();
    assert_eq!(st.peers[0].links_up, 1);
    s.set_link(0, 0, 1, true);
    s.run_for(MS(300));
    assert!(s.events(1).any(|e| matches!(e, Event::LinkUp { .. })));
}

#[test]
fn a_late_peer_is_warned_about_once_and_not_failed_over() {
    let mut s = settled_two();
    s.partition(&[0], &[1]);
    s.run_for(MS(600));
    s.heal();
    s.run_for(Duration::from_secs(3));
    let late = s
        .events(1)
        .filter(|e| matches!(e, Event::PeerLate { .. }))
        .count();
    assert_eq!(late, 1);
    assert_eq!(s.owner(0), 0);
    assert_eq!(s.nodes[1].starts[0], 0);
}

#[test]
fn frozen_owner_is_replaced_and_yields_when_thawed() {
    let mut s = settled_two();
    s.freeze(0);
    s.run_for(Duration::from_secs(3));
    assert!(s.nodes[1].up[0], "survivor took over");
    assert!(s.nodes[0].up[0], "frozen node still has its resources");
    s.thaw(0);
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.owner(0), 1, "the newer takeover keeps the group");
    assert!(s.events(0).any(|e| matches!(e, Event::Stalled { .. })));
    assert!(
        s.events(0)
            .any(|e| matches!(e, Event::Conflict { release: true, .. }))
    );
    assert!(
        s.worst_overlap <= MS(300),
        "overlap after thaw {:?}",
        s.worst_overlap
    );
}

/// Found by tests/lab_chaos.rs: the frozen owner's socket holds the survivor's heartbeats
/// from while it tried to take over (Starting, a higher generation), although that start
/// failed (the frozen node's kernel still answers ARP for the VIP) and the survivor has
/// since given up. Read on thaw, those stale claims must not make the owner stop a group
/// that nobody else runs: fresh heartbeats are waited for first.
#[test]
fn a_thawed_owner_does_not_yield_to_a_takeover_that_failed_meanwhile() {
    let mut s = settled_two();
    // Every start on n2 fails, as its VIP probe finds the frozen owner's address.
    for _ in 0..10 {
        s.nodes[1].start_outcome[0].push_back(Outcome::Fail);
    }
    s.freeze(0);
    s.run_for(Duration::from_secs(3));
    assert!(s.nodes[1].starts[0] >= 1, "the survivor tried to take over");
    assert!(!s.nodes[1].up[0], "and failed");
    assert!(
        !s.nodes[0].queued.is_empty(),
        "stale heartbeats wait for the frozen node"
    );
    s.thaw(0);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 0, "the thawed owner keeps the group");
    assert!(
        !s.events(0)
            .any(|e| matches!(e, Event::Conflict { release: true, .. })),
        "the owner released the group to a stale claim: {:?}",
        s.events(0).collect::<Vec<_>>()
    );
    assert_eq!(s.nodes[0].starts[0], 1, "never stopped and started again");
}

#[test]
fn partition_heal_leaves_exactly_one_owner() {
    let mut s = settled_two();
    s.partition(&[0], &[1]);
    s.run_for(Duration::from_secs(3));
    assert_eq!(
        s.owners(0),
        vec![0, 1],
        "without quorum both sides serve (expected in a two-node partition)"
    );
    s.heal();
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.owner(0), 1, "newer generation keeps it");
    assert!(
        s.worst_overlap <= MS(300),
        "overlap after heal {:?}",
        s.worst_overlap
    );
}

#[test]
fn three_nodes_fail_over_down_the_rank() {
    // Five nodes, so that three remain after two crashes: a majority (quorum). With
    // three nodes the last one would have no quorum and start nothing (sim_defences).
    let mut s = Sim::new(config(5, 1, &[("web", 0)]));
    s.run_for(MS(500));
    assert_eq!(s.owner(0), 0);
    s.crash(0);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 1);
    s.crash(1);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 2);
}

#[test]
fn death_of_the_new_owner_while_it_starts_hands_over_again() {
    // Five nodes: the three left after two crashes still have quorum.
    let mut s = Sim::new(config(5, 1, &[("web", 0)]));
    s.run_for(MS(500));
    s.nodes[1].start_outcome[0].push_back(Outcome::Hang);
    s.crash(0);
    s.run_until(Duration::from_secs(3), |s| s.nodes[1].up[0])
        .expect("n1 starts");
    s.crash(1);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 2);
}

#[test]
fn death_of_the_old_owner_while_it_releases_waits_for_deadtime() {
    let mut s = settled_two();
    s.nodes[0].stop_outcome[0].push_back(Outcome::Hang);
    s.command(0, Command::Shutdown);
    s.run_for(MS(300));
    assert!(
        !s.nodes[1].up[0],
        "peer must wait while the owner is stopping"
    );
    s.crash(0);
    let t = s
        .run_until(Duration::from_secs(3), |s| s.nodes[1].up[0])
        .expect("takeover");
    assert!(t >= DEADTIME - MS(110));
}

#[test]
fn clean_shutdown_hands_over_without_waiting_for_deadtime() {
    let mut s = settled_two();
    s.command(0, Command::Shutdown);
    let t = s
        .run_until(Duration::from_secs(3), |s| s.nodes[1].up[0])
        .expect("handover");
    eprintln!("handover after shutdown took {t:?}");
    assert!(t < MS(300), "{t:?}");
    assert!(s.nodes[0].exited);
    assert!(!s.nodes[0].up[0]);
    assert!(s.events(1).any(|e| matches!(e, Event::PeerLeft { .. })));
    // The survivor does not declare the departed node dead later.
    s.run_for(Duration::from_secs(5));
    assert!(!s.events(1).any(|e| matches!(e, Event::PeerDead { .. })));
}

#[test]
fn shutdown_stops_groups_last_first() {
    let mut s = Sim::new(config(2, 1, &[("a", 0), ("b", 0), ("c", 0)]));
    s.run_for(MS(500));
    s.command(0, Command::Shutdown);
    s.run_for(Duration::from_secs(2));
    let order: Vec<usize> = s
        .events(0)
        .filter_map(|e| match e {
            Event::GroupState {
                group,
                state: LocalGroupState::Stopping,
            } => Some(group.0),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![2, 1, 0]);
    assert!(s.nodes[0].exited);
    assert_eq!((s.owner(0), s.owner(1), s.owner(2)), (1, 1, 1));
}

#[test]
fn start_failure_passes_the_group_on_and_holds_down() {
    let mut s = Sim::new(build(
        builder(2, 1, &[("web", 0)]).hold_down(Duration::from_secs(10)),
    ));
    s.nodes[0].start_outcome[0].push_back(Outcome::Fail);
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.owner(0), 1);
    assert!(s.events(0).any(|e| matches!(
        e,
        Event::GroupState {
            state: LocalGroupState::Failed,
            ..
        }
    )));
    // n1 dies inside the hold-down: n0 is eligible again only after it.
    s.crash(1);
    s.run_for(Duration::from_secs(3));
    assert!(
        s.owners(0).is_empty(),
        "failed node waits out its hold-down"
    );
    s.run_for(Duration::from_secs(8));
    assert_eq!(s.owner(0), 0);
}

#[test]
fn runtime_failure_moves_the_group() {
    let mut s = settled_two();
    s.group_event(
        0,
        0,
        GroupEvent::Failed {
            reason: "nginx died 4 times".into(),
        },
    );
    s.run_for(MS(500));
    assert_eq!(s.owner(0), 1);
}

#[test]
fn failed_stop_blocks_the_group_everywhere() {
    let mut s = settled_two();
    s.nodes[0].stop_outcome[0].push_back(Outcome::Fail);
    s.group_event(
        0,
        0,
        GroupEvent::Failed {
            reason: "broken".into(),
        },
    );
    s.run_for(Duration::from_secs(5));
    assert_eq!(
        s.owner(0),
        0,
        "resources may still be up on n0: nobody else may start"
    );
    let st = s.nodes[0].core.as_ref().unwrap().status();
    assert_eq!(st.groups[0].local, LocalGroupState::Blocked);
    assert!(
        st.summary_line().contains("web blocked"),
        "{}",
        st.summary_line()
    );
    assert_eq!(s.nodes[1].starts[0], 0);
}

#[test]
fn auto_failback_waits_for_the_hold_down() {
    let mut s = Sim::new(build(
        builder(2, 1, &[("web", 0)])
            .auto_failback(true)
            .hold_down(Duration::from_secs(5)),
    ));
    s.run_for(MS(500));
    s.crash(0);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 1);
    s.boot(0);
    s.run_for(Duration::from_secs(4));
    assert_eq!(s.owner(0), 1, "no failback inside the hold-down");
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 0, "failback after the hold-down");
}

#[test]
fn without_auto_failback_the_group_stays() {
    let mut s = settled_two();
    s.crash(0);
    s.run_for(Duration::from_secs(2));
    s.boot(0);
    s.run_for(Duration::from_secs(60));
    assert_eq!(s.owner(0), 1);
}

#[test]
fn daemon_restart_adopts_running_groups_without_restarting() {
    let mut s = settled_two();
    s.kill_daemon(0);
    s.run_for(MS(300));
    s.boot_adopting(0, &[0]);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.owner(0), 0);
    assert_eq!(s.nodes[0].starts[0], 1, "adopted, not restarted");
    assert_eq!(s.nodes[1].starts[0], 0);
    assert!(
        s.events(1)
            .any(|e| matches!(e, Event::PeerRestarted { .. }))
    );
}

#[test]
fn status_line_reads_well() {
    let s = settled_two();
    let line = s.nodes[0].core.as_ref().unwrap().status().summary_line();
    assert_eq!(line, "owner of web; peers: n1 up (2/2 links)");
    let line = s.nodes[1].core.as_ref().unwrap().status().summary_line();
    assert_eq!(line, "standing by; peers: n0 up (2/2 links)");
}

#[test]
fn a_start_whose_rollback_fails_blocks_the_group() {
    let mut s = Sim::new(config(2, 1, &[("web", 0)]));
    s.nodes[0].start_outcome[0].push_back(Outcome::Blocked);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.owner(0), 0, "partly up on n0: n1 must not start it");
    assert_eq!(s.nodes[1].starts[0], 0);
    let st = s.nodes[0].core.as_ref().unwrap().status();
    assert_eq!(st.groups[0].local, LocalGroupState::Blocked);
}

#[test]
fn leftovers_are_stopped_before_the_group_runs_anywhere() {
    let mut s = settled_two();
    s.kill_daemon(0);
    s.run_for(MS(300));
    // The new daemon finds web partly up: it stops the leftovers, then the group is
    // placed as usual (back on n0, its preferred node).
    s.boot_found(0, &[(0, Found::PartlyUp)]);
    assert!(
        s.events(0).any(|e| matches!(e, Event::Leftovers { .. })),
        "the leftovers are reported"
    );
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.nodes[1].starts[0], 0, "n1 waited for the cleanup");
    assert_eq!(s.owner(0), 0);
}

#[test]
fn leftovers_that_cannot_be_stopped_keep_the_group_blocked_after_a_restart() {
    let mut s = settled_two();
    s.kill_daemon(0);
    s.run_for(MS(300));
    s.nodes[0].stop_outcome[0].push_back(Outcome::Fail);
    s.boot_found(0, &[(0, Found::PartlyUp)]);
    s.run_for(Duration::from_secs(5));
    let st = s.nodes[0].core.as_ref().unwrap().status();
    assert_eq!(st.groups[0].local, LocalGroupState::Blocked);
    assert_eq!(s.nodes[1].starts[0], 0, "n1 waits while n0 is blocked");
}

#[test]
fn a_group_without_resources_is_never_adopted() {
    let mut c = hbd::cluster::Cluster::new(
        &config_with_empty_group(),
        hbd::cluster::NodeId(0),
        sim::keys(),
        1,
        std::time::Instant::now(),
    );
    c.found(hbd::cluster::GroupId(0), Found::AllUp);
    assert_eq!(c.status().groups[0].local, LocalGroupState::Stopped);
    c.found(
        hbd::cluster::GroupId(0),
        Found::Unknown {
            reason: "bus down".into(),
        },
    );
    assert_eq!(c.status().groups[0].local, LocalGroupState::Stopped);
}

fn config_with_empty_group() -> hbd::config::Config {
    use hbd::config::{Builder, Group, Link};
    build(
        Builder::new("e")
            .link(Link::udp_broadcast("l", "eth0"))
            .node("n0")
            .node("n1")
            .group(Group::new("empty", "n0")),
    )
}

#[test]
fn sigterm_of_a_restart_detaches_any_other_stop_releases() {
    let mut s = settled_two();
    s.command(0, Command::Stop { restart: true });
    assert!(s.nodes[0].exited, "a restart exits at once");
    assert!(s.nodes[0].up[0], "resources stay up for the next hbd");
    s.run_for(MS(400));
    s.boot_adopting(0, &[0]);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.nodes[0].starts[0], 1, "adopted, not restarted");
    s.command(0, Command::Stop { restart: false });
    s.run_for(Duration::from_secs(2));
    assert!(s.nodes[0].exited);
    assert!(!s.nodes[0].up[0], "a stop releases");
    assert_eq!(s.owner(0), 1, "and the peer takes over");
}

#[test]
fn detach_leaves_groups_running_for_the_next_daemon() {
    let mut s = settled_two();
    s.command(0, Command::Detach);
    assert!(s.nodes[0].exited, "exits at once");
    assert!(s.nodes[0].up[0], "resources stay up");
    s.run_for(MS(400));
    s.boot_adopting(0, &[0]);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.owner(0), 0);
    assert_eq!(s.nodes[0].starts[0], 1, "adopted, not restarted");
    assert_eq!(s.nodes[1].starts[0], 0, "the peer never took over");
}

/// The restart budget is the core's: a resource found down is restarted in place
/// `max_restarts` times within `restart_window` (3 in 5 minutes by default), the next
/// failure in the window moves the group; restarts older than the window no longer
/// count.
#[test]
fn resources_restart_in_place_within_the_budget_then_the_group_moves() {
    let mut s = settled_two();
    let down_then_wait = |s: &mut Sim| {
        s.group_event(
            0,
            0,
            GroupEvent::ResourceDown {
                resource: 0,
                reason: "web.service is not active".into(),
            },
        );
        s.run_for(Duration::from_secs(200));
    };
    // One failure every 200 s: the window (300 s) never holds more than two.
    for _ in 0..5 {
        down_then_wait(&mut s);
        assert_eq!(s.owner(0), 0);
    }
    assert_eq!(s.nodes[0].restarts[0], 5);
    s.nodes[0].restarts[0] = 0;
    s.run_for(Duration::from_secs(300));
    let down = |s: &mut Sim| {
        s.group_event(
            0,
            0,
            GroupEvent::ResourceDown {
                resource: 0,
                reason: "web.service is not active".into(),
            },
        );
        // A second report of the same failure while the restart runs is no new failure.
        s.group_event(
            0,
            0,
            GroupEvent::ResourceDown {
                resource: 0,
                reason: "web.service is not active".into(),
            },
        );
        s.run_for(MS(200));
    };
    for n in 1..=3 {
        down(&mut s);
        assert_eq!(s.nodes[0].restarts[0], n, "restart {n} in place");
        assert_eq!(s.owner(0), 0, "the group stays");
    }
    assert!(s.events(0).any(|e| matches!(
        e,
        Event::RestartInPlace {
            attempt: 3,
            max: 3,
            ..
        }
    )));
    // The budget is spent: one more failure now moves the group to n1.
    down(&mut s);
    assert_eq!(s.nodes[0].restarts[0], 3, "no fourth restart");
    assert!(
        s.events(0)
            .any(|e| matches!(e, Event::RestartBudgetSpent { restarts: 3, .. }))
    );
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 1);
    let st = s.nodes[0].core.as_ref().unwrap().status();
    assert_eq!(st.groups[0].local, LocalGroupState::Failed);
}

#[test]
fn a_failed_restart_in_place_moves_the_group() {
    let mut s = settled_two();
    s.group_event(
        0,
        0,
        GroupEvent::ResourceDown {
            resource: 0,
            reason: "down".into(),
        },
    );
    s.group_event(
        0,
        0,
        GroupEvent::RestartFailed {
            reason: "web.service failed to start".into(),
        },
    );
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.owner(0), 1);
}
