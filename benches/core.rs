//! Figures for the sans-IO core: cost of encoding, decoding and handling one
//! heartbeat, and how fast simulated time runs. Prints numbers; asserts nothing
//! (machines here are shared and noisy). Run: `cargo bench --bench core`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use hbd::cluster::{Action, Cluster, LinkId, NodeId};
use hbd::config::{self, Algorithm, KeySet};
use hbd::proto::wire;

fn cfg(groups: usize) -> hbd::config::Config {
    let mut t = String::from(
        "[cluster]\nname = \"bench\"\n[timing]\nkeepalive = \"100ms\"\nwarntime = \"300ms\"\ndeadtime = \"1s\"\ninitdead = \"2s\"\n",
    );
    t += "[[link]]\nname = \"l0\"\nkind = \"udp-broadcast\"\ninterface = \"eth0\"\n";
    for n in 0..2 {
        t += &format!("[[node]]\nname = \"node{n}\"\n");
    }
    for g in 0..groups {
        t += &format!(
            "[[group]]\nname = \"group{g}\"\npreferred = \"node{}\"\n",
            g % 2
        );
    }
    match config::parse_str(&t, Path::new("bench.toml")) {
        Ok(l) => l.config,
        Err(e) => panic!("{e}"),
    }
}

fn keys(alg: Algorithm) -> KeySet {
    let mut k = BTreeMap::new();
    k.insert(1, b"bench secret bench secret bench!".to_vec());
    KeySet::new(alg, 1, k)
}

fn per_op(label: &str, n: u32, f: impl FnMut()) {
    let mut f = f;
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let el = start.elapsed();
    println!(
        "{label:<48} {:>9.0} ns/op  ({n} ops in {el:.2?})",
        el.as_nanos() as f64 / n as f64
    );
}

fn heartbeat(c: &mut Cluster, now: Instant) -> Vec<u8> {
    c.handle_timeout(now);
    let mut out = None;
    while let Some(a) = c.poll_action() {
        if let Action::Send(b) = a {
            out = Some(b);
        }
    }
    out.unwrap_or_default()
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this runs as a
    // quick smoke test with a hundredth of the work.
    let scale = if std::env::args().any(|a| a == "--bench") {
        1
    } else {
        100
    };
    for (groups, alg) in [
        (1, Algorithm::HmacSha256),
        (16, Algorithm::HmacSha256),
        (16, Algorithm::HmacSha1),
    ] {
        let c = cfg(groups);
        let t0 = Instant::now();
        let mut a = Cluster::new(&c, NodeId(0), keys(alg), 1, t0);
        let pkt = heartbeat(&mut a, t0);
        println!(
            "-- {groups} group(s), {alg}: heartbeat is {} bytes",
            pkt.len()
        );
        let k = keys(alg);
        let cid = c.cluster_id();
        per_op("decode + verify", 200_000 / scale, || {
            black_box(wire::decode(black_box(&pkt), &k, cid).ok());
        });
        let mut now = t0;
        per_op(
            "sender: handle_timeout + encode heartbeat",
            100_000 / scale,
            || {
                now += Duration::from_millis(100);
                black_box(heartbeat(&mut a, now));
            },
        );
        // Receiver: a stream of fresh heartbeats.
        let mut sender = Cluster::new(&c, NodeId(0), keys(alg), 2, t0);
        let mut packets = Vec::new();
        let mut t = t0;
        for _ in 0..100_000 / scale {
            t += Duration::from_millis(100);
            packets.push(heartbeat(&mut sender, t));
        }
        let mut b = Cluster::new(&c, NodeId(1), keys(alg), 3, t0);
        let mut it = packets.iter();
        let mut t = t0;
        per_op(
            "receiver: handle_packet (fresh heartbeat)",
            100_000 / scale,
            || {
                t += Duration::from_millis(100);
                if let Some(p) = it.next() {
                    let _ = black_box(b.handle_packet(t, LinkId(0), p));
                    while b.poll_action().is_some() {}
                }
            },
        );
    }
    // Simulated time: two nodes exchanging heartbeats for 24 hours.
    let c = cfg(4);
    let t0 = Instant::now();
    let mut nodes = [
        Cluster::new(&c, NodeId(0), keys(Algorithm::HmacSha256), 10, t0),
        Cluster::new(&c, NodeId(1), keys(Algorithm::HmacSha256), 11, t0),
    ];
    let wall = Instant::now();
    let mut now = t0;
    let end = t0 + Duration::from_secs(24 * 3600 / scale as u64);
    let mut packets = 0u64;
    while now < end {
        now = nodes
            .iter()
            .filter_map(|n| n.poll_timeout())
            .min()
            .unwrap_or(end)
            .max(now);
        for i in 0..2 {
            if nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                nodes[i].handle_timeout(now);
            }
            while let Some(a) = nodes[i].poll_action() {
                match a {
                    Action::Send(p) => {
                        packets += 1;
                        let _ = nodes[1 - i].handle_packet(now, LinkId(0), &p);
                    }
                    Action::StartGroup(g) => {
                        nodes[i].handle_group_event(now, g, hbd::cluster::GroupEvent::Started)
                    }
                    _ => {}
                }
            }
        }
    }
    let el = wall.elapsed();
    println!(
        "-- simulated {}s of a 2-node cluster (keepalive 100ms): {packets} packets in {el:.2?} ({:.0}x real time)",
        86_400 / scale,
        86_400.0 / scale as f64 / el.as_secs_f64()
    );
    println!(
        "-- size of one core: {} bytes inline (plus heap for {} peers and {} groups)",
        std::mem::size_of::<Cluster>(),
        c.nodes.len(),
        c.groups.len()
    );
}
