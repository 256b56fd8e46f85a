//! The lab itself works: nodes boot with their own systemd and bus, talk on both links, stay
//! isolated from each other and from the host, die alone, and leave nothing behind.

mod lab;

use std::process::Command;
use std::time::Duration;

use lab::{Lab, stdout, wait_until};

fn host(cmd: &str) -> String {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const PROBE: &str = "[Unit]\nDescription=lab probe\n[Service]\nExecStart=/bin/sleep infinity\n";

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn two_nodes_boot_isolated_and_clean_up() {
    if !lab::available("lab_smoke") {
        return;
    }
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap();
    let lab = Lab::boot("smk", 2);
    let id = lab.id().to_string();
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));

    // Each node runs its own systemd with its own bus, host name and machine id.
    for n in [&n1, &n2] {
        let state = stdout(&n.systemctl(&["is-system-running"]));
        assert!(
            state == "running" || state == "degraded",
            "{}: {state}",
            n.name()
        );
        n.exec_ok(&["busctl", "--system", "status"]);
        assert_eq!(n.exec_ok(&["hostname"]), n.name());
        assert_eq!(n.exec_ok(&["cat", "/proc/1/comm"]), "systemd");
    }
    let id1 = n1.exec_ok(&["cat", "/etc/machine-id"]);
    let id2 = n2.exec_ok(&["cat", "/etc/machine-id"]);
    assert_ne!(id1, id2);
    assert_ne!(id1, machine_id.trim());

    // Both links work between the nodes, and the client reaches both on net A.
    assert!(
        n1.exec(&["ping", "-c1", "-W1", &n2.addr_a()])
            .status
            .success()
    );
    assert!(
        n1.exec(&["ping", "-c1", "-W1", &n2.addr_b()])
            .status
            .success()
    );
    assert!(lab.ping(&n1.addr_a()) && lab.ping(&n2.addr_a()));
    assert!(
        n1.ip_addrs().contains(&"eth0 10.99.0.1/24".to_string()),
        "{:?}",
        n1.ip_addrs()
    );

    // A unit started in n1 exists only there.
    n1.install_unit("lab-probe.service", PROBE);
    n1.exec_ok(&["systemctl", "start", "lab-probe.service"]);
    assert_eq!(n1.unit_state("lab-probe.service"), "active");
    assert_ne!(n2.unit_state("lab-probe.service"), "active");
    assert_eq!(
        n2.unit_property("lab-probe.service", "LoadState"),
        "not-found"
    );
    let pid = n1.unit_property("lab-probe.service", "MainPID");
    assert_ne!(pid, "0");
    // Its cgroup is inside n1's own subtree (each node's systemd has its own cgroup root).
    let cg = n1.exec_ok(&["cat", &format!("/proc/{pid}/cgroup")]);
    assert!(cg.contains("0::/system.slice/lab-probe.service"), "{cg}");
    assert!(
        !std::path::Path::new("/run/systemd/system/lab-probe.service").exists(),
        "a node's unit reached the host"
    );

    // Faults: a partition cuts n1 from n2 on both links but not from the client; heal undoes it.
    lab.partition("n1", "n2");
    assert!(
        !n1.exec(&["ping", "-c1", "-W0.3", &n2.addr_a()])
            .status
            .success()
    );
    assert!(
        !n1.exec(&["ping", "-c1", "-W0.3", &n2.addr_b()])
            .status
            .success()
    );
    assert!(lab.ping(&n1.addr_a()));
    // ... ARP included: n1 cannot even resolve n2 (a VIP probe would get no answer).
    n1.exec_ok(&["ip", "neigh", "flush", "dev", "eth0"]);
    assert!(
        !n1.exec(&["ping", "-c1", "-W0.3", &n2.addr_a()])
            .status
            .success()
    );
    let neigh = n1.exec_ok(&["ip", "neigh", "show", &n2.addr_a()]);
    assert!(
        !neigh.contains("lladdr"),
        "n1 resolved n2 through a partition: {neigh}"
    );
    lab.heal();
    assert!(
        n1.exec(&["ping", "-c1", "-W1", &n2.addr_a()])
            .status
            .success()
    );
    // A cut link: eth1 down leaves eth0 working.
    lab.cut_link("n1", "eth1");
    assert!(
        !n1.exec(&["ping", "-c1", "-W0.3", &n2.addr_b()])
            .status
            .success()
    );
    assert!(
        n1.exec(&["ping", "-c1", "-W1", &n2.addr_a()])
            .status
            .success()
    );
    lab.restore_link("n1", "eth1");
    assert!(
        wait_until(Duration::from_secs(3), Duration::from_millis(100), || {
            n1.exec(&["ping", "-c1", "-W0.3", &n2.addr_b()])
                .status
                .success()
        })
        .is_some()
    );
    // Packet loss on heartbeats is an nftables rule in the node.
    lab.drop_percent("n2", 30);
    let rules = n2.exec_ok(&["nft", "list", "table", "inet", "hbdlab"]);
    assert!(
        rules.contains("udp dport 694") && rules.contains("< 30"),
        "{rules}"
    );
    lab.drop_percent("n2", 0);
    // A frozen node's systemd does not answer; thawed, it does.
    lab.freeze("n2");
    let o = Command::new("timeout")
        .args(["1", "sh", "-c"])
        .arg(format!(
            "{} exec {id} n2 systemctl is-system-running",
            lab::script("lab.sh").display()
        ))
        .output()
        .unwrap();
    assert!(!o.status.success(), "a frozen node answered systemctl");
    lab.thaw("n2");
    assert!(n2.systemctl(&["is-system-running"]).status.success());

    // A serial cable carries bytes from n1 to n2.
    let tty = lab.serial("n1", "n2");
    let reader = format!(
        "stty -F {tty} raw -echo; timeout 5 head -c 5 {tty} > /run/got 2>/dev/null </dev/null &"
    );
    n2.sh_ok(&reader);
    std::thread::sleep(Duration::from_millis(300));
    n1.sh_ok(&format!("stty -F {tty} raw -echo; printf hello > {tty}"));
    assert!(
        wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
            n2.exec_ok(&["cat", "/run/got"]) == "hello"
        })
        .is_some()
    );
    lab.cut_serial();

    // kill -9 of n1 takes down n1 alone.
    let pid1 = n1.pid().expect("n1 runs");
    lab.kill9("n1");
    assert!(!std::path::Path::new(&format!("/proc/{pid1}")).exists());
    assert!(n1.pid().is_none());
    assert!(n2.systemctl(&["is-system-running"]).status.success());
    assert!(lab.ping(&n2.addr_a()));
    assert!(!lab.ping(&n1.addr_a()), "a killed node still answers");
    // ... and it boots again.
    lab.reboot("n1");
    assert!(
        n1.exec(&["ping", "-c1", "-W1", &n2.addr_a()])
            .status
            .success()
    );
    // A clean shutdown.
    lab.shutdown("n2");
    assert!(n2.pid().is_none());

    drop(lab);

    // Nothing left behind, and the host's identity is untouched.
    assert_eq!(
        std::fs::read_to_string("/etc/machine-id").unwrap(),
        machine_id
    );
    let netns = host("ip netns list");
    assert!(!netns.contains(&format!("hbd-lab-{id}")), "{netns}");
    let mounts = host("findmnt -rn -o TARGET,SOURCE");
    assert!(!mounts.contains(&format!("hbd-lab/{id}")), "{mounts}");
    assert!(!std::path::Path::new(&format!("/tmp/hbd-lab/{id}")).exists());
    // No systemd of this lab survives (other labs may be running in parallel).
    for pid in host("pgrep -x systemd").split_whitespace() {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        assert!(
            !cg.contains(&format!("hbd-lab-{id}-")),
            "systemd {pid} left: {cg}"
        );
    }
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn heartbeat_loss_drops_the_asked_share() {
    if !lab::available("lab_smoke") {
        return;
    }
    let lab = Lab::boot("los", 2);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    lab.drop_percent("n2", 30);
    // 1000 datagrams to n2's heartbeat port on each link.
    let send = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         for i in range(1000):\n  s.sendto(b'x',('{}',694)); s.sendto(b'x',('{}',694))\n",
        n2.addr_a(),
        n2.addr_b()
    );
    n1.exec_ok(&["python3", "-c", &send]);
    let rules = n2.exec_ok(&["nft", "list", "chain", "inet", "hbdlab", "input"]);
    let dropped: u64 = rules
        .lines()
        .find(|l| l.contains("\"loss\""))
        .and_then(|l| l.split("packets ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no loss counter in {rules}"));
    eprintln!("30 % loss: {dropped} of 2000 heartbeat datagrams dropped");
    assert!((450..=750).contains(&dropped), "{dropped} of 2000 dropped");
    // Other traffic is untouched.
    assert!(
        n1.exec(&["ping", "-c3", "-i0.2", "-W1", &n2.addr_a()])
            .status
            .success()
    );
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn three_nodes_reach_each_other_on_both_links() {
    if !lab::available("lab_smoke") {
        return;
    }
    let lab = Lab::boot("tri", 3);
    for a in lab.nodes() {
        for b in lab.nodes().filter(|b| b.name() != a.name()) {
            for addr in [b.addr_a(), b.addr_b()] {
                assert!(
                    a.exec(&["ping", "-c1", "-W1", &addr]).status.success(),
                    "{} cannot reach {addr}",
                    a.name()
                );
            }
        }
    }
    // A partition between n1 and n2 leaves both reaching n3.
    lab.partition("n1", "n2");
    let (n1, n2, n3) = (lab.node("n1"), lab.node("n2"), lab.node("n3"));
    assert!(
        !n1.exec(&["ping", "-c1", "-W0.3", &n2.addr_a()])
            .status
            .success()
    );
    assert!(
        n1.exec(&["ping", "-c1", "-W1", &n3.addr_a()])
            .status
            .success()
    );
    assert!(
        n2.exec(&["ping", "-c1", "-W1", &n3.addr_b()])
            .status
            .success()
    );
}

/// The harness itself (issue 20): a binary under the host's /tmp (invisible inside a node)
/// runs there once installed, the node's /usr is its own, and a wait whose hbd exited with
/// an error gives up at once with the node's journal instead of running out its timeout.
#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn binaries_from_tmp_run_in_nodes_and_waits_fail_fast_when_hbd_exits() {
    if !lab::available("lab_smoke") {
        return;
    }
    let lab = Lab::boot("sff", 1);
    let n1 = lab.node("n1");
    // A copy of hbd under the host's /tmp, as in a checkout there.
    let tmp = tempfile::Builder::new()
        .prefix("hbd-lab-bin")
        .tempdir_in("/tmp")
        .unwrap();
    let bin = tmp.path().join("hbd");
    std::fs::copy(env!("CARGO_BIN_EXE_hbd"), &bin).unwrap();
    n1.put(&bin, "/usr/local/sbin/hbd-from-tmp", 0o755);
    assert!(
        n1.exec_ok(&["/usr/local/sbin/hbd-from-tmp", "--version"])
            .starts_with("hbd ")
    );
    assert!(
        !std::path::Path::new("/usr/local/sbin/hbd-from-tmp").exists(),
        "a file put into a node's /usr reached the host's"
    );

    // A cluster without this node: `hbd run` exits 1 at once (and again on each restart).
    use hbd::config::{Builder, Link, Node};
    let at = |n: u8| std::net::IpAddr::from([10, 99, 0, n]);
    let cluster = Builder::new("ff")
        .link(Link::udp_unicast("a"))
        .node_with(Node::new("x").address("a", at(1)))
        .node_with(Node::new("y").address("a", at(2)))
        .to_toml();
    n1.install_hbd(&cluster, "1 0123456789abcdef0123456789abcdef\n");
    n1.exec_ok(&["systemctl", "start", "--no-block", "hbd"]);
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
            false
        })
    }));
    let Err(panic) = waited else {
        panic!("the wait ran out its timeout although hbd had exited");
    };
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("hbd on n1") && msg.contains("exited with code 1"),
        "{msg}"
    );
    assert!(
        msg.contains("matches no node of the cluster"),
        "the journal is missing: {msg}"
    );
    // Opted out, the same wait just runs its course.
    n1.unwatch_hbd();
    assert!(wait_until(Duration::from_secs(2), Duration::from_millis(100), || false).is_none());
}
