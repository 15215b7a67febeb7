//! A whole body: its shape (one object or an array), each item read in one pass, the rest
//! counted.

use bytes::Bytes;
use bytestring::ByteString;
use jiff::Timestamp;
use serde::de::IgnoredAny;

use super::fields::{Nested, TopItem};
use super::item::{Context, parse_item};
use crate::report::{ContentType, Fingerprint, Report, WireFormat};

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

/// Parses a request body.
///
/// The body is copied once; the text fields of the reports are slices of that copy, unless
/// a value had to change (escapes, a length cap, a number read as text).
pub fn parse_body(body: &[u8], content_type: ContentType, limits: &Limits) -> Parsed {
    parse_bytes(Bytes::copy_from_slice(body), content_type, limits)
}

/// [`parse_body`] on a body the caller owns: the text fields of the reports are slices of
/// the body itself, so a body is in memory once, however large.
pub(crate) fn parse_bytes(body: Bytes, content_type: ContentType, limits: &Limits) -> Parsed {
    let received_at = Timestamp::now();
    let buffer = match ByteString::try_from(body.clone()) {
        Ok(buffer) => buffer,
        Err(_) => {
            let raw = String::from_utf8_lossy(&body).into_owned();
            return rejected(raw.into(), "body is not valid UTF-8", received_at);
        }
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

pub(super) const JSON_SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

/// Reads the value at the start of `text` (fields and all, in one pass); returns it with the
/// number of bytes it took, or why it could not be read.
pub(super) fn read_value<'a, T: serde::Deserialize<'a>>(
    text: &'a str,
) -> Result<(T, usize), String> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<T>();
    match stream.next() {
        Some(Ok(value)) => Ok((value, stream.byte_offset())),
        Some(Err(error)) => Err(error_text(&error)),
        None => Err("no value".to_owned()),
    }
}

/// serde_json's message without its " at line L column C", which inside one item only
/// confuses.
pub(super) fn error_text(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Reads one item. Valid JSON that cannot be read as a report (a number too large for any
/// type) is still an item, kept raw and invalid: only broken JSON fails the body.
pub(super) fn read_item(text: &str) -> Option<(Nested<'_>, usize)> {
    match read_value::<TopItem<'_>>(text) {
        Ok((item, end)) => Some((item.0, end)),
        Err(reason) => {
            let (_, end) = read_value::<IgnoredAny>(text).ok()?;
            Some((Nested::Unreadable(reason), end))
        }
    }
}

/// A single object: the whole body is its raw text.
pub(super) fn read_one(text: &str) -> Option<(&str, Nested<'_>)> {
    let (item, end) = read_item(text)?;
    text[end..]
        .trim_matches(JSON_SPACE)
        .is_empty()
        .then_some((&text[..end], item))
}

/// An array: its first `max` items read and handed to `each`, the rest only checked and
/// counted (the count is returned). Each item is read in one pass, and its raw text is the
/// slice it was read from.
pub(super) fn read_array<'a>(
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

pub(super) fn rejected(raw: ByteString, reason: &'static str, received_at: Timestamp) -> Parsed {
    let mut report = Report::empty(WireFormat::Unparsed, raw, received_at);
    report.invalid_reason = Some(reason.to_owned());
    report.fingerprint = Fingerprint::of(&report);
    Parsed {
        reports: vec![report],
        rejection: Some(reason),
        truncated: 0,
    }
}
