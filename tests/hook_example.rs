//! The mail hook example (units/hbd-event-mail, README "Event hooks") run as its unit
//! would run it: the HBD_* variables of a takeover in the environment, and a `mail`
//! stand-in on PATH that records its arguments and the message.

use std::path::Path;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/hbd-event-mail");

fn fake_mail(dir: &Path) {
    let mail = dir.join("mail");
    std::fs::write(
        &mail,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$OUT.args\"\ncat > \"$OUT.body\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&mail, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn run(env: &[(&str, &str)]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    fake_mail(dir.path());
    let out = dir.path().join("out");
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let o = Command::new(SCRIPT)
        .env_clear()
        .env("PATH", path)
        .env("OUT", &out)
        .envs(env.iter().copied())
        .output()
        .expect("run units/hbd-event-mail");
    assert!(
        o.status.success(),
        "the example hook failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let read = |ext: &str| std::fs::read_to_string(out.with_extension(ext)).unwrap();
    (read("args"), read("body"))
}

#[test]
fn the_mail_hook_mails_a_takeover() {
    let (args, body) = run(&[
        ("HBD_EVENT", "group-starting"),
        ("HBD_SEQ", "8"),
        ("HBD_TIME", "2026-12-01T14:32:39Z"),
        ("HBD_NODE", "n2"),
        ("HBD_CLUSTER", "lab"),
        ("HBD_GROUP", "web"),
        ("HBD_FROM", "stopped"),
        ("HBD_STATE", "starting"),
        ("HBD_REASON", "taken over: n1 is dead"),
    ]);
    assert_eq!(
        args, "-s\nhbd lab: group-starting on n2 (group web)\nroot\n",
        "{args}"
    );
    assert!(body.contains("Group: web: stopped -> starting"), "{body}");
    assert!(body.contains("Why: taken over: n1 is dead"), "{body}");
}

#[test]
fn the_mail_hook_mails_a_peer_event_without_group_variables() {
    let (args, body) = run(&[
        ("HBD_EVENT", "link-down"),
        ("HBD_SEQ", "5"),
        ("HBD_TIME", "2026-12-01T14:32:38Z"),
        ("HBD_NODE", "n2"),
        ("HBD_CLUSTER", "lab"),
        ("HBD_PEER", "n1"),
        ("HBD_LINK", "a"),
        ("HBD_MAILTO", "ops@example.org"),
    ]);
    assert_eq!(
        args,
        "-s\nhbd lab: link-down on n2 (peer n1)\nops@example.org\n"
    );
    assert!(body.contains("Peer: n1, link a"), "{body}");
    assert!(!body.contains("Group:"), "{body}");
}
