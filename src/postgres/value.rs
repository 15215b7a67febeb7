//! Values in their binary Postgres form, written without the driver's type checks: the crate's
//! own schema decides each column's type.

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

pub(crate) type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// One built-in column value, in the binary form of the column's type (see `schema::COLUMNS`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Null,
    Uuid([u8; 16]),
    Time(jiff::Timestamp),
    Int4(i32),
    Int8(i64),
    /// Postgres text cannot hold NUL; it is sent as U+FFFD.
    Text(&'a str),
    /// JSON text sent as `json` (or `jsonb`, in a table made that way) without parsing it on
    /// this side.
    Json(&'a str),
    Inet(std::net::IpAddr),
}

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Self::Null => return Ok(IsNull::Yes),
            Self::Uuid(bytes) => out.put_slice(&bytes),
            Self::Time(at) => return at.to_sql(ty, out),
            Self::Int4(n) => out.put_i32(n),
            Self::Int8(n) => out.put_i64(n),
            Self::Text(text) => {
                let mut parts = text.split('\0');
                out.put_slice(parts.next().unwrap_or_default().as_bytes());
                for part in parts {
                    out.put_slice("\u{fffd}".as_bytes());
                    out.put_slice(part.as_bytes());
                }
            }
            Self::Json(text) => {
                if *ty == Type::JSONB {
                    // The jsonb binary format: a version byte, then the text.
                    out.put_u8(1);
                }
                out.put_slice(text.as_bytes());
            }
            Self::Inet(ip) => return ip.to_sql(ty, out),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        // The crate's own schema decides each column's type (`COLUMNS`).
        true
    }

    to_sql_checked!();
}
