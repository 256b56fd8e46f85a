//! The serial transport over a real pty pair made by socat: frames cross in both
//! directions, and noise or a truncated frame on the line costs only that frame.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hbd::config::{Builder, Config, Link};
use hbd::transport::{self, Source};

/// `socat -d -d pty,raw,echo=0 pty,raw,echo=0`, with the two /dev/pts paths it prints.
struct PtyPair {
    child: Child,
    a: PathBuf,
    b: PathBuf,
}

impl PtyPair {
    fn new() -> PtyPair {
        let mut child = Command::new("socat")
            .args(["-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("socat (apt-get install socat)");
        let stderr = child.stderr.take().expect("stderr");
        let mut paths = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.expect("socat stderr");
            if let Some(i) = line.find("PTY is ") {
                paths.push(PathBuf::from(line[i + 7..].trim()));
            }
            if line.contains("starting data transfer loop") {
                break;
            }
        }
        assert_eq!(paths.len(), 2, "socat printed {paths:?}");
        PtyPair {
            child,
            b: paths.pop().expect("b"),
            a: paths.pop().expect("a"),
        }
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nodes a and b on one serial link "cable" at 115200 baud.
fn serial_config(device: &Path) -> Config {
    Builder::new("t")
        .link(Link::serial("cable", device).baud(115200))
        .node("a")
        .node("b")
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn recv(rx: &mut transport::Receiver) -> Vec<u8> {
    let d = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("frame within 5s")
        .expect("recv");
    assert_eq!(d.from, Source::Serial);
    d.bytes
}

#[tokio::test]
async fn frames_cross_both_ways() {
    let pair = PtyPair::new();
    let (mut a_tx, mut a_rx) = transport::open(&serial_config(&pair.a), 0, 0).expect("open a");
    let (mut b_tx, mut b_rx) = transport::open(&serial_config(&pair.b), 1, 0).expect("open b");

    // Bytes that need escaping, and a full-size datagram.
    let special = vec![0xC0, 0xDB, 0xDC, 0xDD, 0, 0xC0];
    let big: Vec<u8> = (0..hbd::transport::MAX_DATAGRAM).map(|i| i as u8).collect();
    a_tx.send(&special).await.expect("send");
    a_tx.send(&big).await.expect("send");
    assert_eq!(recv(&mut b_rx).await, special);
    assert_eq!(recv(&mut b_rx).await, big);

    b_tx.send(b"pong").await.expect("send");
    assert_eq!(recv(&mut a_rx).await, b"pong");
    assert_eq!(b_rx.dropped(), 0);
}

#[tokio::test]
async fn garbage_and_truncated_frames_are_skipped() {
    let pair = PtyPair::new();
    let (_b_tx, mut b_rx) = transport::open(&serial_config(&pair.b), 1, 0).expect("open b");
    // The other end written raw, to put noise on the line.
    let mut raw = std::fs::OpenOptions::new()
        .write(true)
        .open(&pair.a)
        .expect("open a raw");

    let mut wire = b"line noise \x00\xff".to_vec();
    wire.extend(transport::frame(b"first"));
    wire.extend([0x13, 0xDB, 0x99, 0x42]);
    let second = transport::frame(b"second, cut short");
    wire.extend(&second[..second.len() / 2]);
    wire.extend(transport::frame(b"third"));
    let mut flipped = transport::frame(b"fourth, bit flipped");
    flipped[5] ^= 0x20;
    wire.extend(flipped);
    wire.extend(transport::frame(b"fifth"));
    raw.write_all(&wire).expect("write");
    raw.flush().expect("flush");

    assert_eq!(recv(&mut b_rx).await, b"first");
    assert_eq!(recv(&mut b_rx).await, b"third");
    assert_eq!(recv(&mut b_rx).await, b"fifth");
    // Dropped: the noise before "first", the noise after it, the half frame (its
    // leading END closed the noise), and the flipped frame.
    assert_eq!(b_rx.dropped(), 4);
}
