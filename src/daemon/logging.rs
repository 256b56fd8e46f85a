//! Logging: structured records to the journal under systemd, readable lines on
//! stderr otherwise.
//!
//! Under systemd, stderr is usually a journal stream already, but writing
//! records natively keeps the fields: every daemon event carries NODE (set on the
//! daemon's span) and, where they apply, PEER, LINK and GROUP, so
//! `journalctl -u hbd PEER=beta` finds everything about one peer.
//! The level comes from HBD_LOG (tracing-subscriber's env-filter syntax), default "info".

use std::io::IsTerminal;
use std::os::fd::AsFd;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static JOURNAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether records go to the journal natively (fields such as MESSAGE_ID apply).
pub fn journal_active() -> bool {
    JOURNAL.load(std::sync::atomic::Ordering::Relaxed)
}

/// Install the global subscriber (once; later calls do nothing).
pub fn init() {
    let filter = || EnvFilter::try_from_env("HBD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if use_journal() {
        if let Ok(layer) = tracing_journald::layer() {
            let layer = layer
                .with_field_prefix(None)
                .with_syslog_identifier("hbd".into());
            if tracing_subscriber::registry()
                .with(filter())
                .with(layer)
                .try_init()
                .is_ok()
            {
                JOURNAL.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return;
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Journal when stderr is connected to it (JOURNAL_STREAM names stderr's
/// device:inode, see systemd.exec(5)), or when started by systemd (INVOCATION_ID)
/// on a system with a journal socket.
fn use_journal() -> bool {
    if let Some(v) = std::env::var_os("JOURNAL_STREAM") {
        if stderr_is(&v.to_string_lossy()) {
            return true;
        }
    }
    std::env::var_os("INVOCATION_ID").is_some()
        && std::path::Path::new("/run/systemd/journal/socket").exists()
}

fn stderr_is(journal_stream: &str) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // st_dev/st_ino are u64 here but not on every libc.
    #[allow(clippy::unnecessary_cast)]
    match nix::sys::stat::fstat(std::io::stderr().as_fd()) {
        Ok(st) => st.st_dev as u64 == dev && st.st_ino as u64 == ino,
        Err(_) => false,
    }
}
