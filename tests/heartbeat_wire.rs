//! The Heartbeat codec against real Heartbeat 3.0.6 packets (tests/data/heartbeat-wire/,
//! how they were captured in its README): each decodes, both its signatures verify with
//! the capture's key and fail with another, and it re-encodes to the same bytes (checked
//! by the body of the `heartbeat` fuzz target, fuzz/bodies.rs, included here).

use std::fs;
use std::path::{Path, PathBuf};

use hbd::proto::heartbeat::speaker::{Event, Identity, Speaker};
use hbd::proto::heartbeat::{self, AuthError, Framing, Keyring, Method};

#[path = "../fuzz/bodies.rs"]
mod bodies;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/heartbeat-wire")
}

/// The keyring of the capture a fixture comes from (its name's prefix).
fn ring(name: &str) -> (u8, Keyring) {
    let (id, method) = match name.split('-').next() {
        Some("sha1") => (1, Method::Sha1(b"hbwire-lab-sha1-key".to_vec())),
        Some("md5") => (3, Method::Md5(b"hbwire-lab-md5-key".to_vec())),
        Some("crc") => (2, Method::Crc),
        _ => panic!("{name}: unknown method prefix"),
    };
    (id, Keyring::new(id, vec![(id, method)]).expect("keyring"))
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir())
        .expect("tests/data/heartbeat-wire")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).expect("fixture"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 15, "only {} fixtures", out.len());
    out
}

#[test]
fn captured_packets_decode_verify_and_reencode_identically() {
    for (name, bytes) in fixtures() {
        let (id, keys) = ring(&name);
        let c = bodies::heartbeat_checked(&bytes, &keys).unwrap_or_else(|e| panic!("{name}: {e}"));
        let p = c.packet;
        assert_eq!(p.framing, Framing::Netstring, "{name}");
        assert_eq!(c.trailer, Ok(id), "{name}: trailer");
        assert_eq!(c.field, Ok(id), "{name}: auth field");
        // Signing the unsigned message again gives Heartbeat's bytes back.
        let resigned = keys
            .sign(&heartbeat::unsigned(&p.message), Framing::Netstring)
            .unwrap();
        // `auth` is the last field Heartbeat adds; re-signing keeps every field in place.
        assert_eq!(resigned, bytes, "{name}: re-signed bytes");
        let other = Keyring::new(id, vec![(id, Method::Sha1(b"wrong".to_vec()))]).unwrap();
        assert_eq!(other.verify(&p), Err(AuthError::Mismatch(id)), "{name}");
    }
}

#[test]
fn captured_status_fields_are_what_the_speaker_sends() {
    let (_, keys) = ring("sha1");
    let bytes = fs::read(dir().join("sha1-status-active.bin")).unwrap();
    let theirs = heartbeat::decode(&bytes).unwrap().message;
    let names = |m: &heartbeat::Message| -> Vec<String> {
        m.fields()
            .iter()
            .map(|f| format!("{:?}:{}", f.kind, f.name))
            .collect()
    };
    let id = Identity {
        node: "n2".into(),
        uuid: [7; 16],
        generation: 0x6b0ed626,
        deadtime_ms: 5000,
        ttl: 3,
        nodes: vec!["n1".into(), "n2".into()],
    };
    let mut ours = Speaker::new(id, keys.clone());
    let mine = heartbeat::decode(
        &ours
            .status("active", 0x6b0ed627, "0.00 0.00 0.00 1/1 1")
            .unwrap(),
    )
    .unwrap()
    .message;
    assert_eq!(names(&mine), names(&theirs));
    for f in ["t", "st", "dt", "protocol", "hg", "ttl"] {
        assert_eq!(mine.get(f), theirs.get(f), "{f}");
    }
    // And a speaker takes Heartbeat's own status as a peer's.
    let r = ours
        .receive(&bytes, 0x6b0ed627, "0.00 0.00 0.00 1/1 1")
        .unwrap();
    assert_eq!(
        r.event,
        Event::Status {
            node: "n1".into(),
            status: "active".into()
        }
    );
    assert_eq!(ours.peer_status("n1"), Some("active"));
}

#[test]
fn reqnodes_gets_the_repnodes_heartbeat_sends() {
    let (_, keys) = ring("sha1");
    let req = fs::read(dir().join("sha1-reqnodes.bin")).unwrap();
    let theirs = heartbeat::decode(&fs::read(dir().join("sha1-repnodes.bin")).unwrap())
        .unwrap()
        .message;
    let id = Identity {
        node: "n2".into(),
        uuid: [7; 16],
        generation: 0x6b0ed626,
        deadtime_ms: 5000,
        ttl: 3,
        nodes: vec!["n1".into(), "n2".into()],
    };
    let mut ours = Speaker::new(id, keys);
    // n1's status first, so that its uuid is known (the reply carries it as destuuid).
    let status = fs::read(dir().join("sha1-status-init.bin")).unwrap();
    ours.receive(&status, 0x6b0ed627, "0.00 0.00 0.00 1/1 1")
        .unwrap();
    let r = ours
        .receive(&req, 0x6b0ed627, "0.00 0.00 0.00 1/1 1")
        .unwrap();
    assert_eq!(
        r.event,
        Event::Message {
            node: "n1".into(),
            kind: "reqnodes".into()
        }
    );
    // (and an NS_rexmit for seq 2-5, which this test skipped)
    let sent: Vec<_> = r
        .send
        .iter()
        .map(|p| heartbeat::decode(p).unwrap().message)
        .collect();
    let kinds: Vec<_> = sent.iter().map(|m| m.kind().unwrap()).collect();
    assert_eq!(kinds, ["repnodes", "NS_rexmit"]);
    let mine = sent[0].clone();
    let names = |m: &heartbeat::Message| -> Vec<String> {
        m.fields()
            .iter()
            .map(|f| format!("{:?}:{}", f.kind, f.name))
            .collect()
    };
    assert_eq!(names(&mine), names(&theirs));
    for f in ["dest", "t", "nodelist", "delnodelist"] {
        assert_eq!(mine.get(f), theirs.get(f), "{f}");
    }
    assert_eq!(mine.get_bin("destuuid"), theirs.get_bin("destuuid"));
}
