//! Issue 20's "Done when": the Debian package, installed the way an admin migrating from
//! Heartbeat would, on two lab nodes with their own systemd.
//!
//! `dpkg -i` the built .deb (contrib/deb/build.sh) in both nodes — their /usr, /etc and /var
//! are private overlays (tests/lab/README.md), so nothing reaches the host — write a
//! legacy /etc/ha.d (the lab's Heartbeat baseline, tests/lab/heartbeat/), `hbd import` it,
//! copy the key, `systemctl enable --now hbd`, and assert on the nodes' real state: the
//! group runs on its preferred node, the journal carries NODE and GROUP, `man hbd` works,
//! reload works, a stop hands the group over, and `dpkg -r` leaves nothing running.

mod lab;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lab::web::{self, served_by, wait_served_by};
use lab::{Lab, Node, wait_until};

const HA_D: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/heartbeat");
const DEB_IN_NODE: &str = "/run/hbd-lab/hbd.deb";

/// The .deb of this build: target/debian/hbd_*.deb, made again (from the binary under
/// test, without building) when it is missing or older than that binary.
fn package() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_hbd"));
    let target = bin.parent().and_then(Path::parent).expect("target dir");
    let newest = |dir: &Path| {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with("hbd_") && name.ends_with(".deb")
            })
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
    };
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if let Some(deb) = newest(&target.join("debian")) {
        if modified(&deb) >= modified(bin) {
            return deb;
        }
    }
    let o = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/deb/build.sh"))
        .arg("--no-build")
        .output()
        .expect("run contrib/deb/build.sh");
    assert!(
        o.status.success(),
        "contrib/deb/build.sh --no-build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    newest(&target.join("debian")).expect("build.sh made no .deb")
}

/// Whether the host itself has the package (or its files): must not change.
fn host_has_hbd() -> (bool, bool) {
    let dpkg = Command::new("dpkg")
        .args(["-s", "hbd"])
        .output()
        .is_ok_and(|o| o.status.success());
    (
        dpkg,
        Path::new("/usr/share/hbd/cluster.schema.json").exists(),
    )
}

fn ha_d(name: &str) -> String {
    std::fs::read_to_string(Path::new(HA_D).join(name)).expect("tests/lab/heartbeat")
}

/// A checksum of everything under /etc/ha.d in the node.
fn ha_d_sum(n: &Node) -> String {
    n.sh_ok("find /etc/ha.d -type f | sort | xargs sha256sum")
}

/// Nothing of the group runs on `n`: no VIP, no web unit, no mount.
fn nothing_runs(n: &Node) {
    assert!(!n.has_addr(web::VIP_CIDR), "{}: VIP left", n.name());
    assert_ne!(n.unit_state(web::WEB), "active", "{}: web left", n.name());
    let mounted = n
        .exec(&["mountpoint", "-q", "/run/lab/www"])
        .status
        .success();
    assert!(!mounted, "{}: the group's tmpfs is still mounted", n.name());
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn the_package_installs_imports_heartbeat_fails_over_and_removes_cleanly() {
    if !lab::available("lab_package") {
        return;
    }
    let deb = package();
    let host_had_hbd = host_has_hbd();
    let lab = Lab::boot("pkg", 2);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));

    for n in [&n1, &n2] {
        // The legacy cluster, as Heartbeat left it (its package removed, /etc/ha.d kept).
        n.write_file("/etc/ha.d/ha.cf", &ha_d("ha.cf"), 0o644);
        n.write_file("/etc/ha.d/haresources", &ha_d("haresources"), 0o644);
        n.write_file("/etc/ha.d/authkeys", &ha_d("authkeys"), 0o600);
        for s in ["labmount", "labweb"] {
            n.write_file(&format!("/etc/ha.d/resource.d/{s}"), &ha_d(s), 0o755);
        }
        n.install_unit(web::WEB, web::WEB_UNIT);
    }
    let before = ha_d_sum(&n1);

    for n in [&n1, &n2] {
        // A container image's policy-rc.d (Docker's denies every action) would keep the
        // package's scripts from stopping hbd, and hide a start on install: a node is a
        // real host, so it goes (from the node's private /usr only).
        n.exec_ok(&["rm", "-f", "/usr/sbin/policy-rc.d"]);
        n.put(&deb, DEB_IN_NODE, 0o644);
        // On a host where Heartbeat is installed, the node sees it in its (private) dpkg
        // database: hbd's package conflicts with it, so remove it as an admin would.
        if n.exec(&["dpkg", "-s", "heartbeat"]).status.success() {
            n.exec_ok(&["dpkg", "-r", "heartbeat"]);
        }
        // --path-include: man pages even where dpkg is set up to leave them out.
        n.exec_ok(&["dpkg", "--path-include=/usr/share/man/*", "-i", DEB_IN_NODE]);
        // Installed, neither enabled nor started: there is no cluster.toml yet.
        assert_eq!(
            lab::stdout(&n.systemctl(&["is-enabled", "hbd"])),
            "disabled"
        );
        assert_eq!(n.unit_state("hbd"), "inactive");
        assert!(
            !n.exec(&["test", "-e", "/etc/hbd/cluster.toml"])
                .status
                .success()
        );
        // A start before the admin configured it is skipped, not failed.
        n.exec_ok(&["systemctl", "start", "hbd"]);
        assert_eq!(n.unit_state("hbd"), "inactive");
        assert_eq!(n.unit_property("hbd", "ConditionResult"), "no");
        // The package's own man page and the files it ships.
        let page = n.exec_ok(&["man", "-P", "cat", "hbd"]);
        assert!(page.contains("hbd-import"), "{page}");
        let page = n.exec_ok(&["man", "-P", "cat", "5", "cluster.toml"]);
        assert!(page.contains("deadtime"), "{page}");
        n.exec_ok(&["test", "-f", "/lib/systemd/system/hbd.service"]);
        n.exec_ok(&["test", "-f", "/usr/share/hbd/cluster.schema.json"]);
        n.exec_ok(&["test", "-f", "/usr/share/doc/hbd/examples/cluster.toml"]);
        n.exec_ok(&["test", "-f", "/usr/share/bash-completion/completions/hbd"]);
        // The journal catalog is indexed (systemd's trigger on /usr/lib/systemd/catalog):
        // `journalctl -x` explains hbd's records.
        let catalog = n.exec_ok(&["journalctl", "--list-catalog"]);
        assert!(
            catalog.contains("debffe5fc3214251b4619f03a685680a hbd: takeover of group"),
            "hbd's catalog is not indexed: {catalog}"
        );
    }
    // The host's package database and /usr did not see any of it.
    assert_eq!(
        host_has_hbd(),
        host_had_hbd,
        "dpkg -i in a node reached the host"
    );

    // Import on each node: the same cluster.toml byte for byte; the key is copied.
    for n in [&n1, &n2] {
        let o = n.exec(&[
            "hbd",
            "import",
            "/etc/ha.d",
            "--output",
            "/etc/hbd/cluster.toml",
        ]);
        let report = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{}: import: {report}", n.name());
        assert!(
            report.contains("stop Heartbeat"),
            "no word about Heartbeat: {report}"
        );
    }
    assert_eq!(
        n1.exec_ok(&["cat", "/etc/hbd/cluster.toml"]),
        n2.exec_ok(&["cat", "/etc/hbd/cluster.toml"])
    );
    let imported = n1.exec_ok(&["cat", "/etc/hbd/cluster.toml"]);
    let imported = hbd::config::parse_str(&imported, Path::new("cluster.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    // haresources' one line became one group, named after its first resource.
    assert_eq!(imported.groups.len(), 1);
    let group = imported.groups[0].name.clone();
    let key = n1.exec_ok(&["cat", "/etc/hbd/authkey"]);
    n2.write_file("/etc/hbd/authkey", &format!("{key}\n"), 0o600);
    for n in [&n1, &n2] {
        let check = n.exec_ok(&["hbd", "check"]);
        assert!(check.contains("host: ready"), "{}: {check}", n.name());
    }

    // Enable and start; --no-block: READY=1 needs the peer, which starts next.
    for n in [&n1, &n2] {
        n.exec_ok(&["systemctl", "enable", "--now", "--no-block", "hbd"]);
        n.watch_hbd();
    }
    let up = wait_served_by(&lab, "n1", Duration::from_secs(20));
    if up.is_none() {
        web::dump(&lab);
        panic!("the group did not come up on n1, its preferred node");
    }
    assert_eq!(
        lab::stdout(&n1.systemctl(&["is-enabled", "hbd"])),
        "enabled"
    );
    assert!(n1.has_addr(web::VIP_CIDR));
    nothing_runs(&n2);

    // Reload: hbd check, then SIGHUP; hbd keeps running and serving.
    n1.exec_ok(&["systemctl", "reload", "hbd"]);
    let reloaded = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        n1.journal("hbd.service").contains("configuration reloaded")
    });
    assert!(reloaded.is_some(), "{}", n1.journal("hbd.service"));
    assert_eq!(n1.unit_state("hbd"), "active");
    assert_eq!(served_by(&lab).as_deref(), Some("n1"));

    // A stop hands the group to the peer at once.
    n1.exec_ok(&["systemctl", "stop", "hbd"]);
    nothing_runs(&n1);
    if wait_served_by(&lab, "n2", Duration::from_secs(10)).is_none() {
        web::dump(&lab);
        panic!("n2 did not take the group over after hbd stopped on n1");
    }
    // The takeover in n2's journal, with the node and the group as fields.
    let journal = n2.exec_ok(&["journalctl", "-u", "hbd", "-o", "json", "--no-pager"]);
    let records: Vec<serde_json::Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let took = records.iter().any(|r| {
        r["NODE"] == "n2"
            && r["GROUP"] == group.as_str()
            && r["MESSAGE"]
                .as_str()
                .is_some_and(|m| m == format!("group {group} is running"))
    });
    let messages: Vec<String> = records
        .iter()
        .map(|r| format!("NODE={} GROUP={} {}", r["NODE"], r["GROUP"], r["MESSAGE"]))
        .collect();
    assert!(
        took,
        "no NODE=n2 GROUP={group} record of the takeover:\n{}",
        messages.join("\n")
    );

    // Removing the package stops hbd, and with it the group; Heartbeat's files stay.
    for n in [&n2, &n1] {
        n.unwatch_hbd();
        n.exec_ok(&["dpkg", "-r", "hbd"]);
        assert!(!n.exec(&["test", "-e", "/usr/sbin/hbd"]).status.success());
        assert_ne!(n.unit_state("hbd"), "active");
    }
    for n in [&n1, &n2] {
        nothing_runs(n);
        assert_eq!(ha_d_sum(n), before, "{}: /etc/ha.d changed", n.name());
    }
    assert!(served_by(&lab).is_none());
}
