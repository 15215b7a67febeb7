//! One item into a [`Report`]: its fields checked, capped and escaped.

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;
use jiff::Timestamp;

use super::body::Limits;
use super::fields::{Fields, Nested, Scalar, Slot};
use super::text::{clean, has_unsafe};
use crate::report::{CSP_VIOLATION, ContentType, Fingerprint, Report, WireFormat};

/// The longest reason kept for an invalid report, in bytes.
const MAX_REASON: usize = 256;

/// The largest `age` accepted, in milliseconds (30 days): browsers hold reports for minutes.
const MAX_AGE_MS: u64 = 30 * 24 * 3600 * 1000;

pub(super) struct Context<'l> {
    /// The body: every borrowed string the parser sees is a slice of it.
    pub(super) buffer: &'l ByteString,
    pub(super) limits: &'l Limits,
    pub(super) received_at: Timestamp,
    pub(super) content_type: ContentType,
    pub(super) in_array: bool,
}

pub(super) fn parse_item(raw: &str, item: &Nested<'_>, ctx: &Context<'_>) -> Report {
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

pub(super) fn fill(
    report: &mut Report,
    item: &Nested<'_>,
    ctx: &Context<'_>,
) -> Result<(), String> {
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

pub(super) fn fill_csp(
    report: &mut Report,
    fields: &Fields<'_>,
    ctx: &Context<'_>,
) -> Result<(), String> {
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

pub(super) fn string(
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

pub(super) fn number(fields: &Fields<'_>, slot: Slot, max: u64) -> Result<Option<u64>, String> {
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
