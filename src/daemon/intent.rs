//! The operator's standby and takeover wishes, kept across restarts of hbd.
//!
//! `hbd standby` and `hbd takeover` are standing intents (like Pacemaker's standby
//! node attribute, persistent until cleared): they survive `systemctl restart hbd`, a
//! crash and a reboot. They live in `$STATE_DIRECTORY/intent` (the unit's
//! `StateDirectory=hbd`, else /var/lib/hbd), one line per group not in normal mode:
//! `standby web` or `takeover db`. The file is replaced atomically (a new file, synced,
//! renamed over the old) off the event loop, and read at start like every file hbd
//! reads: a regular file of sane size, no link followed, never blocking on a FIFO.
//! Lines hbd does not understand, and groups no longer in cluster.toml, are ignored
//! with a warning. Maintenance mode is not kept: a restart of hbd ends it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::cluster::Admin;
use crate::files::{self, FileError, Links};

const FILE: &str = "intent";
/// 64 groups of 63-byte names with their keyword fit well within this.
const MAX_LEN: u64 = 16 * 1024;

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The intents kept by an earlier run, and warnings for what was not understood.
pub fn load(dir: &Path) -> (Vec<(String, Admin)>, Vec<String>) {
    let path = path(dir);
    let bytes = match files::read_regular(&path, MAX_LEN, Links::Refuse) {
        Ok((b, _)) => b,
        Err(FileError::NotFound) => return (Vec::new(), Vec::new()),
        Err(e) => {
            return (
                Vec::new(),
                vec![format!(
                    "{} is {e}: ignoring it (no standby or takeover kept from the last run)",
                    path.display()
                )],
            );
        }
    };
    parse(&String::from_utf8_lossy(&bytes), &path)
}

fn parse(text: &str, path: &Path) -> (Vec<(String, Admin)>, Vec<String>) {
    let (mut intents, mut warnings) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let admin = match words.next() {
            Some("standby") => Admin::Standby,
            Some("takeover") => Admin::Wanted,
            _ => Admin::Normal,
        };
        match (admin, words.next(), words.next()) {
            (Admin::Standby | Admin::Wanted, Some(group), None) => {
                intents.push((group.to_string(), admin))
            }
            _ => warnings.push(format!(
                "{}:{}: not understood (expected `standby GROUP` or `takeover GROUP`): ignored",
                path.display(),
                n + 1
            )),
        }
    }
    (intents, warnings)
}

fn render(intents: &[(String, Admin)]) -> String {
    let mut out = String::from("# hbd standby / hbd takeover on this node (written by hbd)\n");
    for (group, admin) in intents {
        let word = match admin {
            Admin::Standby => "standby",
            Admin::Wanted => "takeover",
            Admin::Normal => continue,
        };
        out += &format!("{word} {group}\n");
    }
    out
}

/// Replace the file with these intents (blocking: call off the event loop).
pub fn save(dir: &Path, intents: &[(String, Admin)]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = f
        .write_all(render(intents).as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path(dir)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A task that writes the latest intents whenever they change, off the loop; later
/// values replace earlier ones not yet written.
pub fn writer(dir: PathBuf) -> tokio::sync::watch::Sender<Vec<(String, Admin)>> {
    let (tx, mut rx) = tokio::sync::watch::channel(Vec::new());
    rx.mark_unchanged();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let intents = rx.borrow_and_update().clone();
            let to = dir.clone();
            let r = tokio::task::spawn_blocking(move || save(&to, &intents)).await;
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(
                    "cannot keep standby/takeover in {}: {e}; they will be forgotten if hbd restarts",
                    path(&dir).display()
                ),
                Err(e) => tracing::error!("cannot keep standby/takeover: {e}"),
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_round_trip_and_bad_files_are_ignored_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), (Vec::new(), Vec::new()));
        let intents = vec![
            ("web".to_string(), Admin::Standby),
            ("db".to_string(), Admin::Wanted),
        ];
        save(dir.path(), &intents).unwrap();
        assert_eq!(load(dir.path()), (intents, Vec::new()));
        // Garbage lines are reported with their line number, the rest is kept.
        std::fs::write(path(dir.path()), "standby web\nfrobnicate\nstandby a b\n").unwrap();
        let (i, w) = load(dir.path());
        assert_eq!(i, vec![("web".to_string(), Admin::Standby)]);
        assert_eq!(w.len(), 2);
        assert!(
            w[0].ends_with(
                ":2: not understood (expected `standby GROUP` or `takeover GROUP`): ignored"
            ),
            "{w:?}"
        );
        // A FIFO or a link in its place: ignored, never hangs, never followed.
        std::fs::remove_file(path(dir.path())).unwrap();
        nix::unistd::mkfifo(&path(dir.path()), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let (i, w) = load(dir.path());
        assert!(i.is_empty());
        assert!(w[0].contains("not a regular file"), "{w:?}");
        std::fs::remove_file(path(dir.path())).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", path(dir.path())).unwrap();
        let (i, w) = load(dir.path());
        assert!(i.is_empty() && w[0].contains("symbolic link"), "{w:?}");
        // Saving replaces the link, never writes through it.
        save(dir.path(), &[("web".to_string(), Admin::Standby)]).unwrap();
        assert!(
            std::fs::symlink_metadata(path(dir.path()))
                .unwrap()
                .is_file()
        );
    }
}
