//! The bad-config corpus: every file in tests/config/bad is a mistake an admin could
//! make. Each must fail to load with its own message at its own line:column, through
//! the library and through `hbd check`, and never panic.
//!
//! A file's first line says what to expect: `# expect LINE:COL SUBSTRING`. Files that
//! cannot carry a comment (empty, whitespace only) are listed in [`NO_COMMENT`].

use std::path::{Path, PathBuf};
use std::process::Command;

use hbd::config::{self, ConfigError};

const NO_COMMENT: &[(&str, &str, &str)] = &[
    ("empty.toml", "1:1", "the file is empty"),
    ("whitespace-only.toml", "1:1", "the file is empty"),
];

struct Case {
    path: PathBuf,
    position: String,
    substring: String,
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/bad");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            let (position, substring) = match std::str::from_utf8(first)
                .ok()
                .and_then(|l| l.strip_prefix("# expect "))
                .and_then(|l| l.split_once(' '))
            {
                Some((p, s)) => (p.to_string(), s.to_string()),
                None => match NO_COMMENT.iter().find(|(n, _, _)| *n == name) {
                    Some((_, p, s)) => (p.to_string(), s.to_string()),
                    None => panic!("{name}: first line must be `# expect LINE:COL SUBSTRING`"),
                },
            };
            Case {
                path,
                position,
                substring,
            }
        })
        .collect()
}

/// Number of error lines a failed load renders (warnings are printed separately).
fn error_count(e: &ConfigError) -> usize {
    match e {
        ConfigError::Invalid { diagnostics, .. } => {
            diagnostics.iter().filter(|d| d.is_error()).count()
        }
        _ => 1,
    }
}

#[test]
fn corpus_is_large_enough() {
    let n = corpus().len();
    assert!(n >= 35, "only {n} bad configs in tests/config/bad");
}

#[test]
fn every_bad_config_fails_with_its_message_and_position() {
    let mut failures = Vec::new();
    for case in corpus() {
        let file = case.path.display().to_string();
        let rendered = match config::load(&case.path) {
            Ok(_) => {
                failures.push(format!("{file}: loaded, but it is invalid"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        // The expected message must be on a line that carries the expected position.
        let want = format!("{file}:{}: error: ", case.position);
        let ok = rendered
            .lines()
            .any(|l| l.starts_with(&want) && l.contains(&case.substring));
        if !ok {
            failures.push(format!(
                "{file}: expected a line starting {want:?} containing {:?}, got:\n{rendered}",
                case.substring
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

fn hbd_check(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hbd"))
        .args(["check", "--no-key", "-c"])
        .arg(path)
        .env_remove("HBD_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run hbd")
}

#[test]
fn hbd_check_exits_1_with_one_line_per_error() {
    let mut failures = Vec::new();
    for case in corpus() {
        let file = case.path.display().to_string();
        let out = hbd_check(&case.path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected_errors = config::load(&case.path)
            .err()
            .map_or(0, |e| error_count(&e));
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
        let mut problems = Vec::new();
        if out.status.code() != Some(1) {
            problems.push(format!("exit status {:?}, expected 1", out.status.code()));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        if !out.stdout.is_empty() {
            problems.push("printed a summary on stdout".into());
        }
        if let Some(l) = stderr.lines().find(|l| !l.starts_with(&format!("{file}:"))) {
            problems.push(format!("line not naming the file: {l:?}"));
        }
        if errors.len() != expected_errors {
            problems.push(format!(
                "{} error lines, the library found {expected_errors} errors",
                errors.len()
            ));
        }
        let want = format!("{file}:{}: error: ", case.position);
        if !errors
            .iter()
            .any(|l| l.starts_with(&want) && l.contains(&case.substring))
        {
            problems.push(format!("no line {want}...{}", case.substring));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{file}: {}\nstderr:\n{stderr}",
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Several independent mistakes are all reported, each on its own line, in one run.
#[test]
fn several_mistakes_give_several_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    std::fs::write(
        &path,
        r#"[cluster]
name = "web"

[timing]
keepalive = "1s"
warntime = "20s"
deadtime = "10s"

[[link]]
name = "lan"
kind = "serial"
device = "ttyS0"

[[node]]
name = "alpha"

[[node]]
name = "beta"

[[group]]
name = "web"
preferred = "gamma"
"#,
    )
    .unwrap();
    let out = hbd_check(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for (pos, text) in [
        ("6:1", "warntime 20s must be shorter than deadtime 10s"),
        ("12:1", "serial device \"ttyS0\" must be an absolute path"),
        ("22:1", "no node is named \"gamma\""),
    ] {
        let want = format!("{file}:{pos}: error: ");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&want) && l.contains(text)),
            "missing {want}{text} in:\n{stderr}"
        );
    }
    assert_eq!(
        stderr.lines().filter(|l| l.contains(": error: ")).count(),
        3,
        "{stderr}"
    );
    // The single link is worth a warning, printed as its own line too.
    assert!(stderr.contains(": warning: link[0]: only one heartbeat link"));
}

/// Non-UTF-8 bytes anywhere: the position of the first bad byte, not a panic.
#[test]
fn non_utf8_bytes_are_located() {
    let cases: &[(&[u8], &str)] = &[
        (b"[cluster]\nname = \"caf\xe9\"\n", "2:12"),
        (b"\xff\xfe[cluster]\n", "1:1"),
        (
            b"# \xc3\xa9t\xc3\xa9\n[cluster]\nname = \"x\xc3\"\n",
            "3:10",
        ),
    ];
    for (bytes, pos) in cases {
        let err = config::parse_bytes(bytes, Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("c.toml:{pos}: error: the file is not valid UTF-8")),
            "{bytes:?}: {text}"
        );
    }
}

/// A file that cannot be read is an error with a sentence, not a panic.
#[test]
fn missing_config_file() {
    let out = hbd_check(Path::new("/nonexistent/hbd/cluster.toml"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/hbd/cluster.toml"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

/// Three unrelated typos (an unknown key, a wrong type, a bad value in a `kind`
/// table) are all reported in one run, each at its own line:column with its key.
#[test]
fn three_unrelated_typos_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    std::fs::write(
        &path,
        r#"[cluster]
name = "web"

[timing]
keepalvie = "1s"

[[link]]
name = "lan"
kind = "udp-broadcast"
interface = "eth1"
port = "694"

[[link]]
name = "cable"
kind = "serial"
device = "/dev/ttyS0"

[[node]]
name = "alpha"

[[node]]
name = "beta"

[[group]]
name = "web"
preferred = "alpha"

[[group.resource]]
kind = "unit"
unit = "nginx.service"
timeout = 90
"#,
    )
    .unwrap();
    let out = hbd_check(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    for (line, want) in errors.iter().zip([
        ":5:1: error: timing.keepalvie: unknown field `keepalvie`",
        ":11:8: error: link[0].port: invalid type: string \"694\"",
        ":31:11: error: group[0].resource[0].timeout: 90 has no unit",
    ]) {
        assert!(line.starts_with(&format!("{file}{want}")), "{line}");
    }
    assert!(
        errors[0].ends_with("(did you mean `keepalive`?)"),
        "{}",
        errors[0]
    );
}

/// The summary's last line counts every warning printed, the key file's included;
/// the key line says which key signs and which are accepted.
#[test]
fn ok_counts_every_warning_and_names_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    let key = dir.path().join("authkey");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.toml"),
    )
    .unwrap()
    .replace("/etc/hbd/authkey", &key.display().to_string())
    .replace("key_id = 1", "key_id = 3")
    .replace("initdead = \"30s\"", "initdead = \"15s\"");
    std::fs::write(&path, text).unwrap();
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
            .unwrap();
        std::io::Write::write_all(&mut f, b"3 short\n").unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hbd"))
        .args(["check", "-c"])
        .arg(&path)
        .env_remove("HBD_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    let warnings = stderr.lines().filter(|l| l.contains(": warning: ")).count();
    assert!(warnings >= 2, "{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!("OK ({warnings} warnings)"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("signing with key 3, the only key in the file"),
        "{stdout}"
    );
    assert!(!stdout.contains(" of 1"), "{stdout}");
}

/// A missing config names the fix; `-c` where it means nothing is refused.
#[test]
fn missing_config_has_a_hint_and_c_is_never_ignored() {
    let out = hbd_check(Path::new("/nonexistent/hbd/cluster.toml"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("hbd: error: cannot read /nonexistent/hbd/cluster.toml: "),
        "{stderr}"
    );
    assert!(stderr.contains("hbd import"), "{stderr}");
    assert!(stderr.contains("examples/cluster.toml"), "{stderr}");
    for args in [
        &["schema", "-c", "x.toml"][..],
        &["-c", "x.toml", "schema"],
        &["import", "-c", "x.toml", "/nonexistent"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hbd"))
            .args(args)
            .env_remove("HBD_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("hbd: error: hbd ")
                && stderr.contains("-c/--config means nothing here"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // HBD_CONFIG in the environment is not a command-line choice: schema still works.
    let out = Command::new(env!("CARGO_BIN_EXE_hbd"))
        .arg("schema")
        .env("HBD_CONFIG", "/x.toml")
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// A huge config is refused with one sentence, and a config with thousands of
/// mistakes is reported in time linear in its size (one line per mistake).
#[test]
fn huge_configs_are_refused_or_reported_linearly() {
    let big = format!("[cluster]\nname = \"x\"\n{}", "# pad\n".repeat(200_000));
    let e = config::parse_str(&big, Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("c.toml:1:1: error: the file is 1200021 bytes, more than the 1048576 bytes"),
        "{e}"
    );
    // 16 000 nodes without addresses on a unicast link: one error each, and the limit.
    let mut t =
        String::from("[cluster]\nname = \"x\"\n[[link]]\nname = \"l\"\nkind = \"udp-unicast\"\n");
    for i in 0..16_000 {
        t.push_str(&format!("[[node]]\nname = \"n{i}\"\n"));
    }
    let start = std::time::Instant::now();
    let e = config::parse_str(&t, Path::new("c.toml")).unwrap_err();
    let took = start.elapsed();
    assert!(e.to_string().contains("at most 32 nodes are supported"));
    assert!(e.diagnostics().len() > 16_000);
    eprintln!("16 000 nodes checked in {took:?}");
}
