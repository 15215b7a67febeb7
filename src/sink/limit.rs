//! The cap on messages (emails, webhook posts) per period, and the count of what it held back.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// At most `max` messages in any sliding `period`.
#[derive(Debug)]
pub(crate) struct SendLimit {
    max: u32,
    period: Duration,
    sent: VecDeque<Instant>,
}

impl SendLimit {
    pub(crate) fn new(max: u32, period: Duration) -> Self {
        Self {
            max,
            period,
            sent: VecDeque::new(),
        }
    }

    /// Takes a slot for one message now, if the cap allows it.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.sent.front() {
            if now.saturating_duration_since(oldest) >= self.period {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if self.sent.len() < self.max as usize {
            self.sent.push_back(now);
            true
        } else {
            false
        }
    }

    /// Frees the slot taken last, for a message that did not go out after all.
    pub(crate) fn give_back(&mut self) {
        self.sent.pop_back();
    }

    #[cfg_attr(not(feature = "smtp"), allow(dead_code))]
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    #[cfg_attr(not(feature = "smtp"), allow(dead_code))]
    pub(crate) fn period(&self) -> Duration {
        self.period
    }
}

/// What was not mailed, to be told in the next email that goes out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Untold {
    /// Emails held back by the cap.
    pub(crate) capped_mails: u64,
    /// The reports those emails were about.
    pub(crate) capped_reports: u64,
    /// Reports dropped because too many were waiting (the server was away too long).
    pub(crate) dropped_reports: u64,
}

impl Untold {
    /// Forgets what `told` said, keeping what happened since.
    pub(crate) fn forget(&mut self, told: &Self) {
        self.capped_mails -= told.capped_mails.min(self.capped_mails);
        self.capped_reports -= told.capped_reports.min(self.capped_reports);
        self.dropped_reports -= told.dropped_reports.min(self.dropped_reports);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_per_sliding_period() {
        let start = Instant::now();
        let mut limit = SendLimit::new(2, Duration::from_secs(60));
        assert!(limit.try_take(start));
        assert!(limit.try_take(start + Duration::from_secs(10)));
        assert!(!limit.try_take(start + Duration::from_secs(20)));
        assert!(limit.try_take(start + Duration::from_secs(60)));
        assert!(!limit.try_take(start + Duration::from_secs(69)));
        assert!(limit.try_take(start + Duration::from_secs(70)));
    }

    #[test]
    fn forgets_only_what_was_told() {
        let mut untold = Untold {
            capped_mails: 3,
            capped_reports: 5,
            dropped_reports: 1,
        };
        let told = untold;
        untold.capped_mails += 1;
        untold.forget(&told);
        assert_eq!(
            untold,
            Untold {
                capped_mails: 1,
                ..Untold::default()
            }
        );
    }
}
