//! The known fields of an item, read in one pass whatever their spelling.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The fields this crate knows, matched whatever their spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
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

pub(super) const SLOTS: usize = 16;

impl Slot {
    /// The name used in reasons: the legacy spelling.
    pub(super) const fn name(self) -> &'static str {
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

pub(super) enum Key {
    Slot(Slot),
    Body,
    CspReport,
    Other,
}

/// Matches a key ignoring ASCII case, `-` and `_`, without allocating.
pub(super) fn key(raw: &str) -> Key {
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
pub(super) fn normalized_key(raw: &str) -> Key {
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
pub(super) struct Fields<'a> {
    pub(super) slots: [Option<Scalar<'a>>; SLOTS],
    pub(super) body: Option<Nested<'a>>,
    pub(super) csp_report: Option<Nested<'a>>,
}

impl<'a> Fields<'a> {
    pub(super) fn get(&self, slot: Slot) -> Option<&Scalar<'a>> {
        self.slots[slot as usize].as_ref()
    }
}

/// The value of `body` or `csp-report`, read in the same pass as the item around it.
pub(super) enum Nested<'a> {
    Object(Box<Fields<'a>>),
    /// Not an object: the JSON type it is, for the reason.
    Not(&'static str),
    /// Valid JSON that could not be read (a number beyond any type): why.
    Unreadable(String),
}

impl<'a> Nested<'a> {
    /// The fields, or why there are none (`what` names the key in the reason, if any).
    pub(super) fn fields(&self, what: &str) -> Result<&Fields<'a>, String> {
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
pub(super) struct FieldsVisitor {
    pub(super) nested: bool,
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
pub(super) struct TopItem<'a>(pub(super) Nested<'a>);

impl<'de> serde::Deserialize<'de> for TopItem<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NestedVisitor { top: true })
            .map(TopItem)
    }
}

pub(super) struct NestedVisitor {
    pub(super) top: bool,
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
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

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
pub(super) enum Scalar<'a> {
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

pub(super) struct ScalarVisitor;

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
