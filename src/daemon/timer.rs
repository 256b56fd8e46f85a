//! The core's next deadline as a timerfd: one wakeup, at the deadline.
//!
//! tokio's timer wheel wakes the process early for a deadline more than 64 ms away
//! (once per wheel level it cascades through, then again at the deadline): at
//! keepalive 1 s that doubled the loop's wakeups. A timerfd armed for the exact
//! deadline wakes it once. The timer is re-armed only when the deadline changes, so
//! re-creating the wait in every turn of the select loop costs nothing.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

pub struct Deadline {
    fd: AsyncFd<OwnedFd>,
    /// What the timer is armed for now.
    armed: Option<Instant>,
}

impl Deadline {
    pub fn new() -> io::Result<Deadline> {
        // SAFETY: plain timerfd_create(2); the result is checked.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd moves into the AsyncFd, which alone owns it until dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Deadline { fd, armed: None })
    }

    fn arm(&mut self, at: Option<Instant>) -> io::Result<()> {
        if self.armed == at {
            return Ok(());
        }
        // Relative to now, at least 1 ns (an all-zero value disarms). A timerfd never
        // fires early, so the core sees a time at or past its deadline.
        let value = match at {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            Some(t) => {
                let d = t.saturating_duration_since(Instant::now());
                libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: libc::c_long::from(d.subsec_nanos().max(u32::from(d.is_zero()))),
                }
            }
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: spec is a valid itimerspec; the old value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                0,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = at;
        Ok(())
    }

    /// Wait until `at` (forever for None). Cancel-safe: dropped and called again with
    /// the same deadline, it neither re-arms nor misses an expiry.
    pub async fn wait(&mut self, at: Option<Instant>) {
        if let Err(e) = self.arm(at) {
            // Cannot happen with a valid fd; fall back to tokio's timer.
            tracing::debug!("timerfd_settime: {e}");
            return fallback(at).await;
        }
        if at.is_none() {
            return std::future::pending().await;
        }
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return fallback(at).await;
            };
            let mut ticks = [0u8; 8];
            // SAFETY: ticks is valid for 8 bytes, the size a timerfd read takes.
            let n = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    ticks.as_mut_ptr() as *mut libc::c_void,
                    ticks.len(),
                )
            };
            if n == 8 {
                self.armed = None;
                return;
            }
            guard.clear_ready();
        }
    }
}

async fn fallback(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_at_or_after_the_deadline_and_rearms() {
        let mut d = Deadline::new().expect("timerfd");
        for ms in [0u64, 1, 5, 20] {
            let at = Instant::now() + Duration::from_millis(ms);
            d.wait(Some(at)).await;
            assert!(Instant::now() >= at, "woke before the deadline ({ms} ms)");
        }
        // A deadline in the past fires at once.
        let past = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        d.wait(Some(past)).await;
        // Cancelled waits keep the timer armed; a later deadline replaces it.
        // (What is asserted is "never early": a loaded machine may deschedule this test
        // past the deadline before the short wait is even polled.)
        let near = Instant::now() + Duration::from_millis(200);
        let r = tokio::time::timeout(Duration::from_millis(10), d.wait(Some(near))).await;
        if r.is_ok() {
            assert!(
                Instant::now() >= near,
                "a cancelled wait fired before the deadline"
            );
        }
        d.wait(Some(near)).await;
        assert!(Instant::now() >= near);
        // No deadline: never fires.
        let r = tokio::time::timeout(Duration::from_millis(20), d.wait(None)).await;
        assert!(r.is_err());
    }
}
