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
