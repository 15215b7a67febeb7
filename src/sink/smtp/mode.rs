//! When the sink sends an email.

use std::time::Duration;

/// When [`SmtpSink`](super::SmtpSink) sends an email. Whatever the mode, the cap on emails per
/// hour applies on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpMode {
    /// One email per report, with the user agent and the report as pretty JSON. Fine for a
    /// quiet site; on a busy one, prefer a digest.
    PerReport,
    /// At most one email per `window`: the window opens with the first report after the last
    /// digest, and its reports are grouped by fingerprint with counts, first and last time seen
    /// and one example each. No reports, no email.
    Digest {
        /// How long reports are gathered before the digest goes out.
        window: Duration,
    },
    /// An email only when a violation (a fingerprint) not seen before appears, so a steady,
    /// known violation stops mailing. The sink remembers the `memory` most recently seen
    /// fingerprints; one forgotten and seen again counts as new.
    NewOnly {
        /// How many fingerprints to remember.
        memory: usize,
    },
    /// Mails the alerts a store decided ([`Alert`](crate::alert::Alert)s, which an
    /// [`AlertFeed`](crate::alert::AlertFeed) announces): one email for the new and
    /// regressed violations that came together, and one per digest. With several collectors
    /// on one database each is mailed by one of them, and a digest counts the reports of
    /// all of them. The sink is fed alerts, not reports
    /// ([`Feed::Alerts`](crate::dispatch::Feed::Alerts)).
    StoreAlerts {
        /// Whether new and regressed violations are mailed.
        violations: bool,
        /// Whether digests are mailed.
        digests: bool,
    },
}

impl SmtpMode {
    /// A digest every five minutes at most: the default.
    pub const DEFAULT: Self = Self::Digest {
        window: Duration::from_secs(5 * 60),
    };

    /// A digest every `window` at most.
    pub const fn digest(window: Duration) -> Self {
        Self::Digest { window }
    }

    /// The store's alerts: new and regressed violations, and digests.
    pub const fn store_alerts() -> Self {
        Self::StoreAlerts {
            violations: true,
            digests: true,
        }
    }

    /// The store's alerts on new and regressed violations only.
    pub const fn store_violations() -> Self {
        Self::StoreAlerts {
            violations: true,
            digests: false,
        }
    }

    /// The store's digests only.
    pub const fn store_digests() -> Self {
        Self::StoreAlerts {
            violations: false,
            digests: true,
        }
    }

    /// Alerts on new violations, remembering up to `memory` fingerprints.
    pub const fn new_only(memory: usize) -> Self {
        Self::NewOnly { memory }
    }
}

impl Default for SmtpMode {
    fn default() -> Self {
        Self::DEFAULT
    }
}
