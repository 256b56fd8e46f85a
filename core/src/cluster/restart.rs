//! The in-place restart budget of a group: at most `max_restarts` restarts within
//! any `restart_window`. One more failure in the window moves the group.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct RestartBudget {
    times: VecDeque<Instant>,
}

impl RestartBudget {
    /// Take one restart at `now`: `Ok(n)`, this is restart `n` in the window;
    /// `Err(n)`, the budget is spent (`n` restarts already in the window).
    pub fn take(&mut self, now: Instant, max: u32, window: Duration) -> Result<usize, usize> {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > window)
        {
            self.times.pop_front();
        }
        if self.times.len() >= max as usize {
            return Err(self.times.len());
        }
        self.times.push_back(now);
        Ok(self.times.len())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base Instant for the tests' fake clock
mod tests {
    use super::*;

    #[test]
    fn budget_counts_within_the_window() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let w = Duration::from_secs(60);
        let mut b = RestartBudget::default();
        assert_eq!(b.take(t0, 2, w), Ok(1));
        assert_eq!(b.take(t0 + s, 2, w), Ok(2));
        assert_eq!(b.take(t0 + 2 * s, 2, w), Err(2));
        // The first restart leaves the window: one more is allowed.
        assert_eq!(b.take(t0 + 61 * s, 2, w), Ok(2));
        assert_eq!(b.take(t0 + 61 * s, 2, w), Err(2));
    }

    #[test]
    fn zero_budget_fails_at_once() {
        let mut b = RestartBudget::default();
        assert_eq!(b.take(Instant::now(), 0, Duration::from_secs(60)), Err(0));
    }
}
