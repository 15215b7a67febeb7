use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use tracing::field::{Field, Value};
use tracing::{Level, Metadata};
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::{Event, Interest, Kind};

use super::{ReportBatch, ReportSink, SinkError};
use crate::parse::clean;
use crate::{ByteString, Report};

/// How much of an invalid report's raw text goes into its event.
const RAW_LOG_LIMIT: usize = 4096;

/// Writes one structured `tracing` event per report, with the CSP fields as event fields.
///
/// The target (default `csp_reports`) and level (default `WARN`) can be chosen at run time,
/// like a logger name and level, so a subscriber can route or filter reports apart from the
/// application's own events.
///
/// ```
/// use tower_csp_reports::sink::{ReportSink, TracingSink};
/// use tracing::Level;
///
/// let sink = TracingSink::new().target("security::csp").level(Level::INFO);
/// assert_eq!(sink.name(), "tracing");
/// ```
#[derive(Debug, Clone)]
pub struct TracingSink {
    target: String,
    level: Level,
    callsite: &'static ReportCallsite,
}

impl TracingSink {
    /// Events at `WARN` with the target `csp_reports`.
    pub fn new() -> Self {
        Self::build("csp_reports".to_owned(), Level::WARN)
    }

    /// Sets the event target (the "logger name").
    #[must_use]
    pub fn target(self, target: impl Into<String>) -> Self {
        Self::build(target.into(), self.level)
    }

    /// Sets the event level.
    #[must_use]
    pub fn level(self, level: Level) -> Self {
        Self::build(self.target, level)
    }

    fn build(target: String, level: Level) -> Self {
        let callsite = ReportCallsite::get(&target, level);
        Self {
            target,
            level,
            callsite,
        }
    }

    fn emit(&self, report: &Report) {
        let meta = self.callsite.metadata();
        if !tracing::dispatcher::get_default(|dispatch| dispatch.enabled(meta)) {
            return;
        }
        let valid = report.is_valid();
        let received = tracing::field::display(&report.received_at);
        let fingerprint = tracing::field::display(&report.fingerprint);
        let id = tracing::field::display(&report.id);
        // The raw text of an invalid report is whatever was posted: escape it for the log.
        let raw = (!valid).then(|| clean(&report.raw, RAW_LOG_LIMIT));
        let client_ip = report.client_ip.map(tracing::field::display);
        // `&dyn Value` needs a sized value to point at: the fields as `&str`s.
        let document_uri = text(&report.document_uri);
        let url = text(&report.url);
        let referrer = text(&report.referrer);
        let blocked_uri = text(&report.blocked_uri);
        let effective_directive = text(&report.effective_directive);
        let violated_directive = text(&report.violated_directive);
        let disposition = text(&report.disposition);
        let script_sample = text(&report.script_sample);
        let source_file = text(&report.source_file);
        let original_policy = text(&report.original_policy);
        let user_agent = text(&report.user_agent);
        let invalid_reason = report.invalid_reason.as_deref();
        // In the order of FIELD_NAMES.
        let values: [Option<&dyn Value>; FIELD_NAMES.len()] = [
            Some(&"CSP violation report"),
            Some(&&*report.report_type),
            Some(&report.format.as_str()),
            Some(&valid),
            opt(&invalid_reason),
            opt(&document_uri),
            opt(&url),
            opt(&referrer),
            opt(&blocked_uri),
            opt(&effective_directive),
            opt(&violated_directive),
            opt(&disposition),
            report.status_code.as_ref().map(|v| v as &dyn Value),
            opt(&script_sample),
            opt(&source_file),
            report.line_number.as_ref().map(|v| v as &dyn Value),
            report.column_number.as_ref().map(|v| v as &dyn Value),
            opt(&original_policy),
            opt(&user_agent),
            client_ip.as_ref().map(|v| v as &dyn Value),
            report.age_ms.as_ref().map(|v| v as &dyn Value),
            Some(&received),
            Some(&fingerprint),
            Some(&id),
            // Invalid reports carry what was sent, so it can be read in the log.
            raw.as_ref().map(|v| v as &dyn Value),
        ];
        let fields = self
            .callsite
            .fields
            .get()
            .expect("fields are set with the metadata");
        let pairs: [(&Field, Option<&dyn Value>); FIELD_NAMES.len()] =
            std::array::from_fn(|i| (&fields[i], values[i]));
        Event::dispatch(meta, &meta.fields().value_set(&pairs));
    }
}

fn text(value: &Option<ByteString>) -> Option<&str> {
    value.as_deref()
}

fn opt<'a>(value: &'a Option<&str>) -> Option<&'a dyn Value> {
    value.as_ref().map(|v| v as &dyn Value)
}

impl Default for TracingSink {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ReportSink for TracingSink {
    fn name(&self) -> &str {
        "tracing"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        for report in batch.iter() {
            self.emit(report);
        }
        Ok(())
    }
}

const FIELD_NAMES: [&str; 25] = [
    "message",
    "report_type",
    "format",
    "valid",
    "invalid_reason",
    "document_uri",
    "url",
    "referrer",
    "blocked_uri",
    "effective_directive",
    "violated_directive",
    "disposition",
    "status_code",
    "script_sample",
    "source_file",
    "line_number",
    "column_number",
    "original_policy",
    "user_agent",
    "client_ip",
    "age_ms",
    "received_at",
    "fingerprint",
    "report_id",
    "raw",
];

/// A callsite made at run time, because `tracing`'s macros need a constant target.
///
/// One is made (and kept for the life of the process) per distinct target and level, so
/// building many sinks does not grow memory.
#[derive(Debug)]
struct ReportCallsite {
    meta: OnceLock<Metadata<'static>>,
    fields: OnceLock<Vec<Field>>,
}

impl ReportCallsite {
    fn get(target: &str, level: Level) -> &'static Self {
        static MADE: OnceLock<Mutex<HashMap<(String, Level), &'static ReportCallsite>>> =
            OnceLock::new();
        let mut made = MADE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(callsite) = made.get(&(target.to_owned(), level)) {
            return callsite;
        }
        let callsite: &'static Self = Box::leak(Box::new(Self {
            meta: OnceLock::new(),
            fields: OnceLock::new(),
        }));
        let target: &'static str = Box::leak(target.to_owned().into_boxed_str());
        let meta = Metadata::new(
            "csp report",
            target,
            level,
            Some(file!()),
            Some(line!()),
            Some(module_path!()),
            tracing_core::field::FieldSet::new(&FIELD_NAMES, Identifier(callsite)),
            Kind::EVENT,
        );
        callsite
            .meta
            .set(meta)
            .expect("a new callsite has no metadata yet");
        let fields = callsite.metadata().fields().iter().collect();
        callsite
            .fields
            .set(fields)
            .expect("a new callsite has no fields yet");
        tracing_core::callsite::register(callsite);
        made.insert((target.to_owned(), level), callsite);
        callsite
    }
}

impl Callsite for ReportCallsite {
    fn set_interest(&self, _interest: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.meta
            .get()
            .expect("metadata is set before registration")
    }
}
