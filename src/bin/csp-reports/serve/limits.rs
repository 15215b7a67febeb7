//! What the process may hold: the connection cap within the open-file limit, and the
//! pause after failed accepts.

use std::time::{Duration, Instant};

/// Files the collector needs besides its connections: standard streams, the runtime's
/// poller, the listener, the database pool, the mail server, the certificate files.
pub(super) const RESERVED_FILES: u64 = 128;

/// The connection cap in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionCap {
    pub(super) max: u32,
    /// The soft open-file limit, when the platform has one.
    pub(super) open_file_limit: Option<u64>,
}

/// `--max-connections`, lowered to what the open-file limit leaves once the reserve is set
/// aside; the soft limit is raised first, as far as the hard limit allows.
pub(super) fn connection_cap(wanted: u32) -> ConnectionCap {
    let open_file_limit = open_file_limit(u64::from(wanted) + RESERVED_FILES);
    ConnectionCap {
        max: cap_within(wanted, open_file_limit),
        open_file_limit,
    }
}

pub(super) fn cap_within(wanted: u32, open_file_limit: Option<u64>) -> u32 {
    let Some(limit) = open_file_limit else {
        return wanted;
    };
    let room = limit.saturating_sub(RESERVED_FILES.min(limit / 2)).max(1);
    u32::try_from(room).map_or(wanted, |room| wanted.min(room))
}

/// The soft `RLIMIT_NOFILE`, raised towards `wanted` when the hard limit allows.
#[cfg(unix)]
pub(super) fn open_file_limit(wanted: u64) -> Option<u64> {
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(target: "csp_reports", %error, "cannot raise the open-file limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

#[cfg(not(unix))]
pub(super) fn open_file_limit(_wanted: u64) -> Option<u64> {
    None
}

/// Errors of `accept` that concern one connection, gone before it was taken: the next
/// one can be accepted at once.
pub(super) fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    )
}

/// Pauses after failed accepts (out of file descriptors, of memory for buffers), so that
/// a listener that cannot accept does not spin: 10 ms, doubling up to 1 s, back to the start
/// after an accept succeeds. Logs at most once a second, with the count of failures since.
#[derive(Debug, Default)]
pub(super) struct AcceptBackoff {
    pub(super) delay: Option<Duration>,
    pub(super) failures: u64,
    pub(super) logged: Option<Instant>,
}

/// What to do after a failed accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AcceptPause {
    pub(super) delay: Duration,
    /// When it is time to log: the failures since the last line, this one included.
    pub(super) log: Option<u64>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(1);

    pub(super) fn failed(&mut self, now: Instant) -> AcceptPause {
        let delay = self
            .delay
            .map_or(Self::FIRST, |delay| (delay * 2).min(Self::MAX));
        self.delay = Some(delay);
        self.failures += 1;
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= Self::LOG_EVERY);
        let log = due.then(|| {
            self.logged = Some(now);
            std::mem::take(&mut self.failures)
        });
        AcceptPause { delay, log }
    }

    pub(super) fn succeeded(&mut self) {
        self.delay = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        let cases: &[(u32, Option<u64>, u32)] = &[
            // (--max-connections, soft open-file limit, cap)
            (10_000, None, 10_000),
            (10_000, Some(1_048_576), 10_000),
            (10_000, Some(10_128), 10_000),
            (10_000, Some(10_000), 9_872),
            (10_000, Some(1_024), 896),
            (10_000, Some(200), 100),
            (10_000, Some(3), 2),
            (10_000, Some(1), 1),
            (10_000, Some(0), 1),
            (50, Some(1_024), 50),
            (u32::MAX, Some(u64::MAX), u32::MAX),
        ];
        for &(wanted, limit, cap) in cases {
            assert_eq!(cap_within(wanted, limit), cap, "{wanted} within {limit:?}");
        }
    }

    #[test]
    fn failed_accepts_back_off_and_log_once_a_second() {
        let mut backoff = AcceptBackoff::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // (time of the failure, pause, failures logged)
        let cases: &[(Duration, Duration, Option<u64>)] = &[
            (ms(0), ms(10), Some(1)),
            (ms(10), ms(20), None),
            (ms(30), ms(40), None),
            (ms(70), ms(80), None),
            (ms(150), ms(160), None),
            (ms(310), ms(320), None),
            (ms(630), ms(640), None),
            (ms(1_270), ms(1_000), Some(7)),
            (ms(2_270), ms(1_000), Some(1)),
            (ms(3_000), ms(1_000), None),
        ];
        for &(at, delay, log) in cases {
            let pause = backoff.failed(t0 + at);
            assert_eq!(pause, AcceptPause { delay, log }, "at {at:?}");
        }
        backoff.succeeded();
        assert_eq!(backoff.failed(t0 + ms(3_300)).delay, ms(10), "starts again");
    }
}
