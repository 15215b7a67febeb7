//! The normalized [`Report`]: one type for every format browsers send.
//!
//! ```
//! use tower_csp_reports::parse::{parse_body, Limits};
//! use tower_csp_reports::{ContentType, WireFormat};
//!
//! let body = br#"{"csp-report": {
//!     "document-uri": "https://example.com/page?id=1",
//!     "blocked-uri": "inline",
//!     "violated-directive": "script-src-elem"
//! }}"#;
//! let parsed = parse_body(body, ContentType::CspReport, &Limits::default());
//! let report = &parsed.reports[0];
//! assert!(report.is_valid());
//! assert_eq!(report.format, WireFormat::Legacy);
//! assert_eq!(report.document_uri.as_deref(), Some("https://example.com/page?id=1"));
//! assert_eq!(report.effective_directive.as_deref(), Some("script-src-elem"));
//! ```

use std::fmt;
use std::net::IpAddr;

use bytestring::ByteString;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

mod id;

pub use id::ReportId;
use id::hex_digit;

/// The report type of a CSP violation, in the Reporting API and in this crate.
pub const CSP_VIOLATION: &str = "csp-violation";

/// The shape a report arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WireFormat {
    /// `report-uri`: `{"csp-report": {...}}` with kebab-case keys.
    Legacy,
    /// The legacy fields with no `csp-report` wrapper (old WebKit).
    LegacyBare,
    /// Reporting API (`report-to`): a JSON array of `{type, age, url, user_agent, body}`.
    ReportingApi,
    /// One Reporting API object that is not in an array (Safari, some Firefox versions).
    ReportingApiSingle,
    /// A body that could not be read as JSON at all; the report keeps the raw text.
    Unparsed,
}

impl WireFormat {
    /// A short, stable name for storage and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::LegacyBare => "legacy-bare",
            Self::ReportingApi => "reporting-api",
            Self::ReportingApiSingle => "reporting-api-single",
            Self::Unparsed => "unparsed",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "legacy" => Self::Legacy,
            "legacy-bare" => Self::LegacyBare,
            "reporting-api" => Self::ReportingApi,
            "reporting-api-single" => Self::ReportingApiSingle,
            "unparsed" => Self::Unparsed,
            _ => return None,
        })
    }
}

impl fmt::Display for WireFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The media type a report body was sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentType {
    /// `application/csp-report` (`report-uri`; Safari also sends Reporting API objects with it).
    CspReport,
    /// `application/reports+json` (Reporting API).
    ReportsJson,
    /// `application/json` (old browsers and hand-made clients).
    Json,
}

impl ContentType {
    /// Recognizes a `Content-Type` header value (case-insensitive, parameters ignored).
    pub fn from_header(value: &[u8]) -> Option<Self> {
        let essence = value.split(|&b| b == b';').next().unwrap_or_default();
        let essence = essence.trim_ascii();
        if essence.eq_ignore_ascii_case(b"application/csp-report") {
            Some(Self::CspReport)
        } else if essence.eq_ignore_ascii_case(b"application/reports+json") {
            Some(Self::ReportsJson)
        } else if essence.eq_ignore_ascii_case(b"application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// One violation report, whatever format it came in.
///
/// Every string field is capped in length and has its control characters escaped, so it can
/// go to a log line or an email as it is; [`raw`](Self::raw) keeps the item as sent. The
/// layer then removes the queries, fragments and credentials of the URL fields and truncates
/// the client's address, unless told otherwise (see [`privacy`](crate::privacy)).
///
/// The text fields are [`ByteString`]s (they dereference to `str`): the parser copies a body
/// once and the fields of its reports are slices of that copy, so a report costs one
/// allocation per body rather than one per field. Build them with `.into()` from a `&str` or
/// a `String`. A sink that keeps a field beyond the report (in a map, a cache) should keep a
/// copy (`.to_string()`): a clone is a slice that keeps its whole body alive.
///
/// It serializes to a JSON object with one key per field, named as the field, and reads back
/// from it exactly: what a queue between a collector and a store carries (see the `nats`
/// feature). Unknown keys are ignored and missing optional fields read as `None`, so a reader
/// accepts what a newer or older writer sends.
///
/// ```
/// let report = tower_csp_reports::Report::csp("https://example.com/", "img-src", "data");
/// let json = serde_json::to_string(&report).unwrap();
/// let back: tower_csp_reports::Report = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, report);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// A unique identifier, given when the report is received (a UUIDv7), so a sink that
    /// retries a batch can recognise what it already stored.
    pub id: ReportId,
    /// When the collector received it.
    pub received_at: Timestamp,
    /// How long the browser held it before sending, in milliseconds (Reporting API `age`).
    pub age_ms: Option<u64>,
    /// The shape it arrived in.
    pub format: WireFormat,
    /// The report type: [`CSP_VIOLATION`] for every CSP format, or another Reporting API type
    /// (`deprecation`, `intervention`, `coep`, ...), kept with its raw body.
    pub report_type: ByteString,
    /// Why the report is invalid (at most 256 bytes, escaped like the fields); `None` when it
    /// is valid.
    pub invalid_reason: Option<String>,
    /// The item as it came: its JSON text, or the raw body text for
    /// [`WireFormat::Unparsed`] (invalid UTF-8 replaced). Through the layer, what its
    /// [`Privacy`](crate::Privacy) removes from the URL fields is removed here too.
    pub raw: ByteString,
    /// The browser: the report's own `user_agent`, else the request's `User-Agent` header.
    pub user_agent: Option<ByteString>,
    /// The client's IP address, when the server made it known (see
    /// [`CspReportLayerBuilder::client_ip`](crate::CspReportLayerBuilder::client_ip)); through
    /// the layer, as its [`Privacy`](crate::Privacy) keeps it (by default truncated to its /24
    /// or /48 network).
    pub client_ip: Option<IpAddr>,
    /// The Reporting API `url` of the document the report is about.
    pub url: Option<ByteString>,
    /// `document-uri` / `documentURL`.
    pub document_uri: Option<ByteString>,
    /// `referrer`.
    pub referrer: Option<ByteString>,
    /// `blocked-uri` / `blockedURL`: a URL, or a keyword like `inline`, `eval`, `data`.
    pub blocked_uri: Option<ByteString>,
    /// `effective-directive`, derived from `violated-directive` when missing.
    pub effective_directive: Option<ByteString>,
    /// `violated-directive`, copied from `effective-directive` when missing.
    pub violated_directive: Option<ByteString>,
    /// `original-policy`.
    pub original_policy: Option<ByteString>,
    /// `disposition`: `enforce` or `report`.
    pub disposition: Option<ByteString>,
    /// The HTTP status of the document.
    pub status_code: Option<u16>,
    /// `script-sample` / `sample`: the first characters of the blocked code.
    pub script_sample: Option<ByteString>,
    /// `source-file` / `sourceFile`.
    pub source_file: Option<ByteString>,
    /// `line-number` / `lineNumber`.
    pub line_number: Option<u32>,
    /// `column-number` / `columnNumber`.
    pub column_number: Option<u32>,
    /// Groups reports of the same violation (see [`Fingerprint`]).
    pub fingerprint: Fingerprint,
}

impl Report {
    /// Whether the report was understood.
    pub fn is_valid(&self) -> bool {
        self.invalid_reason.is_none()
    }

    /// Whether this is a CSP violation (as opposed to another Reporting API type).
    pub fn is_csp_violation(&self) -> bool {
        self.report_type == CSP_VIOLATION
    }

    /// Whether [`raw`](Self::raw) holds JSON text (every format but [`WireFormat::Unparsed`]).
    pub fn raw_is_json(&self) -> bool {
        self.format != WireFormat::Unparsed
    }

    /// The document the violation happened on: `document_uri`, else the Reporting API `url`.
    pub fn document(&self) -> Option<&str> {
        self.document_uri.as_deref().or(self.url.as_deref())
    }

    /// An empty report of the given format, received now; the parser fills it in.
    pub(crate) fn empty(format: WireFormat, raw: ByteString, received_at: Timestamp) -> Self {
        Self {
            id: ReportId::generate_at(received_at),
            received_at,
            age_ms: None,
            format,
            report_type: ByteString::from_static(CSP_VIOLATION),
            invalid_reason: None,
            raw,
            user_agent: None,
            client_ip: None,
            url: None,
            document_uri: None,
            referrer: None,
            blocked_uri: None,
            effective_directive: None,
            violated_directive: None,
            original_policy: None,
            disposition: None,
            status_code: None,
            script_sample: None,
            source_file: None,
            line_number: None,
            column_number: None,
            fingerprint: Fingerprint(0),
        }
    }

    /// A report built by hand, for tests of sinks and filters.
    ///
    /// ```
    /// let report = tower_csp_reports::Report::csp("https://example.com/", "script-src-elem", "inline");
    /// assert!(report.is_valid());
    /// assert_eq!(report.violated_directive.as_deref(), Some("script-src-elem"));
    /// ```
    pub fn csp(document_uri: &str, directive: &str, blocked_uri: &str) -> Self {
        let mut report = Self::empty(WireFormat::Legacy, ByteString::new(), Timestamp::now());
        report.raw = serde_json::json!({ "csp-report": {
            "document-uri": document_uri,
            "violated-directive": directive,
            "effective-directive": directive,
            "blocked-uri": blocked_uri,
        }})
        .to_string()
        .into();
        let directive = ByteString::from(directive);
        report.document_uri = Some(document_uri.into());
        report.effective_directive = Some(directive.clone());
        report.violated_directive = Some(directive);
        report.blocked_uri = Some(blocked_uri.into());
        report.fingerprint = Fingerprint::of(&report);
        report
    }
}

/// Reads a string through a parser, without copying it.
pub(crate) struct TextVisitor<T> {
    pub(crate) parse: fn(&str) -> Option<T>,
    pub(crate) expecting: &'static str,
}

impl<T> serde::de::Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        (self.parse)(text).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
    }
}

/// A stable 64-bit digest that groups reports of the same violation.
///
/// For CSP violations it covers the effective directive, the blocked origin (or keyword such as
/// `inline`, `eval`, `data`) and the document URI without its query and fragment; for other
/// report types, the type and the document. It is the same across processes, machines and
/// versions of this crate (FNV-1a), so it can be stored and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// Computes the fingerprint of a report from its fields.
    pub fn of(report: &Report) -> Self {
        let mut hash = Fnv::new();
        if report.is_csp_violation() {
            hash.part(
                report
                    .effective_directive
                    .as_deref()
                    .or(report.violated_directive.as_deref())
                    .unwrap_or_default(),
            );
            hash.part(
                report
                    .blocked_uri
                    .as_deref()
                    .map(blocked_origin)
                    .unwrap_or_default(),
            );
        } else {
            hash.part(&report.report_type);
        }
        hash.part(report.document().map(strip_query).unwrap_or_default());
        Self(hash.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    /// Reads the 16 hex digits that [`Display`](fmt::Display) writes.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor {
            parse: |text| {
                if text.len() != 16 {
                    return None;
                }
                text.bytes()
                    .try_fold(0u64, |value, byte| {
                        Some(value << 4 | u64::from(hex_digit(byte)?))
                    })
                    .map(Fingerprint)
            },
            expecting: "16 hex digits",
        })
    }
}

struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn part(&mut self, text: &str) {
        // The 0xff separator cannot occur in UTF-8, so ("ab", "c") and ("a", "bc") differ.
        for &byte in text.as_bytes().iter().chain(&[0xff]) {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A URL without its query and fragment: how violation sources are grouped.
///
/// ```
/// use tower_csp_reports::report::strip_query;
/// assert_eq!(strip_query("https://a.example/p?q=1#top"), "https://a.example/p");
/// ```
pub fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// The origin of a blocked URL (`https://cdn.example:8443`), or the keyword or bare scheme
/// browsers send instead (`inline`, `eval`, `data`, `chrome-extension`).
///
/// ```
/// use tower_csp_reports::report::blocked_origin;
/// assert_eq!(blocked_origin("https://cdn.example/x.js?v=2"), "https://cdn.example");
/// assert_eq!(blocked_origin("data:image/png;base64,AAAA"), "data");
/// assert_eq!(blocked_origin("inline"), "inline");
/// ```
pub fn blocked_origin(blocked: &str) -> &str {
    if let Some(scheme_end) = find_scheme_separator(blocked) {
        let rest = &blocked[scheme_end + 3..];
        let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        &blocked[..scheme_end + 3 + host_end]
    } else {
        blocked.split(':').next().unwrap_or(blocked)
    }
}

/// Where `://` starts. A byte search: `str::find` with a string pattern sets up a substring
/// searcher on every call, which cost more than the rest of the filter on every report.
pub(crate) fn find_scheme_separator(url: &str) -> Option<usize> {
    url.as_bytes().windows(3).position(|w| w == b"://")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report with every field set to something other than its default. Written out field
    /// by field, with no `..`, so a new field cannot be added without being tested here.
    fn every_field() -> Report {
        Report {
            id: ReportId(0x0193_a1b2_c3d4_7e5f_8a6b_7c8d_9e0f_1a2b),
            received_at: "2025-03-04T05:06:07.123456789Z".parse().unwrap(),
            age_ms: Some(u64::MAX),
            format: WireFormat::ReportingApiSingle,
            report_type: "csp-violation".into(),
            invalid_reason: Some("lineNumber: expected a number, got \"x\"".to_owned()),
            raw: r#"{"type":"csp-violation","body":{"lineNumber":"x"}}"#.into(),
            user_agent: Some("Mozilla/5.0 \u{e9}\u{4e2d} \\u001b".into()),
            client_ip: Some("2001:db8::1".parse().unwrap()),
            url: Some("https://s.example/a?q=1#f".into()),
            document_uri: Some("https://s.example/a?q=1".into()),
            referrer: Some("https://r.example/".into()),
            blocked_uri: Some("inline".into()),
            effective_directive: Some("script-src-elem".into()),
            violated_directive: Some("script-src".into()),
            original_policy: Some("script-src 'self'; report-to csp".into()),
            disposition: Some("report".into()),
            status_code: Some(599),
            script_sample: Some("alert('<b>&amp;')\"".into()),
            source_file: Some("https://s.example/app.js".into()),
            line_number: Some(u32::MAX),
            column_number: Some(7),
            fingerprint: Fingerprint(u64::MAX - 1),
        }
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let report = every_field();
        let json = serde_json::to_value(&report).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 23, "one key per field: {object:?}");
        assert!(object.values().all(|v| !v.is_null()), "{object:?}");
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);

        // The unset optional fields come back unset, whether written as null or left out.
        let mut sparse =
            Report::empty(WireFormat::Unparsed, "\u{0}\r\n".into(), report.received_at);
        sparse.invalid_reason = Some("not JSON".to_owned());
        let text = serde_json::to_string(&sparse).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), sparse);
        let mut object = serde_json::to_value(&sparse).unwrap();
        let map = object.as_object_mut().unwrap();
        map.retain(|_, v| !v.is_null());
        map.insert("added_by_a_newer_writer".to_owned(), 1.into());
        assert_eq!(serde_json::from_value::<Report>(object).unwrap(), sparse);
    }

    #[test]
    fn every_wire_format_round_trips() {
        for format in [
            WireFormat::Legacy,
            WireFormat::LegacyBare,
            WireFormat::ReportingApi,
            WireFormat::ReportingApiSingle,
            WireFormat::Unparsed,
        ] {
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{}\"", format.as_str()));
            assert_eq!(serde_json::from_str::<WireFormat>(&json).unwrap(), format);
        }
    }

    #[test]
    fn ids_and_fingerprints_read_back() {
        for value in [0, 1, u128::MAX, ReportId::generate().0] {
            let id = ReportId(value);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<ReportId>(&json).unwrap(), id);
            let upper = json.to_ascii_uppercase();
            assert_eq!(serde_json::from_str::<ReportId>(&upper).unwrap(), id);
        }
        for value in [0, 1, u64::MAX] {
            let fingerprint = Fingerprint(value);
            let json = serde_json::to_string(&fingerprint).unwrap();
            assert_eq!(
                serde_json::from_str::<Fingerprint>(&json).unwrap(),
                fingerprint
            );
        }
    }

    #[test]
    fn malformed_ids_and_fingerprints_are_refused() {
        let ids = [
            "",
            "0193a1b2c3d47e5f8a6b7c8d9e0f1a2b",
            "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2",
            "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2bc",
            "0193a1b2-c3d4-7e5f-8a6b_7c8d9e0f1a2b",
            "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2g",
            "+193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
            "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1\u{e9}",
        ];
        for text in ids {
            let json = serde_json::to_string(text).unwrap();
            assert!(serde_json::from_str::<ReportId>(&json).is_err(), "{text:?}");
        }
        assert!(serde_json::from_str::<ReportId>("12").is_err());
        for text in [
            "",
            "0",
            "fffffffffffffffff",
            "000000000000000g",
            "-00000000000000f",
        ] {
            let json = serde_json::to_string(text).unwrap();
            assert!(
                serde_json::from_str::<Fingerprint>(&json).is_err(),
                "{text:?}"
            );
        }
    }
}
