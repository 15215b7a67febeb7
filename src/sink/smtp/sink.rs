//! The sink: takes batches, keeps what waits for the background task.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::SmtpMode;
use super::builder::{Settings, SmtpSinkBuilder};
use super::groups::Groups;
use super::memory::SeenFingerprints;
use super::render::GroupKind;
use super::worker;
use crate::Report;
use crate::sink::{ReportBatch, ReportSink, SinkError};

/// Emails CSP reports through an SMTP server: one per report, a digest per window, or an
/// alert per new violation (see [`SmtpMode`]), never more than a set number per hour.
///
/// [`send`](ReportSink::send) only files the reports and returns at once: the emails go out
/// from the sink's own background task, which retries transient failures (server down, 4xx
/// answers) with backoff and gives what it cannot deliver to the
/// [error hook](SmtpSinkBuilder::on_error). A slow or absent mail server therefore never holds
/// up the dispatcher or the other sinks. [`shutdown`](ReportSink::shutdown) sends what is
/// pending, the current digest included.
///
/// Clones share the same state and background task.
#[derive(Clone)]
pub struct SmtpSink {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<worker::Msg>,
    /// The task's end of the channel, until the task is started.
    rx: Mutex<Option<mpsc::UnboundedReceiver<worker::Msg>>>,
}

/// What the sink and its background task share.
pub(super) struct Shared {
    pub(super) settings: Settings,
    pub(super) transport: AsyncSmtpTransport<Tokio1Executor>,
    state: Mutex<State>,
    /// Whether a wake-up message is already on its way, so a burst of batches sends one.
    pub(super) wake_pending: AtomicBool,
    pub(super) counters: MailCounters,
}

/// What became of the emails, for [`SmtpSink::stats`].
#[derive(Debug, Default)]
pub(super) struct MailCounters {
    pub(super) emails_sent: AtomicU64,
    pub(super) reports_mailed: AtomicU64,
    pub(super) emails_failed: AtomicU64,
    pub(super) reports_failed: AtomicU64,
    pub(super) emails_capped: AtomicU64,
    pub(super) reports_capped: AtomicU64,
    reports_dropped: AtomicU64,
}

impl MailCounters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What an [`SmtpSink`] did with the reports it took: the dispatcher's counters
/// ([`SinkStats`](crate::dispatch::SinkStats)) count reports handed to the sink, these count
/// what reached the mail server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpStats {
    /// Emails the mail server accepted.
    pub emails_sent: u64,
    /// Reports in those emails.
    pub reports_mailed: u64,
    /// Emails given up on (refused, or still failing after
    /// [`give_up_after`](SmtpSinkBuilder::give_up_after)); each went to the error hook.
    pub emails_failed: u64,
    /// Reports in those emails.
    pub reports_failed: u64,
    /// Emails the cap on emails per period held back (the next email tells of them).
    pub emails_capped: u64,
    /// Reports in those emails.
    pub reports_capped: u64,
    /// Reports turned away because [`max_pending`](SmtpSinkBuilder::max_pending) were
    /// already waiting.
    pub reports_dropped: u64,
    /// Reports waiting for their email now.
    pub reports_pending: u64,
}

/// What waits to be mailed.
#[derive(Debug)]
struct State {
    /// `per_report`: the reports, oldest first.
    queue: VecDeque<Report>,
    /// `digest` and `new_only`: the reports grouped by fingerprint.
    groups: Groups,
    /// `digest`: when the current window opened (with its first report).
    window_opened: Option<Instant>,
    /// `new_only`: the fingerprints already seen.
    seen: SeenFingerprints,
    /// Reports turned away because too many were waiting.
    dropped: u64,
}

/// One email's worth of reports.
#[derive(Debug)]
pub(super) enum Job {
    Report(Box<Report>),
    Groups(GroupKind, Groups),
}

/// What the background task should do next.
#[derive(Debug)]
pub(super) enum Next {
    Send(Job),
    /// Nothing is due; a digest is due at the given time, if any.
    Wait(Option<Instant>),
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

    pub(super) fn start(settings: Settings, transport: AsyncSmtpTransport<Tokio1Executor>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let memory = match settings.mode {
            SmtpMode::NewOnly { memory } => memory,
            _ => 1,
        };
        let state = State {
            queue: VecDeque::new(),
            groups: Groups::new(settings.max_pending),
            window_opened: None,
            seen: SeenFingerprints::new(memory),
            dropped: 0,
        };
        let sink = Self {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    settings,
                    transport,
                    state: Mutex::new(state),
                    wake_pending: AtomicBool::new(false),
                    counters: MailCounters::default(),
                }),
                tx,
                rx: Mutex::new(Some(rx)),
            }),
        };
        // Outside a runtime, the task starts with the first batch instead.
        let _ = sink.ensure_started();
        sink
    }

    /// What became of the reports so far: emails sent, failed and held back, and the
    /// reports they carried.
    pub fn stats(&self) -> SmtpStats {
        let shared = &self.inner.shared;
        let c = &shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let reports_pending = {
            let state = shared.state();
            state.queue.len() as u64 + state.groups.reports()
        };
        SmtpStats {
            emails_sent: get(&c.emails_sent),
            reports_mailed: get(&c.reports_mailed),
            emails_failed: get(&c.emails_failed),
            reports_failed: get(&c.reports_failed),
            emails_capped: get(&c.emails_capped),
            reports_capped: get(&c.reports_capped),
            reports_dropped: get(&c.reports_dropped),
            reports_pending,
        }
    }

    /// Starts the background task if it is not running yet.
    fn ensure_started(&self) -> Result<(), SinkError> {
        let mut rx = self.inner.rx.lock().unwrap_or_else(PoisonError::into_inner);
        if rx.is_none() {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            SinkError::permanent(format!("the SMTP sink needs a Tokio runtime: {e}"))
        })?;
        if let Some(rx) = rx.take() {
            runtime.spawn(worker::run(Arc::clone(&self.inner.shared), rx));
        }
        Ok(())
    }

    /// Sends what is pending now, the current digest included, and waits until it is
    /// delivered or given up on. The first failure is returned here instead of going to the
    /// error hook (any further ones go to the hook).
    ///
    /// With the server down, this waits as long as the retries last
    /// ([`give_up_after`](SmtpSinkBuilder::give_up_after)); put a timeout around it if that is
    /// too long. The dispatcher waits for [`shutdown`](ReportSink::shutdown) the same way, so
    /// bound [`CspReportHandle::shutdown`](crate::CspReportHandle::shutdown) with a timeout.
    pub async fn flush(&self) -> Result<(), SinkError> {
        self.ensure_started()?;
        let (reply, answer) = oneshot::channel();
        if self.inner.tx.send(worker::Msg::Flush(reply)).is_err() {
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }

    fn wake(&self) {
        if !self.inner.shared.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = self.inner.tx.send(worker::Msg::Wake);
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole, so a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Files the reports of a batch as the mode wants.
    fn accept(&self, batch: &ReportBatch) {
        let max_pending = self.settings.max_pending;
        let mut state = self.state();
        let state = &mut *state;
        match self.settings.mode {
            SmtpMode::PerReport => {
                for report in batch.iter() {
                    if state.queue.len() < max_pending {
                        state.queue.push_back(report.clone());
                    } else {
                        state.dropped += 1;
                        MailCounters::add(&self.counters.reports_dropped, 1);
                    }
                }
            }
            SmtpMode::Digest { .. } => {
                for report in batch.iter() {
                    if state.groups.is_empty() {
                        state.window_opened = Some(Instant::now());
                    }
                    state.groups.add(report);
                }
            }
            SmtpMode::NewOnly { .. } => {
                for report in batch.iter() {
                    if state.groups.contains(report.fingerprint) {
                        state.groups.add(report);
                    } else if state.seen.see(report.fingerprint) {
                        if state.groups.has_room() {
                            state.groups.add(report);
                        } else {
                            state.dropped += 1;
                            MailCounters::add(&self.counters.reports_dropped, 1);
                        }
                    }
                }
            }
        }
    }

    /// The next email to send, if one is due (`flush`: everything pending is due).
    pub(super) fn next(&self, now: Instant, flush: bool) -> Next {
        let mut state = self.state();
        match self.settings.mode {
            SmtpMode::PerReport => match state.queue.pop_front() {
                Some(report) => Next::Send(Job::Report(Box::new(report))),
                None => Next::Wait(None),
            },
            SmtpMode::NewOnly { .. } if !state.groups.is_empty() => {
                Next::Send(Job::Groups(GroupKind::NewViolations, state.groups.take()))
            }
            SmtpMode::Digest { window } if !state.groups.is_empty() => {
                let due = state.window_opened.map_or(now, |opened| opened + window);
                if flush || now >= due {
                    state.window_opened = None;
                    Next::Send(Job::Groups(GroupKind::Digest, state.groups.take()))
                } else {
                    Next::Wait(Some(due))
                }
            }
            _ => Next::Wait(None),
        }
    }

    /// How many reports are waiting (for bounding a flush).
    pub(super) fn pending_jobs(&self) -> usize {
        let state = self.state();
        state.queue.len() + usize::from(!state.groups.is_empty())
    }

    /// The count of reports turned away since the last call.
    pub(super) fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.state().dropped)
    }
}

impl Job {
    pub(super) fn reports(&self) -> u64 {
        match self {
            Self::Report(_) => 1,
            Self::Groups(_, groups) => groups.reports(),
        }
    }
}

#[async_trait]
impl ReportSink for SmtpSink {
    fn name(&self) -> &str {
        "smtp"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        self.ensure_started()?;
        self.inner.shared.accept(batch);
        self.wake();
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), SinkError> {
        self.flush().await
    }
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink")
            .field("settings", &self.inner.shared.settings)
            .finish_non_exhaustive()
    }
}
