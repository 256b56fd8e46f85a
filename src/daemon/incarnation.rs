//! This daemon's incarnation: a number above every earlier one of this node, so that
//! peers can tell a restart (a later incarnation) from a replay (an earlier one).
//!
//! It is the wall clock in microseconds, raised above the last one used when the
//! clock has gone back, as Heartbeat kept its generation in /var/lib/heartbeat. The
//! floor lives in `$STATE_DIRECTORY/incarnation` (the unit's `StateDirectory=hbd`,
//! else /var/lib/hbd). Without it (a read-only /var) the clock alone is used, and a
//! warning says so; peers then still accept the node after a backwards clock step
//! once its previous incarnation is declared dead.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const FILE: &str = "incarnation";
/// The file holds one decimal number; anything longer is not ours.
const MAX_LEN: u64 = 64;

/// Where the floor is kept.
pub fn state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        // systemd may pass several, colon-separated; hbd has one.
        .and_then(|d| {
            d.to_str()
                .and_then(|d| d.split(':').next())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("/var/lib/hbd"))
}

/// A new incarnation, and a warning when it could not be made durable.
pub fn next(dir: &Path) -> (u64, Option<String>) {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let path = dir.join(FILE);
    let floor = read_floor(&path);
    let incarnation = match floor {
        Some(f) => clock.max(f.saturating_add(1)),
        None => clock,
    };
    let warning = persist(dir, incarnation).err().map(|e| {
        format!(
            "cannot keep the incarnation in {}: {e}; relying on the clock alone (peers may ignore this node for a deadtime after a clock step back)",
            path.display()
        )
    });
    (incarnation, warning)
}

fn read_floor(path: &Path) -> Option<u64> {
    // O_NOFOLLOW | O_NONBLOCK: never follow a planted link, never hang on a FIFO.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_LEN {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_LEN).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn persist(dir: &Path, incarnation: u64) -> std::io::Result<()> {
    crate::files::replace_state_file(dir, FILE, format!("{incarnation}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_across_starts_even_when_the_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, w) = next(dir.path());
        assert!(w.is_none(), "{w:?}");
        let (b, _) = next(dir.path());
        assert!(b > a);
        // A floor far in the future (the clock went back): still above it.
        std::fs::write(dir.path().join(FILE), format!("{}\n", u64::MAX - 5)).unwrap();
        let (c, _) = next(dir.path());
        assert_eq!(c, u64::MAX - 4);
        // Garbage or a FIFO in its place is ignored, never hangs.
        std::fs::remove_file(dir.path().join(FILE)).unwrap();
        nix::unistd::mkfifo(&dir.path().join(FILE), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(read_floor(&dir.path().join(FILE)), None);
    }

    #[test]
    fn an_unwritable_directory_gives_a_warning_not_an_error() {
        let (i, w) = next(Path::new("/proc/no-such-dir"));
        assert!(i > 0);
        assert!(w.unwrap().contains("relying on the clock alone"));
    }
}
