//! What an alert sink is told.

use serde::Serialize;

use crate::store::{Summary, ViolationEvent, ViolationStatus};

/// Something a store decided people should hear about: a violation it created or reopened,
/// or the digest of a window. Exactly one collector on a database announces each.
///
/// Serialized with a `type` tag: `{"type": "violation", "kind": "new", "violation": {...}}`
/// or `{"type": "digest", "since": ..., "to": ..., "total": ..., ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
// Alerts are few (one per new violation, one per window): plain variants read better in a
// `match` than a box would, and the size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Alert {
    /// A violation the store created (`new`) or reopened after it was marked fixed
    /// (`regressed`).
    Violation(ViolationEvent),
    /// The summary of one digest window, across every collector on the database, ignored
    /// violations left out of its top lists.
    Digest(Summary),
}

impl Alert {
    /// Whether this is a violation event (rather than a digest).
    pub fn is_violation(&self) -> bool {
        matches!(self, Self::Violation(_))
    }

    /// The violation event, if this is one.
    pub fn violation(&self) -> Option<&ViolationEvent> {
        match self {
            Self::Violation(event) => Some(event),
            Self::Digest(_) => None,
        }
    }

    /// The digest, if this is one.
    pub fn digest(&self) -> Option<&Summary> {
        match self {
            Self::Digest(summary) => Some(summary),
            Self::Violation(_) => None,
        }
    }
}

/// Whether people asked not to hear about this violation.
pub(crate) fn is_ignored(event: &ViolationEvent) -> bool {
    event.violation.status == ViolationStatus::Ignored
}

/// How many reports of a digest are worth telling: every one but those of ignored violations.
pub(crate) fn told_reports(summary: &Summary) -> u64 {
    summary.total.saturating_sub(summary.ignored)
}

/// A violation event as a store would announce it, for the alert sinks' unit tests.
#[cfg(test)]
pub(crate) fn sample_event(
    kind: crate::store::ViolationEventKind,
    document: &str,
    blocked: &str,
) -> ViolationEvent {
    use crate::report::{blocked_origin, strip_query};
    use crate::store::{Violation, ViolationExample};
    let report = crate::Report::csp(document, "img-src", blocked);
    let at: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap_or_default();
    ViolationEvent {
        kind,
        violation: Violation {
            fingerprint: report.fingerprint,
            directive: "img-src".to_owned(),
            blocked: blocked_origin(blocked).to_owned(),
            document: strip_query(document).to_owned(),
            document_host: String::new(),
            first_seen: at,
            last_seen: at,
            count: 1,
            in_range: 1,
            status: ViolationStatus::New,
            note: None,
            status_changed_at: None,
            regressed_at: None,
            example: ViolationExample {
                report_id: report.id,
                blocked_uri: Some(blocked.to_owned()),
                original_policy: None,
                disposition: Some("enforce".to_owned()),
                script_sample: None,
                source_file: None,
                line_number: None,
                column_number: None,
            },
        },
    }
}
