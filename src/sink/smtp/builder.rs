//! Configuring an [`SmtpSink`]: server, addresses, mode and limits.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::SmtpMode;
use super::sink::SmtpSink;
use super::text;
use crate::ConfigError;
use crate::error::{check_limit, check_nonzero};

/// Builds an [`SmtpSink`]; made by [`SmtpSink::builder`] or [`SmtpSink::with_transport`].
///
/// Every setting is checked by [`build`](Self::build), which returns a [`ConfigError`]
/// for a bad URL or address: nothing is found wrong later, when reports arrive.
#[must_use]
pub struct SmtpSinkBuilder {
    server: Server,
    from: Option<String>,
    to: Vec<String>,
    subject_prefix: String,
    mode: SmtpMode,
    max_mails: u32,
    per: Duration,
    max_pending: usize,
    timeout: Duration,
}

enum Server {
    Url(String),
    Transport(AsyncSmtpTransport<Tokio1Executor>),
}

/// The settings a built sink works with.
pub(super) struct MailSettings {
    pub(super) from: Mailbox,
    pub(super) to: Vec<Mailbox>,
    pub(super) subject_prefix: String,
    pub(super) mode: SmtpMode,
    pub(super) max_mails: u32,
    pub(super) per: Duration,
    pub(super) max_pending: usize,
}

const MAX_PENDING_LIMIT: u64 = 1_000_000;
const MAX_MAILS_LIMIT: u64 = 100_000;
const MEMORY_LIMIT: u64 = 10_000_000;

impl SmtpSinkBuilder {
    pub(super) fn url(url: String) -> Self {
        Self::with(Server::Url(url))
    }

    pub(super) fn transport(transport: AsyncSmtpTransport<Tokio1Executor>) -> Self {
        Self::with(Server::Transport(transport))
    }

    fn with(server: Server) -> Self {
        Self {
            server,
            from: None,
            to: Vec::new(),
            subject_prefix: "[CSP]".to_owned(),
            mode: SmtpMode::DEFAULT,
            max_mails: 20,
            per: Duration::from_secs(3600),
            max_pending: 10_000,
            timeout: Duration::from_secs(30),
        }
    }

    /// The sender, as `reports@example.com` or `CSP reports <reports@example.com>`. Required.
    pub fn from(mut self, mailbox: impl Into<String>) -> Self {
        self.from = Some(mailbox.into());
        self
    }

    /// Adds a recipient (call it once per recipient; at least one is required).
    pub fn to(mut self, mailbox: impl Into<String>) -> Self {
        self.to.push(mailbox.into());
        self
    }

    /// The text every subject starts with (default `[CSP]`), so mail filters can sort
    /// the emails. It is made one line and cut to 40 characters.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// When to send (default: a digest every five minutes at most).
    pub fn mode(mut self, mode: SmtpMode) -> Self {
        self.mode = mode;
        self
    }

    /// The most emails sent in any hour, whatever the mode (default 20). What the cap holds
    /// back is counted and told in the next email that goes out.
    pub fn max_per_hour(self, max: u32) -> Self {
        self.max_mails(max, Duration::from_secs(3600))
    }

    /// The most emails sent in any sliding `period`: [`max_per_hour`](Self::max_per_hour)
    /// with a period of your choice.
    pub fn max_mails(mut self, max: u32, period: Duration) -> Self {
        self.max_mails = max;
        self.per = period;
        self
    }

    /// How many reports may wait to be mailed (default 10,000): a digest's window, or
    /// emails waiting for the server. What comes beyond is counted, not kept, and told in
    /// the next email.
    pub fn max_pending(mut self, max: usize) -> Self {
        self.max_pending = max;
        self
    }

    /// The time limit of one SMTP exchange (default 30 s). Ignored with
    /// [`SmtpSink::with_transport`], whose transport has its own.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the settings and builds the sink.
    ///
    /// How the layer feeds it (the window as the batch's linger, retries and backoff) is in
    /// its [`default_options`](crate::ReportSink::default_options); add it with
    /// [`sink_with`](crate::CspReportLayerBuilder::sink_with) and those options changed to
    /// retry differently.
    pub fn build(self) -> Result<SmtpSink, ConfigError> {
        let from = self.from.as_deref().ok_or_else(|| ConfigError::Invalid {
            setting: "smtp sender",
            reason: "a sender address is required".to_owned(),
        })?;
        let from = mailbox("smtp sender", from)?;
        if self.to.is_empty() {
            return Err(ConfigError::Invalid {
                setting: "smtp recipients",
                reason: "at least one recipient is required".to_owned(),
            });
        }
        let to = self
            .to
            .iter()
            .map(|to| mailbox("smtp recipient", to))
            .collect::<Result<Vec<_>, _>>()?;
        check_limit("smtp max_mails", u64::from(self.max_mails), MAX_MAILS_LIMIT)?;
        check_limit(
            "smtp max_pending",
            self.max_pending as u64,
            MAX_PENDING_LIMIT,
        )?;
        match self.mode {
            SmtpMode::Digest { window } => check_nonzero("smtp digest window", window)?,
            SmtpMode::NewOnly { memory } => {
                check_limit("smtp new_only memory", memory as u64, MEMORY_LIMIT)?;
            }
            SmtpMode::PerReport | SmtpMode::StoreAlerts { .. } => {}
        }
        check_nonzero("smtp max_mails period", self.per)?;
        let transport = match self.server {
            Server::Transport(transport) => transport,
            Server::Url(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                .map_err(|e| ConfigError::Invalid {
                    setting: "smtp url",
                    // Never the URL itself: it may hold a password.
                    reason: format!(
                        "{e} (expected smtp://, smtp://...?tls=required or smtps://, with user:password@ percent-encoded)"
                    ),
                })?
                .timeout(Some(self.timeout))
                .build(),
        };
        let settings = MailSettings {
            from,
            to,
            subject_prefix: text::one_line(&self.subject_prefix, 40),
            mode: self.mode,
            max_mails: self.max_mails,
            per: self.per,
            max_pending: self.max_pending,
        };
        Ok(SmtpSink::new(settings, transport))
    }
}

fn mailbox(setting: &'static str, text: &str) -> Result<Mailbox, ConfigError> {
    text.parse().map_err(|e| ConfigError::Invalid {
        setting,
        reason: format!("{text:?} is not an email address: {e}"),
    })
}

impl fmt::Debug for SmtpSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The server URL is left out: it may hold a password.
        f.debug_struct("SmtpSinkBuilder")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("subject_prefix", &self.subject_prefix)
            .field("mode", &self.mode)
            .field("max_mails", &self.max_mails)
            .field("per", &self.per)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("subject_prefix", &self.subject_prefix)
            .field("mode", &self.mode)
            .field("max_mails", &self.max_mails)
            .field("per", &self.per)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SmtpSinkBuilder {
        SmtpSink::builder("smtp://127.0.0.1:2525")
            .from("CSP <csp@example.com>")
            .to("ops@example.com")
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let cases: Vec<(SmtpSinkBuilder, &str)> = vec![
            (
                SmtpSink::builder("smtp://127.0.0.1").to("a@example.com"),
                "smtp sender",
            ),
            (
                SmtpSink::builder("smtp://127.0.0.1").from("a@example.com"),
                "smtp recipients",
            ),
            (base().from("not an address"), "smtp sender"),
            (
                base().to("a@example.com\r\nBcc: x@evil.example"),
                "smtp recipient",
            ),
            (base().max_per_hour(0), "smtp max_mails"),
            (base().max_pending(0), "smtp max_pending"),
            (
                base().mode(SmtpMode::digest(Duration::ZERO)),
                "smtp digest window",
            ),
            (base().mode(SmtpMode::new_only(0)), "smtp new_only memory"),
            (base().max_mails(5, Duration::ZERO), "smtp max_mails period"),
        ];
        for (builder, expected) in cases {
            let described = format!("{builder:?}");
            match builder.build() {
                Err(
                    ConfigError::Invalid { setting, .. }
                    | ConfigError::InvalidLimit { setting, .. },
                ) => {
                    assert_eq!(setting, expected, "{described}");
                }
                other => panic!("{described}: expected an error on {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_urls_are_config_errors_that_hide_the_password() {
        for url in [
            "http://example.com",
            "smtp://",
            "not a url",
            "smtp://u:secret@host?tls=sometimes",
        ] {
            let builder = SmtpSink::builder(url)
                .from("a@example.com")
                .to("b@example.com");
            match builder.build() {
                Err(ConfigError::Invalid { setting, reason }) => {
                    assert_eq!(setting, "smtp url");
                    assert!(!reason.contains("secret"), "{reason}");
                }
                other => panic!("{url}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn good_urls_build() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:p%40ss@mail.example.com:587?tls=required",
            "smtp://mail.example.com?tls=opportunistic",
            "smtps://user:pass@mail.example.com",
        ] {
            let builder = SmtpSink::builder(url)
                .from("a@example.com")
                .to("b@example.com");
            assert!(builder.build().is_ok(), "{url}");
        }
    }

    #[test]
    fn debug_output_hides_the_url() {
        let builder = SmtpSink::builder("smtp://u:secret@host").from("a@example.com");
        assert!(!format!("{builder:?}").contains("secret"));
    }
}
