//! Parsing every report format browsers send into [`Report`](crate::Report)s.
//!
//! | format | sent by | shape |
//! |---|---|---|
//! | [`Legacy`](crate::WireFormat::Legacy) | `report-uri`, all browsers | `{"csp-report": {"document-uri": ...}}` |
//! | [`LegacyBare`](crate::WireFormat::LegacyBare) | old WebKit | `{"document-uri": ...}` |
//! | [`ReportingApi`](crate::WireFormat::ReportingApi) | `report-to`: Chrome, Edge, Firefox ≥ 149 | `[{"type": "csp-violation", "age": 10, "url": ..., "user_agent": ..., "body": {"documentURL": ...}}]` |
//! | [`ReportingApiSingle`](crate::WireFormat::ReportingApiSingle) | Safari, some Firefox versions | one such object, not in an array |
//!
//! The shape decides, not the `Content-Type`: Safari sends Reporting API objects as
//! `application/csp-report`. Each item of a batch is parsed on its own, so one bad item never
//! loses the others; it becomes an invalid report with a reason and its raw JSON.
//!
//! Browsers are sloppy, so the parser is lenient where it costs nothing: keys are matched
//! without regard to case, `-` and `_` (`blocked-uri`, `blockedURL`, `blocked_uri`) and common
//! aliases (`document-url`, `sample`, `lineno`, `colno`); numbers may come as strings; a
//! missing `violated-directive` is copied from `effective-directive` and the other way
//! round. It is strict where leniency would store garbage: negative, fractional or absurd
//! numbers make the item invalid, as does a field of the wrong JSON type.
//!
//! Every string field is capped at [`Limits::max_field_length`] bytes and has control
//! characters (and Unicode line separators and bidi overrides) escaped, so it can go to a log
//! line or a mail header as it is.
//!
//! ```
//! use tower_csp_reports::parse::{parse_body, Limits};
//! use tower_csp_reports::{ContentType, WireFormat};
//!
//! let body = br#"[
//!   {"type": "csp-violation", "age": 12, "url": "https://example.com/a?x=1",
//!    "user_agent": "Mozilla/5.0",
//!    "body": {"documentURL": "https://example.com/a?x=1", "blockedURL": "inline",
//!             "effectiveDirective": "style-src-attr", "disposition": "enforce",
//!             "lineNumber": "17", "sample": "color: red"}},
//!   {"type": "csp-violation", "body": {"lineNumber": -3}},
//!   {"type": "deprecation", "url": "https://example.com/a", "body": {"id": "Foo"}}
//! ]"#;
//! let parsed = parse_body(body, ContentType::ReportsJson, &Limits::default());
//! assert!(parsed.rejection.is_none());
//! let [good, bad, other] = &parsed.reports[..] else { panic!() };
//! assert_eq!(good.format, WireFormat::ReportingApi);
//! assert_eq!(good.line_number, Some(17));
//! assert_eq!(good.violated_directive.as_deref(), Some("style-src-attr"));
//! assert_eq!(good.script_sample.as_deref(), Some("color: red"));
//! assert!(!bad.is_valid());
//! assert_eq!(other.report_type, "deprecation");
//! assert!(other.is_valid());
//! ```

mod body;
mod fields;
mod item;
mod redact;
mod text;

pub(crate) use body::parse_bytes;
pub use body::{Limits, Parsed, parse_body};
pub(crate) use redact::redact_raw;
pub(crate) use text::{clean, cleaned};
