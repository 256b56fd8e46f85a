//! The lab's web cluster (tests/lab/web/): two nodes running hbd with the group
//! [VIP 10.99.0.100/24 on eth0, a tmpfs mount on /run/lab/www, lab-web.service serving HTTP
//! on the VIP from that mount], and assertions on the nodes' real state.

use std::sync::Mutex;
use std::time::Duration;

use super::{Lab, Node, wait_until};

pub const CLUSTER: &str = include_str!("web/cluster.toml");
pub const AUTHKEY: &str = include_str!("web/authkey");
pub const WEB_UNIT: &str = include_str!("web/lab-web.service");
pub const VIP_CIDR: &str = "10.99.0.100/24";
pub const URL: &str = "http://10.99.0.100:8080/";
pub const WEB: &str = "lab-web.service";
pub const MOUNT: &str = "run-lab-www.mount";
pub const DEADTIME: Duration = Duration::from_secs(1);
pub const INITDEAD: Duration = Duration::from_secs(2);
/// Detection takes up to deadtime plus a keepalive; then the VIP, the mount and a Python
/// HTTP server start on a machine whose two cores are shared.
pub const MARGIN: Duration = Duration::from_secs(2);

pub static SERIAL: Mutex<()> = Mutex::new(());

/// [`CLUSTER`] as a builder, for tests that run the lab's cluster with changes.
pub fn cluster() -> hbd::config::Builder {
    match hbd::config::parse_str(CLUSTER, std::path::Path::new("tests/lab/web/cluster.toml")) {
        Ok(loaded) => loaded.config.into(),
        Err(e) => panic!("{e}"),
    }
}

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A two-node lab running hbd on both nodes with `cluster` as cluster.toml; returns once
/// the group is served from n1.
pub fn web_lab(tag: &str, cluster: &str, setup: impl Fn(&Node)) -> Lab {
    let lab = Lab::boot(tag, 2);
    for n in lab.nodes() {
        n.install_unit(WEB, WEB_UNIT);
        n.install_hbd(cluster, AUTHKEY);
        // The binary under test runs inside the node and accepts the configuration there.
        n.exec_ok(&["hbd", "check"]);
        setup(&n);
    }
    let started = std::time::Instant::now();
    for n in lab.nodes() {
        n.exec_ok(&["systemctl", "start", "--no-block", "hbd.service"]);
    }
    let mut failed = None;
    let up = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
        failed = lab
            .nodes()
            .find(|n| {
                n.unit_state("hbd.service") == "failed"
                    || n.unit_property("hbd.service", "NRestarts")
                        .parse()
                        .unwrap_or(0)
                        >= 2
            })
            .map(|n| n.name().to_string());
        failed.is_some() || served_by(&lab).as_deref() == Some("n1")
    });
    if let Some(node) = failed {
        dump(&lab);
        panic!("hbd.service failed (or keeps restarting) on {node}");
    }
    if up.is_none() {
        dump(&lab);
        panic!("the group did not come up on n1 (preferred) within 15 s");
    }
    eprintln!("group up on n1 {:.2?} after starting hbd", up.unwrap());
    // Let both nodes leave initdead, so what a test measures is the steady state.
    if let Some(rest) = (INITDEAD + Duration::from_millis(500)).checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    lab
}

/// Which node answers on the VIP, if any.
pub fn served_by(lab: &Lab) -> Option<String> {
    let o = lab.client(&[
        "curl",
        "-sf",
        "--connect-timeout",
        "0.2",
        "--max-time",
        "0.5",
        URL,
    ]);
    o.status.success().then(|| super::stdout(&o))
}

pub fn dump(lab: &Lab) {
    for n in lab.nodes() {
        if n.pid().is_none() {
            eprintln!("--- {}: not running", n.name());
            continue;
        }
        eprintln!(
            "--- {}: hbd {}, {WEB} {}, {MOUNT} {}, addrs {:?}",
            n.name(),
            n.unit_state("hbd.service"),
            n.unit_state(WEB),
            n.unit_state(MOUNT),
            n.ip_addrs()
        );
        eprintln!("{}", n.journal("hbd.service"));
        eprintln!("{}", n.journal(WEB));
    }
}

pub fn mono(n: &Node, unit: &str, prop: &str) -> u64 {
    n.unit_property(unit, prop)
        .parse()
        .unwrap_or_else(|_| panic!("{}: {unit} {prop} is not a number", n.name()))
}

/// The group is fully up on `n`, and was started in order: VIP, then mount, then unit.
pub fn assert_group_up(n: &Node) {
    assert!(
        n.has_addr(VIP_CIDR),
        "{}: no VIP: {:?}",
        n.name(),
        n.ip_addrs()
    );
    assert_eq!(n.unit_state(MOUNT), "active", "{}: mount", n.name());
    assert_eq!(n.unit_state(WEB), "active", "{}: web unit", n.name());
    let fs = n.exec_ok(&["findmnt", "-n", "-o", "FSTYPE", "/run/lab/www"]);
    assert_eq!(fs, "tmpfs");
    // The unit started after the mount was up (its ExecStartPre also checks the mount point,
    // and binding to the VIP fails without the VIP).
    assert!(
        mono(n, MOUNT, "ActiveEnterTimestampMonotonic")
            <= mono(n, WEB, "ExecMainStartTimestampMonotonic"),
        "{}: the unit started before the mount",
        n.name()
    );
}

/// Nothing of the group is left on `n`.
pub fn assert_group_down(n: &Node) {
    assert!(!n.has_addr(VIP_CIDR), "{}: VIP still there", n.name());
    assert_ne!(n.unit_state(WEB), "active", "{}: web unit", n.name());
    assert_ne!(n.unit_state(MOUNT), "active", "{}: mount", n.name());
}

pub fn wait_served_by(lab: &Lab, node: &str, timeout: Duration) -> Option<Duration> {
    wait_until(timeout, Duration::from_millis(20), || {
        served_by(lab).as_deref() == Some(node)
    })
}
