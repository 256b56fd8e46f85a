//! Rate-limited warnings about refused packets.
//!
//! When two clusters share a network, or a node runs with the wrong key, every one
//! of its heartbeats is refused: Heartbeat v1 logged each one and flooded syslog.
//! hbd logs the first refusal per source at once, then at most one line a
//! minute carrying the number of refusals suppressed since the last line.
//!
//! A flood from many (spoofed) sources must neither cost more than O(1) per packet
//! nor flood the journal: the table of sources is bounded and never scanned on the
//! packet path (only by [`RateLimiter::flush`], once a window), and the lines per
//! window are bounded too. What is not reported source by source is counted and
//! reported in one aggregate line.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Bound on remembered sources: a flood of spoofed sources must not grow memory
/// without limit.
const MAX_KEYS: usize = 4096;
/// Lines for refusals per window (first refusals of a source, repeats a window on).
const MAX_LINES: usize = 16;
/// Closing lines per flush; the rest is folded into the aggregate.
const MAX_CLOSING: usize = 16;

#[derive(Debug)]
pub struct RateLimiter<K> {
    window: Duration,
    entries: HashMap<K, Entry>,
    window_start: Option<Instant>,
    lines_left: usize,
    /// Refusals not reported source by source since the last flush.
    unlisted: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    logged_at: Instant,
    suppressed: u64,
}

/// What [`RateLimiter::flush`] has to say.
#[derive(Debug, PartialEq, Eq)]
pub struct Flush<K> {
    /// Sources with refusals not yet reported, and their counts.
    pub sources: Vec<(K, u64)>,
    /// Refusals from sources not listed one by one (too many sources).
    pub unlisted: u64,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            window,
            entries: HashMap::new(),
            window_start: None,
            lines_left: MAX_LINES,
            unlisted: 0,
        }
    }

    /// Whether no key is remembered (nothing for [`RateLimiter::flush`] to do).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record one occurrence. `Some(n)`: log a line now, mentioning the `n`
    /// occurrences suppressed since the previous line; `None`: stay quiet. O(1).
    pub fn check(&mut self, now: Instant, key: &K) -> Option<u64> {
        if self
            .window_start
            .is_none_or(|t| now.saturating_duration_since(t) >= self.window)
        {
            self.window_start = Some(now);
            self.lines_left = MAX_LINES;
        }
        if let Some(e) = self.entries.get_mut(key) {
            if now.saturating_duration_since(e.logged_at) < self.window || self.lines_left == 0 {
                e.suppressed += 1;
                return None;
            }
            self.lines_left -= 1;
            let n = e.suppressed;
            *e = Entry {
                logged_at: now,
                suppressed: 0,
            };
            return Some(n);
        }
        if self.entries.len() >= MAX_KEYS || self.lines_left == 0 {
            self.unlisted += 1;
            return None;
        }
        self.lines_left -= 1;
        self.entries.insert(
            key.clone(),
            Entry {
                logged_at: now,
                suppressed: 0,
            },
        );
        Some(0)
    }

    /// Sources whose window has passed with suppressed occurrences not yet reported,
    /// with their counts (at most [`MAX_CLOSING`], the largest), and the count of
    /// refusals not listed by source; call once per window so a flood that stopped
    /// still gets its closing line. Sources idle for a whole window are forgotten.
    pub fn flush(&mut self, now: Instant) -> Flush<K> {
        let mut sources = Vec::new();
        let window = self.window;
        self.entries.retain(|k, e| {
            if now.saturating_duration_since(e.logged_at) < window {
                return true;
            }
            if e.suppressed > 0 {
                sources.push((k.clone(), e.suppressed));
                *e = Entry {
                    logged_at: now,
                    suppressed: 0,
                };
                return true;
            }
            false
        });
        sources.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let mut unlisted = std::mem::take(&mut self.unlisted);
        if sources.len() > MAX_CLOSING {
            unlisted += sources.drain(MAX_CLOSING..).map(|(_, n)| n).sum::<u64>();
        }
        Flush { sources, unlisted }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
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
        assert!(r.flush(t0 + Duration::from_secs(30)).sources.is_empty());
        assert_eq!(
            r.flush(t0 + Duration::from_secs(60)),
            Flush {
                sources: vec![("a", 2)],
                unlisted: 0
            }
        );
        // "quiet" was forgotten, "a" reset: nothing more to say.
        assert!(r.flush(t0 + Duration::from_secs(200)).sources.is_empty());
        assert_eq!(r.check(t0 + Duration::from_secs(201), &"quiet"), Some(0));
    }

    /// Issue 15, hole 2: 20 000 sources in one window give a bounded number of lines,
    /// bounded memory, and every refusal is still counted.
    #[test]
    fn a_flood_from_many_sources_is_bounded_and_counted() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Duration::from_secs(60));
        let mut lines = 0;
        let started = std::time::Instant::now();
        for round in 0..5u64 {
            for i in 0..20_000u32 {
                let now = t0 + Duration::from_millis(round * 100 + u64::from(i) / 1000);
                if r.check(now, &i).is_some() {
                    lines += 1;
                }
            }
        }
        let elapsed = started.elapsed();
        assert!(lines <= MAX_LINES, "{lines} lines in one window");
        assert!(r.entries.len() <= MAX_KEYS);
        let f = r.flush(t0 + Duration::from_secs(61));
        assert!(f.sources.len() <= MAX_CLOSING);
        let counted: u64 = f.sources.iter().map(|(_, n)| n).sum::<u64>() + f.unlisted;
        assert_eq!(counted + lines as u64, 100_000, "every refusal is counted");
        eprintln!("100 000 refusals from 20 000 sources: {lines} lines, {elapsed:?}");
    }
}
