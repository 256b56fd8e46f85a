//! Issue 17's fencing "Done when", on real nodes (systemd in namespaces, the web group of
//! tests/lab/web/): a fence unit that fails, hangs, then succeeds — the takeover does not
//! happen, times out, then happens — each step asserted on `hbd status --json`; and a
//! failed stop with fencing configured ends with the group running on the peer.
//!
//! The fence unit is tests/lab/fence/lab-fence@.service; what it does is set by
//! /run/lab-fence/mode in the fencing node. `power` makes it ask this harness to power
//! the node off (`lab.sh kill9`: the node's processes die and its switch ports go
//! down), as an IPMI agent would.

mod lab;

use std::time::{Duration, Instant};

use lab::ctl::{hbd, peer, standby_blocked, status, wait_json};
use lab::web::*;
use lab::{Lab, Node, wait_until};
use serde_json::Value;

const FENCE_UNIT: &str = include_str!("lab/fence/lab-fence@.service");
const FENCE_AGENT: &str = include_str!("lab/fence/lab-fence");
/// fence_timeout of the lab cluster.
const FENCE_TIMEOUT: Duration = Duration::from_secs(2);

/// The web cluster with both nodes fenced by the lab fence unit, or n1 by the same
/// agent as a command (`n1_command`: run by hbd as a transient unit).
fn fenced_cluster(n1_command: bool) -> String {
    let n1 = if n1_command {
        "fence = { command = [\"/etc/hbd/lab-fence\", \"n1\"] }"
    } else {
        "fence = { unit = \"lab-fence@n1.service\" }"
    };
    let c = CLUSTER
        .replace(
            "hold_down = \"2s\"\n",
            "hold_down = \"2s\"\nfence_timeout = \"2s\"\n",
        )
        .replace(
            "address.b = \"10.98.0.1\"\n",
            &format!("address.b = \"10.98.0.1\"\n{n1}\n"),
        )
        .replace(
            "address.b = \"10.98.0.2\"\n",
            "address.b = \"10.98.0.2\"\nfence = { unit = \"lab-fence@n2.service\" }\n",
        );
    assert_eq!(c.matches("lab-fence").count(), 2, "{c}");
    c
}

fn setup(n: &Node) {
    n.install_unit("lab-fence@.service", FENCE_UNIT);
    n.write_file("/etc/hbd/lab-fence", FENCE_AGENT, 0o755);
    mode(n, "fail");
}

fn mode(n: &Node, m: &str) {
    n.write_file("/run/lab-fence/mode", m, 0o644);
}

fn fence_state(s: &Value, node: &str) -> String {
    peer(s, node)["fence"]["state"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn boot(tag: &str, n1_command: bool) -> Lab {
    web_lab(tag, &fenced_cluster(n1_command), setup)
}

/// Transient fence units (of commands) still starting.
fn fences_running(n: &Node) -> String {
    n.exec_ok(&[
        "systemctl",
        "list-units",
        "--plain",
        "--no-legend",
        "--state=activating",
        "hbd-fence-*",
    ])
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_fence_that_fails_hangs_then_succeeds() {
    if !lab::available("a_fence_that_fails_hangs_then_succeeds") {
        return;
    }
    let _s = serial();
    // n1 is fenced by a command, which hbd runs as a transient unit.
    let lab = boot("fnc", true);
    let n2 = lab.node("n2");
    assert_eq!(
        fence_state(&status(&n2), "n1"),
        "none",
        "nothing owed while n1 is up"
    );

    // Fails: n2 does not take the group, and says why.
    let t0 = Instant::now();
    lab.kill9("n1");
    let (s, _) = wait_json(&n2, "a failed fence of n1", Duration::from_secs(5), |s| {
        fence_state(s, "n1") == "failed"
    });
    eprintln!(
        "MEASURED n1 killed -> fence failed on n2: {:.2?}",
        t0.elapsed()
    );
    eprintln!(
        "hbd status on n2 (fence failed):\n{}",
        stdout_of(&n2, &["status"])
    );
    let f = &peer(&s, "n1")["fence"];
    assert_eq!(f["why"], "dead");
    assert!(
        f["reason"]
            .as_str()
            .unwrap()
            .starts_with("hbd-fence-n1-1.service ended failed"),
        "{f}"
    );
    assert!(f["retry_at"].is_string(), "{f}");
    let g = &s["groups"][0];
    assert_eq!(g["local_state"], "stopped");
    assert_eq!(g["holder"], Value::Null);
    assert_eq!(g["fence_wait"], "n1");
    assert!(
        g["reason"].as_str().unwrap().contains("fencing n1 failed"),
        "{g}"
    );
    assert!(!n2.has_addr(VIP_CIDR), "no takeover after a failed fence");
    assert_eq!(n2.unit_state(WEB), "inactive");
    assert!(n2.journal("hbd.service").contains("fencing n1 failed"));
    let o = hbd(&n2, &["fence-ack", "n2"]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "fence-ack of this node is refused"
    );

    // Hangs: the retry (after deadtime) is cut off at fence_timeout and the unit stopped.
    mode(&n2, "hang");
    let (s, _) = wait_json(&n2, "a pending fence", Duration::from_secs(3), |s| {
        fence_state(s, "n1") == "pending"
    });
    assert!(peer(&s, "n1")["fence"]["attempt_since"].is_string());
    assert!(
        fences_running(&n2).contains("hbd-fence-n1-"),
        "the agent hangs in its unit"
    );
    let t1 = Instant::now();
    let (s, _) = wait_json(
        &n2,
        "the fence timed out",
        FENCE_TIMEOUT + Duration::from_secs(2),
        |s| {
            peer(s, "n1")["fence"]["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("timed out after"))
        },
    );
    eprintln!(
        "MEASURED pending -> timed out: {:.2?} (fence_timeout {FENCE_TIMEOUT:?})",
        t1.elapsed()
    );
    assert_eq!(s["groups"][0]["local_state"], "stopped");
    wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
        fences_running(&n2).is_empty()
    })
    .expect("the hung fence unit was stopped");
    assert!(!n2.has_addr(VIP_CIDR));

    // Succeeds: the next retry fences n1 and n2 takes over.
    mode(&n2, "ok");
    let t2 = Instant::now();
    wait_served_by(&lab, "n2", Duration::from_secs(6)).expect("n2 serves after the fence");
    eprintln!("MEASURED fence ok -> n2 serves: {:.2?}", t2.elapsed());
    assert_group_up(&n2);
    let s = status(&n2);
    assert_eq!(fence_state(&s, "n1"), "fenced");
    assert_eq!(peer(&s, "n1")["fence"]["by_ack"], false);
    assert_eq!(s["groups"][0]["holder"], "n2");
    assert_eq!(s["groups"][0]["fence_wait"], Value::Null);
    let j = n2.journal("hbd.service");
    assert!(j.contains("n1 fenced"), "{j}");
    eprintln!(
        "hbd status --json on n2 at the end:\n{}",
        stdout_of(&n2, &["status", "--json"])
    );
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_failed_stop_with_fencing_ends_with_the_group_on_the_peer() {
    if !lab::available("a_failed_stop_with_fencing_ends_with_the_group_on_the_peer") {
        return;
    }
    let _s = serial();
    // n1 is fenced by the template unit.
    let lab = boot("fns", false);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    mode(&n2, "power");
    // A process keeps the mount busy, so the stop of the group fails on n1: blocked.
    standby_blocked(&n1);
    let t0 = Instant::now();
    // n2 escalates: its fence of n1 asks for the power-off.
    wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        n2.exec(&["test", "-e", "/run/lab-fence/request-n1"])
            .status
            .success()
    })
    .unwrap_or_else(|| {
        dump(&lab);
        panic!("n2 never fenced n1")
    });
    eprintln!(
        "MEASURED standby on n1 -> n2 fences n1: {:.2?}",
        t0.elapsed()
    );
    let s = status(&n2);
    assert_eq!(fence_state(&s, "n1"), "pending");
    assert_eq!(peer(&s, "n1")["fence"]["why"], "stop of web failed there");
    assert_eq!(s["groups"][0]["holder"], "n1");
    assert_eq!(s["groups"][0]["state"], "blocked");
    assert_eq!(s["groups"][0]["fence_wait"], "n1");
    assert!(
        !n2.has_addr(VIP_CIDR),
        "nothing starts before the fence completes"
    );
    lab.kill9("n1");
    n2.write_file("/run/lab-fence/off-n1", "", 0o644);
    let t1 = Instant::now();
    wait_served_by(&lab, "n2", Duration::from_secs(6)).expect("n2 serves after fencing n1");
    eprintln!("MEASURED n1 off -> n2 serves: {:.2?}", t1.elapsed());
    assert_group_up(&n2);
    let s = status(&n2);
    assert_eq!(fence_state(&s, "n1"), "fenced");
    assert_eq!(s["groups"][0]["holder"], "n2");
    assert_eq!(s["groups"][0]["state"], "running");
    assert_eq!(s["groups"][0]["reason"], "taken over: n1 was fenced");
    eprintln!(
        "hbd status on n2 at the end:\n{}",
        stdout_of(&n2, &["status"])
    );
}

fn stdout_of(n: &Node, args: &[&str]) -> String {
    String::from_utf8_lossy(&hbd(n, args).stdout).into_owned()
}
