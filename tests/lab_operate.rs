//! Issue 16's "Done when", on real nodes: the operator commands between two lab nodes
//! running the web group (tests/lab/web/), every step asserted on `hbd status --json`
//! and on the nodes' real state. One lab for the whole story, to keep CI short:
//! standby, takeover, maintenance (a killed resource is not restarted; leaving
//! maintenance resumes monitoring), a config that differs, then a blocked group that
//! an operator cleans up and unblocks.

mod lab;

use std::time::{Duration, Instant};

use lab::ctl::{HBD, hbd, hbd_ok, peer, standby_blocked, status, wait_json};
use lab::wait_until;
use lab::web::*;
use serde_json::Value;

const POLICY: &str = include_str!("../units/org.hbd.Control1.conf");

fn group(s: &Value) -> &Value {
    &s["groups"][0]
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn operator_commands_between_two_nodes() {
    if !lab::available("operator_commands_between_two_nodes") {
        return;
    }
    let _s = serial();
    let lab = web_lab("ops", CLUSTER, |n| {
        n.write_file("/etc/dbus-1/system.d/org.hbd.Control1.conf", POLICY, 0o644);
        n.exec_ok(&["systemctl", "reload", "dbus.service"]);
    });
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));

    // Status, as a user sees it (the README shows this output).
    let s = status(&n1);
    assert_eq!(s["format"], 1);
    assert_eq!(group(&s)["holder"], "n1");
    assert_eq!(group(&s)["state"], "running");
    let res = group(&s)["resources"].as_array().unwrap();
    let states: Vec<(&str, &str)> = res
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![("ip", "present"), ("mount", "active"), ("unit", "active")]
    );
    assert_eq!(peer(&s, "n2")["state"], "up");
    assert_eq!(peer(&s, "n2")["links"].as_array().unwrap().len(), 2);
    eprintln!("hbd status on n1:\n{}", hbd_ok(&n1, &["status"]));
    eprintln!(
        "hbd status --json on n1:\n{}",
        hbd_ok(&n1, &["status", "--json"])
    );
    // The API is on the node's system bus as well.
    let intro = n1.exec_ok(&["busctl", "introspect", "org.hbd.Control1", "/org/hbd"]);
    assert!(
        intro.contains(".Takeover") && intro.contains(".StateChanged"),
        "{intro}"
    );
    // Anyone may read the status (over the bus: the socket is root's); changes are root's.
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        HBD,
    ];
    let o = n1.exec(&[&nobody[..], &["status", "--json"]].concat());
    assert!(
        o.status.success(),
        "status as nobody: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = n1.exec(&[&nobody[..], &["standby", "web"]].concat());
    assert_eq!(
        o.status.code(),
        Some(2),
        "standby as nobody is refused: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("standby as nobody: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("permission denied"));
    // StateChanged is signalled on the bus.
    n1.exec_ok(&[
        "systemd-run",
        "--unit=lab-sigmon",
        "sh",
        "-c",
        "exec dbus-monitor --system \"type='signal',interface='org.hbd.Control1'\" > /run/lab-signals",
    ]);
    let signals = || {
        n1.sh("cat /run/lab-signals")
            .stdout
            .escape_ascii()
            .to_string()
    };
    wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
        signals().contains("NameAcquired")
    })
    .expect("dbus-monitor listens");

    // Standby: n1 gives the group to n2 and waits for it to run there.
    let t0 = Instant::now();
    let out = hbd_ok(&n1, &["standby", "web"]);
    eprintln!(
        "MEASURED hbd standby web (n1 -> n2): {:.2?}\n{out}",
        t0.elapsed()
    );
    assert!(out.contains("web is running on n2"), "{out}");
    // Running as systemd says; the HTTP server may need a moment to answer.
    wait_served_by(&lab, "n2", Duration::from_secs(5)).expect("n2 serves");
    assert_group_down(&n1);
    let s = status(&n1);
    assert_eq!(group(&s)["admin"], "standby");
    assert_eq!(group(&s)["holder"], "n2");
    let s2 = status(&n2);
    assert_eq!(group(&s2)["holder"], "n2");
    assert_eq!(group(&s2)["reason"], "taken over: n1 released it");
    let seen = wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
        let s = signals();
        s.contains("member=StateChanged") && s.contains("owner of none; peers: n2 up")
    });
    assert!(seen.is_some(), "no StateChanged signal seen: {}", signals());
    n1.exec_ok(&["systemctl", "stop", "lab-sigmon.service"]);

    // Takeover: n1 asks for it back; n2 releases, n1 starts.
    let t0 = Instant::now();
    let out = hbd_ok(&n1, &["takeover", "web"]);
    eprintln!(
        "MEASURED hbd takeover web (n2 -> n1): {:.2?}\n{out}",
        t0.elapsed()
    );
    assert!(out.contains("web is running on n1"), "{out}");
    wait_served_by(&lab, "n1", Duration::from_secs(5)).expect("n1 serves");
    let s2 = status(&n2);
    let last = s2["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|t| t["to"] == "stopping");
    assert_eq!(
        last.map(|t| t["reason"].clone()),
        Some(Value::from("handed over to n1: takeover requested there"))
    );

    // Maintenance: a killed resource stays dead, and n2 keeps off.
    hbd_ok(&n1, &["maintenance", "on"]);
    wait_json(&n2, "n1 in maintenance", Duration::from_secs(2), |s| {
        peer(s, "n1")["maintenance"] == true
    });
    n1.exec_ok(&["systemctl", "kill", "--signal=KILL", WEB]);
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(n1.unit_state(WEB), "active", "nothing restarted it");
    let s = status(&n1);
    assert!(s["maintenance"].as_bool().unwrap());
    assert_eq!(group(&s)["local_state"], "running", "hbd changed nothing");
    assert_ne!(group(&s)["resources"][2]["state"], "active");
    assert_eq!(group(&status(&n2))["holder"], "n1", "n2 did not take it");
    assert_eq!(n2.unit_state(WEB), "inactive");
    let o = hbd(&n1, &["standby"]);
    assert_eq!(o.status.code(), Some(4), "refused in maintenance");
    assert!(String::from_utf8_lossy(&o.stderr).contains("maintenance mode is on"));
    // Leaving maintenance: the monitor sees the dead unit and restarts it in place.
    hbd_ok(&n1, &["maintenance", "off"]);
    let took = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        n1.unit_state(WEB) == "active"
    })
    .expect("monitoring resumed: the unit is restarted");
    eprintln!("MEASURED maintenance off -> {WEB} active again: {took:.2?}");
    wait_json(&n1, "unit active in status", Duration::from_secs(3), |s| {
        group(s)["resources"][2]["state"] == "active" && s["maintenance"] == false
    });
    wait_served_by(&lab, "n1", Duration::from_secs(5)).expect("n1 serves again");

    // A config that differs shows on both nodes within one keepalive (200 ms).
    let other = cluster().hold_down(Duration::from_secs(3)).to_toml();
    n2.write_file("/etc/hbd/cluster.toml", &other, 0o644);
    hbd_ok(&n2, &["reload"]);
    let t0 = Instant::now();
    for (n, p) in [(&n1, "n2"), (&n2, "n1")] {
        wait_json(n, "the other config", Duration::from_secs(2), |s| {
            peer(s, p)["config_differs"] == true
        });
    }
    eprintln!(
        "MEASURED reload of a different config -> both statuses show it: {:.2?} (includes two status calls)",
        t0.elapsed()
    );
    for n in [&n1, &n2] {
        let j = n.journal("hbd.service");
        assert_eq!(
            j.matches("runs a different cluster.toml").count(),
            1,
            "{}: logged once",
            n.name()
        );
    }
    let o = hbd(&n2, &["takeover", "web"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("runs a different cluster.toml"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    n2.write_file("/etc/hbd/cluster.toml", CLUSTER, 0o644);
    hbd_ok(&n2, &["reload"]);
    wait_json(&n1, "the same config again", Duration::from_secs(2), |s| {
        peer(s, "n2")["config_differs"] == false
    });

    // Blocked: a process keeps the mount busy, so the stop fails on n1.
    let err = standby_blocked(&n1);
    assert!(err.contains("blocked on n1"), "{err}");
    let s = status(&n1);
    assert_eq!(group(&s)["local_state"], "blocked");
    assert!(
        group(&s)["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("stop failed"),
        "{s}"
    );
    let o = hbd(&n2, &["takeover", "web"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is blocked on n1"));
    assert_eq!(
        n2.unit_state(WEB),
        "inactive",
        "n2 kept off the blocked group"
    );
    // The operator cleans up on n1, then unblocks: n1 is in standby, so n2 takes it.
    n1.exec_ok(&["systemctl", "stop", "lab-holder.service"]);
    n1.exec_ok(&["systemctl", "stop", MOUNT]);
    let _ = n1.exec(&["ip", "addr", "del", VIP_CIDR, "dev", "eth0"]);
    let out = hbd_ok(&n1, &["unblock", "web"]);
    eprintln!("{out}");
    wait_served_by(&lab, "n2", Duration::from_secs(10)).expect("n2 serves after the unblock");
    let s = status(&n1);
    assert_eq!(group(&s)["holder"], "n2");
    assert_eq!(group(&s)["local_state"], "stopped");
    eprintln!("hbd status on n1 at the end:\n{}", hbd_ok(&n1, &["status"]));
    eprintln!(
        "hbd status --json on n1 at the end:\n{}",
        hbd_ok(&n1, &["status", "--json"])
    );
}
