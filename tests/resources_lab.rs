//! The resource layer against a real systemd and real network namespaces.
//!
//! Each test boots its own lab (tests/lab) and drives `hbd::resource::Manager` inside a
//! node through the `resctl` example binary (run with nsenter), then asserts on the node's
//! real state: `systemctl is-active`, `ip addr`, `findmnt`, the journal, the client's ARP
//! cache. Lab tests need root; in CI they never skip.

mod lab;

use std::time::{Duration, Instant};

use hbd::config::{
    Builder, Group, HumanDuration, IpResource, MountResource, Resource, ScriptResource,
};
use lab::{Lab, Node, stdout, wait_until};

// The resctl example, compiled into this test binary: the binary runs itself inside a
// node (nsenter) with the arguments in HBD_RESCTL, so nothing else has to be built
// first. Its own `main` (harness = false, libtest-mimic) is what makes that possible
// without a fake test.
#[path = "../examples/resctl.rs"]
#[allow(dead_code)]
mod resctl;

const ARG_SEP: char = '\u{1f}';

/// Where [`setup`] copies this test binary in every node (a node cannot see the host's
/// /tmp and /run, where a checkout may live).
const IN_NODE_EXE: &str = "/usr/local/libexec/hbd-lab/resources_lab";

/// The command line that runs `resctl ARGS...` inside a node.
fn resctl_cmd(args: &[&str]) -> Vec<String> {
    vec![
        "env".into(),
        format!("HBD_RESCTL={}", args.join(&ARG_SEP.to_string())),
        IN_NODE_EXE.into(),
    ]
}

/// Every test of this file: lab tests, reported as ignored where they cannot run (not
/// root, outside CI; see build.rs), like the `#[cfg_attr(not(hbd_lab), ignore)]` of the
/// other lab test files.
const TESTS: &[(&str, fn())] = &[
    (
        "group_starts_in_order_and_stops_in_reverse",
        group_starts_in_order_and_stops_in_reverse,
    ),
    (
        "start_failure_rolls_back_in_reverse",
        start_failure_rolls_back_in_reverse,
    ),
    (
        "vip_is_announced_and_refused_when_in_use",
        vip_is_announced_and_refused_when_in_use,
    ),
    (
        "probe_wait_zero_adds_without_asking",
        probe_wait_zero_adds_without_asking,
    ),
    (
        "monitoring_restarts_in_place_then_reports_failure",
        monitoring_restarts_in_place_then_reports_failure,
    ),
    (
        "stop_is_not_a_failure_and_active_groups_are_adopted",
        stop_is_not_a_failure_and_active_groups_are_adopted,
    ),
    (
        "works_over_the_private_socket_without_a_bus",
        works_over_the_private_socket_without_a_bus,
    ),
    (
        "enabled_or_before_hbd_unit_is_warned_about",
        enabled_or_before_hbd_unit_is_warned_about,
    ),
    (
        "ipv6_vip_moves_with_unsolicited_neighbour_advertisements",
        ipv6_vip_moves_with_unsolicited_neighbour_advertisements,
    ),
    (
        "ipv6_vip_is_refused_when_in_use",
        ipv6_vip_is_refused_when_in_use,
    ),
    (
        "start_timeout_rolls_back_and_stops_the_slow_unit",
        start_timeout_rolls_back_and_stops_the_slow_unit,
    ),
    (
        "works_inside_the_hbd_service_sandbox",
        works_inside_the_hbd_service_sandbox,
    ),
    (
        "announcements_stop_when_the_vip_leaves",
        announcements_stop_when_the_vip_leaves,
    ),
];

fn main() {
    if let Ok(args) = std::env::var("HBD_RESCTL") {
        let mut argv = vec!["resctl".to_string()];
        argv.extend(args.split(ARG_SEP).map(str::to_string));
        std::process::exit(resctl::resctl_main(argv));
    }
    let args = libtest_mimic::Arguments::from_args();
    let trials = TESTS
        .iter()
        .map(|&(name, test)| {
            libtest_mimic::Trial::test(name, move || {
                test();
                Ok(())
            })
            .with_ignored_flag(!cfg!(hbd_lab))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

const CONF: &str = "/etc/hbd-test/cluster.toml";
const ORDER: &str = "/run/hbd-test-order";
const VIP: &str = "10.99.0.100";

/// A unit that records its start and stop in ORDER.
fn logging_unit(name: &str) -> String {
    format!(
        "[Unit]\nDescription=test unit {name}\n[Service]\n\
         ExecStartPre=/bin/sh -c 'echo start {name} >> {ORDER}'\n\
         ExecStart=/bin/sleep infinity\n\
         ExecStopPost=/bin/sh -c 'echo stop {name} >> {ORDER}'\n"
    )
}

/// A legacy script that records its actions in ORDER.
const SCRIPT: &str = "#!/bin/sh\necho \"script $*\" >> /run/hbd-test-order\necho \"legacy script called with $*\"\nexit 0\n";

/// The group "g" of one node "n1" (no link: resctl reads the file without the
/// cluster checks), restarting in place `max_restarts` times within 60s.
fn conf<const N: usize>(max_restarts: u32, resources: [Resource; N]) -> String {
    let mut g = Group::new("g", "n1").restarts(max_restarts, Duration::from_secs(60));
    for r in resources {
        g = g.resource(r);
    }
    Builder::new("lab").node("n1").group(g).to_toml()
}

/// An ip resource announced 3 times, 100ms apart.
fn ip_res_with(address: &str, f: impl FnOnce(&mut IpResource)) -> Resource {
    let mut r = IpResource {
        arp_count: 3,
        arp_interval: HumanDuration::from_millis(100),
        ..ip(address)
    };
    f(&mut r);
    Resource::Ip(r)
}

/// The defaults of an ip resource on `address`.
fn ip(address: &str) -> IpResource {
    match Resource::ip(address.parse().expect("address")) {
        Resource::Ip(r) => r,
        _ => unreachable!(),
    }
}

fn ip_res() -> Resource {
    ip_res_with(VIP, |_| {})
}

fn unit_res(unit: &str) -> Resource {
    Resource::unit(unit).with_timeout(Duration::from_secs(10))
}

fn mount_res() -> Resource {
    Resource::Mount(MountResource {
        what: "tmpfs".into(),
        r#where: "/srv/hbd data".into(),
        fstype: Some("tmpfs".into()),
        options: Some("size=1m,mode=0750".into()),
        timeout: HumanDuration::from_secs(10),
    })
}

fn script_res() -> Resource {
    Resource::Script(ScriptResource {
        path: "/etc/hbd-test/legacy".into(),
        args: vec!["r0".into()],
        timeout: HumanDuration::from_secs(10),
    })
}

const MOUNT_UNIT: &str = "srv-hbd\\x20data.mount";
const SCRIPT_UNIT: &str = "hbd-script-legacy::r0.service";

fn setup(node: &Node<'_>, config: &str) {
    let exe = std::env::current_exe().expect("current_exe");
    node.put(&exe, IN_NODE_EXE, 0o755);
    node.write_file(CONF, config, 0o644);
    node.write_file("/etc/hbd-test/legacy", SCRIPT, 0o755);
    node.install_unit("a.service", &logging_unit("a"));
    node.install_unit("b.service", &logging_unit("b"));
    node.install_unit(
        "bad.service",
        "[Unit]\nDescription=fails to start\n[Service]\nType=oneshot\nExecStart=/bin/false\n",
    );
}

/// Run `resctl CONF CMD g` in the node; (exit code, stdout, stderr).
fn ctl(node: &Node<'_>, cmd: &str) -> (i32, String, String) {
    let argv = resctl_cmd(&[CONF, cmd, "g"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let o = node.exec(&argv);
    (
        o.status.code().unwrap_or(-1),
        stdout(&o),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn order(node: &Node<'_>) -> Vec<String> {
    let o = node.exec(&["cat", ORDER]);
    stdout(&o).lines().map(str::to_string).collect()
}

fn findmnt(node: &Node<'_>) -> String {
    stdout(&node.exec(&["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "/srv/hbd data"]))
}

fn mac(node: &Node<'_>, iface: &str) -> String {
    node.exec_ok(&["cat", &format!("/sys/class/net/{iface}/address")])
}

fn group_starts_in_order_and_stops_in_reverse() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rgo", 1);
    let n1 = lab.node("n1");
    let config = conf(
        3,
        [
            ip_res(),
            unit_res("a.service"),
            mount_res(),
            unit_res("b.service"),
            script_res(),
        ],
    );
    setup(&n1, &config);

    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.starts_with("ok start"), "{out}");
    eprintln!("start of [ip, unit, mount, unit, script]: {out}");

    // The VIP carries hbd's label.
    let addrs = stdout(&n1.exec(&["ip", "-4", "addr", "show", "dev", "eth0"]));
    assert!(
        addrs.contains(&format!(
            "inet {VIP}/24 brd 10.99.0.255 scope global secondary eth0:hbd"
        )),
        "{addrs}"
    );
    for u in ["a.service", MOUNT_UNIT, "b.service", SCRIPT_UNIT] {
        assert_eq!(n1.unit_state(u), "active", "{u}");
    }
    assert!(findmnt(&n1).starts_with("tmpfs"), "{}", findmnt(&n1));
    assert_eq!(n1.unit_property(MOUNT_UNIT, "UnitFileState"), "transient");
    // The drop-in: systemd does not restart the unit behind hbd's back.
    assert_eq!(n1.unit_property("a.service", "Restart"), "no");
    assert_eq!(
        n1.unit_property("a.service", "Description"),
        "test unit a (managed by hbd)"
    );
    assert!(
        n1.journal(SCRIPT_UNIT)
            .contains("legacy script called with r0 start")
    );
    assert_eq!(ctl(&n1, "active").1, "true");

    let (code, out, err) = ctl(&n1, "stop");
    assert_eq!(code, 0, "{out}\n{err}");
    for u in ["a.service", MOUNT_UNIT, "b.service", SCRIPT_UNIT] {
        assert_eq!(n1.unit_state(u), "inactive", "{u}");
    }
    assert!(!n1.has_addr(VIP));
    assert_eq!(findmnt(&n1), "");
    assert_eq!(
        order(&n1),
        [
            "start a",
            "start b",
            "script r0 start",
            "script r0 stop",
            "stop b",
            "stop a"
        ]
    );
    assert_eq!(ctl(&n1, "active").1, "false");
    // Stopping again is fine (idempotent).
    assert_eq!(ctl(&n1, "stop").0, 0);
}

fn start_failure_rolls_back_in_reverse() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rrb", 1);
    let n1 = lab.node("n1");
    let config = conf(
        3,
        [
            ip_res(),
            unit_res("a.service"),
            script_res(),
            unit_res("bad.service"),
            unit_res("b.service"),
        ],
    );
    setup(&n1, &config);
    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("unit bad.service failed to start: start job failed, unit is failed")
            && out.contains("rolled back"),
        "{out}"
    );
    assert_eq!(
        order(&n1),
        ["start a", "script r0 start", "script r0 stop", "stop a"]
    );
    assert!(!n1.has_addr(VIP));
    for u in ["a.service", SCRIPT_UNIT, "b.service"] {
        assert_ne!(n1.unit_state(u), "active", "{u}");
    }
}

fn vip_is_announced_and_refused_when_in_use() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rip", 2);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let config = conf(3, [ip_res()]);
    setup(&n1, &config);
    setup(&n2, &config);

    // n1 takes the VIP; the client learns n1's MAC.
    let t0 = Instant::now();
    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    eprintln!(
        "VIP add on n1 (probe + add + first GARP): {out}, resctl total {:?}",
        t0.elapsed()
    );
    assert!(lab.ping(VIP));
    let neigh = stdout(&lab.client(&["ip", "neigh", "show", VIP]));
    assert!(neigh.contains(&mac(&n1, "eth0")), "{neigh}");

    // n2 must refuse while n1 holds it, naming the holder.
    let (code, out, _) = ctl(&n2, "start");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{VIP} is already in use by {} on eth0",
            mac(&n1, "eth0")
        )),
        "{out}"
    );
    assert!(!n2.has_addr(VIP));

    // Move it: the client's ARP cache follows from the gratuitous ARPs alone.
    assert_eq!(ctl(&n1, "stop").0, 0);
    assert!(!n1.has_addr(VIP));
    let (code, out, err) = ctl(&n2, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    let m2 = mac(&n2, "eth0");
    let took = wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
        stdout(&lab.client(&["ip", "neigh", "show", VIP])).contains(&m2)
    });
    assert!(
        took.is_some(),
        "client still has {}",
        stdout(&lab.client(&["ip", "neigh", "show", VIP]))
    );
    assert!(lab.ping(VIP));
    assert_eq!(ctl(&n2, "stop").0, 0);
}

/// `probe_wait` is the guard's only knob: with the default, a VIP another host holds is
/// refused; with "0s" nothing is asked (the admin's choice), and the add is immediate.
fn probe_wait_zero_adds_without_asking() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rpw", 2);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    setup(&n1, &conf(3, [ip_res()]));
    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 0, "{out}\n{err}");

    // Default probe_wait: refused, the holder named.
    setup(&n2, &conf(3, [ip_res()]));
    let t0 = Instant::now();
    let (code, out, _) = ctl(&n2, "start");
    eprintln!(
        "refusal with the default probe_wait: resctl total {:?}",
        t0.elapsed()
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already in use by"), "{out}");
    assert!(!n2.has_addr(VIP));

    // probe_wait = "0s": added although n1 holds it (no probe went out).
    setup(
        &n2,
        &conf(
            3,
            [ip_res_with(VIP, |r| {
                r.probe_wait = HumanDuration::from_secs(0)
            })],
        ),
    );
    let t0 = Instant::now();
    let (code, out, err) = ctl(&n2, "start");
    eprintln!(
        "VIP add without probe: {out}, resctl total {:?}",
        t0.elapsed()
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(n2.has_addr(VIP));
    assert_eq!(ctl(&n2, "stop").0, 0);
    assert_eq!(ctl(&n1, "stop").0, 0);
}

/// Start `resctl run` as a transient service in the node; its journal is the log.
fn run_in_background(node: &Node<'_>, unit: &str) {
    let mut argv = vec![
        "systemd-run".to_string(),
        "-q".into(),
        format!("--unit={unit}"),
    ];
    argv.extend(resctl_cmd(&[CONF, "run", "g"]));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    node.exec_ok(&argv);
    let ok = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        node.journal(unit).contains("ok ")
    });
    assert!(ok.is_some(), "{}", node.journal(unit));
}

fn monitoring_restarts_in_place_then_reports_failure() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rmo", 1);
    let n1 = lab.node("n1");
    let config = conf(2, [ip_res(), unit_res("a.service"), mount_res()]);
    setup(&n1, &config);
    run_in_background(&n1, "rctl");
    let pid0 = n1.unit_property("a.service", "MainPID");

    // 1: the unit is killed → restarted in place (with the mount after it).
    n1.exec_ok(&["systemctl", "kill", "-s", "KILL", "a.service"]);
    let t = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        let pid = n1.unit_property("a.service", "MainPID");
        n1.unit_state("a.service") == "active" && pid != pid0 && pid != "0"
    });
    assert!(t.is_some(), "{}", n1.journal("rctl"));
    eprintln!("unit killed → active again after {t:?} (polling every 10 ms)");
    let log = n1.journal("rctl");
    assert!(
        log.contains("unit a.service became failed; restarting in place (1/2)"),
        "{log}"
    );
    wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        n1.unit_state(MOUNT_UNIT) == "active"
    });

    // 2: the VIP vanishes → added again.
    n1.exec_ok(&["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    let t = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        n1.has_addr(VIP)
    });
    assert!(t.is_some(), "{}", n1.journal("rctl"));
    eprintln!("VIP deleted → back after {t:?}");
    assert!(
        n1.journal("rctl")
            .contains("ip 10.99.0.100 was removed; restarting in place (2/2)")
    );
    wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        n1.unit_state("a.service") == "active" && n1.unit_state(MOUNT_UNIT) == "active"
    });

    // 3: budget exhausted → Failure sent to the daemon.
    n1.exec_ok(&["systemctl", "kill", "a.service"]);
    let t = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        n1.journal("rctl").contains("FAILURE group 0:")
    });
    let log = n1.journal("rctl");
    assert!(t.is_some(), "{log}");
    assert!(
        log.contains(
            "FAILURE group 0: unit a.service became inactive; already restarted 2 times within 60s"
        ),
        "{log}"
    );
    // resctl then stops the group, as the daemon would.
    let t = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        n1.journal("rctl").contains("ok stop")
    });
    assert!(t.is_some(), "{}", n1.journal("rctl"));
    assert!(!n1.has_addr(VIP));
    assert_eq!(findmnt(&n1), "");
}

fn stop_is_not_a_failure_and_active_groups_are_adopted() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rad", 1);
    let n1 = lab.node("n1");
    let config = conf(
        3,
        [ip_res(), unit_res("a.service"), mount_res(), script_res()],
    );
    setup(&n1, &config);
    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    let pid = n1.unit_property("a.service", "MainPID");
    let inv = n1.unit_property(SCRIPT_UNIT, "InvocationID");
    let mnt = n1.unit_property(MOUNT_UNIT, "InvocationID");

    // A new manager (think: hbd restarted) adopts without restarting anything.
    assert_eq!(ctl(&n1, "active").1, "true");
    run_in_background(&n1, "rctl");
    assert!(
        n1.journal("rctl").contains("ok adopted"),
        "{}",
        n1.journal("rctl")
    );
    assert_eq!(n1.unit_property("a.service", "MainPID"), pid);
    assert_eq!(n1.unit_property(SCRIPT_UNIT, "InvocationID"), inv);
    assert_eq!(n1.unit_property(MOUNT_UNIT, "InvocationID"), mnt);
    assert_eq!(order(&n1), ["start a", "script r0 start"]);

    // The adopted group is monitored: a killed unit comes back.
    n1.exec_ok(&["systemctl", "kill", "-s", "KILL", "a.service"]);
    let t = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        let p = n1.unit_property("a.service", "MainPID");
        p != pid && p != "0"
    });
    assert!(t.is_some(), "{}", n1.journal("rctl"));

    // Stopping the group (SIGTERM to resctl) is not taken for a failure.
    n1.exec_ok(&["systemctl", "stop", "rctl"]);
    let log = n1.journal("rctl");
    assert!(log.contains("ok stop"), "{log}");
    assert!(!log.contains("FAILURE"), "{log}");
    assert_eq!(log.matches("restarting in place").count(), 1, "{log}");
    for u in ["a.service", MOUNT_UNIT, SCRIPT_UNIT] {
        assert_eq!(n1.unit_state(u), "inactive", "{u}");
    }
    assert!(!n1.has_addr(VIP));
}

fn works_over_the_private_socket_without_a_bus() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rps", 1);
    let n1 = lab.node("n1");
    let config = conf(3, [unit_res("a.service")]);
    setup(&n1, &config);
    n1.exec_ok(&["systemctl", "stop", "dbus.socket", "dbus.service"]);
    assert!(!n1.exec(&["busctl", "--system", "status"]).status.success());
    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("/run/systemd/private"), "{err}");
    assert_eq!(n1.unit_state("a.service"), "active");
    let (code, out, err) = ctl(&n1, "stop");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(n1.unit_state("a.service"), "inactive");

    // Signals arrive over the private socket too: monitoring works without a bus.
    run_in_background(&n1, "rctl");
    let pid = n1.unit_property("a.service", "MainPID");
    n1.exec_ok(&["systemctl", "kill", "-s", "KILL", "a.service"]);
    let t = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        let p = n1.unit_property("a.service", "MainPID");
        p != pid && p != "0"
    });
    assert!(t.is_some(), "{}", n1.journal("rctl"));
    n1.exec_ok(&["systemctl", "stop", "rctl"]);
    assert!(n1.journal("rctl").contains("ok stop"));
}

fn enabled_or_before_hbd_unit_is_warned_about() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("ren", 1);
    let n1 = lab.node("n1");
    let config = conf(3, [unit_res("en.service")]);
    setup(&n1, &config);
    n1.write_file(
        "/etc/systemd/system/en.service",
        "[Unit]\nDescription=enabled\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    );
    n1.write_file(
        "/etc/systemd/system/en.service.d/order.conf",
        "[Unit]\nBefore=hbd.service\n",
        0o644,
    );
    n1.exec_ok(&["systemctl", "enable", "en.service"]);
    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("en.service is enabled") && err.contains("systemctl disable en.service"),
        "{err}"
    );
    assert!(
        err.contains("en.service is ordered Before=hbd.service"),
        "{err}"
    );
    assert_eq!(ctl(&n1, "stop").0, 0);
}

fn ipv6_vip_moves_with_unsolicited_neighbour_advertisements() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rsx", 2);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let config = conf(
        3,
        [ip_res_with("fd00::100/64", |r| {
            r.interface = Some("eth0".into())
        })],
    );
    setup(&n1, &config);
    setup(&n2, &config);
    let c = lab.client(&[
        "ip",
        "-6",
        "addr",
        "add",
        "fd00::254/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    assert!(c.status.success());

    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    let addrs = stdout(&n1.exec(&["ip", "-6", "addr", "show", "dev", "eth0"]));
    assert!(
        addrs.contains("inet6 fd00::100/64 scope global nodad"),
        "{addrs}"
    );
    assert!(
        lab.client(&["ping", "-6", "-c1", "-W1", "fd00::100"])
            .status
            .success()
    );
    assert_eq!(ctl(&n1, "active").1, "true");
    assert_eq!(ctl(&n1, "stop").0, 0);
    assert!(!n1.has_addr("fd00::100"));

    let (code, out, err) = ctl(&n2, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    let m2 = mac(&n2, "eth0");
    let took = wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
        stdout(&lab.client(&["ip", "-6", "neigh", "show", "fd00::100"])).contains(&m2)
    });
    assert!(
        took.is_some(),
        "client still has {}",
        stdout(&lab.client(&["ip", "-6", "neigh", "show", "fd00::100"]))
    );
    assert_eq!(ctl(&n2, "stop").0, 0);
}

fn ipv6_vip_is_refused_when_in_use() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rsd", 2);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let vip = "fd00::100";
    let config = conf(
        3,
        [Resource::Ip(IpResource {
            interface: Some("eth0".into()),
            arp_count: 1,
            ..ip(&format!("{vip}/64"))
        })],
    );
    setup(&n1, &config);
    setup(&n2, &config);
    let timed = |node: &Node<'_>| {
        let t0 = Instant::now();
        let r = ctl(node, "start");
        (r, t0.elapsed())
    };

    // Nobody holds it: n1 probes and adds it.
    let ((code, out, err), took) = timed(&n1);
    assert_eq!(code, 0, "{out}\n{err}");
    eprintln!("IPv6 VIP add on n1 (DAD probe + add + first NA): resctl total {took:?}");
    assert!(n1.has_addr(vip));

    // n1 holds it (hbd's nodad address): n2 refuses, naming n1, and adds nothing.
    let ((code, out, _), took) = timed(&n2);
    assert_eq!(code, 1, "{out}");
    let m1 = mac(&n1, "eth0");
    assert!(
        out.contains(&format!("{vip} is already in use by {m1} on eth0")),
        "{out}"
    );
    eprintln!("refusal on n2: resctl total {took:?}");
    assert!(!n2.has_addr(vip));
    assert_eq!(ctl(&n1, "stop").0, 0);

    // A host that took it the ordinary way (kernel DAD, then preferred) answers too.
    let c = lab.client(&[
        "ip",
        "-6",
        "addr",
        "add",
        &format!("{vip}/64"),
        "dev",
        "eth0",
    ]);
    assert!(c.status.success(), "{c:?}");
    let settled = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let a = stdout(&lab.client(&["ip", "-6", "addr", "show", "dev", "eth0"]));
        a.contains(vip) && !a.contains("tentative")
    });
    assert!(settled.is_some(), "the client's address stays tentative");
    let mc = stdout(&lab.client(&["cat", "/sys/class/net/eth0/address"]));
    let (code, out, _) = ctl(&n2, "start");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{vip} is already in use by {mc} on eth0")),
        "{out}"
    );
    assert!(!n2.has_addr(vip));

    // Once it is gone, n2 takes it.
    let c = lab.client(&[
        "ip",
        "-6",
        "addr",
        "del",
        &format!("{vip}/64"),
        "dev",
        "eth0",
    ]);
    assert!(c.status.success(), "{c:?}");
    let ((code, out, err), took) = timed(&n2);
    assert_eq!(code, 0, "{out}\n{err}");
    eprintln!("IPv6 VIP add on n2 after the client left it: resctl total {took:?}");
    assert!(n2.has_addr(vip));
    assert_eq!(ctl(&n2, "stop").0, 0);
}

fn start_timeout_rolls_back_and_stops_the_slow_unit() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rto", 1);
    let n1 = lab.node("n1");
    let slow = Resource::unit("slow.service").with_timeout(Duration::from_secs(1));
    let config = conf(3, [unit_res("a.service"), slow]);
    setup(&n1, &config);
    n1.install_unit(
        "slow.service",
        "[Unit]\nDescription=slow\n[Service]\nExecStartPre=/bin/sleep 30\nExecStart=/bin/sleep infinity\n",
    );
    let t0 = Instant::now();
    let (code, out, err) = ctl(&n1, "start");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "unit slow.service failed to start: start of slow.service did not finish within 1s"
        ),
        "{out}"
    );
    // The unit sleeps 30 s before it starts: ending well before that shows the timeout cut it.
    assert!(t0.elapsed() < Duration::from_secs(25), "{:?}", t0.elapsed());
    assert_ne!(n1.unit_state("slow.service"), "activating");
    assert_eq!(n1.unit_state("a.service"), "inactive");
    assert_eq!(order(&n1), ["start a", "stop a"]);
}

/// The sandbox of units/hbd.service, plus the one path the resource layer writes.
const HBD_SANDBOX: &[&str] = &[
    "ProtectSystem=strict",
    "ReadWritePaths=-/run/systemd/system",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
];

fn works_inside_the_hbd_service_sandbox() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("rsb", 1);
    let n1 = lab.node("n1");
    let config = conf(
        3,
        [ip_res(), unit_res("a.service"), mount_res(), script_res()],
    );
    setup(&n1, &config);
    let mut argv: Vec<String> = vec!["systemd-run".into(), "--wait".into(), "-q".into()];
    for p in HBD_SANDBOX {
        argv.push(format!("--property={p}"));
    }
    argv.extend(resctl_cmd(&[CONF, "start", "g"]));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let o = n1.exec(&argv);
    assert!(o.status.success(), "{o:?}");
    assert!(n1.has_addr(VIP));
    for u in ["a.service", MOUNT_UNIT, SCRIPT_UNIT] {
        assert_eq!(n1.unit_state(u), "active", "{u}");
    }
    assert_eq!(n1.unit_property("a.service", "Restart"), "no");
    assert_eq!(ctl(&n1, "stop").0, 0);
}

fn announcements_stop_when_the_vip_leaves() {
    if !lab::available("resources_lab") {
        return;
    }
    let lab = Lab::boot("ran", 2);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    // Long announcement trains: 30 rounds, 100 ms apart.
    let config = conf(3, [ip_res_with(VIP, |r| r.arp_count = 30)]);
    setup(&n1, &config);
    setup(&n2, &config);
    // n1 holds the VIP and the client talks to it.
    assert_eq!(ctl(&n1, "start").0, 0);
    assert!(lab.ping(VIP));
    // n1 starts the group again (a new 3 s train) and gives it up at once, while its
    // process lives on, as a daemon does; n2 takes the VIP.
    let mut argv = vec![
        "systemd-run".to_string(),
        "-q".into(),
        "--unit=rflap".into(),
    ];
    argv.extend(resctl_cmd(&[CONF, "flap", "g"]));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    n1.exec_ok(&argv);
    let t = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        n1.journal("rflap").contains("ok stop")
    });
    assert!(t.is_some(), "{}", n1.journal("rflap"));
    assert!(!n1.has_addr(VIP));
    let (code, out, err) = ctl(&n2, "start");
    assert_eq!(code, 0, "{out}\n{err}");
    let (m1, m2) = (mac(&n1, "eth0"), mac(&n2, "eth0"));
    // For the rest of n1's train, the client must never go back to n1's MAC.
    let t0 = Instant::now();
    let mut seen_n2 = false;
    while t0.elapsed() < Duration::from_millis(2500) {
        let neigh = stdout(&lab.client(&["ip", "neigh", "show", VIP]));
        assert!(
            !(seen_n2 && neigh.contains(&m1)),
            "client went back to n1: {neigh}"
        );
        seen_n2 |= neigh.contains(&m2);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen_n2);
    assert_eq!(ctl(&n2, "stop").0, 0);
}
