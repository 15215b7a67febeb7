//! Parsing every report format browsers send into [`Report`]s.
//!
//! | format | sent by | shape |
//! |---|---|---|
//! | [`Legacy`](WireFormat::Legacy) | `report-uri`, all browsers | `{"csp-report": {"document-uri": ...}}` |
//! | [`LegacyBare`](WireFormat::LegacyBare) | old WebKit | `{"document-uri": ...}` |
//! | [`ReportingApi`](WireFormat::ReportingApi) | `report-to`: Chrome, Edge, Firefox ≥ 149 | `[{"type": "csp-violation", "age": 10, "url": ..., "user_agent": ..., "body": {"documentURL": ...}}]` |
//! | [`ReportingApiSingle`](WireFormat::ReportingApiSingle) | Safari, some Firefox versions | one such object, not in an array |
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

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;
use jiff::Timestamp;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::report::{CSP_VIOLATION, ContentType, Fingerprint, Report, WireFormat};

/// Bounds on what one request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Reports kept from one request; the rest are counted and dropped (default 100).
    pub max_reports: usize,
    /// Bytes kept of each string field; longer values are cut and end in `…` (default 4096).
    pub max_field_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_reports: 100,
            max_field_length: 4096,
        }
    }
}

/// What a body parsed into.
#[derive(Debug)]
#[non_exhaustive]
pub struct Parsed {
    /// The reports, valid and invalid, in the order sent (at most [`Limits::max_reports`]).
    pub reports: Vec<Report>,
    /// Set when the body as a whole is not a report (not UTF-8, not JSON, empty): the request
    /// deserves a `400` with this reason. `reports` then holds one invalid report that keeps
    /// the raw text, so it can still be counted and stored.
    pub rejection: Option<&'static str>,
    /// Items beyond [`Limits::max_reports`] that were dropped.
    pub truncated: usize,
}

/// The longest reason kept for an invalid report, in bytes.
const MAX_REASON: usize = 256;

/// The largest `age` accepted, in milliseconds (30 days): browsers hold reports for minutes.
const MAX_AGE_MS: u64 = 30 * 24 * 3600 * 1000;

/// Parses a request body.
///
/// The body is copied once; the text fields of the reports are slices of that copy, unless
/// a value had to change (escapes, a length cap, a number read as text).
pub fn parse_body(body: &[u8], content_type: ContentType, limits: &Limits) -> Parsed {
    let received_at = Timestamp::now();
    let Ok(buffer) = ByteString::try_from(body) else {
        let raw = String::from_utf8_lossy(body).into_owned();
        return rejected(raw.into(), "body is not valid UTF-8", received_at);
    };
    let text: &str = &buffer;
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let in_array = match trimmed.as_bytes().first() {
        None => return rejected(buffer.clone(), "empty body", received_at),
        Some(b'[') => true,
        Some(b'{') => false,
        Some(_) => {
            let reason = if serde_json::from_str::<IgnoredAny>(trimmed).is_ok() {
                "body is JSON but neither an object nor an array"
            } else {
                "body is not valid JSON"
            };
            return rejected(buffer.clone(), reason, received_at);
        }
    };
    let ctx = Context {
        buffer: &buffer,
        limits,
        received_at,
        content_type,
        in_array,
    };
    // Each item becomes a report as soon as it is read; broken JSON later in the body
    // rejects it all the same.
    // Most bodies carry one report (a report is over 500 bytes: growing from one keeps the
    // first allocation small).
    let mut reports = Vec::with_capacity(1);
    let mut each = |raw: &str, item: Nested<'_>| reports.push(parse_item(raw, &item, &ctx));
    let truncated = if in_array {
        read_array(trimmed, limits.max_reports, &mut each)
    } else {
        read_one(trimmed).map(|(raw, item)| {
            each(raw, item);
            0
        })
    };
    let Some(truncated) = truncated else {
        return rejected(buffer.clone(), "body is not valid JSON", received_at);
    };
    Parsed {
        reports,
        rejection: None,
        truncated,
    }
}

const JSON_SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

/// Reads the value at the start of `text` (fields and all, in one pass); returns it with the
/// number of bytes it took, or why it could not be read.
fn read_value<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<(T, usize), String> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<T>();
    match stream.next() {
        Some(Ok(value)) => Ok((value, stream.byte_offset())),
        Some(Err(error)) => Err(error_text(&error)),
        None => Err("no value".to_owned()),
    }
}

/// serde_json's message without its " at line L column C", which inside one item only
/// confuses.
fn error_text(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Reads one item. Valid JSON that cannot be read as a report (a number too large for any
/// type) is still an item, kept raw and invalid: only broken JSON fails the body.
fn read_item(text: &str) -> Option<(Nested<'_>, usize)> {
    match read_value::<TopItem<'_>>(text) {
        Ok((item, end)) => Some((item.0, end)),
        Err(reason) => {
            let (_, end) = read_value::<IgnoredAny>(text).ok()?;
            Some((Nested::Unreadable(reason), end))
        }
    }
}

/// A single object: the whole body is its raw text.
fn read_one(text: &str) -> Option<(&str, Nested<'_>)> {
    let (item, end) = read_item(text)?;
    text[end..]
        .trim_matches(JSON_SPACE)
        .is_empty()
        .then_some((&text[..end], item))
}

/// An array: its first `max` items read and handed to `each`, the rest only checked and
/// counted (the count is returned). Each item is read in one pass, and its raw text is the
/// slice it was read from.
fn read_array<'a>(
    text: &'a str,
    max: usize,
    each: &mut impl FnMut(&'a str, Nested<'a>),
) -> Option<usize> {
    let mut read = 0;
    let mut skipped = 0;
    let mut rest = text[1..].trim_start_matches(JSON_SPACE);
    if let Some(after) = rest.strip_prefix(']') {
        return after.trim_matches(JSON_SPACE).is_empty().then_some(0);
    }
    loop {
        let end = if read < max {
            let (item, end) = read_item(rest)?;
            each(&rest[..end], item);
            read += 1;
            end
        } else {
            skipped += 1;
            read_value::<IgnoredAny>(rest).ok()?.1
        };
        rest = rest[end..].trim_start_matches(JSON_SPACE);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start_matches(JSON_SPACE);
        } else if let Some(after) = rest.strip_prefix(']') {
            return after.trim_matches(JSON_SPACE).is_empty().then_some(skipped);
        } else {
            return None;
        }
    }
}

fn rejected(raw: ByteString, reason: &'static str, received_at: Timestamp) -> Parsed {
    let mut report = Report::empty(WireFormat::Unparsed, raw, received_at);
    report.invalid_reason = Some(reason.to_owned());
    report.fingerprint = Fingerprint::of(&report);
    Parsed {
        reports: vec![report],
        rejection: Some(reason),
        truncated: 0,
    }
}

struct Context<'l> {
    /// The body: every borrowed string the parser sees is a slice of it.
    buffer: &'l ByteString,
    limits: &'l Limits,
    received_at: Timestamp,
    content_type: ContentType,
    in_array: bool,
}

fn parse_item(raw: &str, item: &Nested<'_>, ctx: &Context<'_>) -> Report {
    let raw = ctx.buffer.slice_ref(raw);
    let mut report = Report::empty(WireFormat::Legacy, raw, ctx.received_at);
    if let Err(reason) = fill(&mut report, item, ctx) {
        // serde's messages quote the offending value ("invalid type: string \"...\""),
        // which can be as long as the body.
        report.invalid_reason = Some(clean(&reason, MAX_REASON));
    }
    report.fingerprint = Fingerprint::of(&report);
    report
}

fn fill(report: &mut Report, item: &Nested<'_>, ctx: &Context<'_>) -> Result<(), String> {
    let reporting_format = if ctx.in_array {
        WireFormat::ReportingApi
    } else {
        WireFormat::ReportingApiSingle
    };
    // Until the shape is known, guess from the content type, for the reason's sake.
    report.format = match ctx.content_type {
        ContentType::ReportsJson => reporting_format,
        _ if ctx.in_array => reporting_format,
        _ => WireFormat::Legacy,
    };
    let top = item.fields("")?;
    if let Some(inner) = &top.csp_report {
        report.format = WireFormat::Legacy;
        return fill_csp(report, inner.fields("csp-report")?, ctx);
    }
    if top.body.is_some() || top.get(Slot::Type).is_some() {
        report.format = reporting_format;
        report.age_ms = number(top, Slot::Age, MAX_AGE_MS)?;
        report.url = string(top, Slot::Url, ctx)?;
        report.user_agent = string(top, Slot::UserAgent, ctx)?;
        let kind = string(top, Slot::Type, ctx)?.ok_or("missing report type")?;
        if kind != CSP_VIOLATION {
            report.report_type = kind;
            return Ok(());
        }
        let body = top.body.as_ref().ok_or("missing body")?;
        return fill_csp(report, body.fields("body")?, ctx);
    }
    if top.slots.iter().any(Option::is_some) {
        report.format = WireFormat::LegacyBare;
        return fill_csp(report, top, ctx);
    }
    Err("no report fields".to_owned())
}

fn fill_csp(report: &mut Report, fields: &Fields<'_>, ctx: &Context<'_>) -> Result<(), String> {
    report.document_uri = string(fields, Slot::DocumentUri, ctx)?;
    report.referrer = string(fields, Slot::Referrer, ctx)?;
    report.blocked_uri = string(fields, Slot::BlockedUri, ctx)?;
    report.effective_directive = string(fields, Slot::EffectiveDirective, ctx)?;
    report.violated_directive = string(fields, Slot::ViolatedDirective, ctx)?;
    report.original_policy = string(fields, Slot::OriginalPolicy, ctx)?;
    report.disposition = string(fields, Slot::Disposition, ctx)?.map(|d| {
        if d.bytes().any(|b| b.is_ascii_uppercase()) {
            d.to_ascii_lowercase().into()
        } else {
            d
        }
    });
    report.status_code = number(fields, Slot::StatusCode, 999)?.map(|n| n as u16);
    report.script_sample = string(fields, Slot::ScriptSample, ctx)?;
    report.source_file = string(fields, Slot::SourceFile, ctx)?;
    report.line_number = number(fields, Slot::LineNumber, u64::from(u32::MAX))?.map(|n| n as u32);
    report.column_number =
        number(fields, Slot::ColumnNumber, u64::from(u32::MAX))?.map(|n| n as u32);
    if report.user_agent.is_none() {
        report.user_agent = string(fields, Slot::UserAgent, ctx)?;
    }

    // Old browsers put the whole directive ("script-src 'self'") in violated-directive.
    if report.effective_directive.is_none() {
        report.effective_directive = report.violated_directive.as_ref().and_then(|v| {
            v.split_ascii_whitespace()
                .next()
                .map(|first| v.slice_ref(first))
        });
    }
    if report.violated_directive.is_none() {
        report.violated_directive = report.effective_directive.clone();
    }
    if report.effective_directive.is_none() {
        return Err("missing effective-directive and violated-directive".to_owned());
    }
    if report.document_uri.is_none() && report.url.is_none() {
        return Err("missing document-uri".to_owned());
    }
    Ok(())
}

/// The fields this crate knows, matched whatever their spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    DocumentUri,
    Referrer,
    BlockedUri,
    EffectiveDirective,
    ViolatedDirective,
    OriginalPolicy,
    Disposition,
    StatusCode,
    ScriptSample,
    SourceFile,
    LineNumber,
    ColumnNumber,
    UserAgent,
    Type,
    Age,
    Url,
}

const SLOTS: usize = 16;

impl Slot {
    /// The name used in reasons: the legacy spelling.
    const fn name(self) -> &'static str {
        match self {
            Self::DocumentUri => "document-uri",
            Self::Referrer => "referrer",
            Self::BlockedUri => "blocked-uri",
            Self::EffectiveDirective => "effective-directive",
            Self::ViolatedDirective => "violated-directive",
            Self::OriginalPolicy => "original-policy",
            Self::Disposition => "disposition",
            Self::StatusCode => "status-code",
            Self::ScriptSample => "script-sample",
            Self::SourceFile => "source-file",
            Self::LineNumber => "line-number",
            Self::ColumnNumber => "column-number",
            Self::UserAgent => "user_agent",
            Self::Type => "type",
            Self::Age => "age",
            Self::Url => "url",
        }
    }
}

enum Key {
    Slot(Slot),
    Body,
    CspReport,
    Other,
}

/// Matches a key ignoring ASCII case, `-` and `_`, without allocating.
fn key(raw: &str) -> Key {
    // The spellings browsers actually send, compared as they are: most keys stop here.
    let slot = match raw {
        "documentURL" | "document-uri" => Slot::DocumentUri,
        "blockedURL" | "blocked-uri" => Slot::BlockedUri,
        "effectiveDirective" | "effective-directive" => Slot::EffectiveDirective,
        "violated-directive" => Slot::ViolatedDirective,
        "originalPolicy" | "original-policy" => Slot::OriginalPolicy,
        "disposition" => Slot::Disposition,
        "referrer" => Slot::Referrer,
        "statusCode" | "status-code" => Slot::StatusCode,
        "sample" | "script-sample" => Slot::ScriptSample,
        "sourceFile" | "source-file" => Slot::SourceFile,
        "lineNumber" | "line-number" => Slot::LineNumber,
        "columnNumber" | "column-number" => Slot::ColumnNumber,
        "user_agent" => Slot::UserAgent,
        "type" => Slot::Type,
        "age" => Slot::Age,
        "url" => Slot::Url,
        "body" => return Key::Body,
        "csp-report" => return Key::CspReport,
        _ => return normalized_key(raw),
    };
    Key::Slot(slot)
}

/// The slow path of [`key`]: any case, any `-` and `_`, and the rarer aliases.
fn normalized_key(raw: &str) -> Key {
    let mut buf = [0u8; 24];
    let mut len = 0;
    for &byte in raw.as_bytes() {
        if byte == b'-' || byte == b'_' {
            continue;
        }
        if len == buf.len() {
            return Key::Other;
        }
        buf[len] = byte.to_ascii_lowercase();
        len += 1;
    }
    let slot = match &buf[..len] {
        b"documenturi" | b"documenturl" => Slot::DocumentUri,
        b"referrer" | b"referer" => Slot::Referrer,
        b"blockeduri" | b"blockedurl" => Slot::BlockedUri,
        b"effectivedirective" => Slot::EffectiveDirective,
        b"violateddirective" => Slot::ViolatedDirective,
        b"originalpolicy" => Slot::OriginalPolicy,
        b"disposition" => Slot::Disposition,
        b"statuscode" => Slot::StatusCode,
        b"scriptsample" | b"sample" => Slot::ScriptSample,
        b"sourcefile" => Slot::SourceFile,
        b"linenumber" | b"lineno" | b"line" => Slot::LineNumber,
        b"columnnumber" | b"colno" | b"column" | b"columnno" => Slot::ColumnNumber,
        b"useragent" => Slot::UserAgent,
        b"type" => Slot::Type,
        b"age" => Slot::Age,
        b"url" => Slot::Url,
        b"body" => return Key::Body,
        b"cspreport" => return Key::CspReport,
        _ => return Key::Other,
    };
    Key::Slot(slot)
}

/// The known fields of one JSON object; for a repeated key the last value wins.
#[derive(Default)]
struct Fields<'a> {
    slots: [Option<Scalar<'a>>; SLOTS],
    body: Option<Nested<'a>>,
    csp_report: Option<Nested<'a>>,
}

impl<'a> Fields<'a> {
    fn get(&self, slot: Slot) -> Option<&Scalar<'a>> {
        self.slots[slot as usize].as_ref()
    }
}

/// The value of `body` or `csp-report`, read in the same pass as the item around it.
enum Nested<'a> {
    Object(Box<Fields<'a>>),
    /// Not an object: the JSON type it is, for the reason.
    Not(&'static str),
    /// Valid JSON that could not be read (a number beyond any type): why.
    Unreadable(String),
}

impl<'a> Nested<'a> {
    /// The fields, or why there are none (`what` names the key in the reason, if any).
    fn fields(&self, what: &str) -> Result<&Fields<'a>, String> {
        match self {
            Self::Object(fields) => Ok(fields),
            Self::Unreadable(reason) if what.is_empty() => Err(reason.clone()),
            Self::Unreadable(reason) => Err(format!("{what}: {reason}")),
            Self::Not(kind) if what.is_empty() => {
                Err(format!("invalid type: {kind}, expected a JSON object"))
            }
            Self::Not(kind) => Err(format!(
                "{what}: invalid type: {kind}, expected a JSON object"
            )),
        }
    }
}

/// Reads an object's known fields. At the top of an item it also reads `body` and
/// `csp-report` (one level down, in the same pass); inside those, they are ignored. The fields
/// (over 500 bytes) are filled in their box: building them on the stack and moving them in
/// cost 9% of a report's parse.
struct FieldsVisitor {
    nested: bool,
}

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Box<Fields<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Box::<Fields<'de>>::default();
        while let Some(name) = map.next_key::<Text<'de>>()? {
            match key(&name.0) {
                Key::Slot(slot) => fields.slots[slot as usize] = Some(map.next_value()?),
                Key::Body if !self.nested => fields.body = Some(map.next_value()?),
                Key::CspReport if !self.nested => fields.csp_report = Some(map.next_value()?),
                Key::Body | Key::CspReport | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

impl<'de> serde::Deserialize<'de> for Nested<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NestedVisitor { top: false })
    }
}

/// An item of a body: an object whose `body` or `csp-report` is read too, or another value.
struct TopItem<'a>(Nested<'a>);

impl<'de> serde::Deserialize<'de> for TopItem<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NestedVisitor { top: true })
            .map(TopItem)
    }
}

struct NestedVisitor {
    top: bool,
}

impl<'de> Visitor<'de> for NestedVisitor {
    type Value = Nested<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        FieldsVisitor { nested: !self.top }
            .visit_map(map)
            .map(Nested::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Nested::Not("sequence"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Nested::Not("string"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Nested::Not("integer"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Nested::Not("integer"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Nested::Not("floating point"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Nested::Not("boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Nested::Not("null"))
    }
}

/// A string that borrows from the input unless it had escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A field's value, whatever its JSON type; checked against the field's type later.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Null,
    Compound,
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Signed(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
}

fn string(
    fields: &Fields<'_>,
    slot: Slot,
    ctx: &Context<'_>,
) -> Result<Option<ByteString>, String> {
    let max = ctx.limits.max_field_length;
    let text: Cow<'_, str> = match fields.get(slot) {
        None | Some(Scalar::Null) => return Ok(None),
        Some(Scalar::Str(s)) if s.is_empty() => return Ok(None),
        // Text read as it stands in the body: a slice of it, when nothing needs changing.
        Some(Scalar::Str(Cow::Borrowed(s))) if s.len() <= max && !has_unsafe(s) => {
            return Ok(Some(ctx.buffer.slice_ref(s)));
        }
        Some(Scalar::Str(s)) => Cow::Borrowed(s.as_ref()),
        Some(Scalar::Unsigned(n)) => Cow::Owned(n.to_string()),
        Some(Scalar::Signed(n)) => Cow::Owned(n.to_string()),
        Some(Scalar::Float(n)) => Cow::Owned(n.to_string()),
        Some(Scalar::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(Scalar::Compound) => return Err(format!("{} is not a string", slot.name())),
    };
    Ok(Some(clean(&text, max).into()))
}

fn number(fields: &Fields<'_>, slot: Slot, max: u64) -> Result<Option<u64>, String> {
    let out_of_range =
        |shown: &dyn fmt::Display| format!("{} out of range: {shown} (0 to {max})", slot.name());
    let value = match fields.get(slot) {
        None | Some(Scalar::Null) => return Ok(None),
        Some(Scalar::Unsigned(n)) => *n,
        Some(Scalar::Signed(n)) => return Err(out_of_range(n)),
        Some(Scalar::Float(f)) if f.fract() == 0.0 && *f >= 0.0 && *f <= max as f64 => *f as u64,
        Some(Scalar::Float(f)) => return Err(out_of_range(f)),
        Some(Scalar::Str(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    let shown = clean(s, 32);
                    return Err(match s.parse::<i64>() {
                        Ok(_) => out_of_range(&shown),
                        Err(_) => format!("{} is not a number: {shown:?}", slot.name()),
                    });
                }
            }
        }
        Some(Scalar::Bool(_) | Scalar::Compound) => {
            return Err(format!("{} is not a number", slot.name()));
        }
    };
    if value > max {
        return Err(out_of_range(&value));
    }
    Ok(Some(value))
}

/// Whether a character could break a log line or fool a reader: control characters, Unicode
/// line and paragraph separators, and bidirectional overrides.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `text` holds an unsafe character. Reports are nearly all ASCII: one branch-free
/// pass over the bytes (which the compiler vectorizes) finds ASCII control characters and
/// whether there is anything else; characters are decoded only for text that is not ASCII.
fn has_unsafe(text: &str) -> bool {
    let seen = text.bytes().fold(0u8, |seen, b| {
        seen | u8::from(b < 0x20 || b == 0x7f) | (b & 0x80)
    });
    match seen {
        0 => false,
        0x80 => text.chars().any(is_unsafe),
        _ => true,
    }
}

/// Escapes unsafe characters and caps the length (in bytes, on a character boundary).
pub(crate) fn clean(text: &str, max: usize) -> String {
    cleaned(text, max).into_owned()
}

/// [`clean`], borrowing `text` when it needs no change.
pub(crate) fn cleaned(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && !has_unsafe(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for c in text.chars() {
        let start = out.len();
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(start);
            out.push('…');
            break;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_table() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "https://example.com/a?b=c",
                100,
                "https://example.com/a?b=c",
            ),
            ("", 10, ""),
            ("line\nbreak", 100, "line\\nbreak"),
            ("tab\there", 100, "tab\\there"),
            ("del\u{7f}", 100, "del\\u{7f}"),
            ("café", 100, "café"),
            // A C1 control, a line separator and a bidi override, each after other non-ASCII.
            ("é\u{85}", 100, "é\\u{85}"),
            ("é\u{2028}x", 100, "é\\u{2028}x"),
            ("ü\u{202e}gpj.exe", 100, "ü\\u{202e}gpj.exe"),
            ("abcdef", 3, "abc…"),
            ("ééé", 3, "é…"),
        ];
        for &(text, max, expected) in cases {
            assert_eq!(clean(text, max), expected, "clean({text:?}, {max})");
        }
    }
}
