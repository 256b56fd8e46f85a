//! Issue 22's "Done when", with the real Debian Heartbeat 3.0.6 in the lab nodes: a
//! Heartbeat cluster running the lab's group (tests/lab/heartbeat/: `n1 IPaddr::10.99.0.100/24/eth0
//! labmount labweb`) is converted to hbd one node at a time, the hbd node speaking Heartbeat's
//! protocol on the links (`hbd import --migration`: `[migration] protocol = "heartbeat"`)
//! while its peer still runs Heartbeat; then the cluster switches to hbd's protocol.
//!
//! - `a_heartbeat_cluster_converts_node_by_node`: the whole procedure.
//! - `hand_overs_in_a_mixed_cluster`: hb_standby, `hbd standby`, a clean stop of either.
//! - `kill_9_in_a_mixed_cluster`: kill -9 of either node's machine, then its return
//!   (auto_failback on: the group goes back to it; off: it stays where it went).
//! - `wrong_authkeys_on_the_converted_node_never_make_two_holders`.
//!
//! What a test sees, the whole time, from three places on one clock (CLOCK_MONOTONIC):
//! - a client (the lab's client namespace) asks the VIP over HTTP every 10 ms; the answer
//!   is the name of the node that served it;
//! - in each node's network namespace a sampler looks every 5 ms whether the VIP is on one
//!   of that node's interfaces.
//!
//! Afterwards: the VIP was never on two live nodes at once (a node killed with kill -9 keeps
//! its addresses in its unplugged namespace, so it does not count until it boots again);
//! every interval in which the client got no answer lies inside a hand-over the test made
//! (and so is no longer than it); the longest gap and each hand-over are printed.
//!
//! `HBD_MIGRATION_PEER=heartbeat` runs the same steps with Heartbeat where hbd would run (a
//! "conversion" is then a restart of Heartbeat): the harness's own baseline, and Heartbeat's
//! figures to compare with.

mod lab;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lab::ctl::{hbd, hbd_ok, peer, status};
use lab::{Lab, Node, stdout, wait_until};
use serde_json::Value;

const HA_CF: &str = include_str!("lab/heartbeat/ha.cf");
const HARESOURCES: &str = include_str!("lab/heartbeat/haresources");
const AUTHKEYS: &str = include_str!("lab/heartbeat/authkeys");
const LABMOUNT: &str = include_str!("lab/heartbeat/labmount");
const LABWEB: &str = include_str!("lab/heartbeat/labweb");
const WEB_UNIT: &str = include_str!("lab/web/lab-web.service");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const HTTP_PORT: u16 = 8080;
/// ha.cf's deadtime (tests/lab/heartbeat/ha.cf: `deadtime 1`).
const DEADTIME: Duration = Duration::from_secs(1);
/// What a takeover after kill -9 may take beyond deadtime on this shared 2-core machine
/// (detection jitter, Heartbeat's IPaddr or hbd's ARP probe, a Python HTTP server starting).
const TAKEOVER_MARGIN: Duration = Duration::from_secs(5);
/// Longest a planned hand-over may take before the test gives up on it.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Which manager a "converted" node runs.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    /// hbd in migration mode (the test proper).
    Hbd,
    /// Heartbeat again (HBD_MIGRATION_PEER=heartbeat): the harness's baseline.
    Heartbeat,
}

fn converted() -> Peer {
    match std::env::var("HBD_MIGRATION_PEER").as_deref() {
        Ok("heartbeat") => Peer::Heartbeat,
        Ok("hbd") | Err(_) => Peer::Hbd,
        Ok(other) => panic!("HBD_MIGRATION_PEER={other}: expected hbd or heartbeat"),
    }
}

/// What a converted node runs (hbd, or Heartbeat again for the baseline).
fn converted_runs() -> Runs {
    match converted() {
        Peer::Hbd => Runs::Hbd,
        Peer::Heartbeat => Runs::Heartbeat,
    }
}

/// Start `n1` alone as `runs` and wait until the client is served by it.
fn n1_alone_takes_the_group(lab: &Lab, n1: &Node, runs: Runs) {
    start_as(n1, runs);
    let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        lab.curl("http://10.99.0.100:8080/").as_deref() == Some("n1")
    });
    assert!(
        up.is_some(),
        "n1 ({runs:?}) alone did not take the group:\n{}",
        journal_of(n1, runs)
    );
}

// ---------------------------------------------------------------------------------------
// Heartbeat in a node.

/// Write /etc/ha.d (ha.cf, haresources, authkeys, the group's two resource scripts) and the
/// web unit into `n`; Heartbeat is not started. `auto_failback`: ha.cf's setting (the
/// lab's file says off).
fn configure_heartbeat(n: &Node, auto_failback: bool) {
    n.install_unit("lab-web.service", WEB_UNIT);
    let ha_cf = if auto_failback {
        HA_CF.replace("auto_failback off", "auto_failback on")
    } else {
        HA_CF.to_string()
    };
    assert_eq!(ha_cf.contains("auto_failback on"), auto_failback);
    n.write_file("/etc/ha.d/ha.cf", &ha_cf, 0o644);
    n.write_file("/etc/ha.d/haresources", HARESOURCES, 0o644);
    n.write_file("/etc/ha.d/authkeys", AUTHKEYS, 0o600);
    n.write_file("/etc/ha.d/resource.d/labmount", LABMOUNT, 0o755);
    n.write_file("/etc/ha.d/resource.d/labweb", LABWEB, 0o755);
}

fn start_heartbeat(n: &Node) {
    n.exec_ok(&["systemctl", "start", "--no-block", "heartbeat.service"]);
}

/// `cl_status nodestatus OTHER` on a Heartbeat node: "active", "up", "dead", ...
fn hb_nodestatus(n: &Node, other: &str) -> String {
    stdout(&n.exec(&["cl_status", "nodestatus", other]))
}

/// `cl_status rscstatus` on a Heartbeat node: "all", "local", "foreign", "none" or
/// "transition".
fn hb_rscstatus(n: &Node) -> String {
    stdout(&n.exec(&["cl_status", "rscstatus"]))
}

/// Heartbeat's latest start on `n` has finished its initial resource acquisition.
fn hb_initial_done(n: &Node) -> bool {
    n.exec(&[
        "awk",
        "/Configuration validated. Starting heartbeat/ { s = NR } \
         /Initial resource acquisition complete/ { a = NR } END { exit !(s && a > s) }",
        "/var/log/ha-log",
    ])
    .status
    .success()
}

fn ha_log(n: &Node, lines: usize) -> String {
    stdout(&n.exec(&["tail", "-n", &lines.to_string(), "/var/log/ha-log"]))
}

// ---------------------------------------------------------------------------------------
// hbd in migration mode in a node.

/// Install hbd on `n` and write its cluster.toml from the node's own /etc/ha.d, as an admin
/// converting the node would: `hbd import --migration /etc/ha.d -o /etc/hbd/cluster.toml`.
fn configure_hbd(n: &Node) {
    // The binary and the unit; cluster.toml and the key are the import's.
    n.install_hbd("# written by hbd import below\n", "1 placeholder\n");
    let o = n.exec(&[
        "hbd",
        "import",
        "--migration",
        "/etc/ha.d",
        "-o",
        "/etc/hbd/cluster.toml",
        "--force",
    ]);
    assert!(
        o.status.success(),
        "{}: hbd import --migration: {}",
        n.name(),
        String::from_utf8_lossy(&o.stderr)
    );
    let check = hbd(n, &["check"]);
    assert!(
        check.status.success(),
        "{}: hbd check refuses the imported migration config: {}{}\n--- cluster.toml:\n{}",
        n.name(),
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr),
        n.exec_ok(&["cat", "/etc/hbd/cluster.toml"])
    );
}

fn start_hbd(n: &Node) {
    n.exec_ok(&["systemctl", "start", "--no-block", "hbd.service"]);
}

fn hbd_status(n: &Node) -> Option<Value> {
    let o = hbd(n, &["status", "--json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

/// hbd on `n` reports `other` up.
fn hbd_sees_up(n: &Node, other: &str) -> bool {
    hbd_status(n).is_some_and(|s| {
        s["nodes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["name"] == other && p["state"] == "up"))
    })
}

// ---------------------------------------------------------------------------------------
// Either manager.

/// What runs on a node right now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Runs {
    Heartbeat,
    Hbd,
}

/// `n` reports `other` alive.
fn sees_alive(n: &Node, runs: Runs, other: &str) -> bool {
    match runs {
        Runs::Heartbeat => hb_nodestatus(n, other) == "active",
        Runs::Hbd => hbd_sees_up(n, other),
    }
}

/// `n` is settled: no resource transition under way in its manager, which says it holds the
/// group (`holds`) or not, and the node's real state agrees (the VIP and the web unit).
fn settled(n: &Node, runs: Runs, holds: bool) -> bool {
    let manager = match runs {
        // rscstatus says whose groups it holds ("local": those of haresources lines naming
        // it), not whether it holds this one: the real state below says that. Before its
        // start-up negotiation is over it says "none" whatever the peer holds.
        Runs::Heartbeat => {
            !matches!(hb_rscstatus(n).as_str(), "transition" | "") && hb_initial_done(n)
        }
        Runs::Hbd => {
            let Some(s) = hbd_status(n) else { return false };
            let g = &s["groups"][0];
            let holder = if holds {
                n.name().to_string()
            } else {
                other_of(n.name())
            };
            g["holder"] == holder.as_str() && g["state"] == "running"
        }
    };
    manager
        && n.has_addr("10.99.0.100/24") == holds
        && (n.unit_state("lab-web.service") == "active") == holds
}

fn other_of(name: &str) -> String {
    if name == "n1" { "n2" } else { "n1" }.to_string()
}

fn journal_of(n: &Node, runs: Runs) -> String {
    match runs {
        Runs::Heartbeat => ha_log(n, 60),
        Runs::Hbd => {
            let j = n.journal("hbd.service");
            let lines: Vec<&str> = j.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        }
    }
}

/// Convert `n` from Heartbeat to what `peer` says (hbd, or Heartbeat again for the baseline):
/// stop Heartbeat, configure, start. Returns what runs there now.
fn convert(n: &Node, peer: Peer) -> Runs {
    n.exec_ok(&["systemctl", "stop", "heartbeat.service"]);
    match peer {
        Peer::Heartbeat => {
            start_heartbeat(n);
            Runs::Heartbeat
        }
        Peer::Hbd => {
            configure_hbd(n);
            start_hbd(n);
            Runs::Hbd
        }
    }
}

/// Start what `runs` says on a node configured for Heartbeat.
fn start_as(n: &Node, runs: Runs) {
    match runs {
        Runs::Heartbeat => start_heartbeat(n),
        Runs::Hbd => {
            configure_hbd(n);
            start_hbd(n);
        }
    }
}

/// Wait until both nodes report each other alive and their views of the group are settled
/// with `holder` holding it.
fn wait_joined(
    lab: &Lab,
    runs: [Runs; 2],
    holder: &str,
    timeout: Duration,
    what: &str,
) -> Duration {
    let took = wait_until(timeout, Duration::from_millis(100), || {
        lab.nodes().zip(runs).all(|(n, r)| {
            sees_alive(&n, r, &other_of(n.name())) && settled(&n, r, n.name() == holder)
        })
    });
    took.unwrap_or_else(|| {
        for (n, r) in lab.nodes().zip(runs) {
            eprintln!(
                "--- {} ({r:?}): sees {} alive: {}, addrs {:?}\n{}",
                n.name(),
                other_of(n.name()),
                sees_alive(&n, r, &other_of(n.name())),
                n.ip_addrs(),
                journal_of(&n, r)
            );
            if r == Runs::Hbd {
                eprintln!("{}", String::from_utf8_lossy(&hbd(&n, &["status"]).stdout));
            }
        }
        panic!("{what}: not joined and settled with the group on {holder} within {timeout:?}")
    })
}

// ---------------------------------------------------------------------------------------
// The samplers.

/// Enter network namespace `path` on this thread; the inode entered.
fn enter_netns(path: &str) -> Option<u64> {
    let f = File::open(path).ok()?;
    let ino = f.metadata().ok()?.ino();
    // SAFETY: setns on this thread only, with a valid namespace fd.
    (unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } == 0).then_some(ino)
}

/// Is the VIP on one of this thread's network namespace's interfaces?
fn vip_here() -> Option<bool> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills ifap with a list we walk and free once.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return None;
        }
        let mut found = false;
        let mut p = ifap;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                let sin = a as *const libc::sockaddr_in;
                if u32::from_be((*sin).sin_addr.s_addr) == u32::from(VIP) {
                    found = true;
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifap);
        Some(found)
    }
}

/// One HTTP GET of the VIP: the body (the serving node's name) if it answered. The
/// timeouts are generous (a loaded machine may be slow to run the Python server): the
/// gaps are measured between answers, not from the timeouts.
fn get_vip() -> Option<String> {
    let addr = SocketAddr::from((VIP, HTTP_PORT));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(100))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 10.99.0.100\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.split_whitespace()
        .nth(1)
        .is_some_and(|code| code == "200")
        .then(|| body.trim().to_string())
}

/// One node's samples: when, and whether the VIP was on its interfaces (None: the node's
/// namespace was not there).
type VipSamples = Vec<(Instant, Option<bool>)>;

/// The client's and the nodes' samplers, running until [`Samplers::stop`].
struct Samplers {
    start: Instant,
    stop: Arc<AtomicBool>,
    http: JoinHandle<Vec<(Instant, Option<String>)>>,
    vips: Vec<(String, JoinHandle<VipSamples>)>,
}

impl Samplers {
    fn start(lab: &Lab) -> Samplers {
        let stop = Arc::new(AtomicBool::new(false));
        let client = format!("/run/netns/hbd-lab-{}-client", lab.id());
        let s = stop.clone();
        let http = std::thread::spawn(move || {
            assert!(enter_netns(&client).is_some(), "enter {client}");
            let mut out = Vec::new();
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                // An answer counts when it arrived (a slow one is a gap as long as its
                // delay), a failure when it was asked.
                let asked = Instant::now();
                let answer = get_vip();
                out.push((
                    if answer.is_some() {
                        Instant::now()
                    } else {
                        asked
                    },
                    answer,
                ));
                next += Duration::from_millis(10);
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            out
        });
        let vips = lab
            .nodes()
            .map(|n| {
                let path = format!("/run/netns/hbd-lab-{}-{}", lab.id(), n.name());
                let s = stop.clone();
                let h = std::thread::spawn(move || {
                    let mut out = Vec::new();
                    let mut inside = None;
                    while !s.load(Ordering::Relaxed) {
                        // A rebooted node gets a new namespace under the same name.
                        let ino = std::fs::metadata(&path).ok().map(|m| m.ino());
                        if ino.is_some() && ino != inside {
                            inside = enter_netns(&path);
                        }
                        let seen = if ino.is_some() && ino == inside {
                            vip_here()
                        } else {
                            None
                        };
                        out.push((Instant::now(), seen));
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    out
                });
                (n.name().to_string(), h)
            })
            .collect();
        // The first samples are in before the test goes on.
        std::thread::sleep(Duration::from_millis(100));
        Samplers {
            start: Instant::now(),
            stop,
            http,
            vips,
        }
    }

    fn stop(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        Samples {
            start: self.start,
            http: self.http.join().expect("http sampler"),
            vips: self
                .vips
                .into_iter()
                .map(|(n, h)| (n, h.join().expect("vip sampler")))
                .collect(),
        }
    }
}

struct Samples {
    start: Instant,
    http: Vec<(Instant, Option<String>)>,
    vips: Vec<(String, VipSamples)>,
}

/// An interval in which the client got no answer: from the last answer before it to the
/// first after it (`to` None: none came before the samplers stopped).
#[derive(Debug, Clone)]
struct Gap {
    from: Instant,
    first_failed: Instant,
    last_failed: Instant,
    to: Option<Instant>,
    failed: usize,
    before: Option<String>,
    after: Option<String>,
}

impl Gap {
    fn len(&self, end: Instant) -> Duration {
        self.to.unwrap_or(end) - self.from
    }
}

/// A step of the test in which the client may get no answer: a hand-over or a takeover.
#[derive(Debug, Clone)]
struct Window {
    what: String,
    from: Instant,
    /// When the command that started it returned.
    acted: Instant,
    to: Instant,
    /// The node that serves once it is over.
    node: String,
}

/// Samples the presence of the VIP on a node for certain: [first sample with it, last sample
/// with it] for each run of samples seeing it.
fn presence(samples: &[(Instant, Option<bool>)]) -> Vec<(Instant, Instant)> {
    let mut out = Vec::new();
    let mut run: Option<(Instant, Instant)> = None;
    for &(t, seen) in samples {
        match (seen, &mut run) {
            (Some(true), Some((_, last))) => *last = t,
            (Some(true), None) => run = Some((t, t)),
            (_, Some(r)) => {
                out.push(*r);
                run = None;
            }
            _ => {}
        }
    }
    out.extend(run);
    out
}

impl Samples {
    fn at(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64()
    }

    fn end(&self) -> Instant {
        self.http.last().map(|s| s.0).unwrap_or(self.start)
    }

    fn gaps(&self) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = Vec::new();
        let mut last_ok: Option<(Instant, String)> = None;
        let mut open: Option<Gap> = None;
        for (t, answer) in &self.http {
            match answer {
                None => {
                    let g = open.get_or_insert_with(|| Gap {
                        from: last_ok.as_ref().map(|l| l.0).unwrap_or(*t),
                        first_failed: *t,
                        last_failed: *t,
                        to: None,
                        failed: 0,
                        before: last_ok.as_ref().map(|l| l.1.clone()),
                        after: None,
                    });
                    g.failed += 1;
                    g.last_failed = *t;
                }
                Some(node) => {
                    if let Some(mut g) = open.take() {
                        g.to = Some(*t);
                        g.after = Some(node.clone());
                        gaps.push(g);
                    }
                    last_ok = Some((*t, node.clone()));
                }
            }
        }
        gaps.extend(open);
        gaps
    }

    /// Times the VIP was on two nodes at once (for certain: both samplers saw it), with
    /// the nodes in `dead` (name, killed, booted again) not counted in between.
    fn doubles(&self, dead: &[(String, Instant, Instant)]) -> Vec<(Instant, Instant)> {
        let runs: Vec<Vec<(Instant, Instant)>> = self
            .vips
            .iter()
            .map(|(name, s)| {
                let mut runs = presence(s);
                // A killed node's namespace keeps its addresses until it boots again.
                for (_, k, r) in dead.iter().filter(|d| d.0 == *name) {
                    runs = runs
                        .into_iter()
                        .flat_map(|(a, b)| {
                            let before = (a < *k).then(|| (a, b.min(*k)));
                            let after = (b > *r).then(|| (a.max(*r), b));
                            before.into_iter().chain(after)
                        })
                        .collect();
                }
                runs
            })
            .collect();
        let mut out = Vec::new();
        for (i, ri) in runs.iter().enumerate() {
            for rj in &runs[i + 1..] {
                for &(a1, b1) in ri {
                    for &(a2, b2) in rj {
                        let (a, b) = (a1.max(a2), b1.min(b2));
                        if a <= b {
                            out.push((a, b));
                        }
                    }
                }
            }
        }
        out
    }

    /// The first instant at or after `from` that the client got an answer from `node`.
    fn first_answer(&self, node: &str, from: Instant) -> Option<Instant> {
        self.http
            .iter()
            .find(|(t, a)| *t >= from && a.as_deref() == Some(node))
            .map(|s| s.0)
    }

    /// The first instant at or after `from` that `node`'s sampler saw the VIP.
    fn first_vip(&self, node: &str, from: Instant) -> Option<Instant> {
        self.vips
            .iter()
            .find(|(n, _)| n == node)?
            .1
            .iter()
            .find(|(t, seen)| *t >= from && *seen == Some(true))
            .map(|s| s.0)
    }

    /// Which nodes answered, in order, with the count of answers each time.
    fn answered(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for (_, a) in &self.http {
            let who = a.clone().unwrap_or_else(|| "-".into());
            match out.last_mut() {
                Some((w, c)) if *w == who => *c += 1,
                _ => out.push((who, 1)),
            }
        }
        out
    }

    /// Print the record; the violations of the rules (empty: all is well).
    fn judge(&self, windows: &[Window], dead: &[(String, Instant, Instant)]) -> Vec<String> {
        let end = self.end();
        let mut bad = Vec::new();
        let total = self.http.len();
        let failed = self.http.iter().filter(|s| s.1.is_none()).count();
        let span = end - self.start;
        let mut steps = self
            .http
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .collect::<Vec<_>>();
        steps.sort();
        eprintln!(
            "client: {total} requests over {span:.1?} (median interval {:.1?}, max {:.1?}, answers counted on arrival), {failed} unanswered; answers: {}",
            steps.get(steps.len() / 2).copied().unwrap_or_default(),
            steps.last().copied().unwrap_or_default(),
            self.answered()
                .iter()
                .map(|(w, c)| format!("{w}×{c}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for (n, s) in &self.vips {
            eprintln!("sampler {n}: {} samples of its interfaces", s.len());
        }
        for w in windows {
            // Where the VIP went in the window, as the nodes' samplers saw it.
            let mut moves = Vec::new();
            for (n, s) in &self.vips {
                for (a, b) in presence(s) {
                    if a > w.from && a <= w.to {
                        moves.push((a, format!("on {n} {:.3}s", self.at(a))));
                    }
                    if b >= w.from && b < w.to {
                        moves.push((b, format!("last on {n} {:.3}s", self.at(b))));
                    }
                }
            }
            moves.sort();
            let served = self
                .first_answer(&w.node, w.from)
                .filter(|t| *t <= w.to)
                .map(|t| format!("{} ms", (t - w.from).as_millis()))
                .unwrap_or_else(|| "never".into());
            eprintln!(
                "window {:7.2}–{:7.2}s  {}: served by {} after {served}; VIP: {}",
                self.at(w.from),
                self.at(w.to),
                w.what,
                w.node,
                moves
                    .into_iter()
                    .map(|m| m.1)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let gaps = self.gaps();
        let mut longest = Duration::ZERO;
        for g in &gaps {
            let len = g.len(end);
            longest = longest.max(len);
            let inside = windows
                .iter()
                .find(|w| g.first_failed >= w.from && g.last_failed <= w.to);
            eprintln!(
                "gap    {:7.2}–{:7.2}s  {:>9.1?}  {} unanswered, {} -> {}{}",
                self.at(g.from),
                self.at(g.to.unwrap_or(end)),
                len,
                g.failed,
                g.before.as_deref().unwrap_or("-"),
                g.after.as_deref().unwrap_or("(none until the end)"),
                inside
                    .map(|w| format!("  [in: {}]", w.what))
                    .unwrap_or_default()
            );
            if inside.is_none() {
                bad.push(format!(
                    "the VIP did not answer for {len:.1?} at {:.2}s, outside any hand-over",
                    self.at(g.from)
                ));
            }
            if g.to.is_none() {
                bad.push(format!(
                    "the VIP stopped answering at {:.2}s and never answered again",
                    self.at(g.from)
                ));
            }
        }
        eprintln!("longest gap: {longest:.1?} ({} gaps)", gaps.len());
        for (a, b) in self.doubles(dead) {
            bad.push(format!(
                "the VIP was on two nodes from {:.3}s to {:.3}s",
                self.at(a),
                self.at(b)
            ));
        }
        bad
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

fn heartbeat_cluster(tag: &str, auto_failback: bool) -> Lab {
    let lab = Lab::boot(tag, 2);
    for n in lab.nodes() {
        configure_heartbeat(&n, auto_failback);
    }
    lab
}

/// A hand-over or takeover: run `act`, wait until the client gets answers from `to` (and
/// the samplers are kept running); the window it opened.
fn move_group(
    what: &str,
    lab: &Lab,
    to: &str,
    timeout: Duration,
    act: impl FnOnce(),
) -> (Window, Option<Duration>) {
    let from = Instant::now();
    act();
    let acted = Instant::now();
    let seen = wait_until(timeout, Duration::from_millis(20), || {
        lab.curl("http://10.99.0.100:8080/").as_deref() == Some(to)
    });
    let took = seen.map(|_| from.elapsed());
    // A few more answers, so that the gap's end is in the samples.
    std::thread::sleep(Duration::from_millis(200));
    (
        Window {
            what: what.to_string(),
            from,
            acted,
            to: Instant::now(),
            node: to.to_string(),
        },
        took,
    )
}

/// One planned hand-over: `act`, then `to` must serve the VIP within HANDOVER_TIMEOUT,
/// or the test fails with both nodes' journals. The window goes into `windows` (a gap in
/// service is allowed only inside one).
fn served_by(
    lab: &Lab,
    runs: [Runs; 2],
    windows: &mut Vec<Window>,
    what: &str,
    to: &str,
    act: impl FnOnce(),
) {
    let (w, took) = move_group(what, lab, to, HANDOVER_TIMEOUT, act);
    windows.push(w);
    if took.is_none() {
        panic!(
            "{what}: {to} did not serve within {HANDOVER_TIMEOUT:?}\n--- n1\n{}\n--- n2\n{}",
            journal_of(&lab.node("n1"), runs[0]),
            journal_of(&lab.node("n2"), runs[1])
        )
    }
}

/// [`served_by`], then both nodes settle with the group on `to`, and a second passes
/// before the next step.
fn hand_over(
    lab: &Lab,
    runs: [Runs; 2],
    windows: &mut Vec<Window>,
    what: &str,
    to: &str,
    act: impl FnOnce(),
) {
    served_by(lab, runs, windows, what, to, act);
    wait_joined(
        lab,
        runs,
        to,
        Duration::from_secs(15),
        &format!("after {what}"),
    );
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn a_heartbeat_cluster_converts_node_by_node() {
    if !lab::available("a_heartbeat_cluster_converts_node_by_node") {
        return;
    }
    // One lab test at a time: the timings are the point.
    let _s = lab::web::serial();
    let to = converted();
    eprintln!("converted nodes run: {to:?}");
    let lab = heartbeat_cluster("mig", false);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    for n in lab.nodes() {
        start_heartbeat(&n);
    }
    let mut runs = [Runs::Heartbeat, Runs::Heartbeat];
    let t = wait_joined(
        &lab,
        runs,
        "n1",
        Duration::from_secs(30),
        "two Heartbeat nodes",
    );
    eprintln!("Heartbeat cluster up, group on n1, after {t:.2?}");

    let samplers = Samplers::start(&lab);
    let mut windows = Vec::new();
    let mut failures = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Nothing happens: the VIP answers throughout.
        std::thread::sleep(Duration::from_secs(2));

        // Convert n2 (not holding the group).
        let t0 = Instant::now();
        runs[1] = convert(&n2, to);
        let t = wait_joined(&lab, runs, "n1", Duration::from_secs(30), "n2 converted");
        eprintln!(
            "n2 converted ({:?}): both alive, group on n1, {t:.2?} after starting ({:.2?} in all)",
            runs[1],
            t0.elapsed()
        );
        assert_eq!(hb_nodestatus(&n1, "n2"), "active");
        if runs[1] == Runs::Hbd {
            let s = status(&n2);
            assert_eq!(peer(&s, "n1")["state"], "up", "{s:#}");
            assert_eq!(s["groups"][0]["holder"], "n1", "{s:#}");
            assert_eq!(s["protocol"], "heartbeat", "{s:#}");
            eprintln!("hbd status on n2:\n{}", hbd_ok(&n2, &["status"]));
            // A careless admin switches too early, n1 still running Heartbeat: the reload
            // is refused and says why; nothing moves. The file is then put back.
            set_protocol(&n2, "hbd");
            n2.exec_ok(&["systemctl", "reload", "hbd.service"]);
            let refused = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
                n2.journal("hbd.service")
                    .contains("n1 still runs Heartbeat")
            });
            assert!(
                refused.is_some(),
                "n2: no refusal of the early switch:\n{}",
                journal_of(&n2, Runs::Hbd)
            );
            set_protocol(&n2, "heartbeat");
            n2.exec_ok(&["systemctl", "reload", "hbd.service"]);
            wait_joined(
                &lab,
                runs,
                "n1",
                Duration::from_secs(10),
                "after the early switch",
            );
            assert_eq!(status(&n2)["protocol"], "heartbeat");
            assert!(
                !n2.journal("hbd.service")
                    .contains("switched to hbd's own protocol"),
                "n2 switched while n1 runs Heartbeat:\n{}",
                journal_of(&n2, Runs::Hbd)
            );
        }
        std::thread::sleep(Duration::from_secs(2));

        // Heartbeat's standby on n1: the group moves to n2.
        hand_over(
            &lab,
            runs,
            &mut windows,
            "hb_standby on n1: n1 -> n2",
            "n2",
            || {
                n1.exec_ok(&["/usr/share/heartbeat/hb_standby", "all"]);
            },
        );

        // Convert n1 (no longer holding the group).
        let t0 = Instant::now();
        runs[0] = convert(&n1, to);
        let t = wait_joined(&lab, runs, "n2", Duration::from_secs(30), "n1 converted");
        eprintln!(
            "n1 converted ({:?}): both alive, group on n2, {t:.2?} after starting ({:.2?} in all)",
            runs[0],
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_secs(2));

        // Finally, the converted cluster leaves Heartbeat's protocol.
        if to == Peer::Hbd {
            let t0 = Instant::now();
            switch_to_hbd_protocol(&lab);
            let t = wait_joined(
                &lab,
                runs,
                "n2",
                Duration::from_secs(30),
                "on hbd's protocol",
            );
            eprintln!(
                "switched to hbd's protocol: both reloaded and settled in {:.2?} ({t:.2?} after the second reload)",
                t0.elapsed()
            );
            for n in lab.nodes() {
                let s = status(&n);
                assert_eq!(s["protocol"], "hbd", "{}: {s:#}", n.name());
            }
            std::thread::sleep(Duration::from_secs(1));
            // hbd's own hand-over, on hbd's protocol now.
            hand_over(
                &lab,
                runs,
                &mut windows,
                "hbd standby on n2 (hbd's protocol): n2 -> n1",
                "n1",
                || {
                    hbd_ok(&n2, &["standby", "--no-wait"]);
                },
            );
            hbd_ok(&n2, &["clear"]);
        }
    }));
    let samples = samplers.stop();
    failures.extend(samples.judge(&windows, &[]));
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The last step of the procedure: every node runs hbd, still speaking Heartbeat's protocol;
/// switch the cluster to hbd's own.
/// Set `[migration] protocol` in `n`'s cluster.toml (and check the file).
fn set_protocol(n: &Node, protocol: &str) {
    n.sh_ok(&format!(
        r#"sed -i 's/^protocol = ".*"/protocol = "{protocol}"/' /etc/hbd/cluster.toml && grep -q '^protocol = "{protocol}"' /etc/hbd/cluster.toml"#
    ));
    hbd_ok(n, &["check"]);
}

fn switch_to_hbd_protocol(lab: &Lab) {
    // `protocol = "hbd"` and a reload, one node after the other: the first to switch
    // makes the other switch at once (it hears hbd's protocol from its peer); the second
    // reload only brings its file in line.
    for n in lab.nodes() {
        set_protocol(&n, "hbd");
        n.exec_ok(&["systemctl", "reload", "hbd.service"]);
        let switched = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            n.journal("hbd.service")
                .contains("switched to hbd's own protocol")
        });
        assert!(
            switched.is_some(),
            "{}: no \"switched to hbd's own protocol\" after the reload:\n{}",
            n.name(),
            journal_of(&n, Runs::Hbd)
        );
    }
}

/// One direction of the kill test: `first` (the holder) starts alone and takes the group,
/// `second` joins; kill -9 of `first`'s node; `second` must serve within deadtime + margin.
/// Then n1 boots again and rejoins under `first`: with auto_failback off the group stays on
/// n2, the VIP answering throughout; with it on, n2 hands the group back to n1 (n1 is first
/// in haresources).
fn kill_holder(tag: &str, first: Runs, second: Runs, auto_failback: bool) {
    let lab = heartbeat_cluster(tag, auto_failback);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let runs = [first, second];
    // The holder alone first, so it holds the group whatever the other is.
    n1_alone_takes_the_group(&lab, &n1, first);
    start_as(&n2, second);
    let t = wait_joined(&lab, runs, "n1", Duration::from_secs(30), "n2 joining");
    eprintln!("{tag}: n1 {first:?} holds the group, n2 {second:?} joined after {t:.2?}");
    std::thread::sleep(Duration::from_secs(2));

    let samplers = Samplers::start(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    let mut windows = Vec::new();
    let mut booted = killed;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (w, took) = move_group(
            &format!("kill -9 of n1 ({first:?}): n2 ({second:?}) takes over"),
            &lab,
            "n2",
            DEADTIME + TAKEOVER_MARGIN + Duration::from_secs(10),
            || lab.kill9("n1"),
        );
        windows.push(w);
        if took.is_none() {
            panic!(
                "n2 ({second:?}) did not take over after kill -9 of n1:\n{}",
                journal_of(&n2, second)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        match second {
            Runs::Hbd => {
                let s = status(&n2);
                assert_eq!(peer(&s, "n1")["state"], "dead", "{s:#}");
                assert_eq!(s["groups"][0]["holder"], "n2", "{s:#}");
                assert_eq!(s["protocol"], "heartbeat", "{s:#}");
            }
            Runs::Heartbeat => assert_eq!(hb_nodestatus(&n2, "n1"), "dead"),
        }

        // n1 comes back (a fresh /etc and /var: configured again) and rejoins.
        lab.reboot("n1");
        booted = Instant::now();
        configure_heartbeat(&n1, auto_failback);
        if auto_failback {
            let (w, took) = move_group(
                &format!("n1 ({first:?}) back, auto_failback on: n2 ({second:?}) gives it back"),
                &lab,
                "n1",
                Duration::from_secs(40),
                || start_as(&n1, first),
            );
            windows.push(w);
            if took.is_none() {
                panic!(
                    "no failback to n1 ({first:?}) within 40 s:\n--- n1\n{}\n--- n2\n{}",
                    journal_of(&n1, first),
                    journal_of(&n2, second)
                );
            }
        } else {
            start_as(&n1, first);
        }
        let holder = if auto_failback { "n1" } else { "n2" };
        let t = wait_joined(&lab, runs, holder, Duration::from_secs(30), "n1 rejoining");
        eprintln!(
            "{tag}: n1 ({first:?}) rebooted and rejoined, auto_failback {}: the group on {holder} ({t:.2?} after)",
            if auto_failback { "on" } else { "off" }
        );
        std::thread::sleep(Duration::from_secs(2));
    }));
    let samples = samplers.stop();
    let bad = samples.judge(&windows, &[("n1".to_string(), killed, booted)]);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    let survivor = journal_of(&n2, second);
    let vip = samples.first_vip("n2", killed).map(|t| t - killed);
    let http = samples.first_answer("n2", killed).map(|t| t - killed);
    eprintln!(
        "{tag}: kill -9 of n1 ({first:?}) -> VIP on n2 ({second:?}) after {vip:.2?}, answering HTTP after {http:.2?} (deadtime {DEADTIME:?})"
    );
    let http = http.expect("n2 answered");
    assert!(
        http <= DEADTIME + TAKEOVER_MARGIN,
        "n2 ({second:?}) took {http:.2?} to take over (deadtime {DEADTIME:?} + {TAKEOVER_MARGIN:?}):\n{survivor}"
    );
    assert!(bad.is_empty(), "{}\n{survivor}", bad.join("\n"));
    let tail: Vec<&str> = survivor.lines().collect();
    eprintln!(
        "{tag}: the survivor's log, last lines:\n{}",
        tail[tail.len().saturating_sub(12)..].join("\n")
    );
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn kill_9_in_a_mixed_cluster() {
    if !lab::available("kill_9_in_a_mixed_cluster") {
        return;
    }
    // One lab test at a time: the timings are the point.
    let _s = lab::web::serial();
    let other = converted_runs();
    // Heartbeat holds, hbd takes over; then hbd holds, Heartbeat takes over. When the
    // killed node is back: with auto_failback on, hbd gives the group back to Heartbeat;
    // with it off, hbd (first in haresources) leaves it with Heartbeat.
    kill_holder("mka", Runs::Heartbeat, other, true);
    kill_holder("mkb", other, Runs::Heartbeat, false);
}

/// Give the group up on `n` by its manager's own command: `hb_standby` on Heartbeat,
/// `hbd standby` on hbd (which asks the Heartbeat peer to take it).
fn standby(n: &Node, runs: Runs) {
    match runs {
        Runs::Heartbeat => {
            n.exec_ok(&["/usr/share/heartbeat/hb_standby", "all"]);
        }
        Runs::Hbd => {
            hbd_ok(n, &["standby", "--no-wait"]);
        }
    }
}

fn start_manager(n: &Node, runs: Runs) {
    match runs {
        Runs::Heartbeat => start_heartbeat(n),
        Runs::Hbd => start_hbd(n),
    }
}

/// Stop the manager on `n` (the unit: a clean stop that hands the group over).
fn stop_manager(n: &Node, runs: Runs) {
    let unit = match runs {
        Runs::Heartbeat => "heartbeat.service",
        Runs::Hbd => "hbd.service",
    };
    n.exec_ok(&["systemctl", "stop", unit]);
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn hand_overs_in_a_mixed_cluster() {
    if !lab::available("hand_overs_in_a_mixed_cluster") {
        return;
    }
    // One lab test at a time: the timings are the point.
    let _s = lab::web::serial();
    let other = converted_runs();
    let lab = heartbeat_cluster("mho", false);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let runs = [Runs::Heartbeat, other];
    n1_alone_takes_the_group(&lab, &n1, runs[0]);
    start_as(&n2, runs[1]);
    let t = wait_joined(&lab, runs, "n1", Duration::from_secs(30), "n2 joining");
    eprintln!("n1 Heartbeat holds the group, n2 {other:?} joined after {t:.2?}");
    std::thread::sleep(Duration::from_secs(1));

    let samplers = Samplers::start(&lab);
    let mut windows = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let w = &mut windows;
        hand_over(
            &lab,
            runs,
            w,
            "hb_standby on n1 (Heartbeat): -> n2",
            "n2",
            || standby(&n1, runs[0]),
        );
        let what = format!("standby on n2 ({other:?}): -> n1");
        hand_over(&lab, runs, w, &what, "n1", || standby(&n2, runs[1]));
        if runs[1] == Runs::Hbd {
            // Forget n2's standby, so that it can take the group again.
            hbd_ok(&n2, &["clear"]);
        }
        let what = "hb_standby on n1 (Heartbeat) again: -> n2";
        hand_over(&lab, runs, w, what, "n2", || standby(&n1, runs[0]));

        // A clean stop of the manager on the holder hands the group over, before the
        // peer's deadtime could notice anything.
        let stopped = Instant::now();
        let what = format!("systemctl stop on n2 ({other:?}): -> n1");
        served_by(&lab, runs, w, &what, "n1", || stop_manager(&n2, runs[1]));
        eprintln!(
            "n1 serves {:.2?} after the stop on n2 began",
            stopped.elapsed()
        );
        // Then n1 counts n2 as gone (Heartbeat: once its deadtime passes after the stop).
        let dead = wait_until(DEADTIME * 4, Duration::from_millis(50), || {
            hb_nodestatus(&n1, "n2") == "dead"
        });
        assert!(
            dead.is_some(),
            "n1 still sees n2 {}",
            hb_nodestatus(&n1, "n2")
        );

        // n2 back; then the other way round: a clean stop of Heartbeat on the holder
        // hands the group to n2 at once (its shutdown notice, not n2's deadtime).
        start_manager(&n2, runs[1]);
        wait_joined(
            &lab,
            runs,
            "n1",
            Duration::from_secs(30),
            "n2 started again",
        );
        std::thread::sleep(Duration::from_secs(1));
        let what = "systemctl stop on n1 (Heartbeat): -> n2";
        served_by(&lab, runs, w, what, "n2", || stop_manager(&n1, runs[0]));
        let dead = wait_until(DEADTIME * 4, Duration::from_millis(50), || match runs[1] {
            // hbd takes Heartbeat's shutdown notice as a clean leave: "left" at once.
            Runs::Hbd => hbd_status(&n2)
                .is_some_and(|s| matches!(peer(&s, "n1")["state"].as_str(), Some("left" | "dead"))),
            Runs::Heartbeat => hb_nodestatus(&n2, "n1") == "dead",
        });
        assert!(dead.is_some(), "n2 still sees n1 alive after its stop");
        std::thread::sleep(Duration::from_secs(1));
    }));
    let samples = samplers.stop();
    let bad = samples.judge(&windows, &[]);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    // Heartbeat's stop on the holder (~3 s: it lingers after its shutdown notice) had
    // handed the group over before it returned: n2 acted on the notice, not on deadtime.
    let w = windows.last().expect("the last hand-over");
    let served = samples.first_answer("n2", w.from);
    eprintln!(
        "systemctl stop heartbeat on n1 took {:.2?}; n2 answered {:.2?} after it began",
        w.acted - w.from,
        served.map(|t| t - w.from)
    );
    assert!(
        served.is_some_and(|t| t < w.acted),
        "n2 ({other:?}) took the group only after Heartbeat on n1 had stopped (deadtime, not its shutdown notice):\n{}",
        journal_of(&n2, runs[1])
    );
    let shutdown = ha_log(&n1, 200)
        .lines()
        .filter(|l| l.contains("shutdown") || l.contains("n2") && l.contains("dead"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    eprintln!("n1 on n2's stop:\n{}", shutdown.join("\n"));
    assert!(
        shutdown
            .iter()
            .any(|l| l.contains("shutdown notice from 'n2'")),
        "Heartbeat on n1 did not get a shutdown notice from n2 ({other:?}):\n{}",
        ha_log(&n1, 80)
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A careless admin's mistake: the converted node's /etc/ha.d/authkeys has another secret
/// than the Heartbeat node's. hbd refuses every packet of the peer (and says so), and the
/// group stays where it runs: hbd, hearing packets in n1's name that fail
/// authentication, does not take n1 for dead and starts nothing; the VIP is never on both
/// nodes, and the client is never served by the converted node. (Heartbeat in its place
/// adds the VIP beside the holder: run this with HBD_MIGRATION_PEER=heartbeat to see the
/// check fail.)
#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn wrong_authkeys_on_the_converted_node_never_make_two_holders() {
    if !lab::available("wrong_authkeys_on_the_converted_node_never_make_two_holders") {
        return;
    }
    let _s = lab::web::serial();
    let runs = converted_runs();
    let lab = heartbeat_cluster("mwk", false);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    n1_alone_takes_the_group(&lab, &n1, Runs::Heartbeat);
    n2.write_file(
        "/etc/ha.d/authkeys",
        "auth 1\n1 sha1 not-the-clusters-secret\n",
        0o600,
    );
    let samplers = Samplers::start(&lab);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        start_as(&n2, runs);
        // Past initdead, and long enough for anything n2 would do about the group.
        std::thread::sleep(Duration::from_secs(6));
    }));
    let samples = samplers.stop();
    let bad = samples.judge(&[], &[]);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    let log = journal_of(&n2, runs);
    assert!(bad.is_empty(), "{}\n--- n2:\n{log}", bad.join("\n"));
    assert!(
        samples.first_answer("n2", samples.start).is_none(),
        "the client was served by n2"
    );
    assert!(
        n1.has_addr("10.99.0.100/24") && !n2.has_addr("10.99.0.100/24"),
        "the VIP moved: n1 {:?}, n2 {:?}",
        n1.ip_addrs(),
        n2.ip_addrs()
    );
    assert_eq!(hb_nodestatus(&n1, "n2"), "dead", "n1 took n2's packets");
    if runs == Runs::Hbd {
        assert!(
            log.contains("failed authentication"),
            "hbd on n2 did not say it refused n1's packets:\n{log}"
        );
        // In doubt it starts nothing: no takeover while packets in n1's name come.
        assert!(
            log.contains("not taking over its groups while they come"),
            "hbd on n2 did not hold its takeover back:\n{log}"
        );
        assert!(
            !log.contains("is already in use by"),
            "hbd on n2 tried to start the group (its ARP probe stopped it):\n{log}"
        );
        let s = status(&n2);
        eprintln!("hbd status on n2:\n{}", hbd_ok(&n2, &["status"]));
        assert_ne!(s["groups"][0]["holder"], "n2", "{s:#}");
    }
}
