//! Rate limiting of repetitive log lines per peer: the first few in full, then one summary line
//! per interval with the count of those left out. Sans-IO: the caller passes the time.
//!
//! A switch that sends a million ERRORs in seconds must not write hundreds of megabytes of log:
//! each kind of repetitive line gets one [`LogLimiter`] per connection. Within each interval the
//! first `burst` occurrences are logged whole; the rest are only counted, and the count comes
//! back once the interval is over, from the next occurrence ([`Verdict::LogAfterSummary`]),
//! from [`LogLimiter::poll`] (call it whenever the connection wakes up) or from
//! [`LogLimiter::take`] when the connection ends, so nothing is lost without a trace.

use std::time::{Duration, Instant};

/// What to do with one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it in full.
    Log,
    /// Log a summary of this many left out in the interval that ended, then this one in full.
    LogAfterSummary(u64),
    /// Count it only.
    Suppress,
}

/// One kind of repetitive log line from one peer.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    burst: u32,
    interval: Duration,
    window: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// At most `burst` (at least 1) lines in full per `interval`.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            burst: burst.max(1),
            interval,
            window: None,
            logged: 0,
            suppressed: 0,
        }
    }

    /// Starts a new interval at `now` if the current one is over; returns what it left out.
    fn roll(&mut self, now: Instant) -> Option<u64> {
        match self.window {
            Some(start) if now.saturating_duration_since(start) < self.interval => None,
            _ => {
                self.window = Some(now);
                self.logged = 0;
                self.take()
            }
        }
    }

    /// One occurrence at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let summary = self.roll(now);
        if self.logged < self.burst {
            self.logged += 1;
            return summary.map_or(Verdict::Log, Verdict::LogAfterSummary);
        }
        self.suppressed += 1;
        Verdict::Suppress
    }

    /// The count left out in an interval that is over by `now`, if any: log it as a summary.
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        if self.suppressed == 0 {
            return None;
        }
        self.roll(now)
    }

    /// The count left out so far, if any, whether or not the interval is over (at the end of
    /// the connection).
    pub fn take(&mut self) -> Option<u64> {
        Some(std::mem::take(&mut self.suppressed)).filter(|n| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_burst_is_logged_then_counted_and_summarised_per_interval() {
        let t = Instant::now();
        let mut l = LogLimiter::new(3, 10 * SEC);
        let verdicts: Vec<Verdict> = (0..1000).map(|_| l.check(t)).collect();
        assert_eq!(&verdicts[..3], [Verdict::Log; 3]);
        assert!(verdicts[3..].iter().all(|v| *v == Verdict::Suppress));
        // Within the interval: no summary yet, and still counting.
        assert_eq!(l.poll(t + 9 * SEC), None);
        assert_eq!(l.check(t + 9 * SEC), Verdict::Suppress);
        // The next occurrence after the interval carries the count, then a new burst starts.
        assert_eq!(l.check(t + 10 * SEC), Verdict::LogAfterSummary(998));
        assert_eq!(l.check(t + 10 * SEC), Verdict::Log);
        assert_eq!(l.check(t + 11 * SEC), Verdict::Log);
        assert_eq!(l.check(t + 11 * SEC), Verdict::Suppress);
        assert_eq!(l.check(t + 12 * SEC), Verdict::Suppress);
        // Without another occurrence, polling after the interval gives the summary once.
        assert_eq!(l.poll(t + 19 * SEC), None);
        assert_eq!(l.poll(t + 20 * SEC), Some(2));
        assert_eq!(l.poll(t + 40 * SEC), None);
        // A quiet period: the next one is simply logged.
        assert_eq!(l.check(t + 60 * SEC), Verdict::Log);
    }

    #[test]
    fn what_is_left_out_is_reported_at_the_end() {
        let t = Instant::now();
        let mut l = LogLimiter::new(1, 10 * SEC);
        assert_eq!(l.check(t), Verdict::Log);
        assert_eq!(l.check(t + SEC), Verdict::Suppress);
        assert_eq!(l.check(t + 2 * SEC), Verdict::Suppress);
        assert_eq!(l.take(), Some(2));
        assert_eq!(l.take(), None);
        // A burst of 0 still logs the first.
        let mut l = LogLimiter::new(0, SEC);
        assert_eq!(l.check(t), Verdict::Log);
    }
}
