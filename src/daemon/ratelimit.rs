//! Rate-limited warnings about refused packets.
//!
//! When two clusters share a network, or a node runs with the wrong key, every one
//! of its heartbeats is refused: Heartbeat v1 logged each one and flooded syslog.
//! hbd logs the first refusal per source at once, then at most one line a
//! minute carrying the number of refusals suppressed since the last line.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// One line per key per `window`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    window: Duration,
    entries: HashMap<K, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    logged_at: Instant,
    suppressed: u64,
}

/// Bound on remembered keys: a flood of spoofed sources must not grow memory
/// without limit. Beyond it, idle keys are forgotten first.
const MAX_KEYS: usize = 4096;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            window,
            entries: HashMap::new(),
        }
    }

    /// Whether no key is remembered (nothing for [`RateLimiter::flush`] to do).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record one occurrence. `Some(n)`: log a line now, mentioning the `n`
    /// occurrences suppressed since the previous line; `None`: stay quiet.
    pub fn check(&mut self, now: Instant, key: &K) -> Option<u64> {
        if let Some(e) = self.entries.get_mut(key) {
            if now.saturating_duration_since(e.logged_at) < self.window {
                e.suppressed += 1;
                return None;
            }
            let n = e.suppressed;
            *e = Entry {
                logged_at: now,
                suppressed: 0,
            };
            return Some(n);
        }
        if self.entries.len() >= MAX_KEYS {
            self.forget_idle(now);
            if self.entries.len() >= MAX_KEYS {
                // Still full of busy keys: stay quiet rather than grow.
                return None;
            }
        }
        self.entries.insert(
            key.clone(),
            Entry {
                logged_at: now,
                suppressed: 0,
            },
        );
        Some(0)
    }

    /// Keys whose window has passed with suppressed occurrences not yet reported,
    /// with their counts; call once per window so a flood that stopped still gets its
    /// closing line. Keys idle for a whole window are forgotten.
    pub fn flush(&mut self, now: Instant) -> Vec<(K, u64)> {
        let mut out = Vec::new();
        let window = self.window;
        self.entries.retain(|k, e| {
            if now.saturating_duration_since(e.logged_at) < window {
                return true;
            }
            if e.suppressed > 0 {
                out.push((k.clone(), e.suppressed));
                *e = Entry {
                    logged_at: now,
                    suppressed: 0,
                };
                return true;
            }
            false
        });
        out
    }

    fn forget_idle(&mut self, now: Instant) {
        let window = self.window;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.logged_at) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_with_count() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Duration::from_secs(60));
        assert_eq!(r.check(t0, &"a"), Some(0));
        for i in 1..=10 {
            assert_eq!(r.check(t0 + Duration::from_secs(i), &"a"), None);
        }
        // Another key is independent.
        assert_eq!(r.check(t0 + Duration::from_secs(5), &"b"), Some(0));
        assert_eq!(r.check(t0 + Duration::from_secs(61), &"a"), Some(10));
        assert_eq!(r.check(t0 + Duration::from_secs(62), &"a"), None);
    }

    #[test]
    fn flush_reports_a_flood_that_stopped() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Duration::from_secs(60));
        r.check(t0, &"a");
        r.check(t0 + Duration::from_secs(1), &"a");
        r.check(t0 + Duration::from_secs(2), &"a");
        r.check(t0, &"quiet");
        assert!(r.flush(t0 + Duration::from_secs(30)).is_empty());
        assert_eq!(r.flush(t0 + Duration::from_secs(60)), vec![("a", 2)]);
        // "quiet" was forgotten, "a" reset: nothing more to say.
        assert!(r.flush(t0 + Duration::from_secs(200)).is_empty());
        assert_eq!(r.check(t0 + Duration::from_secs(201), &"quiet"), Some(0));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Duration::from_secs(60));
        for i in 0..(MAX_KEYS + 100) {
            r.check(t0, &i);
        }
        assert!(r.entries.len() <= MAX_KEYS);
    }
}
