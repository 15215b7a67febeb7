//! The background task that sends the emails, with the hourly cap, retries and backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lettre::message::MultiPart;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::{AsyncTransport, Message};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::error::{DeliveryError, is_permanent};
use super::limit::{MailLimit, Untold};
use super::render::{Email, GroupKind, render_groups, render_report};
use super::sink::{Job, MailCounters, Next, Shared};
use crate::SinkError;

/// What the sink tells its task.
#[derive(Debug)]
pub(super) enum Msg {
    /// Reports were filed.
    Wake,
    /// Send everything pending now and answer.
    Flush(oneshot::Sender<Result<(), SinkError>>),
}

struct Worker {
    shared: Arc<Shared>,
    limit: MailLimit,
    untold: Untold,
}

/// Runs until every handle on the sink is dropped, then sends what is pending and stops.
pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let settings = &shared.settings;
    let limit = MailLimit::new(settings.max_mails, settings.per);
    let mut worker = Worker {
        shared: Arc::clone(&shared),
        limit,
        untold: Untold::default(),
    };
    loop {
        let due = match shared.next(Instant::now(), false) {
            Next::Send(job) => {
                if let Err(error) = worker.deliver(job).await {
                    (shared.settings.on_error)(&error);
                }
                continue;
            }
            Next::Wait(due) => due,
        };
        let msg = match due {
            Some(due) => tokio::select! {
                msg = rx.recv() => msg,
                () = tokio::time::sleep_until(due) => continue,
            },
            None => rx.recv().await,
        };
        match msg {
            Some(Msg::Wake) => shared.wake_pending.store(false, Ordering::SeqCst),
            Some(Msg::Flush(reply)) => {
                let _ = reply.send(worker.flush().await);
            }
            None => {
                if let Err(error) = worker.flush().await {
                    (shared.settings.on_error)(&error);
                }
                return;
            }
        }
    }
}

impl Worker {
    /// Sends everything pending; returns the first failure.
    async fn flush(&mut self) -> Result<(), SinkError> {
        let mut result = Ok(());
        // Bounded, so reports that keep arriving cannot make a flush endless.
        for _ in 0..=self.shared.pending_jobs() {
            let Next::Send(job) = self.shared.next(Instant::now(), true) else {
                break;
            };
            if let Err(error) = self.deliver(job).await {
                if result.is_ok() {
                    result = Err(error);
                } else {
                    (self.shared.settings.on_error)(&error);
                }
            }
        }
        result
    }

    /// Sends one email, unless the cap holds it back.
    async fn deliver(&mut self, job: Job) -> Result<(), SinkError> {
        let reports = job.reports();
        let counters = &self.shared.counters;
        if !self.limit.try_take(Instant::now()) {
            self.untold.capped_mails += 1;
            self.untold.capped_reports += reports;
            MailCounters::add(&counters.emails_capped, 1);
            MailCounters::add(&counters.reports_capped, reports);
            return Ok(());
        }
        self.untold.dropped_reports += self.shared.take_dropped();
        let told = self.untold;
        let notices = notices(&told, &self.limit);
        let prefix = &self.shared.settings.subject_prefix;
        let (email, what) = match &job {
            Job::Report(report) => (
                render_report(prefix, report, &notices),
                "email about 1 report".to_owned(),
            ),
            Job::Groups(kind, groups) => {
                let what = match kind {
                    GroupKind::Digest => {
                        format!("digest of {}", count(reports, "report", "reports"))
                    }
                    GroupKind::NewViolations => format!(
                        "alert on new violations ({})",
                        count(reports, "report", "reports")
                    ),
                };
                (render_groups(*kind, prefix, groups, &notices), what)
            }
        };
        let sent = match self.message(email) {
            Ok(message) => self.send(message, what).await,
            Err(e) => Err(SinkError::permanent(DeliveryError::message(what, e))),
        };
        let counters = &self.shared.counters;
        if let Err(error) = sent {
            MailCounters::add(&counters.emails_failed, 1);
            MailCounters::add(&counters.reports_failed, reports);
            return Err(error);
        }
        MailCounters::add(&counters.emails_sent, 1);
        MailCounters::add(&counters.reports_mailed, reports);
        self.untold.forget(&told);
        Ok(())
    }

    fn message(&self, email: Email) -> Result<Message, lettre::error::Error> {
        let settings = &self.shared.settings;
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

    /// Offers the message until it is accepted, refused for good, or `give_up_after` passes.
    async fn send(&self, message: Message, what: String) -> Result<(), SinkError> {
        let settings = &self.shared.settings;
        let started = Instant::now();
        let mut delay = settings.retry_first;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self.shared.transport.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if is_permanent(&error) {
                return Err(SinkError::permanent(DeliveryError::smtp(
                    what, attempts, error,
                )));
            }
            if started.elapsed() + delay > settings.give_up_after {
                return Err(SinkError::transient(DeliveryError::smtp(
                    what, attempts, error,
                )));
            }
            tracing::debug!(
                target: "tower_csp_reports::smtp",
                %error,
                attempts,
                retry_in = ?delay,
                "mail server unavailable, will retry"
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(settings.retry_max);
        }
    }
}

/// What the next email must say about the emails and reports that did not go out.
fn notices(untold: &Untold, limit: &MailLimit) -> Vec<String> {
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
    } else if secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else if secs % 60 == 0 {
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
        let limit = MailLimit::new(20, Duration::from_secs(3600));
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
