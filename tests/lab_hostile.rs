//! A hostile network against running daemons: the lab's web cluster (two nodes under their
//! own systemd, tests/lab/web/) while the lab's client namespace, an attacker on the same
//! switch, replays captured heartbeats and floods port 694 from spoofed sources.
//!
//! Asserted on the nodes' real state and journals: no peer is declared dead or restarted,
//! the group stays where it is (the VIP on n1 only), and the journal stays bounded. The
//! CPU hbd spends on the flood is printed, not asserted.

mod lab;

use std::time::{Duration, Instant};

use lab::web::*;
use lab::{Lab, Node, stdout};

/// Captures, inside a node, the UDP payloads to port 694 from the given sources, as hex
/// lines: the heartbeats that node receives.
const CAPTURE: &str = r#"
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.settimeout(0.1)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        d, a = s.recvfrom(65535)
    except socket.timeout:
        continue
    if a[2] != socket.PACKET_HOST or d[9] != 17:
        continue
    ihl = (d[0] & 15) * 4
    src = socket.inet_ntoa(d[12:16])
    dport = struct.unpack('!H', d[ihl + 2:ihl + 4])[0]
    if dport == 694 and src in sys.argv[2:]:
        print(d[ihl + 8:].hex(), flush=True)
"#;

/// Sends UDP datagrams to port 694 with any source address (raw IPv4, the kernel fills in
/// the IP checksum; no UDP checksum):
///   replay FILE SRC DST REPEAT   each hex line of FILE, REPEAT times, from SRC to DST
///   flood DST SOURCES SECONDS CLUSTER_ID_HEX   junk and forged headers from SOURCES
///                                random addresses of 10.99.0.0/16, for SECONDS
const SEND: &str = r#"
import os, random, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
def send(src, dst, payload):
    udp = struct.pack('!HHHH', 694, 694, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    try:
        s.sendto(ip + udp, (dst, 0))
        return 1
    except OSError:
        return 0
mode = sys.argv[1]
sent = 0
if mode == 'replay':
    lines = [bytes.fromhex(l.strip()) for l in open(sys.argv[2]) if l.strip()]
    for _ in range(int(sys.argv[5])):
        for p in lines:
            sent += send(sys.argv[3], sys.argv[4], p)
else:
    dst, n, secs, cid = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), bytes.fromhex(sys.argv[5])
    rnd = random.Random(694)
    sources = ['10.99.%d.%d' % (1 + rnd.randrange(254), 1 + rnd.randrange(254)) for _ in range(n)]
    end = time.time() + secs
    i = 0
    while time.time() < end:
        for _ in range(500):
            src = sources[i % n]
            i += 1
            k = i % 4
            if k == 0:
                p = os.urandom(1 + i % 64)
            elif k == 1:
                # A forged header of this cluster: past the cheap checks, refused at the MAC.
                p = b'HBD\xa5\x02\x01\x01\x00' + cid + os.urandom(60)
            elif k == 2:
                p = b'HBD\xa5\x02\x01\x01\x00' + os.urandom(4) + os.urandom(40)
            else:
                p = os.urandom(64 + i % 1200)
            sent += send(src, dst, p)
print(sent)
"#;

fn journal_lines(n: &Node) -> Vec<String> {
    stdout(&n.exec(&["journalctl", "--no-pager", "-o", "cat", "-u", "hbd.service"]))
        .lines()
        .map(str::to_string)
        .collect()
}

/// CPU time (user + system, in clock ticks) of the node's hbd.
fn cpu_ticks(n: &Node) -> u64 {
    let pid = n.unit_property("hbd.service", "MainPID");
    let stat = n.exec_ok(&["cat", &format!("/proc/{pid}/stat")]);
    let Some(close) = stat.rfind(')') else {
        panic!("{}: odd /proc/{pid}/stat: {stat}", n.name());
    };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

/// For `d`: n1 serves the group alone and neither node loses the other.
fn nothing_moves(lab: &Lab, d: Duration, why: &str, from: &[usize]) {
    let start = Instant::now();
    while start.elapsed() < d {
        if lab.node("n2").has_addr(VIP_CIDR) || !lab.node("n1").has_addr(VIP_CIDR) {
            dump(lab);
            panic!(
                "{why}: the VIP moved after {:.2?} (n1 {:?}, n2 {:?})",
                start.elapsed(),
                lab.node("n1").ip_addrs(),
                lab.node("n2").ip_addrs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (n, &skip) in lab.nodes().zip(from) {
        let new = &journal_lines(&n)[skip..];
        let bad: Vec<&String> = new
            .iter()
            .filter(|l| {
                l.contains(" is dead")
                    || l.contains(" is late")
                    || l.contains("restarted")
                    || l.contains("is starting")
                    || l.contains("is stopping")
            })
            .collect();
        if !bad.is_empty() {
            dump(lab);
            panic!("{why}: {} journal shows {bad:#?}", n.name());
        }
    }
    assert_eq!(served_by(lab).as_deref(), Some("n1"), "{why}");
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn replays_and_spoofed_floods_move_nothing() {
    if !lab::available("replays_and_spoofed_floods_move_nothing") {
        return;
    }
    let _s = serial();
    let lab = web_lab("hst", CLUSTER, |n| {
        // Loose reverse-path filtering (systemd's default) would drop most spoofed sources
        // before hbd saw them; an attacker on the LAN can use on-link addresses anyway.
        n.sh_ok("for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done");
    });
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let work = tempfile::tempdir().expect("tempdir");

    // 1. Record what n2 hears from n1 for a second (both links).
    let o = n2.exec(&["python3", "-c", CAPTURE, "1.5", &n1.addr_a(), &n1.addr_b()]);
    let captured = stdout(&o);
    let count = captured.lines().count();
    assert!(
        o.status.success() && count >= 5,
        "captured {count} heartbeats: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let file = work.path().join("old-heartbeats.hex");
    std::fs::write(&file, &captured).expect("write capture");
    eprintln!("captured {count} heartbeats of n1's current incarnation at n2");

    // 2. n1 restarts (a new incarnation; the group is adopted, nothing moves).
    n1.exec_ok(&["systemctl", "restart", "hbd.service"]);
    std::thread::sleep(INITDEAD + DEADTIME);
    assert_eq!(served_by(&lab).as_deref(), Some("n1"), "after the restart");
    let skip: Vec<usize> = lab.nodes().map(|n| journal_lines(&n).len()).collect();

    // 3. Replay the old incarnation's heartbeats to n2, ten times each, with n1's own
    //    source addresses and from the attacker's; and to n1, which sees its own past.
    let file = file.to_str().expect("utf-8 path");
    let replays = [
        (n1.addr_a(), n2.addr_a()),
        (n1.addr_b(), n2.addr_b()),
        ("10.99.0.254".to_string(), n2.addr_a()),
        (n2.addr_a(), n1.addr_a()),
    ];
    let mut sent = 0u64;
    for (src, dst) in &replays {
        let o = lab.client(&["python3", "-c", SEND, "replay", file, src, dst, "10"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        sent += stdout(&o).parse::<u64>().unwrap_or(0);
    }
    eprintln!("replayed {sent} heartbeats of n1's earlier incarnation");
    nothing_moves(&lab, DEADTIME * 3, "after the replay", &skip);
    assert_eq!(peer_state(&n2, "n1"), "up", "n2 about n1 after the replay");
    // The replays did arrive, and were refused (not silently lost on the way).
    let refused = journal_lines(&n2)[skip[1]..]
        .iter()
        .filter(|l| l.contains("refused packet from"))
        .count();
    assert!(refused > 0, "n2 logged no refused replay: did they arrive?");

    // 4. A flood from 20 000 spoofed sources at both nodes for 5 s: junk, forged headers
    //    of this cluster (refused at the MAC), other clusters, oversized.
    let cid = hex_cluster_id();
    let skip: Vec<usize> = lab.nodes().map(|n| journal_lines(&n).len()).collect();
    let cpu0: Vec<u64> = lab.nodes().map(|n| cpu_ticks(&n)).collect();
    let t0 = Instant::now();
    let flood = |dst: String| {
        let cid = cid.clone();
        let lab = &lab;
        move || {
            let o = lab.client(&["python3", "-c", SEND, "flood", &dst, "20000", "5", &cid]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            stdout(&o).parse::<u64>().unwrap_or(0)
        }
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(flood(n1.addr_a()));
        let b = s.spawn(flood(n2.addr_a()));
        (
            a.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    });
    let took = t0.elapsed();
    let cpu1: Vec<u64> = lab.nodes().map(|n| cpu_ticks(&n)).collect();
    eprintln!(
        "MEASURED flood from 20 000 sources: {a} datagrams to n1, {b} to n2 in {took:.2?}; \
         hbd CPU meanwhile: n1 {} ticks, n2 {} ticks (of {:.0} per core)",
        cpu1[0] - cpu0[0],
        cpu1[1] - cpu0[1],
        took.as_secs_f64() * 100.0
    );
    nothing_moves(&lab, DEADTIME * 2, "during and after the flood", &skip);
    for (n, &from) in lab.nodes().zip(&skip) {
        let new = journal_lines(&n).len() - from;
        eprintln!("{}: {new} journal lines for the flood", n.name());
        assert!(
            journal_lines(&n)[from..]
                .iter()
                .any(|l| l.contains("refused packet")),
            "{}: no refused packet logged: did the flood arrive?",
            n.name()
        );
        // One line per source is capped by the refused-packet limiter: a flood from any
        // number of sources costs a bounded number of lines.
        assert!(
            new <= 64,
            "{}: {new} journal lines for a flood: {:#?}",
            n.name(),
            &journal_lines(&n)[from..]
        );
    }
    for (n, peer) in [(&n1, "n2"), (&n2, "n1")] {
        assert_eq!(peer_state(n, peer), "up", "{} about {peer}", n.name());
    }
}

/// The peer's state in `hbd status --json` on `n`.
fn peer_state(n: &Node, peer: &str) -> String {
    let s: serde_json::Value = serde_json::from_str(&n.exec_ok(&["hbd", "status", "--json"]))
        .expect("status --json is JSON");
    let Some(p) = s["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == peer))
    else {
        panic!("{}: no node {peer} in {s:#}", n.name());
    };
    p["state"].as_str().unwrap_or_default().to_string()
}

/// The web cluster's id: the first 4 bytes of SHA-256 of its name, in hex.
fn hex_cluster_id() -> String {
    use sha2::Digest;
    let name = CLUSTER
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("cluster name in web/cluster.toml");
    hex::encode(&sha2::Sha256::digest(name.as_bytes())[..4])
}
