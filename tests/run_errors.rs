//! `hbd run` refuses to start with one clear sentence and the documented exit code
//! when it cannot be a useful member of the cluster.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Output};

use hbd::config::{Builder, Link, Node};

fn setup(dir: &Path, port: u16) -> std::path::PathBuf {
    let key = dir.join("authkey");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key)
        .expect("key");
    writeln!(f, "1 {}", "ab12".repeat(16)).expect("write key");
    let config = dir.join("cluster.toml");
    let lo = |n: u8| IpAddr::from([127, 0, 0, n]);
    let text = Builder::new("t")
        .key_file(&key)
        .link(Link::udp_unicast("lo").port(port))
        .node_with(Node::new("alpha").address("lo", lo(1)))
        .node_with(Node::new("beta").address("lo", lo(2)))
        .to_toml();
    std::fs::write(&config, text).expect("config");
    config
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hbd"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env_remove("INVOCATION_ID")
        .output()
        .expect("run hbd")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_node_lists_the_configured_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), 47_999);
    let o = run(&config, &["--node", "gamma"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "hbd: error: --node \"gamma\" is not a node of the cluster (configured nodes: \"alpha\", \"beta\")"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn no_link_at_all_is_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let config = setup(dir.path(), port);
    let o = run(&config, &["--node", "alpha"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "no heartbeat link could be opened: link \"lo\" (udp-unicast): cannot bind 127.0.0.1:"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), 47_998);
    let key = dir.path().join("authkey");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let o = run(&config, &["--node", "alpha"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
}

/// `hbd run` with a command that must end; one that has not after 20 s fails the test.
fn run_bounded(config: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hbd"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env_remove("INVOCATION_ID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run hbd");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("hbd run hung for 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

// Issue 15, hole 6: a FIFO where the key or the config should be hung `hbd run` in open()
// (and SIGTERM was then ignored).
#[test]
fn a_fifo_key_file_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), 47_997);
    let key = dir.path().join("authkey");
    std::fs::remove_file(&key).expect("rm");
    nix::unistd::mkfifo(&key, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let o = run_bounded(&config, &["--node", "alpha"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "key file {} is a FIFO, not a regular file",
            key.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_fifo_or_device_config_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("cluster.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let o = run_bounded(&fifo, &["--node", "alpha"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "cannot read {}: it is a FIFO, not a regular file",
            fifo.display()
        )),
        "{}",
        stderr(&o)
    );
    let o = run_bounded(Path::new("/dev/zero"), &["--node", "alpha"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot read /dev/zero: it is a character device"),
        "{}",
        stderr(&o)
    );
}
