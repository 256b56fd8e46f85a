//! Issue 22's first layer, against the real thing: one Debian Heartbeat 3.0.6 node (n1)
//! and a driver speaking hbd's Heartbeat codec (`hbd::proto::heartbeat`) from n2's network
//! namespace. Heartbeat must report n2 `active` from the driver's status heartbeats
//! alone, ask for a status the driver held back (NS_rexmit) and take the driver's answer,
//! and declare n2 dead once the driver falls silent; the driver must authenticate
//! Heartbeat's own status heartbeats. First, which signature Heartbeat checks: statuses
//! with a forged netstring trailer are refused, one with a forged `auth` field but a
//! right trailer is taken.

mod lab;

use std::fs::File;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hbd::proto::heartbeat::speaker::{Event, Identity, Speaker};
use hbd::proto::heartbeat::{self, Keyring, Method};
use lab::{Lab, stdout};

const SECRET: &str = "lab-hbwire-secret";
const HB: &str = "10.99.0.1:694";
const HA_CF: &str = "logfile /var/log/ha-log
debugfile /dev/null
keepalive 200ms
warntime 1
deadtime 2
initdead 4
udpport 694
ucast eth0 10.99.0.2
auto_failback off
node n1
node n2
crm no
";

/// A UDP socket bound to port 694 inside network namespace `ns` (a thread enters it
/// just to create the socket; the socket stays in that namespace).
fn socket_in(ns: &str) -> UdpSocket {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let f = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on this thread only, with a valid namespace fd.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        UdpSocket::bind("0.0.0.0:694").expect("bind udp/694 in n2")
    })
    .join()
    .expect("socket thread")
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "n/a".into())
}

#[derive(Default)]
struct Seen {
    authenticated: usize,
    active_from_n1: usize,
    rexmit_requests: usize,
    rexmit_answers: usize,
    acks_sent: usize,
    refused: Vec<String>,
    kinds: std::collections::BTreeMap<String, usize>,
}

/// Receive for `dur`, answering what the speaker says to answer.
fn pump(sock: &UdpSocket, sp: &mut Speaker, seen: &mut Seen, dur: Duration) {
    let end = Instant::now() + dur;
    let mut buf = vec![0u8; 65536];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok(n) = sock.recv(&mut buf) else { continue };
        match sp.receive(&buf[..n], epoch(), &loadavg()) {
            Ok(r) => {
                seen.authenticated += 1;
                let kind = match &r.event {
                    Event::Status { status, .. } => format!("status/{status}"),
                    Event::Message { kind, .. } | Event::Control { kind, .. } => kind.clone(),
                    other => format!("{other:?}")
                        .split([' ', '{'])
                        .next()
                        .unwrap_or("?")
                        .to_string(),
                };
                *seen.kinds.entry(kind).or_default() += 1;
                match &r.event {
                    Event::Status { node, status } if node == "n1" && status == "active" => {
                        seen.active_from_n1 += 1
                    }
                    Event::Control { kind, .. } if kind == "NS_rexmit" => {
                        seen.rexmit_requests += 1;
                        seen.rexmit_answers += r.send.len();
                    }
                    _ => {}
                }
                for p in &r.send {
                    if heartbeat::decode(p).is_ok_and(|p| p.message.kind() == Some("NS_ackmsg")) {
                        seen.acks_sent += 1;
                    }
                    // To Heartbeat's port: it sends from a socket it never reads.
                    sock.send_to(p, HB).unwrap();
                }
            }
            Err(e) => seen.refused.push(e.to_string()),
        }
    }
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn heartbeat_node_sees_the_codec_node_alive() {
    if !lab::available("lab_heartbeat_wire") {
        return;
    }
    let lab = Lab::boot("hbw", 2);
    let n1 = lab.node("n1");
    n1.write_file("/etc/ha.d/ha.cf", HA_CF, 0o644);
    n1.write_file("/etc/ha.d/haresources", "# none\n", 0o644);
    n1.write_file(
        "/etc/ha.d/authkeys",
        &format!("auth 1\n1 sha1 {SECRET}\n"),
        0o600,
    );
    let sock = socket_in(&format!("hbd-lab-{}-n2", lab.id()));
    let keys = Keyring::new(1, vec![(1, Method::Sha1(SECRET.as_bytes().to_vec()))]).unwrap();
    let id = Identity {
        node: "n2".into(),
        uuid: *b"hbd-wire-test-n2",
        generation: epoch(),
        deadtime_ms: 2000,
        ttl: 3,
        nodes: vec!["n1".into(), "n2".into()],
    };
    let mut sp = Speaker::new(id, keys);
    let mut seen = Seen::default();
    n1.systemctl(&["start", "heartbeat.service"]);
    let log_has = |what: &str| {
        n1.exec(&["grep", "-qF", what, "/var/log/ha-log"])
            .status
            .success()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_has("ucast: started on port 694") {
        assert!(
            Instant::now() < deadline,
            "heartbeat did not start its ucast link"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Which signature a Heartbeat 3.0.6 receiver checks: the netstring trailer, not the
    // `auth` field. A status whose trailer is wrong (its `auth` field right) is refused…
    let forge = |sp: &mut Speaker, trailer_ok: bool| {
        let p = heartbeat::decode(&sp.status("up", epoch(), &loadavg()).unwrap()).unwrap();
        let mut m = p.message.clone();
        if trailer_ok {
            // …and one whose `auth` field is wrong and trailer right is taken.
            m.set_str("auth", "1 0000000000000000000000000000000000000000")
                .unwrap();
        }
        let key = Method::Sha1(if trailer_ok { SECRET } else { "not-the-secret" }.into());
        let trailer = format!("1 {}", key.digest(&heartbeat::netstring_body(&m)));
        let framing = heartbeat::Framing::Netstring;
        heartbeat::encode(&heartbeat::Packet {
            framing,
            message: m,
            trailer: Some(trailer),
        })
        .unwrap()
    };
    for _ in 0..3 {
        sock.send_to(&forge(&mut sp, false), HB).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !log_has("Link n2:eth0 up"),
        "Heartbeat took a status with a wrong trailer"
    );
    let auth_lines = || {
        n1.exec_ok(&[
            "sh",
            "-c",
            "grep -c 'authentication' /var/log/ha-log || true",
        ])
    };
    let refused = auth_lines();
    assert_ne!(
        refused, "0",
        "Heartbeat logged no authentication failure for the forged trailers"
    );
    sock.send_to(&forge(&mut sp, true), HB).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !log_has("Link n2:eth0 up") {
        assert!(
            Instant::now() < deadline,
            "Heartbeat refused a status whose trailer is right (auth field wrong)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let nodestatus = || stdout(&n1.exec(&["cl_status", "nodestatus", "n2"]));
    let start = Instant::now();
    let mut sent = 0u32;
    let mut active_after = None;
    while start.elapsed() < Duration::from_secs(25) {
        let st = match sent {
            0 => "init",
            1..=2 => "up",
            _ => "active",
        };
        let pkt = sp.status(st, epoch(), &loadavg()).unwrap();
        sent += 1;
        // Hold back the 6th status: Heartbeat sees the gap and asks for it.
        if sent != 6 {
            sock.send_to(&pkt, HB).unwrap();
        }
        pump(&sock, &mut sp, &mut seen, Duration::from_millis(200));
        if sent % 5 == 0 && sent > 10 && nodestatus() == "active" {
            active_after = Some(start.elapsed());
            if seen.active_from_n1 > 0 && seen.rexmit_requests > 0 {
                break;
            }
        }
    }
    let journal = || n1.exec_ok(&["sh", "-c", "tail -n 40 /var/log/ha-log"]);
    let active_after = active_after.unwrap_or_else(|| {
        panic!(
            "n1 never saw n2 active: {}; received {:?}\n{}",
            nodestatus(),
            seen.kinds,
            journal()
        )
    });
    eprintln!(
        "n2 active on n1 after {active_after:.2?}; {} statuses sent, {} packets authenticated, {} \
         active statuses from n1, {} rexmit requests ({} answered), {} acks sent",
        sent,
        seen.authenticated,
        seen.active_from_n1,
        seen.rexmit_requests,
        seen.rexmit_answers,
        seen.acks_sent
    );
    assert!(seen.refused.is_empty(), "refused: {:?}", seen.refused);
    assert!(
        seen.active_from_n1 > 0,
        "no authenticated active status from n1"
    );
    assert!(seen.acks_sent > 0, "the driver acknowledged nothing");
    assert!(
        seen.rexmit_requests > 0 && seen.rexmit_answers > 0,
        "Heartbeat did not ask for (or got no answer to) the held-back status:\n{}",
        journal()
    );
    assert_eq!(sp.peer_status("n1"), Some("active"));

    // Silence: Heartbeat declares n2 dead after its deadtime (2 s), which shows that
    // the driver's heartbeats were what kept it alive.
    let silent = Instant::now();
    let mut dead_after = None;
    while silent.elapsed() < Duration::from_secs(8) {
        pump(&sock, &mut sp, &mut seen, Duration::from_millis(250));
        if nodestatus() == "dead" {
            dead_after = Some(silent.elapsed());
            break;
        }
    }
    let dead_after =
        dead_after.unwrap_or_else(|| panic!("n2 still {} after silence", nodestatus()));
    eprintln!("n2 dead on n1 {dead_after:.2?} after the driver fell silent");
    assert!(
        dead_after >= Duration::from_millis(1500),
        "declared dead too early: {dead_after:?}"
    );
    // The forged trailers above are the only packets Heartbeat refused.
    eprintln!("Heartbeat logged {refused} authentication failures for the 3 forged trailers");
    assert_eq!(
        auth_lines(),
        refused,
        "Heartbeat refused later packets:\n{}",
        journal()
    );
}
