//! Feed arbitrary bytes to the wire decoder and to a live core: neither may panic.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use hbd::cluster::{Cluster, LinkId, NodeId};
use hbd::config::{Algorithm, KeySet};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[cluster]
name = "fuzz"
[[link]]
name = "l0"
kind = "udp-broadcast"
interface = "eth0"
[[node]]
name = "a"
[[node]]
name = "b"
[[group]]
name = "web"
preferred = "a"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(loaded) = hbd::config::parse_str(CONFIG, Path::new("fuzz.toml")) else { return };
    let mut k = BTreeMap::new();
    k.insert(1, b"fuzzing key".to_vec());
    let keys = KeySet::new(Algorithm::HmacSha256, 1, k);
    let _ = hbd::proto::wire::decode(data, &keys, loaded.config.cluster_id());
    let mut core = Cluster::new(&loaded.config, NodeId(0), keys, 1, Instant::now());
    let _ = core.handle_packet(Instant::now(), LinkId(0), data);
});
