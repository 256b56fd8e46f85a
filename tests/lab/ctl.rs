//! The hbd CLI inside a lab node: the commands and `hbd status --json` the operator
//! tests (lab_operate, lab_reload, lab_fence, lab_defences) drive and read.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::{Node, wait_until};

/// The binary under test (the lab makes the host's build visible in every node).
pub const HBD: &str = env!("CARGO_BIN_EXE_hbd");

/// Run `hbd ARGS...` in the node.
pub fn hbd(n: &Node, args: &[&str]) -> Output {
    let mut cmd = vec![HBD];
    cmd.extend_from_slice(args);
    n.exec(&cmd)
}

/// Run an hbd command in the node; panic unless it exits 0; its stdout.
pub fn hbd_ok(n: &Node, args: &[&str]) -> String {
    let o = hbd(n, args);
    assert!(
        o.status.success(),
        "{}: hbd {args:?}: {}\n{}",
        n.name(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `hbd status --json` on `n`.
pub fn status(n: &Node) -> Value {
    serde_json::from_str(&hbd_ok(n, &["status", "--json"])).expect("status --json is JSON")
}

/// The entry of node `name` in a status.
pub fn peer<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .expect("node in status")
}

/// Poll `hbd status --json` on `n` every 50 ms until `check` holds: the status that
/// passed and how long it took. After `timeout`, a panic naming `what`, with the last
/// status and the node's hbd journal.
pub fn wait_json(
    n: &Node,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let mut last = Value::Null;
    let took = wait_until(timeout, Duration::from_millis(50), || {
        last = status(n);
        check(&last)
    });
    match took {
        Some(took) => (last, took),
        None => panic!(
            "{}: {what} not seen within {timeout:?}; last status:\n{}\njournal:\n{}",
            n.name(),
            serde_json::to_string_pretty(&last).unwrap_or_default(),
            n.journal("hbd.service")
        ),
    }
}

/// Keep the web group's mount busy on `n` (lab-holder.service runs a process in
/// /run/lab/www), so that its stop fails there, and run `hbd standby web`: it cannot
/// complete, and leaves the group blocked on `n`. Its stderr. Stopping
/// lab-holder.service frees the mount again.
pub fn standby_blocked(n: &Node) -> String {
    n.exec_ok(&[
        "systemd-run",
        "--unit=lab-holder",
        "sh",
        "-c",
        "cd /run/lab/www && exec sleep 1000",
    ]);
    let o = hbd(n, &["standby", "web"]);
    assert!(!o.status.success(), "the standby cannot complete");
    String::from_utf8_lossy(&o.stderr).into_owned()
}
