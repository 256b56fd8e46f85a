//! The multi-node lab for integration tests: real systemd, real namespaces.
//!
//! A [`Lab`] is N nodes on this machine, each a network namespace plus its own systemd as
//! PID 1 of a PID namespace (with its own system bus, journal and cgroup subtree), two
//! switched networks between them and a client namespace to probe from:
//!
//! ```text
//!   net A 10.99.0.0/24: node nI = 10.99.0.I on eth0, client = 10.99.0.254
//!   net B 10.98.0.0/24: node nI = 10.98.0.I on eth1, client = 10.98.0.254
//! ```
//!
//! The work is done by `tests/lab/lab.sh` (so the demo and a human at a shell use the very
//! same code); this module gives it types, a unique lab id per test (tests run in parallel
//! threads), and a guard that removes the lab when the test ends, also by panic.
//!
//! Lab tests need root. Without root they skip with a printed reason, unless `CI` is set:
//! in CI a lab test never skips.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod ctl;
pub mod web;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The lab's shell tool.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lab")
        .join(name)
}

/// Whether lab tests can run here: true as root; false (with the reason printed) when not
/// root outside CI; a panic when not root in CI, where lab tests must never skip.
pub fn available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: lab tests need root, and CI must run them (CI is set)");
    }
    eprintln!("{test}: SKIPPED: lab tests need root (namespaces, systemd as PID 1)");
    false
}

/// Poll `check` every `poll` until it returns true or `timeout` passes; the time it took.
///
/// While it waits, the hbd.service of every node this thread installed hbd on
/// ([`Node::install_hbd`]) is looked at about once a second: if hbd exited by itself with an
/// error (a bad config, no link, a panic), no state it was to reach will come, so the wait
/// panics at once with that node's journal instead of running out its timeout. hbd stopped
/// on purpose (`systemctl stop`, a signal, a killed node) does not count.
pub fn wait_until(
    timeout: Duration,
    poll: Duration,
    mut check: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    let mut looked = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        if looked.elapsed() >= Duration::from_secs(1) {
            looked = Instant::now();
            if let Some(why) = hbd_exited() {
                panic!("gave up waiting after {:.1?}: {why}", start.elapsed());
            }
        }
        std::thread::sleep(poll);
    }
}

thread_local! {
    /// (lab id, node) where this thread installed hbd: what [`wait_until`] watches.
    static WATCHED: std::cell::RefCell<Vec<(String, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The first watched node whose hbd exited with an error, described with its journal.
fn hbd_exited() -> Option<String> {
    let watched = WATCHED.with(|w| w.borrow().clone());
    for (lab, node) in watched {
        let o = Command::new(script("lab.sh"))
            .args(["exec", &lab, &node, "systemctl", "show", "hbd.service"])
            .args([
                "-p",
                "ExecMainCode",
                "-p",
                "ExecMainStatus",
                "-p",
                "ActiveState",
            ])
            .env("HBD_LAB_QUIET", "1")
            .stdin(Stdio::null())
            .output();
        // A node that is not running (killed on purpose) has no hbd to look at.
        let Ok(o) = o else { continue };
        if !o.status.success() {
            continue;
        }
        let text = String::from_utf8_lossy(&o.stdout);
        let prop = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or("")
                .to_string()
        };
        // ExecMainCode 1 is CLD_EXITED: hbd called exit(), with ExecMainStatus as its code.
        if prop("ExecMainCode") == "1" && !matches!(prop("ExecMainStatus").as_str(), "" | "0") {
            let journal = Command::new(script("lab.sh"))
                .args(["exec", &lab, &node, "journalctl", "--no-pager", "-o"])
                .args(["short-monotonic", "-n", "60", "-u", "hbd.service"])
                .env("HBD_LAB_QUIET", "1")
                .stdin(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            return Some(format!(
                "hbd on {node} (lab {lab}) exited with code {} (unit {}); its journal:\n{journal}",
                prop("ExecMainStatus"),
                prop("ActiveState")
            ));
        }
    }
    None
}

/// Text of a command's stdout, trimmed.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn describe(o: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout).trim(),
        String::from_utf8_lossy(&o.stderr).trim()
    )
}

/// A running lab; dropping it removes every trace of it.
pub struct Lab {
    id: String,
    nodes: Vec<String>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Boot `n` nodes (n1..nN) and the client. `tag` (a few letters naming the test) goes into
    /// the lab id with this process's pid and a counter, so parallel tests never collide.
    pub fn boot(tag: &str, n: usize) -> Lab {
        assert!(
            tag.len() <= 3 && tag.bytes().all(|b| b.is_ascii_lowercase()),
            "tag: up to 3 lowercase letters"
        );
        let id = format!(
            "{tag}{}{}",
            std::process::id(),
            char::from(b'a' + (NEXT.fetch_add(1, Ordering::Relaxed) % 26) as u8)
        );
        // Once per test process: install what the lab needs (setup.sh is a no-op when all is
        // there), then remove labs left by test processes that were killed (no Drop ran);
        // labs whose owner still runs (parallel tests, other users) are kept.
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let o = Command::new(script("setup.sh"))
                .output()
                .expect("run tests/lab/setup.sh");
            assert!(
                o.status.success(),
                "tests/lab/setup.sh failed: {}",
                describe(&o)
            );
            Command::new(script("lab.sh"))
                .arg("down-all")
                .env("HBD_LAB_QUIET", "1")
                .status()
                .ok();
        });
        let lab = Lab {
            id,
            nodes: (1..=n).map(|i| format!("n{i}")).collect(),
        };
        let start = Instant::now();
        lab.sh_ok(["up", &lab.id, &n.to_string()]);
        eprintln!("lab {}: {n} nodes up in {:.2?}", lab.id, start.elapsed());
        lab
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn node(&self, name: &str) -> Node<'_> {
        assert!(
            self.nodes.iter().any(|n| n == name),
            "no node {name} in lab {}",
            self.id
        );
        Node {
            lab: self,
            name: name.to_string(),
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = Node<'_>> {
        self.nodes.iter().map(|n| self.node(n))
    }

    /// Run `lab.sh ARGS...`.
    pub fn sh<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new(script("lab.sh"))
            .args(args)
            .env("HBD_LAB_QUIET", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run tests/lab/lab.sh")
    }

    /// Run `lab.sh ARGS...` and panic with its output unless it succeeds.
    pub fn sh_ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        let o = self.sh(&args);
        assert!(
            o.status.success(),
            "lab.sh {:?} failed: {}",
            args,
            describe(&o)
        );
        o
    }

    /// Run a command in the client namespace (no systemd there).
    pub fn client(&self, cmd: &[&str]) -> Output {
        let mut args = vec!["client", self.id.as_str()];
        args.extend_from_slice(cmd);
        self.sh(args)
    }

    /// GET `url` from the client with a short timeout; the body if it answered.
    pub fn curl(&self, url: &str) -> Option<String> {
        let o = self.client(&["curl", "-sf", "--max-time", "0.5", url]);
        o.status.success().then(|| stdout(&o))
    }

    /// Does the client get an answer from `addr` (one ping, 200 ms)?
    pub fn ping(&self, addr: &str) -> bool {
        self.client(&["ping", "-c1", "-W0.2", addr])
            .status
            .success()
    }

    // Faults --------------------------------------------------------------------------------

    /// kill -9 the node's systemd (the kernel kills its whole PID namespace) and unplug it.
    pub fn kill9(&self, node: &str) {
        self.sh_ok(["kill9", &self.id, node]);
    }

    /// Clean poweroff (SIGRTMIN+4); returns when the node's systemd is gone.
    pub fn shutdown(&self, node: &str) {
        self.sh_ok(["shutdown", &self.id, node]);
    }

    /// Boot a node again (after kill9 or shutdown): fresh namespace, fresh /etc and /var.
    pub fn reboot(&self, node: &str) {
        self.sh_ok(["boot", &self.id, node]);
    }

    /// Freeze every process of the node (cgroup freezer), as a hung machine.
    pub fn freeze(&self, node: &str) {
        self.sh_ok(["freeze", &self.id, node]);
    }

    pub fn thaw(&self, node: &str) {
        self.sh_ok(["thaw", &self.id, node]);
    }

    /// Pull one cable: `ip link set IFACE down` inside the node.
    pub fn cut_link(&self, node: &str, iface: &str) {
        self.sh_ok(["link-down", &self.id, node, iface]);
    }

    pub fn restore_link(&self, node: &str, iface: &str) {
        self.sh_ok(["link-up", &self.id, node, iface]);
    }

    /// The node loses `percent` % of the heartbeat packets (udp/694) it receives; 0 ends it.
    pub fn drop_percent(&self, node: &str, percent: u32) {
        self.sh_ok(["drop", &self.id, node, &percent.to_string()]);
    }

    /// `a` and `b` stop hearing each other on every link.
    pub fn partition(&self, a: &str, b: &str) {
        self.sh_ok(["partition", &self.id, a, b]);
    }

    /// Undo every partition, packet loss and cut link.
    pub fn heal(&self) {
        self.sh_ok(["heal", &self.id]);
    }

    /// A serial cable (a pty pair) between `a` and `b`; returns the device path, the same in
    /// both nodes (`/run/lab-tty0`), for a `kind = "serial"` link.
    pub fn serial(&self, a: &str, b: &str) -> String {
        self.sh_ok(["serial", &self.id, a, b, "0"]);
        "/run/lab-tty0".to_string()
    }

    /// Pull the serial cable.
    pub fn cut_serial(&self) {
        self.sh_ok(["serial-cut", &self.id, "0"]);
    }

    /// Remove the lab now (dropping it does the same).
    pub fn down(&self) {
        let o = self.sh(["down", &self.id]);
        if !o.status.success() {
            eprintln!("lab {}: cleanup failed: {}", self.id, describe(&o));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let id = self.id.clone();
        let _ = WATCHED.try_with(|w| w.borrow_mut().retain(|(lab, _)| *lab != id));
        if std::env::var_os("HBD_LAB_KEEP").is_some() {
            eprintln!(
                "lab {}: kept (HBD_LAB_KEEP); remove with tests/lab/lab.sh down {}",
                self.id, self.id
            );
            return;
        }
        self.down();
    }
}

/// One node of a lab.
pub struct Node<'a> {
    lab: &'a Lab,
    name: String,
}

impl Node<'_> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Node index: n1 -> 1, which is also the last byte of its addresses.
    pub fn index(&self) -> u8 {
        self.name[1..].parse().expect("node names are nI")
    }

    /// Its address on net A (eth0).
    pub fn addr_a(&self) -> String {
        format!("10.99.0.{}", self.index())
    }

    /// Its address on net B (eth1).
    pub fn addr_b(&self) -> String {
        format!("10.98.0.{}", self.index())
    }

    /// Host PID of the node's systemd, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let o = self.lab.sh(["pid", &self.lab.id, &self.name]);
        o.status
            .success()
            .then(|| stdout(&o).parse().ok())
            .flatten()
    }

    /// Run a command inside the node (its mount, PID, UTS, network and cgroup namespaces).
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", self.lab.id.as_str(), self.name.as_str()];
        args.extend_from_slice(cmd);
        self.lab.sh(args)
    }

    /// Run a command inside the node; panic unless it succeeds; its stdout.
    pub fn exec_ok(&self, cmd: &[&str]) -> String {
        let o = self.exec(cmd);
        assert!(
            o.status.success(),
            "{}: {:?} failed: {}",
            self.name,
            cmd,
            describe(&o)
        );
        stdout(&o)
    }

    /// Run a shell script inside the node.
    pub fn sh(&self, script: &str) -> Output {
        self.exec(&["sh", "-c", script])
    }

    pub fn sh_ok(&self, script: &str) -> String {
        self.exec_ok(&["sh", "-c", script])
    }

    /// Write a file inside the node (creating its directory) with the given mode.
    pub fn write_file(&self, path: &str, contents: &str, mode: u32) {
        let mut child = Command::new(script("lab.sh"))
            .args(["exec", &self.lab.id, &self.name, "sh", "-c"])
            .arg(r#"mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1""#)
            .args(["sh", path, &format!("{mode:o}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run lab.sh exec");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(contents.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{}: write {path}: {}",
            self.name,
            describe(&o)
        );
    }

    /// `systemctl ARGS...` inside the node.
    pub fn systemctl(&self, args: &[&str]) -> Output {
        let mut cmd = vec!["systemctl"];
        cmd.extend_from_slice(args);
        self.exec(&cmd)
    }

    /// `systemctl is-active UNIT` inside the node: "active", "inactive", "failed", ...
    pub fn unit_state(&self, unit: &str) -> String {
        stdout(&self.systemctl(&["is-active", unit]))
    }

    /// One property of a unit (`systemctl show -P`).
    pub fn unit_property(&self, unit: &str, property: &str) -> String {
        stdout(&self.systemctl(&["show", "-P", property, unit]))
    }

    /// Install a unit file into the node's /run/systemd/system and reload.
    pub fn install_unit(&self, name: &str, contents: &str) {
        self.write_file(&format!("/run/systemd/system/{name}"), contents, 0o644);
        self.exec_ok(&["systemctl", "daemon-reload"]);
    }

    /// The node's addresses, as "IFACE ADDR/PREFIX" ("eth0 10.99.0.1/24").
    pub fn ip_addrs(&self) -> Vec<String> {
        let o = self.exec(&["ip", "-o", "addr", "show"]);
        stdout(&o)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 4 && (f[2] == "inet" || f[2] == "inet6"))
                    .then(|| format!("{} {}", f[1], f[3]))
            })
            .collect()
    }

    /// Does the node hold `addr` ("10.99.0.100/24" or "10.99.0.100") on any interface?
    pub fn has_addr(&self, addr: &str) -> bool {
        self.ip_addrs().iter().any(|a| {
            let have = a.split_whitespace().nth(1).unwrap_or("");
            have == addr || have.split('/').next() == Some(addr)
        })
    }

    /// The node's journal for one unit (for failure messages).
    pub fn journal(&self, unit: &str) -> String {
        let o = self.exec(&[
            "journalctl",
            "--no-pager",
            "-o",
            "short-monotonic",
            "-u",
            unit,
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Copy a host file into the node as `dest` (absolute) with `mode`. Needed for anything
    /// under the host's /tmp or /run, which the node cannot see; a `dest` under /usr goes
    /// to the node's private /usr overlay.
    pub fn put(&self, src: &std::path::Path, dest: &str, mode: u32) {
        self.lab.sh_ok([
            OsStr::new("put"),
            OsStr::new(&self.lab.id),
            OsStr::new(&self.name),
            src.as_os_str(),
            OsStr::new(dest),
            OsStr::new(&format!("{mode:o}")),
        ]);
    }

    /// Install hbd as the node's hbd.service: this build's binary copied in as
    /// /usr/sbin/hbd, units/hbd.service, the given cluster.toml and authkey (mode 0600).
    /// Does not start it. From now on [`wait_until`] fails fast if this hbd exits.
    pub fn install_hbd(&self, cluster_toml: &str, authkey: &str) {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("cluster.toml");
        let key = dir.path().join("authkey");
        std::fs::write(&conf, cluster_toml).unwrap();
        std::fs::write(&key, authkey).unwrap();
        self.lab.sh_ok([
            OsStr::new("install-hbd"),
            OsStr::new(&self.lab.id),
            OsStr::new(&self.name),
            OsStr::new(env!("CARGO_BIN_EXE_hbd")),
            conf.as_os_str(),
            key.as_os_str(),
        ]);
        self.watch_hbd();
    }

    /// Let [`wait_until`] fail fast when this node's hbd.service exits with an error.
    pub fn watch_hbd(&self) {
        let entry = (self.lab.id.clone(), self.name.clone());
        WATCHED.with(|w| {
            let mut w = w.borrow_mut();
            if !w.contains(&entry) {
                w.push(entry);
            }
        });
    }

    /// Stop watching this node's hbd (a test that makes hbd fail on purpose).
    pub fn unwatch_hbd(&self) {
        WATCHED.with(|w| {
            w.borrow_mut()
                .retain(|(lab, node)| !(*lab == self.lab.id && *node == self.name))
        });
    }
}
