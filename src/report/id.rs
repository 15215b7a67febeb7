//! [`ReportId`]: a report's identifier, a UUIDv7 given on receipt.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::TextVisitor;

/// A report's unique identifier: a UUIDv7 (time-ordered, random), given on receipt.
///
/// ```
/// let report = tower_csp_reports::Report::csp("https://example.com/", "img-src", "data");
/// let text = report.id.to_string();
/// assert_eq!(text.len(), 36);
/// assert_eq!(&text[14..15], "7");
///
/// let id = tower_csp_reports::ReportId(0x0193a1b2_c3d4_7e5f_8a6b_7c8d9e0f1a2b);
/// assert_eq!(id.to_string(), "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
/// assert_eq!(format!("{id:>38}"), format!("  {id}"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(pub u128);

impl ReportId {
    /// A new identifier: the time in milliseconds, then 74 bits that are random per process
    /// plus a counter, so two identifiers made by one process never collide and two made by
    /// different processes collide with negligible probability.
    pub fn generate() -> Self {
        Self::generate_at(Timestamp::now())
    }

    /// [`generate`](Self::generate) with the time already read.
    pub(crate) fn generate_at(now: Timestamp) -> Self {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};

        static START: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // RandomState is seeded from the operating system's randomness.
        let start = *START.get_or_init(|| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(u64::from(std::process::id()));
            hasher.finish()
        });
        let seq = COUNTER.fetch_add(1, Ordering::Relaxed);
        let millis = u128::from(now.as_millisecond().max(0).unsigned_abs());
        let random = u128::from(start.wrapping_add(seq));
        let value = (millis & 0xffff_ffff_ffff) << 80
            | 0x7 << 76
            | (u128::from(seq >> 62) & 0xfff) << 64
            | 0b10 << 62
            | (random & ((1 << 62) - 1));
        Self(value)
    }

    /// The sixteen bytes of the UUID, big-endian (the binary form of a Postgres `uuid`).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for ReportId {
    /// The hyphenated lowercase form (`0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b`), written at once:
    /// every log line and email carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in self.to_bytes().into_iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
        }
        // Only ASCII hex digits and hyphens were written.
        f.pad(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for ReportId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReportId {
    /// Reads the hyphenated form that [`Display`](fmt::Display) writes (either case).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor {
            parse: ReportId::parse,
            expecting: "a hyphenated UUID",
        })
    }
}

impl ReportId {
    /// The inverse of [`Display`](fmt::Display): 32 hex digits in groups of 8-4-4-4-12.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut value: u128 = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if byte != b'-' {
                    return None;
                }
                continue;
            }
            value = value << 4 | u128::from(hex_digit(byte)?);
        }
        Some(Self(value))
    }
}

pub(super) fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
