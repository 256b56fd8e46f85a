//! Heartbeat faults on the lab's web cluster (tests/lab/web/): what must not cause a
//! failover (one link lost, moderate packet loss), that a frozen owner's VIP is never
//! duplicated, and that a healed cluster ends with exactly one owner (a frozen owner thawed,
//! a full partition healed).

mod lab;

use std::time::{Duration, Instant};

use hbd::config::{Link, Node};
use lab::web::*;
use lab::{Lab, wait_until};

/// Watch for `d`: n1 keeps the group, n2 never takes the VIP.
fn n1_keeps_the_group(lab: &Lab, d: Duration, why: &str) {
    let start = Instant::now();
    while start.elapsed() < d {
        if lab.node("n2").has_addr(VIP_CIDR) {
            dump(lab);
            panic!("{why}: n2 took the VIP after {:.2?}", start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served_by(lab).as_deref(), Some("n1"), "{why}");
}

/// Within `timeout`, exactly one node holds the VIP and serves it, and stays so for 2 s.
fn one_owner(lab: &Lab, timeout: Duration, why: &str) -> String {
    let owners = || -> Vec<String> {
        lab.nodes()
            .filter(|n| n.has_addr(VIP_CIDR))
            .map(|n| n.name().to_string())
            .collect()
    };
    let settled = wait_until(timeout, Duration::from_millis(200), || {
        owners().len() == 1 && served_by(lab).is_some()
    });
    if settled.is_none() {
        dump(lab);
        panic!("{why}: no single owner after {timeout:?}: {:?}", owners());
    }
    let owner = owners().remove(0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            owners(),
            vec![owner.clone()],
            "{why}: ownership changed again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served_by(lab).as_deref(), Some(owner.as_str()));
    for n in lab.nodes().filter(|n| n.name() != owner) {
        assert_group_down(&n);
    }
    owner
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn losing_one_of_two_links_is_not_a_failover() {
    if !lab::available("losing_one_of_two_links_is_not_a_failover") {
        return;
    }
    let _s = serial();
    let lab = web_lab("lnk", CLUSTER, |_| {});
    lab.cut_link("n1", "eth1");
    n1_keeps_the_group(&lab, DEADTIME * 4, "link b cut");
    lab.restore_link("n1", "eth1");
    n1_keeps_the_group(&lab, DEADTIME * 2, "link b restored");
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn thirty_percent_heartbeat_loss_is_not_a_failover() {
    if !lab::available("thirty_percent_heartbeat_loss_is_not_a_failover") {
        return;
    }
    let _s = serial();
    let lab = web_lab("lss", CLUSTER, |_| {});
    lab.drop_percent("n1", 30);
    lab.drop_percent("n2", 30);
    n1_keeps_the_group(&lab, DEADTIME * 6, "30 % loss both ways");
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_frozen_owner_is_not_duplicated_and_after_thaw_one_owner_remains() {
    if !lab::available("a_frozen_owner_is_not_duplicated_and_after_thaw_one_owner_remains") {
        return;
    }
    let _s = serial();
    let lab = web_lab("frz", CLUSTER, |_| {});
    lab.freeze("n1");
    // n2 hears nothing from n1 and declares it dead, but a frozen node's kernel still holds
    // the VIP and answers ARP for it: n2's ARP probe must find it in use and refuse, rather
    // than create a duplicate address on the network (issue 4, `ip`).
    let n2 = lab.node("n2");
    let start = Instant::now();
    while start.elapsed() < DEADTIME + MARGIN + Duration::from_secs(2) {
        if n2.has_addr(VIP_CIDR) {
            dump(&lab);
            panic!(
                "n2 added the VIP while frozen n1 still held it ({:.2?} after the freeze)",
                start.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.thaw("n1");
    let owner = one_owner(&lab, Duration::from_secs(15), "after thawing n1");
    eprintln!("after thaw: {owner} owns the group");
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_healed_partition_ends_with_one_owner() {
    if !lab::available("a_healed_partition_ends_with_one_owner") {
        return;
    }
    let _s = serial();
    let lab = web_lab("prt", CLUSTER, |_| {});
    lab.partition("n1", "n2");
    // The switch forwards nothing between them, ARP included: each side believes the other
    // dead and n2 starts the group too (split brain; the lab has no fencing).
    let n2 = lab.node("n2");
    if wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        n2.unit_state(WEB) == "active"
    })
    .is_none()
    {
        dump(&lab);
        panic!("n2 did not start the group while partitioned from n1");
    }
    lab.heal();
    let owner = one_owner(&lab, Duration::from_secs(15), "after the partition healed");
    eprintln!("after heal: {owner} owns the group");
}

/// The README's key rotation, on two running nodes under the real unit (which passes the
/// key as a systemd credential): add key 2 everywhere, sign with it everywhere, drop key
/// 1 everywhere, each step a reload one node at a time. Nothing moves, no peer is lost,
/// and after key 1 is gone both still hear each other (so both really sign with key 2).
#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn keys_rotate_across_the_cluster_without_a_failover() {
    if !lab::available("keys_rotate_across_the_cluster_without_a_failover") {
        return;
    }
    let _s = serial();
    let lab = web_lab("rot", CLUSTER, |_| {});
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let reload = |n: &lab::Node| {
        let o = n.exec(&["hbd", "reload"]);
        if !o.status.success() {
            dump(&lab);
            panic!(
                "{}: hbd reload failed: {}{}",
                n.name(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        n1_keeps_the_group(&lab, DEADTIME * 2, "after a reload");
    };
    // 1. Key 2 added on n1, the file copied to n2; both accept both keys.
    n1.exec_ok(&["hbd", "keygen", "--append", "--id", "2"]);
    let both = n1.exec_ok(&["cat", "/etc/hbd/authkey"]);
    assert_eq!(
        both.lines().filter(|l| !l.starts_with('#')).count(),
        2,
        "{both}"
    );
    n2.write_file("/etc/hbd/authkey", &format!("{both}\n"), 0o600);
    reload(&n1);
    reload(&n2);
    // 2. Sign with key 2, one node at a time.
    let with_key_2 = cluster().key_id(2).to_toml();
    for n in [&n1, &n2] {
        n.write_file("/etc/hbd/cluster.toml", &with_key_2, 0o644);
        reload(n);
    }
    // 3. Key 1 dropped everywhere: a node still signing with key 1 is no longer heard.
    let only_2: String = both
        .lines()
        .filter(|l| !l.starts_with("1 "))
        .map(|l| format!("{l}\n"))
        .collect();
    for n in [&n1, &n2] {
        n.write_file("/etc/hbd/authkey", &only_2, 0o600);
        reload(n);
    }
    n1_keeps_the_group(&lab, DEADTIME * 3, "after key 1 is gone");
    for n in [&n1, &n2] {
        let journal = n.journal("hbd.service");
        assert!(
            !journal.contains("is dead") && !journal.contains("unknown key"),
            "{}: {journal}",
            n.name()
        );
    }
}

/// A cloned node (issue 15, hole 4) on a real network: a third machine runs hbd as "n1"
/// of the web cluster (a copied VM, or hbd started by hand with `--node n1`), over
/// broadcast links so that it needs none of n1's addresses. Every daemon notices: n2
/// reports two daemons claiming n1, the original says a later copy appeared, the copy
/// says it yields. Nothing moves meanwhile: the group stays on n1, the copy starts
/// nothing, n2 takes nothing. When the copy stops, n2 says so.
#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_cloned_node_is_reported_everywhere_and_moves_nothing() {
    if !lab::available("a_cloned_node_is_reported_everywhere_and_moves_nothing") {
        return;
    }
    let _s = serial();
    // The web cluster over broadcast links (a clone needs no address of its own).
    let cluster = cluster()
        .with(|c| {
            c.links = vec![
                Link::udp_broadcast("a", "eth0"),
                Link::udp_broadcast("b", "eth1"),
            ];
            c.nodes = vec![Node::new("n1"), Node::new("n2")];
        })
        .to_toml();
    let lab = Lab::boot("cln", 3);
    let (n1, n2, n3) = (lab.node("n1"), lab.node("n2"), lab.node("n3"));
    for n in lab.nodes() {
        n.install_unit(WEB, WEB_UNIT);
        n.install_hbd(&cluster, AUTHKEY);
    }
    for n in [&n1, &n2] {
        n.exec_ok(&["systemctl", "start", "--no-block", "hbd.service"]);
    }
    if wait_served_by(&lab, "n1", Duration::from_secs(15)).is_none() {
        dump(&lab);
        panic!("the group did not come up on n1");
    }
    std::thread::sleep(INITDEAD);
    // The copy: n3's hbd runs as node n1.
    n3.write_file(
        "/run/systemd/system/hbd.service.d/clone.conf",
        "[Service]\nExecStart=\nExecStart=/usr/sbin/hbd run --node n1\n",
        0o644,
    );
    n3.exec_ok(&["systemctl", "daemon-reload"]);
    n3.exec_ok(&["systemctl", "start", "--no-block", "hbd.service"]);
    let said = |n: &lab::Node, what: &str| n.journal("hbd.service").contains(what);
    let reported = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        said(&n2, "two live daemons claim to be node n1")
            && said(
                &n1,
                "another live daemon claims to be this node and started later",
            )
            && said(
                &n3,
                "another live daemon claims to be this node and started earlier",
            )
    });
    if reported.is_none() {
        dump(&lab);
        eprintln!("--- n3\n{}", n3.journal("hbd.service"));
        panic!("the clone was not reported by all three daemons");
    }
    eprintln!("clone reported by n1, n2 and the copy within {reported:.2?}");
    // While the copy runs: the group stays on n1, the copy and n2 start nothing.
    let watch = Instant::now();
    while watch.elapsed() < DEADTIME * 3 {
        let wrong = if n3.has_addr(VIP_CIDR) || n3.unit_state(WEB) == "active" {
            Some("the copy started the group")
        } else if n2.has_addr(VIP_CIDR) {
            Some("n2 took the VIP")
        } else {
            None
        };
        if let Some(what) = wrong {
            dump(&lab);
            eprintln!("--- n3\n{}", n3.journal("hbd.service"));
            panic!("{what} {:.2?} after the copy was reported", watch.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served_by(&lab).as_deref(), Some("n1"));
    n3.exec_ok(&["systemctl", "stop", "hbd.service"]);
    if wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        said(&n2, "only one daemon claims to be node n1 again")
    })
    .is_none()
    {
        dump(&lab);
        panic!("n2 did not notice the copy was gone");
    }
    assert_eq!(served_by(&lab).as_deref(), Some("n1"));
}
