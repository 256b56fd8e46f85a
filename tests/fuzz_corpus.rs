//! Replays every checked-in fuzz corpus file (fuzz/corpus/<target>/) through the very
//! bodies the cargo-fuzz targets run (fuzz/bodies.rs, included here), on stable: none
//! may panic; nor may the project's own files the fuzzer is seeded with (tests/config,
//! examples/cluster.toml, contrib/legacy-import). The fuzzing itself needs nightly:
//! .ci/fuzz.sh and fuzz/README.md.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/bodies.rs"]
mod bodies;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn run(name: &str, target: &str, body: fn(&[u8]), data: &[u8]) {
    if let Err(panic) = std::panic::catch_unwind(|| body(data)) {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        panic!("{name} panics the {target} target: {why}");
    }
}

/// Every file of fuzz/corpus/TARGET, plus `extra` (the project's own files the fuzzer is
/// seeded with, fuzz/seed.sh), through the target's body.
fn replay(target: &str, body: fn(&[u8]), extra: Vec<(String, Vec<u8>)>) {
    let files = files_in(&root().join("fuzz/corpus").join(target));
    assert!(
        files.len() >= 5,
        "fuzz/corpus/{target} has only {} inputs: was it checked in?",
        files.len()
    );
    for path in files {
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        run(&path.display().to_string(), target, body, &data);
    }
    for (name, data) in extra {
        run(&name, target, body, &data);
    }
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let mut files = files_in(&root().join("tests/config/good"));
    files.extend(files_in(&root().join("tests/config/bad")));
    files.push(root().join("examples/cluster.toml"));
    files
        .into_iter()
        .map(|p| (p.display().to_string(), read(&p)))
        .collect()
}

fn import_seeds() -> Vec<(String, Vec<u8>)> {
    let base = root().join("contrib/legacy-import");
    let mut trees: Vec<PathBuf> = Vec::new();
    for dir in [base.clone(), base.join("malformed")] {
        for e in fs::read_dir(&dir).expect("contrib/legacy-import") {
            let p = e.expect("directory entry").path();
            if p.join("ha.cf").is_file() {
                trees.push(p);
            }
        }
    }
    trees.sort();
    assert!(trees.len() >= 20, "only {} Heartbeat trees", trees.len());
    trees
        .into_iter()
        .map(|t| {
            let opt = |name: &str| fs::read(t.join(name)).ok();
            let data = bodies::join_import(
                &read(&t.join("ha.cf")),
                opt("haresources").as_deref(),
                opt("authkeys").as_deref(),
            );
            (t.display().to_string(), data)
        })
        .collect()
}

#[test]
fn import_inputs_split_into_the_three_files() {
    let joined = bodies::join_import(b"node a b\n", None, Some(b"auth 1\n"));
    assert_eq!(
        bodies::split_import(&joined),
        [
            Some(&b"node a b\n"[..]),
            Some(&b""[..]),
            Some(&b"auth 1\n"[..])
        ]
    );
    assert_eq!(
        bodies::split_import(b"node a"),
        [Some(&b"node a"[..]), None, None]
    );
}

#[test]
fn decode_corpus_replays() {
    replay("decode", bodies::decode, Vec::new());
}

#[test]
fn config_corpus_replays() {
    replay("config", bodies::config, config_seeds());
}

#[test]
fn import_corpus_replays() {
    replay("import", bodies::import, import_seeds());
}

#[test]
fn packet_corpus_replays() {
    replay("packet", bodies::packet, Vec::new());
}

/// Seeded with the real Heartbeat packets of tests/data/heartbeat-wire/ as well.
#[test]
fn heartbeat_corpus_replays() {
    let captured = files_in(&root().join("tests/data/heartbeat-wire"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| (p.display().to_string(), read(&p)))
        .collect();
    replay("heartbeat", bodies::heartbeat, captured);
}
