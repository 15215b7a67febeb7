//! The sink: turns each batch the dispatcher hands it into the emails its mode asks for.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::MultiPart;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::time::Instant;

use super::SmtpMode;
use super::alerts::{render_digest, render_violations};
use super::builder::{MailSettings, SmtpSinkBuilder};
use super::error::{DeliveryError, is_permanent};
use super::groups::Groups;
use super::memory::SeenFingerprints;
use super::render::{Email, GroupKind, render_groups, render_report};
use crate::alert::{Alert, told_reports};
use crate::dispatch::Feed;
use crate::metrics::{self as m, Count};
use crate::sink::limit::{SendLimit, Untold};
use crate::sink::{ReportBatch, ReportSink, SinkError};
use crate::store::ViolationEvent;
use crate::{Fingerprint, SinkOptions};

/// Emails CSP reports through an SMTP server: one per report, a digest per window, or an
/// alert per new violation (see [`SmtpMode`]), never more than a set number per hour.
///
/// It rides on the layer's dispatcher like every sink: the dispatcher gathers a digest's
/// window as one batch ([`default_options`](ReportSink::default_options) sets the batch's
/// linger to the window), retries an email the server could not take now (a `4xx` answer, a
/// refused connection) with backoff, tells the layer's error hook of every failure and
/// counts it in [`CspReportHandle::stats`](crate::CspReportHandle::stats). A slow or absent
/// mail server therefore never holds up the answer or the other sinks.
///
/// Clones share the same state: the cap, the memory of violations already mailed, the
/// counters.
#[derive(Clone)]
pub struct SmtpSink {
    inner: Arc<MailSink>,
}

struct MailSink {
    settings: MailSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    state: Mutex<MailState>,
    counters: MailCounters,
}

/// What the sink remembers between batches.
#[derive(Debug)]
struct MailState {
    limit: SendLimit,
    untold: Untold,
    /// `new_only`: the fingerprints already mailed.
    seen: SeenFingerprints,
}

/// Told to the `metrics` facade too, with the feature of that name.
#[derive(Debug)]
struct MailCounters {
    emails_sent: Count,
    reports_mailed: Count,
    emails_capped: Count,
    reports_capped: Count,
}

impl MailCounters {
    fn new() -> Self {
        let count = |name, help| Count::new((name, help), None);
        Self {
            emails_sent: count(
                m::SMTP_EMAILS_SENT,
                "The number of emails the mail server accepted.",
            ),
            reports_mailed: count(
                m::SMTP_REPORTS_MAILED,
                "The number of reports in those emails.",
            ),
            emails_capped: count(
                m::SMTP_EMAILS_CAPPED,
                "The number of emails held back by the cap per hour.",
            ),
            reports_capped: count(
                m::SMTP_REPORTS_CAPPED,
                "The number of reports in the emails held back by the cap.",
            ),
        }
    }
}

/// What reached the mail server. Failures are the dispatcher's to count, with every other
/// sink's ([`SinkStats`](crate::dispatch::SinkStats)): these say what the emails carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpStats {
    /// Emails the mail server accepted.
    pub emails_sent: u64,
    /// Reports in those emails.
    pub reports_mailed: u64,
    /// Emails the cap on emails per period held back (the next email tells of them).
    pub emails_capped: u64,
    /// Reports in those emails.
    pub reports_capped: u64,
}

impl SmtpSink {
    /// Starts configuring a sink that talks to the server at `url`:
    ///
    /// | URL | connection |
    /// | --- | --- |
    /// | `smtps://user:pass@host` | TLS from the start (port 465 by default) |
    /// | `smtp://user:pass@host?tls=required` | STARTTLS, refusing a server without it (port 587) |
    /// | `smtp://host:2525` | plain text, for a local relay or tests (port 25) |
    ///
    /// `smtp://...?tls=opportunistic` uses STARTTLS when the server offers it. Credentials are
    /// optional and percent-encoded (`p%40ss` for `p@ss`); a path sets the name given in
    /// `EHLO`. The URL is checked by [`build`](SmtpSinkBuilder::build).
    pub fn builder(url: impl Into<String>) -> SmtpSinkBuilder {
        SmtpSinkBuilder::url(url.into())
    }

    /// Starts configuring a sink that sends through a transport you built yourself (your own
    /// TLS settings, authentication mechanisms or pool).
    pub fn with_transport(transport: AsyncSmtpTransport<Tokio1Executor>) -> SmtpSinkBuilder {
        SmtpSinkBuilder::transport(transport)
    }

    pub(super) fn new(
        settings: MailSettings,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    ) -> Self {
        let memory = match settings.mode {
            SmtpMode::NewOnly { memory } => memory,
            _ => 1,
        };
        let state = MailState {
            limit: SendLimit::new(settings.max_mails, settings.per),
            untold: Untold::default(),
            seen: SeenFingerprints::new(memory),
        };
        Self {
            inner: Arc::new(MailSink {
                settings,
                transport,
                state: Mutex::new(state),
                counters: MailCounters::new(),
            }),
        }
    }

    /// What the emails sent so far carried, and what the cap held back.
    pub fn stats(&self) -> SmtpStats {
        let c = &self.inner.counters;
        SmtpStats {
            emails_sent: c.emails_sent.get(),
            reports_mailed: c.reports_mailed.get(),
            emails_capped: c.emails_capped.get(),
            reports_capped: c.reports_capped.get(),
        }
    }
}

impl MailSink {
    fn state(&self) -> MutexGuard<'_, MailState> {
        // Every update leaves the state whole, so a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one email about `reports` reports, unless the cap holds it back. `render` is
    /// given the notices the email must carry (what was held back or dropped before it).
    async fn mail(
        &self,
        reports: u64,
        what: String,
        render: impl FnOnce(&[String]) -> Email,
    ) -> Result<(), SinkError> {
        let (told, email) = {
            let mut state = self.state();
            if !state.limit.try_take(Instant::now()) {
                state.untold.capped_mails += 1;
                state.untold.capped_reports += reports;
                add(&self.counters.emails_capped, 1);
                add(&self.counters.reports_capped, reports);
                return Ok(());
            }
            let told = state.untold;
            (told, render(&notices(&told, &state.limit)))
        };
        let message = self
            .message(email)
            .map_err(|e| SinkError::permanent(DeliveryError::message(what.clone(), e)))?;
        if let Err(error) = self.transmit(message).await {
            // The email did not go out: its place under the cap is free again.
            self.state().limit.give_back();
            let permanent = is_permanent(&error);
            let error = DeliveryError::smtp(what, error);
            return Err(if permanent {
                SinkError::permanent(error)
            } else {
                SinkError::transient(error)
            });
        }
        self.state().untold.forget(&told);
        add(&self.counters.emails_sent, 1);
        add(&self.counters.reports_mailed, reports);
        Ok(())
    }

    async fn transmit(&self, message: Message) -> Result<(), lettre::transport::smtp::Error> {
        self.transport.send(message).await.map(drop)
    }

    fn message(&self, email: Email) -> Result<Message, lettre::error::Error> {
        let settings = &self.settings;
        let mut builder = Message::builder()
            .from(settings.from.clone())
            .subject(email.subject)
            .message_id(None)
            .header(AutoSubmitted);
        for to in &settings.to {
            builder = builder.to(to.clone());
        }
        builder.multipart(MultiPart::alternative_plain_html(email.text, email.html))
    }

    /// `new_only`: the reports of violations not mailed yet, grouped. Violations already
    /// known are seen again, so a steady one stays known.
    fn new_violations(&self, batch: &ReportBatch) -> Groups {
        let mut state = self.state();
        let mut groups = Groups::default();
        for report in batch.iter() {
            if state.seen.contains(report.fingerprint) {
                state.seen.see(report.fingerprint);
            } else {
                groups.add(report);
            }
        }
        groups
    }

    /// `new_only`: remembers the violations just mailed.
    fn mailed(&self, fingerprints: impl IntoIterator<Item = Fingerprint>) {
        let mut state = self.state();
        for fingerprint in fingerprints {
            state.seen.see(fingerprint);
        }
    }
}

fn add(counter: &Count, n: u64) {
    counter.add(usize::try_from(n).unwrap_or(usize::MAX));
}

#[async_trait]
impl ReportSink for SmtpSink {
    fn name(&self) -> &str {
        "smtp"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        let sink = &self.inner;
        let prefix = &sink.settings.subject_prefix;
        if batch.dropped() > 0 {
            sink.state().untold.dropped_reports += batch.dropped();
        }
        match sink.settings.mode {
            SmtpMode::PerReport => {
                for report in batch.iter() {
                    sink.mail(1, "email about 1 report".to_owned(), |notices| {
                        render_report(prefix, report, notices)
                    })
                    .await?;
                }
            }
            SmtpMode::Digest { .. } => {
                if batch.is_empty() {
                    return Ok(());
                }
                let mut groups = Groups::default();
                for report in batch.iter() {
                    groups.add(report);
                }
                let reports = groups.reports();
                let what = format!("digest of {}", count(reports, "report", "reports"));
                sink.mail(reports, what, |notices| {
                    render_groups(GroupKind::Digest, prefix, &groups, notices)
                })
                .await?;
            }
            SmtpMode::StoreAlerts {
                violations,
                digests,
            } => {
                let events: Vec<&ViolationEvent> = batch
                    .alerts()
                    .filter_map(Alert::violation)
                    .filter(|_| violations)
                    .collect();
                if !events.is_empty() {
                    let reports = events.len() as u64;
                    let what = format!("alert on {}", count(reports, "violation", "violations"));
                    sink.mail(reports, what, |notices| {
                        render_violations(prefix, &events, notices)
                    })
                    .await?;
                }
                for digest in batch.alerts().filter_map(Alert::digest).filter(|_| digests) {
                    let reports = told_reports(digest);
                    let what = format!("digest of {}", count(reports, "report", "reports"));
                    sink.mail(reports, what, |notices| {
                        render_digest(prefix, digest, notices)
                    })
                    .await?;
                }
            }
            SmtpMode::NewOnly { .. } => {
                let groups = sink.new_violations(batch);
                if groups.is_empty() {
                    return Ok(());
                }
                let reports = groups.reports();
                let what = format!(
                    "alert on new violations ({})",
                    count(reports, "report", "reports")
                );
                sink.mail(reports, what, |notices| {
                    render_groups(GroupKind::NewViolations, prefix, &groups, notices)
                })
                .await?;
                sink.mailed(groups.fingerprints());
            }
        }
        Ok(())
    }

    /// One report per call in `per_report` mode; a whole window per call, gathered by the
    /// dispatcher, in `digest` mode; bursts of a second in `new_only` mode, and of the
    /// store's alerts in `store_alerts` mode (fed alerts, not reports). An email the
    /// server could not take is offered again for about a quarter of an hour (1 s to 60 s
    /// apart).
    fn default_options(&self) -> SinkOptions {
        let settings = &self.inner.settings;
        let options = SinkOptions::default()
            .queue_capacity(settings.max_pending)
            .timeout(Duration::from_secs(120))
            .retries(20)
            .backoff(Duration::from_secs(1), Duration::from_secs(60));
        match settings.mode {
            SmtpMode::PerReport => options.batch_size(1).linger(Duration::ZERO),
            SmtpMode::Digest { window } => options.batch_size(settings.max_pending).linger(window),
            SmtpMode::NewOnly { .. } => options
                .batch_size(settings.max_pending)
                .linger(Duration::from_secs(1)),
            SmtpMode::StoreAlerts { .. } => options
                .feed(Feed::Alerts)
                .batch_size(settings.max_pending)
                .linger(Duration::from_secs(1)),
        }
    }
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// What the next email must say about the emails and reports that did not go out.
fn notices(untold: &Untold, limit: &SendLimit) -> Vec<String> {
    let mut notices = Vec::new();
    if untold.capped_mails > 0 {
        notices.push(format!(
            "{} about {} {} not sent: at most {} {} go out {}.",
            count(untold.capped_mails, "email", "emails"),
            count(untold.capped_reports, "report", "reports"),
            if untold.capped_mails == 1 {
                "was"
            } else {
                "were"
            },
            limit.max(),
            if limit.max() == 1 { "email" } else { "emails" },
            per(limit.period()),
        ));
    }
    if untold.dropped_reports > 0 {
        notices.push(format!(
            "{} left out because too many were waiting to be mailed.",
            if untold.dropped_reports == 1 {
                "1 report was".to_owned()
            } else {
                format!("{} reports were", untold.dropped_reports)
            }
        ));
    }
    notices
}

fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn per(period: Duration) -> String {
    let secs = period.as_secs();
    let (n, unit) = if period.subsec_nanos() != 0 {
        return format!("per {} ms", period.as_millis());
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("per {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834), so vacation responders do not answer.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_what_was_held_back() {
        let limit = SendLimit::new(20, Duration::from_secs(3600));
        let untold = Untold {
            capped_mails: 3,
            capped_reports: 7,
            dropped_reports: 1,
        };
        assert_eq!(
            notices(&untold, &limit),
            [
                "3 emails about 7 reports were not sent: at most 20 emails go out per hour.",
                "1 report was left out because too many were waiting to be mailed.",
            ]
        );
        assert!(notices(&Untold::default(), &limit).is_empty());
    }

    #[test]
    fn periods_read_naturally() {
        let cases = [
            (Duration::from_secs(3600), "per hour"),
            (Duration::from_secs(7200), "every 2 hours"),
            (Duration::from_secs(60), "per minute"),
            (Duration::from_secs(90), "every 90 seconds"),
            (Duration::from_millis(1500), "per 1500 ms"),
        ];
        for (period, expected) in cases {
            assert_eq!(per(period), expected);
        }
    }
}
