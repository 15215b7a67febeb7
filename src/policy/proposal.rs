//! [`Proposal`]: what the builder proposes, and everything behind it.

use serde::Serialize;

use super::blocked::Code;
use super::error::Dropped;

/// A proposed policy, the change from the current one directive by directive, and what it
/// does not allow. Render it with `Display` (text, for a terminal or a page) or
/// [`to_json`](Self::to_json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Proposal {
    /// The proposed header value (`Content-Security-Policy` or its `-Report-Only` twin).
    pub header: String,
    /// The policy the proposal starts from.
    pub current: CurrentPolicy,
    /// Each directive added or changed, in the order of the header.
    pub changes: Vec<DirectiveChange>,
    /// Code that no source allows: it needs a nonce, a hash or a change to the page (or an
    /// unsafe keyword, which the builder adds only when told to).
    pub needs_nonce: Vec<NeedsNonce>,
    /// Observations that gave no source, and why.
    pub skipped: Vec<Skipped>,
    /// What to know before using the proposal.
    pub notes: Vec<String>,
    /// How much the proposal rests on.
    pub totals: Totals,
}

/// Where the starting policy came from, and what of it was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CurrentPolicy {
    /// The policy, as the proposal read it.
    pub header: String,
    /// Given, or taken from the reports.
    pub origin: PolicyOrigin,
    /// What a lenient reading of a reported policy left out.
    pub dropped: Vec<Dropped>,
}

/// Where the starting policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
#[non_exhaustive]
pub enum PolicyOrigin {
    /// Given by whoever asked for the proposal.
    Base,
    /// The `original-policy` most reports carried.
    Reported {
        /// How many reports carried it.
        reports: u64,
        /// How many distinct policies the reports carried.
        policies: usize,
    },
}

/// How a directive changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// The policy had it; sources are added.
    Extended,
    /// The policy lacked it; it is added, starting from the list that applied through the
    /// fallback (`seeded_from`).
    Added,
}

/// One directive's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DirectiveChange {
    /// The directive.
    pub directive: String,
    /// Extended or added.
    pub kind: ChangeKind,
    /// For an added directive: the directive whose list it starts from (the one that
    /// applied before, through the fallback), or `None` when none did.
    pub seeded_from: Option<String>,
    /// The sources before (for an added directive: those it starts from).
    pub before: Vec<String>,
    /// The sources after.
    pub after: Vec<String>,
    /// Each source added, with the evidence for it.
    pub added: Vec<AddedSource>,
    /// Sources taken out (`'none'`, once the list has sources).
    pub removed: Vec<String>,
}

/// A source the proposal adds, and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AddedSource {
    /// The source expression.
    pub source: String,
    /// How many reports it would have allowed.
    pub reports: u64,
    /// On how many distinct pages (at least).
    pub pages: u64,
    /// What it stands for: the origins merged into a wildcard, the scheme, or the code
    /// allowed by an unsafe keyword.
    pub covers: Vec<String>,
}

/// Code that the proposal does not allow, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NeedsNonce {
    /// The effective directive.
    pub directive: String,
    /// What kind of code.
    pub code: Code,
    /// How to allow it safely.
    pub remedy: &'static str,
    /// Whether the proposal allows it anyway with an unsafe keyword, as it was told to.
    pub allowed_unsafely: bool,
    /// How many reports.
    pub reports: u64,
    /// The pages it was seen on (at most [`MAX_PAGES`], escaped).
    pub pages: Vec<String>,
    /// How many distinct pages in all (at least).
    pub page_count: u64,
    /// The file, line and column the code is at, when reported.
    pub source_file: Option<String>,
    /// The line.
    pub line: Option<u32>,
    /// The column.
    pub column: Option<u32>,
    /// The first characters of the code, when reported (escaped).
    pub sample: Option<String>,
}

/// The most pages a [`NeedsNonce`] lists.
pub const MAX_PAGES: usize = 10;

/// An observation that gave no source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The effective directive (escaped).
    pub directive: String,
    /// What was blocked: its origin, scheme or keyword (escaped, cut to 200 bytes).
    pub blocked: String,
    /// Why it gave no source.
    pub reason: SkipReason,
    /// How many reports.
    pub reports: u64,
}

/// Why an observation gave no source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SkipReason {
    /// The directive is not one of CSP Level 3.
    UnknownDirective,
    /// The directive takes no sources (`sandbox`, `report-uri`, ...).
    NoSources,
    /// The report names `default-src`, not the kind of resource (an old browser).
    NoResourceType,
    /// `frame-ancestors` reports do not say which page framed the document.
    AncestorNotReported,
    /// No directive of the current policy governs it: the report came under another
    /// policy.
    NoDirectiveApplies,
    /// The current policy already allows it (a redirect, or a report under another
    /// policy).
    AlreadyAllowed,
    /// A scheme that is unsafe in this directive (`data:` in `script-src`).
    UnsafeScheme,
    /// Not a web URL (`chrome-extension:`, `file:`, ...).
    NotWeb,
    /// A WebSocket URL in a directive other than `connect-src`.
    WebSocketOutsideConnect,
    /// A URL no source expression can name safely (an IPv6 host, credentials, a character
    /// no host has).
    NotExpressible,
    /// Neither a URL nor a keyword browsers send.
    Unreadable,
    /// The list has `'strict-dynamic'`, which makes browsers ignore hosts and schemes.
    StrictDynamic,
    /// Fewer reports than the builder's `min_reports`.
    TooFewReports,
}

impl SkipReason {
    /// What it means, for people.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::UnknownDirective => "not a CSP directive",
            Self::NoSources => "this directive takes no sources",
            Self::NoResourceType => {
                "the report names default-src, not the kind of resource (an old browser)"
            }
            Self::AncestorNotReported => {
                "frame-ancestors reports do not name the framing page: add it by hand"
            }
            Self::NoDirectiveApplies => {
                "no directive of the current policy governs it (reported under another policy?)"
            }
            Self::AlreadyAllowed => {
                "the current policy already allows it (a redirect, or another policy)"
            }
            Self::UnsafeScheme => "this scheme would let injected content run here",
            Self::NotWeb => "not a web URL (a browser extension?)",
            Self::WebSocketOutsideConnect => "a WebSocket URL outside connect-src",
            Self::NotExpressible => "no source expression can name this URL safely",
            Self::Unreadable => "neither a URL nor a keyword browsers send",
            Self::StrictDynamic => {
                "'strict-dynamic' makes browsers ignore hosts here: give it a nonce, or load it from a trusted script"
            }
            Self::TooFewReports => "fewer reports than the minimum",
        }
    }
}

/// How much the proposal rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Totals {
    /// Observations given.
    pub observations: usize,
    /// Reports behind them.
    pub reports: u64,
    /// Distinct pages (at least).
    pub pages: u64,
}

impl Proposal {
    /// The proposal as JSON (pretty-printed): the same content as the text, for scripts.
    pub fn to_json(&self) -> String {
        // Every field serializes (strings, numbers, enums of unit variants).
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
