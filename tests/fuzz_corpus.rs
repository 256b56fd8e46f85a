//! Replays every checked-in fuzz corpus file (fuzz/corpus/<target>/) through the very
//! bodies the cargo-fuzz targets run (fuzz/bodies.rs, included here), on stable: none
//! may panic. The fuzzing itself needs nightly: .ci/fuzz.sh and fuzz/README.md.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/bodies.rs"]
mod bodies;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, body: fn(&[u8])) {
    let files = corpus(target);
    assert!(
        files.len() >= 10,
        "fuzz/corpus/{target} has only {} inputs: was it checked in?",
        files.len()
    );
    for path in files {
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{} panics the {target} target: {why}", path.display());
        }
    }
}

#[test]
fn decode_corpus_replays() {
    replay("decode", bodies::decode);
}

#[test]
fn config_corpus_replays() {
    replay("config", bodies::config);
}

#[test]
fn import_corpus_replays() {
    replay("import", bodies::import);
}

#[test]
fn packet_corpus_replays() {
    replay("packet", bodies::packet);
}
