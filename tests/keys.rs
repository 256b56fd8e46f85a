//! The key file, through `hbd check` and `hbd keygen` as an admin would use them.
//! CI runs these as root, so nothing here relies on permission checks failing for
//! an unprivileged user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hbd::config::{Builder, Link, keys};

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
        self.config_for(&self.key(), key_id)
    }
    /// A valid cluster.toml whose key file is `key`.
    fn config_for(&self, key: &Path, key_id: u8) -> PathBuf {
        let path = self.dir.path().join("cluster.toml");
        let config = Builder::new("keys")
            .key_file(key)
            .key_id(key_id)
            .link(Link::udp_broadcast("lan", "eth1"))
            .link(Link::serial("cable", "/dev/ttyS0"))
            .node("alpha")
            .node("beta");
        std::fs::write(&path, config.to_toml()).unwrap();
        path
    }
    fn write_key(&self, text: &str, mode: u32) {
        std::fs::write(self.key(), text).unwrap();
        std::fs::set_permissions(self.key(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Run hbd; a run that has not ended after 20 s is killed and fails the test (a FIFO
/// key file used to hang `hbd check` in open()).
fn hbd(args: &[&str], config: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hbd"));
    cmd.args(args)
        .env_remove("HBD_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    let mut child = cmd.spawn().expect("run hbd");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let o = child.wait_with_output().expect("wait");
            panic!("hbd {args:?} hung for 20 s: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
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

// Issue 15, hole 6: what is not a regular file of sane size is refused before it is
// opened blocking or read whole.

#[test]
fn fifo_key_file_is_refused_without_hanging() {
    let env = Env::new();
    nix::unistd::mkfifo(&env.key(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("is a FIFO, not a regular file"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn device_key_file_is_refused_without_a_chmod_hint() {
    let env = Env::new();
    // /dev/zero is 0666: the old check suggested `chmod 600 /dev/zero`; reading it would
    // never end.
    let out = hbd(&["check"], Some(&env.config_for(Path::new("/dev/zero"), 1)));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("/dev/zero is a character device"), "{err}");
    assert!(!err.contains("chmod"), "{err}");
    let out = hbd(&["check"], Some(&env.config_for(env.dir.path(), 1)));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
}

#[test]
fn huge_key_file_is_refused_unread() {
    let env = Env::new();
    env.write_key("", 0o600);
    // 1 GiB, sparse: costs no disk, but was read whole (1 GB of memory).
    std::fs::File::options()
        .write(true)
        .open(env.key())
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1073741824 bytes, larger than the 65536 bytes"),
        "{err}"
    );
}

// Issue 15, hole 7: no hint acts through a symbolic link, no write replaces one.

/// A file standing in for /etc/shadow: not ours to change, mode 0640.
fn victim(env: &Env) -> PathBuf {
    let v = env.dir.path().join("shadow");
    std::fs::write(&v, format!("1 {SECRET}\n")).unwrap();
    std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o640)).unwrap();
    v
}

#[test]
fn symlinked_key_file_is_refused_without_a_hint_that_changes_its_target() {
    let env = Env::new();
    let shadow = victim(&env);
    std::os::unix::fs::symlink(&shadow, env.key()).unwrap();
    let out = hbd(&["check"], Some(&env.config(1)));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "key file {} is a symbolic link (to {})",
            env.key().display(),
            shadow.display()
        )),
        "{err}"
    );
    assert!(!err.contains("chmod") && !err.contains("chown"), "{err}");
    assert_eq!(mode(&shadow), 0o640);
}

#[test]
fn keygen_never_replaces_or_writes_through_a_symlink() {
    let env = Env::new();
    let shadow = victim(&env);
    let before = std::fs::read(&shadow).unwrap();
    std::os::unix::fs::symlink(&shadow, env.key()).unwrap();
    let keyarg = env.key().to_str().unwrap().to_string();
    for args in [
        vec!["keygen", "--output", &keyarg, "--append", "--id", "2"],
        vec!["keygen", "--output", &keyarg, "--force"],
        vec!["keygen", "--output", &keyarg],
    ] {
        let out = hbd(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            std::fs::symlink_metadata(env.key())
                .unwrap()
                .file_type()
                .is_symlink(),
            "{args:?} replaced the link"
        );
        assert_eq!(std::fs::read(&shadow).unwrap(), before, "{args:?}");
        assert_eq!(mode(&shadow), 0o640);
    }
    let out = hbd(
        &["keygen", "--output", &keyarg, "--append", "--id", "2"],
        None,
    );
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn keygen_temporary_file_is_exclusive_and_random() {
    let env = Env::new();
    // Names the old code used (".authkey.tmpPID"): planted links must not be followed.
    let target = env.dir.path().join("target");
    std::fs::write(&target, "untouched").unwrap();
    for pid in 1..64 {
        let _ =
            std::os::unix::fs::symlink(&target, env.dir.path().join(format!(".authkey.tmp{pid}")));
    }
    let keyarg = env.key().to_str().unwrap().to_string();
    let out = hbd(&["keygen", "--output", &keyarg], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    assert_eq!(mode(&env.key()), 0o600);
    // The planted links are still there (not removed as if they were ours), and nothing else.
    let tmps = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter(|e| {
            let e = e.as_ref().unwrap();
            e.file_name().to_string_lossy().contains(".tmp") && !e.file_type().unwrap().is_symlink()
        })
        .count();
    assert_eq!(tmps, 0);
}
