//! The bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (cargo-fuzz, on
//! nightly) and `tests/fuzz_corpus.rs` (which replays every checked-in corpus file on
//! stable), so the two cannot drift. Each body panics only on a real finding: a panic
//! in hbd itself or a broken property (stated beside the `assert!`).
//!
//! Only `hbd` and `toml` are used here: both crates that include this file have them.
#![allow(dead_code)] // each target uses one body

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hbd::cluster::{Cluster, Command, Found, GroupEvent, GroupId, LinkId, NodeId};
use hbd::config::{Algorithm, KeySet};
use hbd::proto::{auth, wire};

/// The cluster the `decode` and `packet` targets run: three nodes, two links, two groups.
const CLUSTER: &str = r#"
[cluster]
name = "fuzz"
[timing]
keepalive = "100ms"
warntime = "300ms"
deadtime = "600ms"
initdead = "1s"
[[link]]
name = "l0"
kind = "udp-broadcast"
interface = "eth0"
[[link]]
name = "l1"
kind = "udp-broadcast"
interface = "eth1"
port = 695
[[node]]
name = "a"
[[node]]
name = "b"
[[node]]
name = "c"
[[group]]
name = "web"
preferred = "a"
[[group]]
name = "db"
preferred = "b"
"#;

/// The key the targets sign with (id 1) and a second one the config accepts (id 2).
pub fn keys() -> KeySet {
    let mut k = BTreeMap::new();
    k.insert(1, b"fuzzing key".to_vec());
    k.insert(2, b"second key".to_vec());
    KeySet::new(Algorithm::HmacSha256, 1, k)
}

/// The targets' cluster, loaded once.
fn cluster_config() -> &'static hbd::config::Config {
    static CONFIG: OnceLock<hbd::config::Config> = OnceLock::new();
    CONFIG.get_or_init(
        || match hbd::config::parse_str(CLUSTER, Path::new("fuzz.toml")) {
            Ok(l) => l.config,
            Err(e) => panic!("the fuzz targets' own config does not load: {e}"),
        },
    )
}

/// Property of every packet that decodes: re-encoding its message in the packet's own
/// version gives a packet that decodes to the same message, with the same bytes up to
/// the version 2 trailer (the sender's version range and optional fields, which a
/// newer peer may fill and this hbd skips; so a packet has one encoding of its body).
fn round_trip(msg: &wire::Message, data: &[u8], keys: &KeySet, cluster_id: u32) {
    let version = data[4];
    let again = match wire::encode_as(msg, keys, version) {
        Ok(again) => again,
        Err(e) => panic!("a decoded message does not re-encode ({e}): {msg:?}"),
    };
    match wire::decode(&again, keys, cluster_id) {
        Ok(back) => assert!(&back == msg, "re-encoding changes {msg:?} into {back:?}"),
        Err(e) => panic!("a re-encoded message does not decode ({e}): {msg:?}"),
    }
    let trailer = if version >= 2 { 3 } else { 0 };
    let body = again.len() - auth::mac_len(keys.algorithm) - trailer;
    assert!(
        data.len() >= again.len() && data[..body] == again[..body],
        "a decoded message re-encodes to other bytes: {msg:?}"
    );
}

/// `decode`: arbitrary bytes to the wire decoder and to a fresh core.
pub fn decode(data: &[u8]) {
    let config = cluster_config();
    let keys = keys();
    if let Ok(msg) = wire::decode(data, &keys, config.cluster_id()) {
        round_trip(&msg, data, &keys, config.cluster_id());
    }
    let _ = wire::peek_sender(data);
    let now = Instant::now();
    let mut core = Cluster::new(config, NodeId(0), keys, 1, now);
    let _ = core.handle_packet(now, LinkId(0), data);
    while core.poll_action().is_some() {}
}

/// `config`: bytes as cluster.toml. What loads must pass its own checks, serialize, load
/// again to the same model and digest, and start a core; what does not load must render.
pub fn config(data: &[u8]) {
    let path = Path::new("fuzz.toml");
    let loaded = match hbd::config::parse_bytes(data, path) {
        Ok(l) => l,
        Err(e) => {
            let _ = e.to_string();
            for d in e.diagnostics() {
                let _ = d.render("fuzz.toml");
            }
            return;
        }
    };
    let _ = loaded.render_warnings();
    let first = &loaded.config;
    // Property: a loaded config has no error in its own validation.
    assert!(
        !hbd::config::validate(first).iter().any(|d| d.is_error()),
        "a config that loaded fails validation"
    );
    // Property: serializing and loading again gives the same model and digest
    // (tests/config_good.rs checks this for the project's configs).
    let text = match toml::to_string(first) {
        Ok(t) => t,
        Err(e) => panic!("a loaded config does not serialize: {e}"),
    };
    let again = match hbd::config::parse_str(&text, Path::new("reserialized.toml")) {
        Ok(l) => l.config,
        Err(e) => panic!("the serialized form does not load:\n{e}\n--- serialized:\n{text}"),
    };
    assert!(
        *first == again,
        "the model changed on a round trip:\n{text}"
    );
    assert!(first.digest() == again.digest(), "the digest changed");
    // A loaded config starts a core on every node that keeps time without panicking.
    let mut k = BTreeMap::new();
    k.insert(first.auth.key_id, b"fuzzing key".to_vec());
    let keys = KeySet::new(first.auth.algorithm, first.auth.key_id, k);
    let now = Instant::now();
    for n in 0..first.nodes.len().min(3) {
        let mut core = Cluster::new(first, NodeId(n), keys.clone(), 1, now);
        for g in 0..first.groups.len() {
            core.found(GroupId(g), Found::Down);
        }
        for step in 0..3u64 {
            core.handle_timeout(now + Duration::from_millis(step * 700));
            while core.poll_action().is_some() {}
        }
        let _ = core.status().summary_line();
    }
}

/// The importer's host, all in memory: files come from the fuzz input, the machine is
/// node "alpha" with 10.0.0.1/24 on eth1, and /etc/hosts knows alpha and beta.
struct MemHost {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

/// Scripts that exist in the imported tree's resource.d.
const SCRIPTS: &[&str] = &["custom", "drbddisk", "apache", "MailTo"];

impl hbd::import::Host for MemHost {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn mode(&self, path: &Path) -> Option<u32> {
        self.files.contains_key(path).then_some(0o600)
    }
    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
            || (path.parent() == Some(Path::new("/etc/ha.d/resource.d"))
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| SCRIPTS.contains(&n)))
    }
    fn hostname(&self) -> Option<String> {
        Some("alpha".into())
    }
    fn interface_addrs(&self, iface: &str) -> Vec<(IpAddr, u8)> {
        match iface {
            "eth1" => vec![(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 24)],
            _ => Vec::new(),
        }
    }
    fn resolve(&self, name: &str) -> Option<IpAddr> {
        match name.to_ascii_lowercase().as_str() {
            "alpha" => Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            "beta" => Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
            _ => None,
        }
    }
}

/// Split an `import` input into ha.cf, haresources and authkeys: the parts are
/// separated by NUL bytes; a part that is not there is a file that does not exist.
pub fn split_import(data: &[u8]) -> [Option<&[u8]>; 3] {
    let mut parts = data.splitn(3, |&b| b == 0);
    [parts.next(), parts.next(), parts.next()]
}

/// Join a Heartbeat directory's files into one `import` input (the inverse of
/// [`split_import`]; authkeys without haresources gets an empty haresources, as
/// fuzz/seed.sh does).
pub fn join_import(hacf: &[u8], haresources: Option<&[u8]>, authkeys: Option<&[u8]>) -> Vec<u8> {
    let mut out = hacf.to_vec();
    if haresources.is_some() || authkeys.is_some() {
        out.push(0);
        out.extend_from_slice(haresources.unwrap_or_default());
    }
    if let Some(a) = authkeys {
        out.push(0);
        out.extend_from_slice(a);
    }
    out
}

/// `import`: bytes as a Heartbeat directory (see [`split_import`]) through the
/// importer's parsers and the whole import, on the in-memory host. What imports must
/// load as a config (the property tests/import_contrib.rs states for random trees).
pub fn import(data: &[u8]) {
    let dir = Path::new("/etc/ha.d");
    let names = ["ha.cf", "haresources", "authkeys"];
    let mut files = BTreeMap::new();
    for (name, part) in names.iter().zip(split_import(data)) {
        if let Some(bytes) = part {
            files.insert(dir.join(name), bytes.to_vec());
            let mut r = hbd::import::Report::default();
            match *name {
                "ha.cf" => drop(hbd::import::hacf::parse(bytes, name, &mut r)),
                "haresources" => drop(hbd::import::haresources::parse(bytes, name, &mut r)),
                _ => drop(hbd::import::authkeys::parse(bytes, name, &mut r)),
            }
        }
    }
    let host = MemHost { files };
    let opts = hbd::import::Options {
        node_dir: Some(dir.to_path_buf()),
        ..hbd::import::Options::default()
    };
    match hbd::import::import(dir, &opts, &host) {
        Ok(got) => {
            if let Err(e) = hbd::config::parse_str(&got.toml, Path::new("cluster.toml")) {
                panic!(
                    "the import's cluster.toml does not load:\n{e}\n---\n{}",
                    got.toml
                );
            }
            let _ = got.key.file_text();
        }
        Err(e) => drop(e.to_string()),
    }
}

/// Reads the fuzz input as a little program; past the end every read gives zeros.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.data.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    /// A small number most of the time (values that match the core's state), a full
    /// u64 when the chooser byte says so.
    fn num(&mut self) -> u64 {
        let b = self.u8();
        if b >= 0xf0 {
            let mut a = [0u8; 8];
            a.copy_from_slice(&{
                let mut v = self.bytes(8).to_vec();
                v.resize(8, 0);
                v
            });
            u64::from_be_bytes(a)
        } else {
            u64::from(b % 16)
        }
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.u8()) % from.len()]
    }
}

const SENDERS: &[&str] = &["b", "c", "a", "zz"];
const GROUPS: &[&str] = &["web", "db", "mail"];
const STATES: &[wire::ClaimState] = &[
    wire::ClaimState::None,
    wire::ClaimState::Starting,
    wire::ClaimState::Running,
    wire::ClaimState::Stopping,
    wire::ClaimState::Failed,
    wire::ClaimState::Blocked,
];

/// `packet`: the input is a program run against a real core (node a of a, b, c): signed
/// messages from peers with fields the input chooses, signed packets whose body after
/// the header is raw input (junk behind a valid MAC), unsigned junk, replays of the
/// core's own packets, the passage of time, group events and commands.
pub fn packet(data: &[u8]) {
    let config = cluster_config();
    let keys = keys();
    let cluster_id = config.cluster_id();
    let digest = config.digest();
    let start = Instant::now();
    let mut now = start;
    let local_inc = 5;
    let mut core = Cluster::new(config, NodeId(0), keys.clone(), local_inc, now);
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut c = Cursor { data };
    let mut steps = 0;
    while !c.done() && steps < 256 {
        steps += 1;
        let link = LinkId(usize::from(c.u8() % 2));
        match c.u8() % 8 {
            // A well-formed message from a peer, signed.
            0 | 1 => {
                let kind = if c.u8() % 8 == 0 {
                    wire::Kind::Leave
                } else {
                    wire::Kind::Heartbeat
                };
                let flags = c.u8() % 4;
                let incarnation = c.num();
                let seq = c.num();
                let sender = c.pick(SENDERS).to_string();
                let mut claims = Vec::new();
                for _ in 0..c.u8() % 4 {
                    claims.push(wire::Claim {
                        group: c.pick(GROUPS).to_string(),
                        state: c.pick(STATES),
                        generation: c.num(),
                        flags: c.u8() % 4,
                    });
                }
                let mut acks = Vec::new();
                for _ in 0..c.u8() % 4 {
                    let a = c.num();
                    // Ack the core's own incarnation often, so new peers are believed.
                    acks.push(if a % 2 == 0 { local_inc } else { a });
                }
                let key_id = if c.u8() % 16 == 0 { 2 } else { 1 };
                let msg = wire::Message {
                    kind,
                    key_id,
                    flags,
                    cluster_id: if c.u8() == 0xff {
                        cluster_id ^ 1
                    } else {
                        cluster_id
                    },
                    digest: if c.u8() == 0xff { [0; 8] } else { digest },
                    incarnation,
                    seq,
                    sender,
                    claims,
                    acks,
                };
                if let Ok(bytes) = wire::encode(&msg, &keys) {
                    let _ = core.handle_packet(now, link, &bytes);
                }
            }
            // The header of a real message, then raw input as the body, then a valid MAC.
            2 => {
                let mut out = Vec::new();
                out.extend_from_slice(&wire::MAGIC);
                out.push(wire::VERSION);
                out.push(1 + c.u8() % 2);
                out.push(1);
                out.push(c.u8() % 4);
                out.extend_from_slice(&cluster_id.to_be_bytes());
                out.extend_from_slice(&digest);
                out.extend_from_slice(&c.num().to_be_bytes());
                out.extend_from_slice(&c.num().to_be_bytes());
                let n = usize::from(c.u8());
                out.extend_from_slice(c.bytes(n));
                if let Some(key) = keys.get(1) {
                    if let Ok(tag) = auth::sign(keys.algorithm, key, &out) {
                        out.extend_from_slice(&tag);
                        if let Ok(msg) = wire::decode(&out, &keys, cluster_id) {
                            round_trip(&msg, &out, &keys, cluster_id);
                        }
                        let _ = core.handle_packet(now, link, &out);
                    }
                }
            }
            // Unsigned junk.
            3 => {
                let n = usize::from(c.u8());
                let junk = c.bytes(n);
                let _ = core.handle_packet(now, link, junk);
            }
            // One of the core's own packets comes back (a loop, a replay, a twin).
            4 => {
                if !sent.is_empty() {
                    let i = usize::from(c.u8()) % sent.len();
                    let mut p = sent[i].clone();
                    // Sometimes with one byte flipped.
                    let flip = usize::from(c.u8());
                    if flip < p.len() {
                        p[flip] ^= 1;
                    }
                    let _ = core.handle_packet(now, link, &p);
                }
            }
            // Time passes.
            5 => {
                now += Duration::from_millis(u64::from(c.u8()) * 10);
                if let Some(t) = core.poll_timeout() {
                    if t <= now {
                        core.handle_timeout(now);
                    }
                }
                core.handle_timeout(now);
            }
            // A group event for whatever the core asked.
            6 => {
                let g = GroupId(usize::from(c.u8() % 3));
                let event = match c.u8() % 9 {
                    0 => GroupEvent::Started,
                    1 => GroupEvent::StartFailed { reason: "x".into() },
                    2 => GroupEvent::Stopped,
                    3 => GroupEvent::StopFailed { reason: "x".into() },
                    4 => GroupEvent::Failed { reason: "x".into() },
                    5 => GroupEvent::ResourceDown {
                        resource: usize::from(c.u8() % 3),
                        reason: "x".into(),
                    },
                    6 => GroupEvent::Restarted,
                    7 => GroupEvent::RestartFailed { reason: "x".into() },
                    _ => {
                        core.found(g, Found::AllUp);
                        continue;
                    }
                };
                core.handle_group_event(now, g, event);
            }
            // An operator command.
            _ => {
                let pick = c.u8();
                let name = c.pick(GROUPS).to_string();
                let cmd = match pick % 10 {
                    0 => Command::Stop { restart: false },
                    1 => Command::Stop { restart: true },
                    2 => Command::Shutdown,
                    3 => Command::Detach,
                    4 => Command::Standby {
                        group: Some(name),
                        force: pick & 0x10 != 0,
                    },
                    5 => Command::Standby {
                        group: None,
                        force: false,
                    },
                    6 => Command::Takeover {
                        group: Some(name),
                        force: pick & 0x10 != 0,
                    },
                    7 => Command::Takeover {
                        group: None,
                        force: false,
                    },
                    8 => Command::Maintenance(pick & 0x10 != 0),
                    _ => Command::Unblock { group: name },
                };
                // Refusals are answers, not failures; a panic is the failure.
                let _ = core.handle_command(now, cmd);
            }
        }
        while let Some(a) = core.poll_action() {
            if let hbd::cluster::Action::Send(bytes) = a {
                if sent.len() < 16 {
                    sent.push(bytes);
                }
            }
        }
        let _ = core.status();
    }
    let _ = core.status().summary_line();
}

/// A Heartbeat 3.0.6 datagram through the codec (hbd::proto::heartbeat), by
/// [`heartbeat_checked`].
pub struct HeartbeatChecked {
    pub packet: hbd::proto::heartbeat::Packet,
    /// The key id the trailer's signature verifies with, or why it does not.
    pub trailer: Result<u8, hbd::proto::heartbeat::AuthError>,
    /// The key id the `auth` field verifies with, or why it does not.
    pub field: Result<u8, hbd::proto::heartbeat::AuthError>,
}

/// Decode `data` as a Heartbeat datagram, check that it re-encodes to the same bytes
/// (the codec's promise: a panic if not) and verify both its signatures with `keys`;
/// why it does not decode, else the packet and what each signature says. The
/// `heartbeat` target runs it on anything; tests/heartbeat_wire.rs on real captures.
pub fn heartbeat_checked(
    data: &[u8],
    keys: &hbd::proto::heartbeat::Keyring,
) -> Result<HeartbeatChecked, hbd::proto::heartbeat::HbError> {
    use hbd::proto::heartbeat;
    let packet = heartbeat::decode(data)?;
    assert_eq!(
        heartbeat::encode(&packet).expect("re-encode").as_slice(),
        data,
        "re-encoding differs"
    );
    Ok(HeartbeatChecked {
        trailer: keys.verify(&packet),
        field: keys.verify_field(&packet.message),
        packet,
    })
}

/// `heartbeat`: arbitrary bytes as a Heartbeat 3.0.6 datagram (hbd::proto::heartbeat).
/// What decodes must re-encode to the same bytes (the codec's promise); checking its
/// signature and feeding it to a status speaker must not panic.
pub fn heartbeat(data: &[u8]) {
    use hbd::proto::heartbeat::speaker::{Identity, Speaker};
    use hbd::proto::heartbeat::{Keyring, Method};
    // The key of tests/data/heartbeat-wire/sha1-*, so captured packets verify.
    let keys = Keyring::new(
        1,
        vec![
            (1, Method::Sha1(b"hbwire-lab-sha1-key".to_vec())),
            (2, Method::Crc),
        ],
    )
    .expect("keyring");
    let _ = heartbeat_checked(data, &keys);
    let id = Identity {
        node: "n2".into(),
        uuid: [2; 16],
        generation: 1,
        deadtime_ms: 2000,
        ttl: 3,
        nodes: vec!["n1".into(), "n2".into()],
    };
    let mut sp = Speaker::new(id, keys);
    let _ = sp.receive(data, 1, "0.00 0.00 0.00 1/1 1");
    let _ = sp.receive(data, 1, "0.00 0.00 0.00 1/1 1");
}
