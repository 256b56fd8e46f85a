//! Reloading cluster.toml on the simulated network: groups added, removed (one in the
//! middle of the list) and changed during a rolling reload, refusals, and nodes whose
//! files differ in timing (issue 15, hole 5: they flapped each other dead/up).
//! Timing unless said otherwise: keepalive 100ms, warntime 300ms, deadtime 1s.

mod sim;

use std::time::Duration;

use hbd::cluster::{Event, GroupEvent, LocalGroupState, ReloadError, Status};
use hbd::config::{Builder, Config, Group};
use sim::{Outcome, Sim, build, builder, config};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn status(s: &Sim, i: usize) -> Status {
    s.nodes[i].core.as_ref().expect("node runs").status()
}

/// Two nodes, two links, the usual timing; groups (name, preferred node, unit).
fn builder2(groups: &[(&str, usize, &str)]) -> Builder {
    let mut b = builder(2, 2, &[]);
    for (g, pref, unit) in groups {
        b = b.group(Group::new(*g, format!("n{pref}")).unit(*unit));
    }
    b
}

fn two_nodes(groups: &[(&str, usize, &str)]) -> Config {
    build(builder2(groups))
}

fn moves(s: &Sim, i: usize) -> usize {
    s.events(i)
        .filter(|e| {
            matches!(
                e,
                Event::GroupState {
                    state: LocalGroupState::Starting | LocalGroupState::Stopping,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn a_rolling_reload_adds_and_removes_groups_and_moves_nothing_else() {
    let before = [
        ("web", 0, "web.service"),
        ("db", 1, "db.service"),
        ("mail", 0, "mail.service"),
    ];
    let mut s = Sim::new(two_nodes(&before));
    s.run_for(MS(2500));
    let (web, db, mail) = (s.group("web"), s.group("db"), s.group("mail"));
    assert_eq!((s.owner(web), s.owner(db), s.owner(mail)), (0, 1, 0));
    let starts = |s: &Sim| -> Vec<u32> { (0..2).flat_map(|i| s.nodes[i].starts.clone()).collect() };
    let (starts_before, moves_before) = (starts(&s), moves(&s, 0) + moves(&s, 1));

    // db (in the middle, held by n1) goes, queue (preferring n1) comes.
    let after = two_nodes(&[
        ("web", 0, "web.service"),
        ("mail", 0, "mail.service"),
        ("queue", 1, "queue.service"),
    ]);
    // n0 first: it did not hold db, so it forgets it; n1 does not know queue yet, so
    // n0 places it (different files: no deferring to n1's rank).
    let r = s.reload(0, after.clone()).expect("reload on n0");
    assert_eq!(
        (r.added, r.removed),
        (vec!["queue".to_string()], vec!["db".to_string()])
    );
    assert!(r.release.is_empty() && r.restart.is_empty());
    s.run_for(MS(300));
    let queue = s.group("queue");
    assert_eq!(s.owners(queue), vec![0]);
    assert_eq!(s.owners(db), vec![1], "n1 still runs db under its old file");
    assert!(status(&s, 0).peers[0].config_differs);
    // mail moved from index 2 to 1 on n0: its state followed it.
    let st = status(&s, 0);
    assert_eq!(st.groups[1].name, "mail");
    assert_eq!(st.groups[1].local, LocalGroupState::Running);
    assert_eq!(st.groups[0].local, LocalGroupState::Running);

    // Then n1: it releases db (stopped, then forgotten) and finds queue held by n0.
    let r = s.reload(1, after).expect("reload on n1");
    assert_eq!(r.release.len(), 1);
    assert_eq!(r.release[0].name, "db");
    assert_eq!(
        s.nodes[1].core.as_ref().unwrap().retiring(),
        vec![("db".to_string(), false)]
    );
    s.run_for(MS(500));
    assert!(s.owners(db).is_empty(), "db is stopped everywhere");
    assert!(s.nodes[1].core.as_ref().unwrap().retiring().is_empty());
    assert_eq!((s.owner(web), s.owner(mail), s.owner(queue)), (0, 0, 0));
    assert!(!status(&s, 0).peers[0].config_differs);
    // Nothing but queue started, nothing but db stopped.
    let now = starts(&s);
    assert_eq!(
        now.iter().sum::<u32>(),
        starts_before.iter().sum::<u32>() + 1
    );
    // The only transition: queue starting (db's stop is a retirement, not a state).
    assert_eq!(moves(&s, 0) + moves(&s, 1), moves_before + 1);
    assert_eq!(s.worst_overlap, Duration::ZERO);

    // A failure of mail (index 1 now) is mail's, not another group's.
    s.group_event(
        0,
        mail,
        GroupEvent::ResourceDown {
            resource: 0,
            reason: "died".into(),
        },
    );
    s.run_for(MS(200));
    assert_eq!(s.nodes[0].restarts[mail], 1);
    assert_eq!(s.nodes[0].restarts[web], 0);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.worst_overlap, Duration::ZERO);
}

#[test]
fn a_group_whose_resources_changed_restarts_in_place_on_its_holder() {
    let mut s = Sim::new(two_nodes(&[
        ("web", 0, "web.service"),
        ("db", 1, "db.service"),
    ]));
    s.run_for(MS(2500));
    let changed = two_nodes(&[("web", 0, "web2.service"), ("db", 1, "db2.service")]);
    let r = s.reload(0, changed.clone()).expect("reload n0");
    // Held here: restarted in place from the first resource that differs.
    assert_eq!(r.restart.len(), 1);
    assert_eq!((r.restart[0].1.0, r.restart[0].2), (0, 0));
    // db is not held here: its next start uses the new unit.
    assert_eq!(r.changed, vec!["db".to_string()]);
    let r = s.reload(1, changed).expect("reload n1");
    assert_eq!(r.restart.len(), 1);
    s.run_for(Duration::from_secs(3));
    assert_eq!((s.owner(0), s.owner(1)), (0, 1), "nothing moved");
    assert_eq!((s.nodes[0].restarts[0], s.nodes[1].restarts[1]), (1, 1));
    assert_eq!((s.nodes[0].starts[0], s.nodes[1].starts[1]), (1, 1));
    assert_eq!(status(&s, 0).groups[0].local, LocalGroupState::Running);
    assert_eq!(s.worst_overlap, Duration::ZERO);
}

#[test]
fn reloads_that_cannot_be_applied_say_why_and_change_nothing() {
    let groups = [("web", 0, "web.service"), ("db", 0, "db.service")];
    let mut s = Sim::new(two_nodes(&groups));
    s.run_for(MS(2500));
    let only_web = two_nodes(&[("web", 0, "web.service")]);
    let digest = status(&s, 0).digest;

    // db blocked here: removing it is refused.
    s.nodes[0].stop_outcome[1].push_back(Outcome::Fail);
    s.command(
        0,
        hbd::cluster::Command::Standby {
            group: Some("db".into()),
            force: false,
        },
    );
    s.run_for(MS(200));
    assert!(s.blocked(0, 1));
    let e = s.reload(0, only_web.clone()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "group db is blocked here and the new cluster.toml removes it: clean it up, run `hbd unblock db`, then reload"
    );
    assert_eq!(status(&s, 0).digest, digest);
    assert_eq!(status(&s, 0).groups.len(), 2);

    // A group starting here: reload once it has settled.
    let mut s = Sim::new(two_nodes(&groups));
    s.nodes[0].start_outcome[1].push_back(Outcome::Hang);
    s.run_for(MS(2500));
    let e = s.reload(0, only_web.clone()).unwrap_err();
    assert!(
        matches!(
            e,
            ReloadError::Busy {
                state: "starting",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "group db is starting here and the new cluster.toml removes it: reload again once it has settled"
    );

    // Nodes and links still need a restart.
    let three = config(3, 2, &[("web", 0)]);
    let e = s.reload(1, three).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the list of nodes changed: restart hbd on every node to apply it"
    );
    assert_eq!(status(&s, 1).groups.len(), 2);
}

#[test]
fn a_removed_group_whose_stop_fails_stays_claimed_until_unblocked() {
    let mut s = Sim::new(two_nodes(&[
        ("web", 0, "web.service"),
        ("db", 0, "db.service"),
    ]));
    s.run_for(MS(2500));
    let db = s.group("db");
    assert_eq!(s.owner(db), 0);
    s.nodes[0].stop_outcome[db].push_back(Outcome::Fail);
    let r = s
        .reload(0, two_nodes(&[("web", 0, "web.service")]))
        .unwrap();
    assert_eq!(r.release.len(), 1);
    s.run_for(MS(2000));
    assert_eq!(s.owners(db), vec![0], "its stop failed: still up on n0");
    assert_eq!(
        s.nodes[0].core.as_ref().unwrap().retiring(),
        vec![("db".to_string(), true)]
    );
    assert_eq!(
        status(&s, 0).removed,
        vec![hbd::cluster::RemovedStatus {
            name: "db".into(),
            blocked: true
        }]
    );
    // n1 still has db in its file, but n0 claims it blocked: n1 keeps off.
    assert_eq!(s.nodes[1].starts[db], 0);
    assert_eq!(status(&s, 1).groups[1].owner.as_deref(), Some("n0"));
    let o = s
        .op(0, hbd::cluster::Command::Unblock { group: "db".into() })
        .unwrap()
        .unwrap();
    assert!(o.message.contains("forgotten"), "{}", o.message);
    s.run_for(MS(500));
    assert!(s.nodes[0].core.as_ref().unwrap().retiring().is_empty());
}

#[test]
fn nodes_with_different_timing_never_flap_or_share_a_group() {
    // n1 beats every 1.5s (deadtime 5s); n0 would call it dead after 1s of silence.
    let secs = Duration::from_secs;
    let groups = [("web", 0, "web.service"), ("db", 1, "db.service")];
    let slow = build(builder2(&groups).timing(MS(1500), secs(3), secs(5), secs(10)));
    let mut s = Sim::with_configs(vec![two_nodes(&groups), slow]);
    s.run_for(Duration::from_secs(120));
    for i in 0..2 {
        let flaps = s
            .events(i)
            .filter(|e| {
                matches!(
                    e,
                    Event::PeerDead { .. } | Event::PeerLate { .. } | Event::LinkDown { .. }
                )
            })
            .count();
        assert_eq!(flaps, 0, "n{i} saw its peer late or dead");
        assert!(status(&s, i).peers[0].config_differs);
    }
    // One holder each (between different files, ties go to the name sorting first).
    for g in 0..2 {
        s.owner(g);
        assert_eq!(s.nodes[0].starts[g] + s.nodes[1].starts[g], 1);
    }
    assert_eq!(s.worst_overlap, Duration::ZERO);
    // A real death is still noticed, after the longer of both deadtimes (n1's 5s).
    let crashed = s.elapsed();
    s.crash(1);
    s.run_for(Duration::from_secs(10));
    let dead: Vec<Duration> = s.nodes[0]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::PeerDead { .. }))
        .map(|(t, _)| *t - crashed)
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0] >= Duration::from_millis(3500) && dead[0] <= MS(5100),
        "{dead:?}"
    );
}

#[test]
fn standby_kept_by_the_shell_stands_after_a_restart_of_hbd() {
    let mut s = Sim::new(two_nodes(&[("web", 0, "web.service")]));
    s.run_for(MS(2500));
    s.command(
        0,
        hbd::cluster::Command::Standby {
            group: Some("web".into()),
            force: false,
        },
    );
    s.run_for(MS(500));
    assert_eq!(s.owner(0), 1);
    let kept = s.nodes[0].core.as_ref().unwrap().intents();
    assert_eq!(
        kept,
        vec![("web".to_string(), hbd::cluster::Admin::Standby)]
    );
    // hbd on n0 restarts (crash, `systemctl restart`, reboot): the shell restores the
    // intent before the first timeout; n0 stays out even though web prefers it.
    s.kill_daemon(0);
    s.boot(0);
    let unknown = s.nodes[0].core.as_mut().unwrap().restore_intents(&kept);
    assert!(unknown.is_empty());
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.owner(0), 1);
    assert_eq!(s.nodes[0].starts[0], 1, "never started again on n0");
    assert_eq!(status(&s, 0).groups[0].admin, hbd::cluster::Admin::Standby);
    // A name no longer in cluster.toml is handed back for the log.
    let unknown = s.nodes[0]
        .core
        .as_mut()
        .unwrap()
        .restore_intents(&[("gone".to_string(), hbd::cluster::Admin::Wanted)]);
    assert_eq!(unknown, vec!["gone".to_string()]);
}

#[test]
fn crossed_preferred_nodes_in_different_files_settle_on_one_holder_with_failback() {
    let failback = |b: Builder| b.auto_failback(true).hold_down(Duration::from_secs(1));
    let a = build(failback(builder2(&[("web", 1, "web.service")])));
    let b = build(failback(builder2(&[("web", 0, "web.service")])));
    let mut s = Sim::with_configs(vec![a, b]);
    s.run_for(Duration::from_secs(30));
    s.owner(0);
    let starts = s.nodes[0].starts[0] + s.nodes[1].starts[0];
    assert_eq!(starts, 1, "no handing back and forth");
    assert_eq!(s.worst_overlap, Duration::ZERO);
}
