//! The key file, through `hbd check` and `hbd keygen` as an admin would use them.
//! CI runs these as root, so nothing here relies on permission checks failing for
//! an unprivileged user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hbd::config::keys;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("authkey")
    }
    /// A valid cluster.toml whose key file is `self.key()` and signing key `key_id`.
    fn config(&self, key_id: u8) -> PathBuf {
        let path = self.dir.path().join("cluster.toml");
        std::fs::write(
            &path,
            format!(
                r#"[cluster]
name = "keys"

[auth]
key_file = "{}"
key_id = {key_id}

[[link]]
name = "lan"
kind = "udp-broadcast"
interface = "eth1"

[[link]]
name = "cable"
kind = "serial"
device = "/dev/ttyS0"

[[node]]
name = "alpha"

[[node]]
name = "beta"
"#,
                self.key().display()
            ),
        )
        .unwrap();
        path
    }
    fn write_key(&self, text: &str, mode: u32) {
        std::fs::write(self.key(), text).unwrap();
        std::fs::set_permissions(self.key(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn hbd(args: &[&str], config: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hbd"));
    cmd.args(args)
        .env_remove("HBD_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY");
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    cmd.output().expect("run hbd")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn parse(p: &Path) -> std::collections::BTreeMap<u8, Vec<u8>> {
    keys::parse(&std::fs::read(p).unwrap(), p).unwrap().0
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn missing_key_file_says_how_to_create_it() {
    let env = Env::new();
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        err.contains(&format!("hbd keygen --output {}", env.key().display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn group_or_world_readable_key_is_refused() {
    let env = Env::new();
    for m in [0o644, 0o640, 0o604, 0o660] {
        env.write_key(&format!("1 {SECRET}\n"), m);
        let out = hbd(&["check"], Some(&env.config(1)));
        assert_eq!(out.status.code(), Some(1), "mode {m:o}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("chmod 600 {}", env.key().display())),
            "mode {m:o}: {err}"
        );
        assert!(err.contains(&format!("mode {m:04o}")), "{err}");
    }
    // The fix the message suggests works.
    std::fs::set_permissions(env.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn key_owned_by_someone_else_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        // Only root can give a file away; CI runs as root.
        eprintln!("skipped: not root");
        return;
    }
    let env = Env::new();
    env.write_key(&format!("1 {SECRET}\n"), 0o600);
    nix::unistd::chown(&env.key(), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert!(err.contains("chown root:root"), "{err}");
}

#[test]
fn key_id_missing_from_file() {
    let env = Env::new();
    env.write_key(&format!("# rotated\n1 {SECRET}\n3 {SECRET}\n"), 0o600);
    let out = hbd(&["check"], Some(&env.config(2)));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("auth.key_id is 2 but key file") && err.contains("has no key 2 (it has 1, 3)"),
        "{err}"
    );
}

#[test]
fn malformed_key_file_names_the_line() {
    let env = Env::new();
    env.write_key(&format!("1 {SECRET}\n\nsecret-without-id\n"), 0o600);
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3: ", env.key().display())),
        "{err}"
    );
}

#[test]
fn short_secret_is_a_warning_not_an_error() {
    let env = Env::new();
    env.write_key("1 short\n", 0o600);
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: "), "{}", stderr(&out));
}

#[test]
fn keygen_creates_appends_and_check_accepts() {
    let env = Env::new();
    let key = env.key();
    let keyarg = key.to_str().unwrap();

    let out = hbd(&["keygen", "--output", keyarg], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode(&key), 0o600);
    let first = parse(&key);
    assert_eq!(first.keys().copied().collect::<Vec<_>>(), [1]);
    let secret1 = first[&1].clone();
    assert_eq!(secret1.len(), 64);
    assert!(secret1.iter().all(u8::is_ascii_hexdigit));

    // No silent overwrite.
    let out = hbd(&["keygen", "--output", keyarg], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(parse(&key), first);

    // --force replaces: a new secret.
    let out = hbd(&["keygen", "--output", keyarg, "--force"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let replaced = parse(&key);
    assert_ne!(replaced[&1], secret1);
    assert_eq!(mode(&key), 0o600);

    // Rotation: add key 2, keep key 1.
    let out = hbd(
        &["keygen", "--output", keyarg, "--append", "--id", "2"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rotated = parse(&key);
    assert_eq!(rotated.keys().copied().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(rotated[&1], replaced[&1]);
    assert_ne!(rotated[&2], rotated[&1]);
    assert_eq!(mode(&key), 0o600);

    // The same id twice is refused and changes nothing.
    let out = hbd(
        &["keygen", "--output", keyarg, "--append", "--id", "2"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already has key 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(parse(&key), rotated);

    // Both ids are usable for signing.
    for id in [1, 2] {
        let out = hbd(&["check"], Some(&env.config(id)));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("signing with key {id}; the file holds keys 1, 2")),
            "{stdout}"
        );
    }
    // No temporary files left beside the key.
    let names: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn keygen_id_zero_is_a_usage_error() {
    let env = Env::new();
    let out = hbd(
        &[
            "keygen",
            "--output",
            env.key().to_str().unwrap(),
            "--id",
            "0",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.key().exists());
}

/// Under systemd, LoadCredential= puts the key in $CREDENTIALS_DIRECTORY/authkey;
/// it wins over auth.key_file.
#[test]
fn systemd_credential_is_used_when_present() {
    let env = Env::new();
    let creds = tempfile::tempdir().unwrap();
    let cred = creds.path().join("authkey");
    std::fs::write(&cred, format!("1 {SECRET}\n")).unwrap();
    std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o400)).unwrap();
    // auth.key_file does not exist.
    let out = Command::new(env!("CARGO_BIN_EXE_hbd"))
        .arg("check")
        .arg("-c")
        .arg(env.config(1))
        .env_remove("HBD_CONFIG")
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("key: {}", cred.display())),
        "{stdout}"
    );
}
