//! The JetStream stream reports go to: its name, subjects and limits, and setting it up.

use std::borrow::Cow;
use std::time::Duration;

use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, ErrorCode};

use super::error::{NatsError, NatsErrorKind};
use crate::ConfigError;

/// The longest subject token a report type becomes; longer types are cut.
const MAX_TOKEN: usize = 64;

/// The stream that collectors publish to and consumers read from.
///
/// Both [`NatsSink`](super::NatsSink) and [`NatsConsumer`](super::NatsConsumer) create it
/// when it is missing, with these settings; a stream that exists keeps its own limits (a
/// warning says which differ), but it must take the subjects `<subject_prefix>.>`. Give
/// collectors and consumers the same settings.
///
/// Every setting is checked by the `build()` of the sink or consumer it is given to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct StreamSettings {
    name: String,
    subject_prefix: String,
    max_age: Duration,
    max_bytes: u64,
    duplicate_window: Duration,
    replicas: usize,
    storage: StorageType,
    retention: RetentionPolicy,
    discard: DiscardPolicy,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "CSP_REPORTS".to_owned(),
            subject_prefix: "csp.reports".to_owned(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 1 << 30,
            duplicate_window: Duration::from_secs(10 * 60),
            replicas: 1,
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
        }
    }
}

impl StreamSettings {
    /// The defaults: stream `CSP_REPORTS` on subjects `csp.reports.>`, file storage, one
    /// replica, reports kept 7 days and at most 1 GiB, a 10-minute duplicate window, and new
    /// reports refused (rather than old ones dropped) when it is full.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stream's name (default `CSP_REPORTS`): letters, digits, `-` and `_`, at most 64.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The subjects reports are published on (default `csp.reports`): a report of type `t`
    /// goes to `<prefix>.<t>`, the type made into a safe subject token (see
    /// [`subject_for`](Self::subject_for)).
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// How long the stream keeps a report, read or not (default 7 days). Keep it longer than
    /// the longest outage of the store you want to ride out.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The most bytes the stream holds (default 1 GiB, about a million reports). The server
    /// must have that much storage to give, or it refuses to create the stream.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// How long the server remembers a report's id to drop a second publish of it (default
    /// 10 minutes). Keep it longer than the dispatcher takes to give up on a batch (its
    /// timeouts and backoffs added up), so that every retried publish is recognised.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// How many servers of a cluster keep a copy of each report (default 1; 3 in
    /// production, so that an acknowledged report survives the loss of a server).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// File (the default) or memory storage.
    pub fn storage(mut self, storage: StorageType) -> Self {
        self.storage = storage;
        self
    }

    /// When reports leave the stream besides their age and the size limit (default
    /// [`Limits`](RetentionPolicy::Limits): only then, so the stream can be read again).
    /// [`WorkQueue`](RetentionPolicy::WorkQueue) removes each report once a consumer acked it.
    pub fn retention(mut self, retention: RetentionPolicy) -> Self {
        self.retention = retention;
        self
    }

    /// What a full stream does (default [`New`](DiscardPolicy::New): it refuses new reports,
    /// and the collectors' publishes fail and are retried, visibly; with
    /// [`Old`](DiscardPolicy::Old) it drops its oldest reports, read or not, silently).
    pub fn discard(mut self, discard: DiscardPolicy) -> Self {
        self.discard = discard;
        self
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.name
    }

    /// The subject filter that covers every report: `<prefix>.>`.
    pub fn subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// The subject a report of this type is published on: `<prefix>.<token>`, where the
    /// token is the type in lower case with every character other than an ASCII letter, a
    /// digit, `-` or `_` replaced by `_`, cut to 64 characters (`_` for an empty type). So a
    /// hostile type cannot add subject levels or wildcards; the message keeps the real type.
    ///
    /// ```
    /// use tower_csp_reports::nats::StreamSettings;
    ///
    /// let stream = StreamSettings::new();
    /// assert_eq!(stream.subject_for("csp-violation"), "csp.reports.csp-violation");
    /// assert_eq!(stream.subject_for("a.b.*.>"), "csp.reports.a_b____");
    /// ```
    pub fn subject_for(&self, report_type: &str) -> String {
        format!("{}.{}", self.subject_prefix, subject_token(report_type))
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !is_name(&self.name) {
            return Err(invalid(
                "nats stream name",
                format!("{:?}: use 1 to 64 letters, digits, '-' or '_'", self.name),
            ));
        }
        let prefix_ok =
            self.subject_prefix.len() <= 128 && self.subject_prefix.split('.').all(is_name);
        if !prefix_ok {
            return Err(invalid(
                "nats subject prefix",
                format!(
                    "{:?}: use dot-separated tokens of letters, digits, '-' or '_', at most 128 bytes, no wildcards",
                    self.subject_prefix
                ),
            ));
        }
        if self.max_age.is_zero() {
            return Err(invalid(
                "nats max_age",
                "must be longer than zero".to_owned(),
            ));
        }
        if self.duplicate_window.is_zero() || self.duplicate_window > self.max_age {
            return Err(invalid(
                "nats duplicate_window",
                format!(
                    "must be longer than zero and at most max_age ({:?}), not {:?}",
                    self.max_age, self.duplicate_window
                ),
            ));
        }
        if !(1 << 20..=i64::MAX as u64).contains(&self.max_bytes) {
            return Err(ConfigError::InvalidLimit {
                setting: "nats max_bytes",
                value: self.max_bytes,
                max: i64::MAX as u64,
            });
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::InvalidLimit {
                setting: "nats replicas",
                value: self.replicas as u64,
                max: 5,
            });
        }
        Ok(())
    }

    fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: vec![self.subjects()],
            max_age: self.max_age,
            max_bytes: i64::try_from(self.max_bytes).unwrap_or(i64::MAX),
            duplicate_window: self.duplicate_window,
            num_replicas: self.replicas,
            storage: self.storage,
            retention: self.retention,
            discard: self.discard,
            description: Some("CSP violation reports (tower-csp-reports)".to_owned()),
            ..Default::default()
        }
    }

    /// Gets the stream, creating it when it is missing; checks that it takes our subjects.
    pub(crate) async fn ensure(
        &self,
        js: &jetstream::Context,
    ) -> Result<jetstream::stream::Stream, NatsError> {
        let wanted = self.config();
        let stream = match js.get_or_create_stream(wanted.clone()).await {
            Ok(stream) => stream,
            // Another process created it at the same time, with other settings.
            Err(error)
                if jetstream_answer(&error)
                    .is_some_and(|e| e.error_code() == ErrorCode::STREAM_NAME_EXIST) =>
            {
                js.get_stream(&self.name).await.map_err(|error| {
                    let answer = match error.kind() {
                        jetstream::context::GetStreamErrorKind::JetStream(e) => Some(e),
                        _ => None,
                    };
                    NatsError::jetstream(
                        format!("cannot read stream {}", self.name),
                        answer.as_ref(),
                        Box::new(error),
                    )
                })?
            }
            Err(error) => {
                let answer = jetstream_answer(&error);
                return Err(NatsError::jetstream(
                    format!("cannot read or create stream {}", self.name),
                    answer.as_ref(),
                    Box::new(error),
                ));
            }
        };
        let config = &stream.cached_info().config;
        let filter = self.subjects();
        if !config.subjects.iter().any(|s| *s == filter || s == ">") {
            return Err(NatsError::new(
                NatsErrorKind::StreamSubjects,
                false,
                format!(
                    "stream {} exists with subjects {:?}, which do not include {filter}: \
                     give another stream name or subject prefix, or add {filter} to the stream",
                    self.name, config.subjects
                ),
                None,
            ));
        }
        let differs = [
            ("max_age", config.max_age != wanted.max_age),
            ("max_bytes", config.max_bytes != wanted.max_bytes),
            (
                "duplicate_window",
                config.duplicate_window != wanted.duplicate_window,
            ),
            ("replicas", config.num_replicas != wanted.num_replicas),
            ("storage", config.storage != wanted.storage),
            ("retention", config.retention != wanted.retention),
            ("discard", config.discard != wanted.discard),
        ];
        let differs: Vec<&str> = differs
            .iter()
            .filter(|(_, differs)| *differs)
            .map(|(name, _)| *name)
            .collect();
        if !differs.is_empty() {
            tracing::warn!(
                target: "tower_csp_reports",
                stream = %self.name,
                settings = ?differs,
                "the NATS stream exists with other settings; it keeps its own"
            );
        }
        Ok(stream)
    }
}

fn jetstream_answer(
    error: &jetstream::context::CreateStreamError,
) -> Option<async_nats::jetstream::Error> {
    match error.kind() {
        jetstream::context::CreateStreamErrorKind::JetStream(e) => Some(e),
        _ => None,
    }
}

/// Letters, digits, `-` and `_`, 1 to 64 of them: a stream, consumer or subject token name.
pub(crate) fn is_name(name: &str) -> bool {
    (1..=MAX_TOKEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn invalid(setting: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { setting, reason }
}

/// A report type as one safe subject token (see [`StreamSettings::subject_for`]).
pub(crate) fn subject_token(report_type: &str) -> Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    if report_type.is_empty() {
        return Cow::Borrowed("_");
    }
    if report_type.len() <= MAX_TOKEN && report_type.bytes().all(plain) {
        return Cow::Borrowed(report_type);
    }
    Cow::Owned(
        report_type
            .chars()
            .take(MAX_TOKEN)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tokens() {
        let long = "x".repeat(100);
        let cases: &[(&str, &str)] = &[
            ("csp-violation", "csp-violation"),
            ("deprecation", "deprecation"),
            ("network_error", "network_error"),
            ("COEP", "coep"),
            ("", "_"),
            (".", "_"),
            ("a.b", "a_b"),
            ("*", "_"),
            (">", "_"),
            ("a b\tc\r\nd", "a_b_c__d"),
            ("$JS.API.STREAM.DELETE.X", "_js_api_stream_delete_x"),
            ("caf\u{e9}\u{4e2d}", "caf__"),
            ("\u{0}\u{7f}", "__"),
            (&long, &long[..64]),
        ];
        for &(input, token) in cases {
            assert_eq!(subject_token(input), token, "{input:?}");
            let subject = StreamSettings::new().subject_for(input);
            assert_eq!(subject.split('.').count(), 3, "{subject:?}");
            assert!(
                subject
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>'),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn settings_are_checked() {
        let ok = StreamSettings::new();
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            ok.clone().name(""),
            ok.clone().name("a.b"),
            ok.clone().name("a b"),
            ok.clone().name("x".repeat(65)),
            ok.clone().subject_prefix(""),
            ok.clone().subject_prefix("csp..reports"),
            ok.clone().subject_prefix("csp.*"),
            ok.clone().subject_prefix("csp.>"),
            ok.clone().subject_prefix("csp reports"),
            ok.clone().subject_prefix("csp.reports."),
            ok.clone().max_age(Duration::ZERO),
            ok.clone().duplicate_window(Duration::ZERO),
            ok.clone()
                .max_age(Duration::from_secs(60))
                .duplicate_window(Duration::from_secs(61)),
            ok.clone().max_bytes(0),
            ok.clone().max_bytes(u64::MAX),
            ok.clone().replicas(0),
            ok.clone().replicas(6),
        ];
        for settings in bad {
            assert!(settings.validate().is_err(), "{settings:?}");
        }
        let fine = ok
            .name("csp-reports_2")
            .subject_prefix("site-a.csp")
            .replicas(3)
            .max_age(Duration::from_secs(60))
            .duplicate_window(Duration::from_secs(60));
        assert_eq!(fine.validate(), Ok(()));
        assert_eq!(fine.subjects(), "site-a.csp.>");
    }
}
