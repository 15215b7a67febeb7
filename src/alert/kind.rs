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
