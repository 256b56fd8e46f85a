//! The hbd CLI inside a lab node: the commands and `hbd status --json` the operator
//! tests (lab_operate, lab_reload, lab_fence, lab_defences) drive and read.

use std::process::Output;

use serde_json::Value;

use super::Node;

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
