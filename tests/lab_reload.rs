//! Issue 16's reload of groups and the standby that survives a restart of hbd, on two
//! real nodes (tests/lab/web/): a group added by a rolling reload in front of web (so
//! web's index moves), then removed again, with web never touched; then a standby that
//! stands after `systemctl restart hbd`. Asserted on `hbd status --json`, systemctl
//! and `ip addr` in the nodes.

mod lab;

use std::time::Duration;

use hbd::config::{Group, HumanDuration, Resource};
use lab::ctl::{hbd_ok, wait_json};
use lab::web::*;
use lab::{Node, wait_until};
use serde_json::Value;

const EXTRA: &str = "lab-extra.service";
const EXTRA_VIP: &str = "10.99.0.101/24";
const EXTRA_UNIT: &str =
    "[Unit]\nDescription=lab extra group\n[Service]\nExecStart=/bin/sleep infinity\n";

fn group<'a>(s: &'a Value, name: &str) -> Option<&'a Value> {
    s["groups"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["name"] == name))
}

fn names(s: &Value) -> Vec<String> {
    s["groups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The lab's cluster.toml with the extra group in front of web.
fn with_extra() -> String {
    let vip = EXTRA_VIP.parse().expect("EXTRA_VIP is an address/prefix");
    let extra = Group::new("extra", "n2")
        .resource(Resource::ip_on(vip, "eth0"))
        .unit(EXTRA);
    cluster().with(|c| c.groups.insert(0, extra)).to_toml()
}

fn reload(n: &Node, cluster: &str) -> String {
    n.write_file("/etc/hbd/cluster.toml", cluster, 0o644);
    let out = hbd_ok(n, &["reload"]);
    eprintln!("{}: hbd reload: {out}", n.name());
    out
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn reload_adds_and_removes_groups_and_standby_survives_a_restart() {
    if !lab::available("reload_adds_and_removes_groups_and_standby_survives_a_restart") {
        return;
    }
    let lab = web_lab("rld", CLUSTER, |n| n.install_unit(EXTRA, EXTRA_UNIT));
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let web_started = mono(&n1, WEB, "ExecMainStartTimestampMonotonic");

    // Add: n1 first (n2 does not know the group yet, so n1 places it), then n2.
    let out = reload(&n1, &with_extra());
    assert!(out.contains("added extra"), "{out}");
    wait_json(&n1, "extra running on n1", Duration::from_secs(5), |s| {
        group(s, "extra").is_some_and(|g| g["holder"] == "n1" && g["state"] == "running")
    });
    let out = reload(&n2, &with_extra());
    assert!(out.contains("added extra"), "{out}");
    for n in [&n1, &n2] {
        wait_json(n, "both groups, same file", Duration::from_secs(3), |s| {
            names(s) == ["extra", "web"]
                && group(s, "extra").is_some_and(|g| g["holder"] == "n1")
                && group(s, "web").is_some_and(|g| g["holder"] == "n1" && g["state"] == "running")
                && s["nodes"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|p| p["config_differs"] != true))
        });
    }
    assert_eq!(n1.unit_state(EXTRA), "active");
    assert!(n1.has_addr(EXTRA_VIP), "{:?}", n1.ip_addrs());
    assert_ne!(n2.unit_state(EXTRA), "active", "never on both");
    assert!(!n2.has_addr(EXTRA_VIP));

    // Remove: n2 first (it does not hold it: forgotten), then n1 (stopped, forgotten).
    let out = reload(&n2, CLUSTER);
    assert!(
        out.contains("removed extra") && !out.contains("stopping"),
        "{out}"
    );
    assert_eq!(
        n1.unit_state(EXTRA),
        "active",
        "n1 still has it in its file"
    );
    let out = reload(&n1, CLUSTER);
    assert!(out.contains("removed extra (stopping extra here)"), "{out}");
    let gone = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        n1.unit_state(EXTRA) != "active" && !n1.has_addr(EXTRA_VIP)
    });
    assert!(gone.is_some(), "extra stopped on n1");
    for n in [&n1, &n2] {
        wait_json(n, "web only", Duration::from_secs(3), |s| {
            names(s) == ["web"] && group(s, "web").is_some_and(|g| g["holder"] == "n1")
        });
        assert_ne!(n.unit_state(EXTRA), "active");
        assert!(!n.has_addr(EXTRA_VIP));
    }
    assert!(
        n1.journal("hbd.service")
            .contains("group extra, removed from cluster.toml, is stopped here and forgotten")
    );
    assert_eq!(
        mono(&n1, WEB, "ExecMainStartTimestampMonotonic"),
        web_started,
        "web was never restarted"
    );
    assert_group_up(&n1);

    // Standby on n1, then restart hbd there: the standby stands.
    let out = hbd_ok(&n1, &["standby", "web"]);
    assert!(out.contains("web is running on n2"), "{out}");
    let kept = n1.exec_ok(&["cat", "/var/lib/hbd/intent"]);
    assert!(kept.contains("standby web"), "{kept}");
    n1.exec_ok(&["systemctl", "restart", "hbd.service"]);
    wait_json(
        &n1,
        "standby after the restart",
        Duration::from_secs(10),
        |s| group(s, "web").is_some_and(|g| g["admin"] == "standby" && g["holder"] == "n2"),
    );
    assert!(
        n1.journal("hbd.service")
            .contains("standby of group web stands from before this start")
    );
    // Even as the last node left, n1 keeps off web (it would take it without the standby).
    n2.exec_ok(&["systemctl", "stop", "hbd.service"]);
    std::thread::sleep(DEADTIME + MARGIN);
    assert_group_down(&n1);
    // takeover ends the standby (and is kept too).
    let out = hbd_ok(&n1, &["takeover", "web"]);
    assert!(out.contains("web is running on n1"), "{out}");
    let kept = n1.exec_ok(&["cat", "/var/lib/hbd/intent"]);
    assert!(kept.contains("takeover web"), "{kept}");
    assert_group_up(&n1);

    // A changed resource (the unit's timeout) of the running group: restarted in place
    // on its holder from that resource on; the VIP and the mount stay as they are.
    n2.exec_ok(&["systemctl", "start", "hbd.service"]);
    wait_json(&n1, "n2 up again", Duration::from_secs(10), |s| {
        s["nodes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["name"] == "n2" && p["state"] == "up"))
    });
    let (unit_before, mount_before) = (
        mono(&n1, WEB, "ExecMainStartTimestampMonotonic"),
        mono(&n1, MOUNT, "ActiveEnterTimestampMonotonic"),
    );
    let changed = cluster()
        .with(|c| {
            for r in &mut c.groups[0].resources {
                if let Resource::Unit(u) = r {
                    u.timeout = HumanDuration::from_secs(11);
                }
            }
        })
        .to_toml();
    let out = reload(&n2, &changed);
    assert!(
        out.contains("new resources for web from its next start"),
        "{out}"
    );
    let out = reload(&n1, &changed);
    assert!(
        out.contains("restarting web in place (resources changed)"),
        "{out}"
    );
    let restarted = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        n1.unit_state(WEB) == "active"
            && mono(&n1, WEB, "ExecMainStartTimestampMonotonic") != unit_before
    });
    assert!(restarted.is_some(), "the unit was restarted");
    assert_eq!(
        mono(&n1, MOUNT, "ActiveEnterTimestampMonotonic"),
        mount_before
    );
    wait_served_by(&lab, "n1", Duration::from_secs(5)).expect("n1 serves the new unit");
    assert_group_up(&n1);
    assert_group_down(&n2);
}
