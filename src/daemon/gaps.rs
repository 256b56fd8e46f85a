//! Heartbeat gaps per peer and link, and the deadtime advice `hbd status` prints.
//!
//! A gap is the time between two heartbeats believed from one peer on one link. Gaps
//! are kept as the worst one per minute for the last 24 hours (1440 numbers per link
//! at most), so the worst gap over the last hour and the last day are exact to the
//! minute. A silence that ends with the link declared down is not a gap: it is
//! counted as a link-down (metrics, journal), and the next heartbeat starts afresh.
//!
//! ## The advice rule
//!
//! With W the worst gap over the window (the last 24 h, or as long as observed),
//! D deadtime and T warntime, checked in this order:
//!
//! 1. fewer than [`MIN_GAPS`] gaps seen: **no data yet**;
//! 2. D < 2 × W: **thin**: one gap twice as bad as the worst seen declares the peer
//!    dead; raise deadtime or find the cause;
//! 3. W ≥ T: **thin**: gaps already reach warntime (late warnings expected);
//! 4. observed for at least [`FULL_DAY`] and D ≥ [`LOWER_FACTOR`] × W: **could be
//!    lower**: deadtime could safely be max(5 × W, 4 × keepalive), rounded up to
//!    100 ms (still a 5× margin over the worst gap of a whole day);
//! 5. otherwise **ok**.
//!
//! Heartbeat's own advice was to watch "late heartbeat" lines for weeks before
//! choosing deadtime; this rule never suggests a lower deadtime on less than a
//! day of observation.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Fewer gaps than this say nothing.
pub const MIN_GAPS: u64 = 10;
/// Observation needed before a lower deadtime is suggested.
pub const FULL_DAY: Duration = Duration::from_secs(24 * 3600);
pub const HOUR: Duration = Duration::from_secs(3600);
/// Deadtime at least this many times the worst gap of a day: it could be lower.
pub const LOWER_FACTOR: u64 = 10;
const MINUTE: Duration = Duration::from_secs(60);
const MINUTES: usize = 24 * 60;

/// The gaps of one peer on one link.
#[derive(Debug, Clone)]
pub struct Gaps {
    /// The last heartbeat and its sequence number.
    last: Option<(Instant, u64)>,
    /// When the first heartbeat was heard (the observation's start).
    since: Option<Instant>,
    /// (minute index since `origin`, worst gap of that minute), oldest first.
    minutes: VecDeque<(u64, Duration)>,
    origin: Instant,
    pub count: u64,
}

impl Gaps {
    pub fn new(origin: Instant) -> Gaps {
        Gaps {
            last: None,
            since: None,
            minutes: VecDeque::new(),
            origin,
            count: 0,
        }
    }

    fn minute(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.origin).as_secs()) / MINUTE.as_secs()
    }

    /// A heartbeat with sequence `seq` heard at `now`. Returns the gap since the
    /// previous one and how many sequence numbers were skipped (lost), if there was
    /// a previous one. A sequence that goes back (the peer restarted) starts afresh.
    pub fn heard(&mut self, now: Instant, seq: u64) -> Option<(Duration, u64)> {
        self.since.get_or_insert(now);
        let prev = self.last.replace((now, seq));
        let (t, s) = prev?;
        if seq <= s {
            return None;
        }
        let gap = now.saturating_duration_since(t);
        self.count += 1;
        let m = self.minute(now);
        match self.minutes.back_mut() {
            Some((bm, worst)) if *bm == m => *worst = (*worst).max(gap),
            _ => self.minutes.push_back((m, gap)),
        }
        while self
            .minutes
            .front()
            .is_some_and(|(fm, _)| fm + (MINUTES as u64) <= m)
        {
            self.minutes.pop_front();
        }
        Some((gap, seq - s - 1))
    }

    /// The link went down (or the peer died, left, restarted): the silence is not a gap.
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// The worst gap within `window` before `now`.
    pub fn worst(&self, now: Instant, window: Duration) -> Option<Duration> {
        let m = self.minute(now);
        let span = window.as_secs().div_ceil(MINUTE.as_secs());
        self.minutes
            .iter()
            .filter(|(fm, _)| fm + span > m)
            .map(|(_, g)| *g)
            .max()
    }

    /// How long this link has been observed.
    pub fn observed(&self, now: Instant) -> Duration {
        self.since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    /// The advice inputs for now.
    pub fn summary(&self, now: Instant) -> GapSummary {
        GapSummary {
            gaps: self.count,
            observed_ms: self.observed(now).as_millis() as u64,
            worst_hour_ms: self.worst(now, HOUR).map(|d| d.as_millis() as u64),
            worst_day_ms: self.worst(now, FULL_DAY).map(|d| d.as_millis() as u64),
        }
    }
}

/// What `hbd status` gets per peer and link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapSummary {
    pub gaps: u64,
    pub observed_ms: u64,
    pub worst_hour_ms: Option<u64>,
    pub worst_day_ms: Option<u64>,
}

/// The verdict of the rule in this module's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advice {
    NoData,
    /// Deadtime is less than twice the worst gap.
    ThinDeadtime {
        factor_tenths: u64,
    },
    /// Gaps reach warntime.
    ThinWarntime,
    /// Deadtime could safely be this (ms).
    CouldBeLower {
        factor: u64,
        suggest_ms: u64,
    },
    Ok {
        factor: u64,
    },
}

/// The rule (see the module documentation).
pub fn advise(s: &GapSummary, keepalive_ms: u64, warntime_ms: u64, deadtime_ms: u64) -> Advice {
    let Some(worst) = s.worst_day_ms.filter(|_| s.gaps >= MIN_GAPS) else {
        return Advice::NoData;
    };
    let worst = worst.max(1);
    if deadtime_ms < 2 * worst {
        return Advice::ThinDeadtime {
            factor_tenths: deadtime_ms * 10 / worst,
        };
    }
    if worst >= warntime_ms {
        return Advice::ThinWarntime;
    }
    let factor = deadtime_ms / worst;
    if s.observed_ms >= FULL_DAY.as_millis() as u64 && factor >= LOWER_FACTOR {
        let suggest = (5 * worst).max(4 * keepalive_ms).div_ceil(100) * 100;
        if suggest < deadtime_ms {
            return Advice::CouldBeLower {
                factor,
                suggest_ms: suggest,
            };
        }
    }
    Advice::Ok { factor }
}

/// A duration for people: "212 ms", "1.5 s", "10 s", "3 min", "5 h".
pub fn human(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        if ms % 1000 == 0 {
            format!("{} s", ms / 1000)
        } else {
            format!("{:.1} s", ms as f64 / 1000.0)
        }
    } else if ms < 3_600_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} h", ms / 3_600_000)
    }
}

/// The advice as one plain sentence, e.g. "worst gap 212 ms over 24 h; deadtime 10 s
/// is 47× that, warntime 5 s 23×: deadtime could safely be 4 s (...)".
pub fn sentence(s: &GapSummary, keepalive_ms: u64, warntime_ms: u64, deadtime_ms: u64) -> String {
    let over = if s.observed_ms >= FULL_DAY.as_millis() as u64 {
        "24 h".to_string()
    } else {
        format!("the {} observed", human(s.observed_ms))
    };
    let worst = s.worst_day_ms.unwrap_or(0);
    let hour = match s.worst_hour_ms {
        Some(h) if s.observed_ms > HOUR.as_millis() as u64 => format!(" (last hour: {})", human(h)),
        _ => String::new(),
    };
    let head = format!("worst gap {} over {over}{hour}", human(worst));
    let (d, w) = (human(deadtime_ms), human(warntime_ms));
    match advise(s, keepalive_ms, warntime_ms, deadtime_ms) {
        Advice::NoData => format!("too few heartbeats yet ({} gaps)", s.gaps),
        Advice::ThinDeadtime { factor_tenths } => format!(
            "{head}; deadtime {d} is only {}.{}× that: THIN margin, raise deadtime or find the cause of the gaps",
            factor_tenths / 10,
            factor_tenths % 10
        ),
        Advice::ThinWarntime => format!(
            "{head}; it reaches warntime {w}: THIN margin, expect late warnings; deadtime {d} is {}× that",
            deadtime_ms / worst.max(1)
        ),
        Advice::CouldBeLower { factor, suggest_ms } => format!(
            "{head}; deadtime {d} is {factor}× that, warntime {w} {}×: deadtime could safely be {} (5× the worst gap, at least 4 keepalives)",
            warntime_ms / worst.max(1),
            human(suggest_ms)
        ),
        Advice::Ok { factor } => {
            let more = if s.observed_ms < FULL_DAY.as_millis() as u64 && factor >= LOWER_FACTOR {
                " (watch for a day before lowering it)"
            } else {
                ""
            };
            format!(
                "{head}; deadtime {d} is {factor}× that, warntime {w} {}×: ok{more}",
                warntime_ms / worst.max(1)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn summary(gaps: u64, observed: Duration, worst: u64) -> GapSummary {
        GapSummary {
            gaps,
            observed_ms: observed.as_millis() as u64,
            worst_hour_ms: Some(worst),
            worst_day_ms: Some(worst),
        }
    }

    #[test]
    fn gaps_and_losses_are_measured_per_heartbeat() {
        let t0 = Instant::now();
        let mut g = Gaps::new(t0);
        assert_eq!(g.heard(t0, 1), None);
        assert_eq!(g.heard(t0 + ms(1000), 2), Some((ms(1000), 0)));
        // Two heartbeats lost: seq 3 and 4.
        assert_eq!(g.heard(t0 + ms(4000), 5), Some((ms(3000), 2)));
        // A replayed or restarted sequence is not a gap.
        assert_eq!(g.heard(t0 + ms(4100), 1), None);
        assert_eq!(g.count, 2);
        assert_eq!(g.worst(t0 + ms(4100), HOUR), Some(ms(3000)));
    }

    #[test]
    fn silence_after_a_reset_is_not_a_gap() {
        let t0 = Instant::now();
        let mut g = Gaps::new(t0);
        g.heard(t0, 1);
        g.reset();
        assert_eq!(g.heard(t0 + Duration::from_secs(300), 400), None);
        assert_eq!(g.worst(t0 + Duration::from_secs(300), HOUR), None);
    }

    #[test]
    fn worst_gap_ages_out_of_the_hour_then_the_day() {
        let t0 = Instant::now();
        let mut g = Gaps::new(t0);
        g.heard(t0, 1);
        g.heard(t0 + ms(900), 2); // a 900 ms gap in minute 0
        let mut t = t0 + ms(900);
        let mut seq = 2;
        // Then a heartbeat every 100 ms.
        let later = |t: Instant, g: &mut Gaps, seq: &mut u64, until: Instant| {
            let mut t = t;
            while t < until {
                t += ms(100);
                *seq += 1;
                g.heard(t, *seq);
            }
            t
        };
        t = later(t, &mut g, &mut seq, t0 + Duration::from_secs(30 * 60));
        assert_eq!(g.worst(t, HOUR), Some(ms(900)));
        t = later(t, &mut g, &mut seq, t0 + Duration::from_secs(2 * 3600));
        assert_eq!(
            g.worst(t, HOUR),
            Some(ms(100)),
            "900 ms is over an hour old"
        );
        assert_eq!(g.worst(t, FULL_DAY), Some(ms(900)));
        t += Duration::from_secs(23 * 3600);
        seq += 1;
        g.heard(t, seq);
        assert_eq!(g.worst(t, FULL_DAY), Some(Duration::from_secs(23 * 3600)));
        // Bounded memory: at most one entry per minute of a day.
        assert!(g.minutes.len() <= MINUTES, "{}", g.minutes.len());
    }

    #[test]
    fn the_rule() {
        let day = FULL_DAY;
        let (ka, warn, dead) = (1000, 5000, 10_000);
        assert_eq!(
            advise(&summary(3, day, 100), ka, warn, dead),
            Advice::NoData
        );
        // Deadtime under twice the worst gap.
        assert_eq!(
            advise(&summary(100, day, 6000), ka, warn, dead),
            Advice::ThinDeadtime { factor_tenths: 16 }
        );
        // Gaps reaching warntime with deadtime still over twice them.
        assert_eq!(
            advise(&summary(100, day, 5000), ka, warn, dead),
            Advice::ThinWarntime
        );
        // 212 ms over a day against 10 s: 47×, could be 4 s (4 keepalives beat 5 × 212 ms).
        assert_eq!(
            advise(&summary(100, day, 212), ka, warn, dead),
            Advice::CouldBeLower {
                factor: 47,
                suggest_ms: 4000
            }
        );
        // Faster keepalive: 5 × 212 = 1060, rounded up to 1.1 s.
        assert_eq!(
            advise(&summary(100, day, 212), 200, warn, dead),
            Advice::CouldBeLower {
                factor: 47,
                suggest_ms: 1100
            }
        );
        // The same after an hour only: no suggestion yet.
        assert_eq!(
            advise(&summary(100, HOUR, 212), ka, warn, dead),
            Advice::Ok { factor: 47 }
        );
        // Comfortable but not 10×.
        assert_eq!(
            advise(&summary(100, day, 2000), ka, warn, dead),
            Advice::Ok { factor: 5 }
        );
        // Exactly twice is not thin.
        assert_eq!(
            advise(&summary(100, day, 4000), ka, 4500, 8000),
            Advice::Ok { factor: 2 }
        );
    }

    #[test]
    fn sentences_say_it_plainly() {
        let s = summary(100, FULL_DAY, 212);
        assert_eq!(
            sentence(&s, 1000, 5000, 10_000),
            "worst gap 212 ms over 24 h (last hour: 212 ms); deadtime 10 s is 47× that, warntime 5 s 23×: deadtime could safely be 4 s (5× the worst gap, at least 4 keepalives)"
        );
        // The README's examples.
        let day = |worst, hour| GapSummary {
            gaps: 86_000,
            observed_ms: FULL_DAY.as_millis() as u64,
            worst_hour_ms: Some(hour),
            worst_day_ms: Some(worst),
        };
        assert_eq!(
            sentence(&day(212, 205), 1000, 4000, 10_000),
            "worst gap 212 ms over 24 h (last hour: 205 ms); deadtime 10 s is 47× that, warntime 4 s 18×: deadtime could safely be 4 s (5× the worst gap, at least 4 keepalives)"
        );
        assert_eq!(
            sentence(&day(4200, 1100), 1000, 4000, 10_000),
            "worst gap 4.2 s over 24 h (last hour: 1.1 s); it reaches warntime 4 s: THIN margin, expect late warnings; deadtime 10 s is 2× that"
        );
        let thin = summary(100, Duration::from_secs(600), 700);
        assert_eq!(
            sentence(&thin, 200, 600, 1000),
            "worst gap 700 ms over the 10 min observed; deadtime 1 s is only 1.4× that: THIN margin, raise deadtime or find the cause of the gaps"
        );
        assert_eq!(
            sentence(&summary(2, HOUR, 1), 1000, 5000, 10_000),
            "too few heartbeats yet (2 gaps)"
        );
    }
}
