//! sd_notify: READY=1, STATUS=, WATCHDOG=1, STOPPING=1.
//!
//! hbd.service is `Type=notify`: systemd holds units ordered after hbd until READY=1
//! (sent once the start-up listening phase is over), shows the STATUS= line in
//! `systemctl status hbd`, and restarts a daemon whose loop stops sending WATCHDOG=1
//! when `WatchdogSec=` is set. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

/// The daemon's line to the service manager.
#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
    last_status: Option<String>,
}

impl Notifier {
    /// Read NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID from the environment.
    pub fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
            last_status: None,
        }
    }

    /// A notifier that never sends (tests, `--no-notify` style uses).
    pub fn disabled() -> Notifier {
        Notifier {
            enabled: false,
            watchdog: None,
            last_status: None,
        }
    }

    /// How often to send WATCHDOG=1: half the watchdog timeout, as sd_watchdog_enabled(3)
    /// recommends. `None` when systemd set no watchdog for us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|t| (t / 2).max(Duration::from_millis(1)))
    }

    pub fn ready(&mut self) {
        self.send(&[NotifyState::Ready]);
    }

    /// Send STATUS= if it differs from the last one sent.
    pub fn status(&mut self, line: &str) {
        if self.last_status.as_deref() == Some(line) {
            return;
        }
        self.send(&[NotifyState::Status(line)]);
        self.last_status = Some(line.to_string());
    }

    pub fn watchdog(&mut self) {
        self.send(&[NotifyState::Watchdog]);
    }

    pub fn stopping(&mut self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// RELOADING=1 at the start of a SIGHUP reload; READY=1 again when done.
    /// (Type=notify-reload wants MONOTONIC_USEC= with it.)
    pub fn reloading(&mut self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        // A lost notification is not worth stopping the daemon for; systemd will
        // notice a dead watchdog or a missing READY=1 by itself.
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!("sd_notify failed: {e}");
        }
    }
}
