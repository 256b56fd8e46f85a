//! Good configs load, and survive parse → serialize → parse unchanged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hbd::config::{self, Config, HumanDuration, IpCidr, Link, Resource};
use proptest::prelude::*;

fn good_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/config/good");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "only {} good configs", files.len());
    files.push(root.join("examples/cluster.toml"));
    files
}

fn load(path: &Path) -> Config {
    match config::load(path) {
        Ok(l) => l.config,
        Err(e) => panic!("{} does not load:\n{e}", path.display()),
    }
}

#[test]
fn good_configs_round_trip() {
    for path in good_files() {
        let first = load(&path);
        let text = toml::to_string(&first)
            .unwrap_or_else(|e| panic!("{}: cannot serialize: {e}", path.display()));
        let again = match config::parse_str(&text, Path::new("reserialized.toml")) {
            Ok(l) => l.config,
            Err(e) => panic!(
                "{}: serialized form does not load:\n{e}\n--- serialized:\n{text}",
                path.display()
            ),
        };
        assert_eq!(first, again, "{}: model changed:\n{text}", path.display());
        // Serializing is stable, so peers compare the same digest.
        assert_eq!(toml::to_string(&again).unwrap(), text, "{}", path.display());
        assert_eq!(first.digest(), again.digest());
    }
}

#[test]
fn example_is_valid_without_warnings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.toml");
    let loaded = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.render_warnings());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hbd"))
        .args(["check", "--no-key", "--no-host", "-c"])
        .arg(&path)
        .env_remove("HBD_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cluster \"web\""), "{stdout}");
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
}

/// The README shows examples/cluster.toml in full; keep the two the same.
#[test]
fn readme_shows_the_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/cluster.toml")).unwrap();
    assert!(
        readme.contains(&format!("```toml\n{example}```")),
        "README.md must contain examples/cluster.toml verbatim in a ```toml block"
    );
}

/// The defaults the README documents are the defaults the model applies.
#[test]
fn defaults_only_gets_documented_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/good/defaults-only.toml");
    let c = load(&path);
    let s = |secs| HumanDuration::from_secs(secs);
    assert_eq!(c.timing.keepalive, s(1));
    assert_eq!(c.timing.warntime, s(5));
    assert_eq!(c.timing.deadtime, s(10));
    assert_eq!(c.timing.initdead, s(30));
    assert_eq!(c.auth.key_file, Path::new("/etc/hbd/authkey"));
    assert_eq!(c.auth.key_id, 1);
    assert_eq!(c.auth.algorithm.to_string(), "hmac-sha256");
    assert!(!c.failover.auto_failback);
    assert_eq!(c.failover.hold_down, s(30));
    match &c.links[0] {
        Link::UdpUnicast(u) => {
            assert_eq!(u.port, 694);
            assert_eq!(u.interface, None);
        }
        other => panic!("unexpected link {other:?}"),
    }
    match &c.links[1] {
        Link::Serial(l) => assert_eq!(l.baud, 19200),
        other => panic!("unexpected link {other:?}"),
    }
    let g = &c.groups[0];
    assert_eq!(g.max_restarts, 3);
    assert_eq!(g.restart_window, s(300));
    match &g.resources[0] {
        Resource::Unit(u) => assert_eq!(u.timeout, s(90)),
        other => panic!("unexpected resource {other:?}"),
    }
}

/// The full config sets every key away from its default; make sure each one was read.
#[test]
fn full_config_reads_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/good/full.toml");
    let c = load(&path);
    assert_eq!(c.cluster_id(), 4242);
    assert_eq!(c.timing.keepalive, HumanDuration::from_millis(500));
    assert_eq!(c.auth.key_id, 7);
    assert!(c.failover.auto_failback);
    assert_eq!(c.failover.hold_down, HumanDuration::from_secs(150));
    let kinds: Vec<&str> = c.links.iter().map(Link::kind).collect();
    assert_eq!(
        kinds,
        ["udp-unicast", "udp-broadcast", "udp-multicast", "serial"]
    );
    let kinds: Vec<&str> = c.groups[0].resources.iter().map(Resource::kind).collect();
    assert_eq!(kinds, ["ip", "mount", "script", "unit"]);
    match &c.groups[0].resources[2] {
        Resource::Script(s) => assert_eq!(s.args, ["/etc/apache2/apache2.conf", "extra arg"]),
        other => panic!("unexpected resource {other:?}"),
    }
}

proptest! {
    /// Display prints the canonical form and FromStr reads it back exactly.
    #[test]
    fn duration_display_round_trips(ms in 0u64..=400 * 3_600_000) {
        let d = HumanDuration::from_millis(ms);
        let text = d.to_string();
        let back: HumanDuration = text.parse().unwrap();
        prop_assert_eq!(back, d);
        prop_assert_eq!(Duration::from(back), Duration::from_millis(ms));
    }

    /// Any sum of units, in any order and spacing, parses to the sum, and prints canonically.
    #[test]
    fn duration_components_parse_to_their_sum(
        parts in prop::collection::vec((0u64..100_000, prop::sample::select(vec![
            ("ms", 1u64), ("s", 1000), ("sec", 1000), ("m", 60_000), ("min", 60_000), ("h", 3_600_000),
        ]), prop::bool::ANY), 1..5)
    ) {
        let mut text = String::new();
        let mut total = 0;
        for (n, (unit, size), space) in &parts {
            text.push_str(&format!("{n}{}{unit}{}", if *space { " " } else { "" }, if *space { " " } else { "" }));
            total += n * size;
        }
        let d: HumanDuration = text.parse().unwrap();
        prop_assert_eq!(d.as_millis(), total);
        prop_assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
    }

    /// Garbage never panics and never parses as a bare number.
    #[test]
    fn duration_garbage_is_an_error_not_a_panic(s in "\\PC{0,12}") {
        if let Ok(d) = s.parse::<HumanDuration>() {
            prop_assert!(!s.trim().chars().all(|c| c.is_ascii_digit()));
            prop_assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
        }
    }

    #[test]
    fn ip_cidr_round_trips(a in any::<std::net::IpAddr>(), p in proptest::option::of(0u8..=128)) {
        let max = if a.is_ipv4() { 32 } else { 128 };
        let text = match p { Some(p) => format!("{a}/{p}"), None => a.to_string() };
        match text.parse::<IpCidr>() {
            Ok(c) => {
                prop_assert!(p.is_none_or(|p| p <= max));
                prop_assert_eq!(c.to_string(), text);
            }
            Err(_) => prop_assert!(p.is_some_and(|p| p > max)),
        }
    }
}

#[test]
fn fencing_reads_unit_command_and_timeouts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = load(&root.join("tests/config/good/fencing.toml"));
    assert_eq!(
        c.nodes[0].fence.as_ref().and_then(|f| f.unit.as_deref()),
        Some("fence-ipmi@alpha.service")
    );
    assert_eq!(
        c.nodes[1].fence.as_ref().unwrap().command[0],
        "/usr/sbin/fence_ipmilan"
    );
    assert_eq!(c.fence_timeout(0), Duration::from_secs(45));
    assert_eq!(c.fence_timeout(1), Duration::from_secs(90));
    // The default is left out of the canonical form: configs without fencing keep
    // the digest they had before fencing existed.
    let plain = load(&root.join("tests/config/good/minimal.toml"));
    assert_eq!(plain.failover.fence_timeout, HumanDuration::from_secs(60));
    assert!(!toml::to_string(&plain).unwrap().contains("fence"));
}
