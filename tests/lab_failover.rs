//! Issue 4's "Done when", on real nodes: two lab nodes run hbd as hbd.service with the group
//! [VIP 10.99.0.100/24 on eth0, a tmpfs mount on /run/lab/www, lab-web.service serving HTTP
//! on the VIP from that mount] (tests/lab/web/). Every assertion is on the nodes' real state:
//! systemctl, ip addr, and the VIP answering HTTP from the client namespace.
//!
//! The tests run one at a time (a lock), as their timings are measured on a shared machine.

mod lab;

use std::time::{Duration, Instant};

use lab::wait_until;
use lab::web::*;

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn preferred_node_brings_the_group_up_in_order() {
    if !lab::available("preferred_node_brings_the_group_up_in_order") {
        return;
    }
    let _s = serial();
    let lab = web_lab("pre", CLUSTER, |_| {});
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    assert_group_up(&n1);
    assert_group_down(&n2);
    assert_eq!(n1.unit_state("hbd.service"), "active");
    assert_eq!(n2.unit_state("hbd.service"), "active");
    // The VIP carries hbd's label, so `ip addr` shows whose it is.
    let addrs = n1.exec_ok(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    eprintln!("n1 eth0: {addrs}");
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn kill9_of_the_owner_moves_the_group_within_deadtime() {
    if !lab::available("kill9_of_the_owner_moves_the_group_within_deadtime") {
        return;
    }
    let _s = serial();
    let lab = web_lab("kil", CLUSTER, |_| {});
    let t0 = Instant::now();
    lab.kill9("n1");
    let served = wait_served_by(&lab, "n2", DEADTIME + MARGIN + Duration::from_secs(10));
    let took = t0.elapsed();
    if served.is_none() {
        dump(&lab);
        panic!("n2 did not serve the VIP after kill -9 of n1");
    }
    eprintln!(
        "MEASURED kill -9 n1 -> VIP answering HTTP from n2: {:.0} ms (deadtime {} ms)",
        took.as_secs_f64() * 1000.0,
        DEADTIME.as_millis()
    );
    assert_group_up(&lab.node("n2"));
    // The time is printed, not asserted (a loaded machine stretches it): that detection
    // happens at deadtime is checked exactly on the simulated clock (tests/sim_scenarios.rs).
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn stopping_hbd_on_the_owner_stops_the_group_and_the_peer_takes_over() {
    if !lab::available("stopping_hbd_on_the_owner_stops_the_group_and_the_peer_takes_over") {
        return;
    }
    let _s = serial();
    let lab = web_lab("stp", CLUSTER, |_| {});
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let t0 = Instant::now();
    n1.exec_ok(&["systemctl", "stop", "hbd.service"]);
    eprintln!("systemctl stop hbd on n1 took {:.2?}", t0.elapsed());
    // When `systemctl stop` returns, the group is down on n1 ...
    assert_group_down(&n1);
    // ... and was stopped right to left: unit, then mount (then the VIP, already checked).
    assert!(
        mono(&n1, WEB, "InactiveEnterTimestampMonotonic")
            <= mono(&n1, MOUNT, "InactiveEnterTimestampMonotonic"),
        "n1: the mount stopped before the unit"
    );
    let served = wait_served_by(&lab, "n2", DEADTIME + MARGIN + Duration::from_secs(10));
    let took = t0.elapsed();
    if served.is_none() {
        dump(&lab);
        panic!("n2 did not take over after hbd stopped on n1");
    }
    eprintln!(
        "MEASURED systemctl stop hbd on n1 -> VIP answering HTTP from n2: {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
    assert_group_up(&n2);
    // The time is printed, not asserted (a loaded machine stretches it): that detection
    // happens at deadtime is checked exactly on the simulated clock (tests/sim_scenarios.rs).
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn restarting_hbd_on_the_owner_restarts_no_resource() {
    if !lab::available("restarting_hbd_on_the_owner_restarts_no_resource") {
        return;
    }
    let _s = serial();
    let lab = web_lab("adp", CLUSTER, |_| {});
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let before = (
        n1.unit_property(WEB, "InvocationID"),
        n1.unit_property(WEB, "ExecMainStartTimestampMonotonic"),
        n1.unit_property(MOUNT, "InvocationID"),
        n1.unit_property(WEB, "MainPID"),
    );
    let hbd_before = n1.unit_property("hbd.service", "InvocationID");
    n1.exec_ok(&["systemctl", "restart", "hbd.service"]);
    assert_ne!(
        n1.unit_property("hbd.service", "InvocationID"),
        hbd_before,
        "hbd did not restart"
    );
    // Watch for longer than initdead and deadtime: nothing moves, nothing restarts.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        assert!(
            !n2.has_addr(VIP_CIDR),
            "n2 took the VIP while hbd restarted on n1"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = (
        n1.unit_property(WEB, "InvocationID"),
        n1.unit_property(WEB, "ExecMainStartTimestampMonotonic"),
        n1.unit_property(MOUNT, "InvocationID"),
        n1.unit_property(WEB, "MainPID"),
    );
    assert_eq!(
        before, after,
        "a resource was restarted (InvocationID, start time, MainPID)"
    );
    assert_group_up(&n1);
    assert_eq!(served_by(&lab).as_deref(), Some("n1"));
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_crash_of_hbd_on_the_owner_restarts_no_resource() {
    if !lab::available("a_crash_of_hbd_on_the_owner_restarts_no_resource") {
        return;
    }
    let _s = serial();
    let lab = web_lab("crh", CLUSTER, |_| {});
    let n1 = lab.node("n1");
    let before = (
        n1.unit_property(WEB, "InvocationID"),
        n1.unit_property(MOUNT, "InvocationID"),
        n1.unit_property(WEB, "MainPID"),
    );
    let hbd_before = n1.unit_property("hbd.service", "InvocationID");
    // hbd dies; systemd restarts it (Restart=on-failure) and it finds its group running.
    n1.exec_ok(&["systemctl", "kill", "--signal=KILL", "hbd.service"]);
    let back = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
        n1.unit_state("hbd.service") == "active"
            && n1.unit_property("hbd.service", "InvocationID") != hbd_before
    });
    if back.is_none() {
        dump(&lab);
        panic!("systemd did not restart hbd after it was killed");
    }
    // Watch past initdead: the group stays on n1, untouched.
    std::thread::sleep(Duration::from_secs(4));
    let after = (
        n1.unit_property(WEB, "InvocationID"),
        n1.unit_property(MOUNT, "InvocationID"),
        n1.unit_property(WEB, "MainPID"),
    );
    if before != after {
        dump(&lab);
        panic!("a resource was restarted after hbd crashed: {before:?} -> {after:?}");
    }
    assert_group_up(&n1);
    assert_group_down(&lab.node("n2"));
    assert_eq!(served_by(&lab).as_deref(), Some("n1"));
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_unit_failing_on_takeover_is_rolled_back() {
    if !lab::available("a_unit_failing_on_takeover_is_rolled_back") {
        return;
    }
    let _s = serial();
    // On n2 the served unit cannot start.
    let lab = web_lab("rbk", CLUSTER, |n| {
        if n.name() == "n2" {
            n.write_file(
                "/run/systemd/system/lab-web.service.d/50-broken.conf",
                "[Service]\nExecStartPre=/bin/false\n",
                0o644,
            );
            n.exec_ok(&["systemctl", "daemon-reload"]);
        }
    });
    let n2 = lab.node("n2");
    lab.kill9("n1");
    // n2 tries: the unit fails, so the mount and the VIP it started are stopped again.
    // (hbd resets the failed unit at once and systemd may unload it: the unit's journal is
    // the lasting sign that it was started.)
    let tried = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        n2.journal(WEB).contains("Failed to start")
    });
    if tried.is_none() {
        dump(&lab);
        panic!("n2 never tried to start the group after n1 died");
    }
    let rolled_back = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        !n2.has_addr(VIP_CIDR) && n2.unit_state(MOUNT) != "active"
    });
    if rolled_back.is_none() {
        dump(&lab);
        panic!("n2 kept the VIP or the mount after the unit failed");
    }
    assert_ne!(n2.unit_state(WEB), "active");
    assert!(served_by(&lab).is_none());
    // hbd says so, with the group and the unit named.
    let journal = n2.journal("hbd.service");
    let lower = journal.to_lowercase();
    assert!(
        lower.contains("group web")
            && lower.contains("lab-web.service")
            && lower.contains("fail")
            && lower.contains("roll"),
        "hbd's journal does not say the group failed:\n{journal}"
    );
    assert_eq!(
        n2.unit_state("hbd.service"),
        "active",
        "hbd itself must keep running"
    );
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_crashing_unit_restarts_in_place_then_the_group_moves() {
    if !lab::available("a_crashing_unit_restarts_in_place_then_the_group_moves") {
        return;
    }
    let _s = serial();
    let lab = web_lab("crs", CLUSTER, |_| {});
    let n1 = lab.node("n1");
    // cluster.toml: max_restarts = 2 within restart_window = 1m.
    for round in 1..=2 {
        let inv = n1.unit_property(WEB, "InvocationID");
        n1.exec_ok(&["systemctl", "kill", "--signal=KILL", WEB]);
        let again = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            let now = n1.unit_property(WEB, "InvocationID");
            now != inv && n1.unit_state(WEB) == "active"
        });
        if again.is_none() {
            dump(&lab);
            panic!("crash {round}: hbd did not restart {WEB} in place on n1");
        }
        eprintln!(
            "crash {round}: restarted in place after {:.2?}",
            again.unwrap()
        );
        assert!(
            wait_served_by(&lab, "n1", Duration::from_secs(5)).is_some(),
            "crash {round}: n1 does not serve again"
        );
        assert!(!lab.node("n2").has_addr(VIP_CIDR));
    }
    // One failure more than max_restarts: the group moves.
    n1.exec_ok(&["systemctl", "kill", "--signal=KILL", WEB]);
    let moved = wait_served_by(&lab, "n2", Duration::from_secs(15));
    if moved.is_none() {
        dump(&lab);
        panic!("the group did not move to n2 after the third crash");
    }
    eprintln!(
        "third crash: group moved to n2 after {:.2?}",
        moved.unwrap()
    );
    assert_group_down(&n1);
    assert_group_up(&lab.node("n2"));
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_returning_node_does_not_take_the_group_back() {
    if !lab::available("a_returning_node_does_not_take_the_group_back") {
        return;
    }
    let _s = serial();
    let lab = web_lab("ret", CLUSTER, |_| {});
    lab.kill9("n1");
    if wait_served_by(&lab, "n2", DEADTIME + MARGIN + Duration::from_secs(10)).is_none() {
        dump(&lab);
        panic!("n2 did not take over after kill -9 of n1");
    }
    // n1 boots again (fresh /etc and /var) and starts hbd: with auto_failback = false the
    // group stays where it is.
    lab.reboot("n1");
    let n1 = lab.node("n1");
    n1.install_unit(WEB, WEB_UNIT);
    n1.install_hbd(CLUSTER, AUTHKEY);
    n1.exec_ok(&["systemctl", "start", "hbd.service"]);
    let start = Instant::now();
    // initdead, then several deadtimes and the hold-down.
    while start.elapsed() < Duration::from_secs(6) {
        assert!(
            !n1.has_addr(VIP_CIDR),
            "n1 took the VIP back after {:.2?}",
            start.elapsed()
        );
        assert!(lab.node("n2").has_addr(VIP_CIDR), "n2 lost the VIP");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(n1.unit_state("hbd.service"), "active");
    assert_group_down(&n1);
    assert_group_up(&lab.node("n2"));
    assert_eq!(served_by(&lab).as_deref(), Some("n2"));
}
