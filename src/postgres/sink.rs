use std::collections::HashSet;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures_sink::Sink;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Transaction};

use super::column::ColumnValue;
use super::schema::{self, COLUMNS, quote};
use super::store::{MakeTls, PostgresStore, WriteMethod};
use super::value::{BoxError, Value};
use crate::sink::{ReportBatch, ReportSink, SinkError};
use crate::store::group::{group, stored_time};
use crate::store::{StoreError, StoreErrorKind, WriteOutcome};
use crate::{Report, SinkOptions};

/// Writes every report it receives into the store's tables, valid or not, and updates the
/// violation tables in the same transaction.
///
/// A batch is written in one statement (see [`WriteMethod`]); a report already stored (a batch
/// retried after its first attempt committed) is skipped and counted nowhere, so retries never
/// duplicate rows or counts. Connection failures are [transient](SinkError::transient): the
/// dispatcher keeps the batch and offers it again with backoff.
///
/// Made by [`PostgresStore::sink`].
#[derive(Clone)]
pub struct PostgresSink<Tls: MakeTls = tokio_postgres::NoTls> {
    pub(crate) store: PostgresStore<Tls>,
}

impl<Tls: MakeTls> std::fmt::Debug for PostgresSink<Tls> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("store", &self.store)
            .finish()
    }
}

impl<Tls: MakeTls> PostgresSink<Tls> {
    /// The store it writes to.
    pub fn store(&self) -> &PostgresStore<Tls> {
        &self.store
    }

    /// Writes a batch, returning how many reports were new.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses the rows.
    pub async fn write(&self, batch: &ReportBatch) -> Result<u64, StoreError> {
        Ok(self.store.write_batch(batch).await?.inserted)
    }
}

#[async_trait]
impl<Tls: MakeTls> ReportSink for PostgresSink<Tls> {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        self.store
            .write_batch(batch)
            .await
            .map(drop)
            .map_err(SinkError::from)
    }

    /// [`SinkOptions::store`]: required, large batches, several at once.
    fn default_options(&self) -> SinkOptions {
        SinkOptions::store()
    }
}

/// Which reports of a batch a write stored.
enum Stored {
    /// All of them (the `COPY` succeeded).
    All(u64),
    /// These ids (the `INSERT ... ON CONFLICT DO NOTHING RETURNING id`).
    Some(HashSet<u128>),
}

impl<Tls: MakeTls> PostgresStore<Tls> {
    /// Stores a batch and updates the violation tables, in one transaction; then tells the
    /// subscribers what the write created or reopened.
    pub(crate) async fn write_batch(
        &self,
        batch: &ReportBatch,
    ) -> Result<WriteOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let mut conn = self.conn().await?;
        if self.inner.partitioned {
            self.ensure_partitions(&mut conn, &days_of(batch), false)
                .await?;
        }
        let sql = insert_unnest(self);
        let types = self
            .inner
            .param_types
            .get_or_try_init(|| param_types(&conn, &sql))
            .await?
            .clone();

        let mut strict_json = false;
        let mut partitions_checked = false;
        let mut skip_existing = self.inner.method == WriteMethod::Unnest;
        loop {
            let tx = conn.transaction().await?;
            let stored = if skip_existing {
                write_unnest(&tx, self, &sql, &types, batch, strict_json)
                    .await
                    .map(Stored::Some)
            } else {
                write_copy(&tx, self, &types, batch, strict_json)
                    .await
                    .map(Stored::All)
            };
            let e = match stored {
                Ok(stored) => {
                    let (inserted, groups) = match &stored {
                        Stored::All(n) => (*n, group(batch.iter())),
                        Stored::Some(ids) => (
                            ids.len() as u64,
                            group(batch.iter().filter(|r| ids.contains(&r.id.0))),
                        ),
                    };
                    let events = if self.inner.violation_tables {
                        super::groups::upsert(&tx, &self.inner.tables, &groups).await?
                    } else {
                        Vec::new()
                    };
                    tx.commit().await?;
                    self.inner.events.publish(&events);
                    return Ok(WriteOutcome { inserted, events });
                }
                Err(e) => e,
            };
            drop(tx);
            let code = e.code().unwrap_or_default().to_owned();
            if code == "23505" && !skip_existing {
                // Some reports are already stored: this batch is a retry whose first attempt
                // committed. Write it again, skipping them.
                skip_existing = true;
            } else if code.starts_with("22") && !strict_json {
                // A data exception: most likely a raw item the parser took for JSON that
                // Postgres refuses. Check each item and keep the doubtful ones as text.
                strict_json = true;
            } else if code == "23514" && self.inner.partitioned && !partitions_checked {
                // No partition for a row: retention dropped a day this process thought existed.
                self.ensure_partitions(&mut conn, &days_of(batch), true)
                    .await?;
                partitions_checked = true;
            } else {
                return Err(e);
            }
        }
    }
}

fn column_names(store: &PostgresStore<impl MakeTls>) -> String {
    COLUMNS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .chain(store.inner.custom.iter().map(|c| quote(c.name())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn insert_unnest(store: &PostgresStore<impl MakeTls>) -> String {
    let arrays = COLUMNS
        .iter()
        .map(|(_, ty)| *ty)
        .chain(store.inner.custom.iter().map(|c| c.sql_type()))
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({arrays}) ON CONFLICT (id, received_at) DO NOTHING \
         RETURNING id::text",
        store.inner.tables.reports,
        column_names(store),
    )
}

/// Asks the server once for the array type of every parameter.
async fn param_types(client: &Client, sql: &str) -> Result<Vec<Type>, StoreError> {
    Ok(client.prepare(sql).await?.params().to_vec())
}

/// One `INSERT ... SELECT * FROM unnest(...)` with one array per column, skipping the rows
/// already stored; returns the ids of those it stored.
async fn write_unnest(
    client: &Transaction<'_>,
    store: &PostgresStore<impl MakeTls>,
    sql: &str,
    types: &[Type],
    batch: &ReportBatch,
    strict_json: bool,
) -> Result<HashSet<u128>, StoreError> {
    let mut builtin: Vec<Vec<Value<'_>>> = COLUMNS
        .iter()
        .map(|_| Vec::with_capacity(batch.len()))
        .collect();
    for report in batch.iter() {
        for (column, value) in builtin.iter_mut().zip(values(report, strict_json)) {
            column.push(value);
        }
    }
    let custom: Vec<Vec<ColumnValue>> = store
        .inner
        .custom
        .iter()
        .map(|column| batch.iter().map(|report| column.value(report)).collect())
        .collect();
    let custom: Vec<DynArray<'_>> = custom.iter().map(|values| DynArray(values)).collect();
    let params: Vec<(&(dyn ToSql + Sync), Type)> = builtin
        .iter()
        .map(|c| c as &(dyn ToSql + Sync))
        .chain(custom.iter().map(|c| c as &(dyn ToSql + Sync)))
        .zip(types.iter().cloned())
        .collect();
    let rows = client.query_typed(sql, &params).await?;
    Ok(rows
        .iter()
        .filter_map(|row| crate::store::group::parse_uuid(row.get(0)).map(|id| id.0))
        .collect())
}

/// One binary `COPY`, its rows encoded here into one buffer (before the statement starts, so
/// a value that cannot be encoded fails the batch with nothing sent) and sent in a few large
/// messages. If any row is already stored, the whole statement fails and nothing is written.
async fn write_copy(
    client: &Transaction<'_>,
    store: &PostgresStore<impl MakeTls>,
    types: &[Type],
    batch: &ReportBatch,
    strict_json: bool,
) -> Result<u64, StoreError> {
    let element_types: Vec<Type> = types
        .iter()
        .map(|ty| match ty.kind() {
            Kind::Array(member) => member.clone(),
            _ => ty.clone(),
        })
        .collect();
    let mut data = copy_data(store, batch, strict_json, &element_types)?;
    let sink = client
        .copy_in::<_, Bytes>(&format!(
            "COPY {} ({}) FROM STDIN BINARY",
            store.inner.tables.reports,
            column_names(store)
        ))
        .await?;
    let mut sink = std::pin::pin!(sink);
    while !data.is_empty() {
        let piece = data.split_to(data.len().min(COPY_MESSAGE));
        std::future::poll_fn(|cx| sink.as_mut().poll_ready(cx)).await?;
        sink.as_mut().start_send(piece)?;
    }
    Ok(sink.finish().await?)
}

/// The most `COPY` data sent in one protocol message. A batch of 1000 typical reports is
/// about 1.5 MiB, so it goes in one or two; a huge batch stays far below the server's 1 GiB
/// limit per message.
const COPY_MESSAGE: usize = 1 << 20;

/// The whole batch in Postgres' binary `COPY` format: a header, then per row its field count
/// and each field as a length (`-1` for NULL) and its binary value, then a trailer.
fn copy_data(
    store: &PostgresStore<impl MakeTls>,
    batch: &ReportBatch,
    strict_json: bool,
    types: &[Type],
) -> Result<Bytes, StoreError> {
    const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0";
    // At most 1600 columns in a Postgres table.
    let fields = i16::try_from(types.len()).unwrap_or(i16::MAX);
    // Each row holds its raw text and, in columns, about as much again.
    let size: usize = batch.iter().map(|r| 2 * r.raw.len() + 256).sum();
    let mut out = BytesMut::with_capacity(HEADER.len() + 8 + size + 2);
    out.put_slice(HEADER);
    out.put_i32(0); // flags
    out.put_i32(0); // header extension length
    let (builtin_types, custom_types) = types.split_at(COLUMNS.len().min(types.len()));
    for report in batch.iter() {
        out.put_i16(fields);
        for ((value, ty), (name, _)) in values(report, strict_json)
            .iter()
            .zip(builtin_types)
            .zip(COLUMNS)
        {
            copy_field(&mut out, name, |out| value.to_sql(ty, out))?;
        }
        for (column, ty) in store.inner.custom.iter().zip(custom_types) {
            let value = column.value(report);
            copy_field(&mut out, column.name(), |out| value.to_sql_checked(ty, out))?;
        }
    }
    out.put_i16(-1);
    Ok(out.freeze())
}

/// One field of a `COPY` row: its length, then what `encode` writes.
fn copy_field(
    out: &mut BytesMut,
    column: &str,
    encode: impl FnOnce(&mut BytesMut) -> Result<IsNull, BoxError>,
) -> Result<(), StoreError> {
    let at = out.len();
    out.put_i32(0);
    let len = match encode(out) {
        Ok(IsNull::Yes) => Ok(-1),
        Ok(IsNull::No) => i32::try_from(out.len() - at - 4).map_err(BoxError::from),
        Err(e) => Err(e),
    }
    .map_err(|source| {
        StoreError::new(
            StoreErrorKind::Encode,
            format!("cannot encode the value of column {column}"),
        )
        .with_source(source)
    })?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A report's built-in column values, in [`COLUMNS`] order (the array's length makes the
/// compiler check that every column has its value).
fn values(r: &Report, strict_json: bool) -> [Value<'_>; COLUMNS.len()] {
    fn text(s: &Option<bytestring::ByteString>) -> Value<'_> {
        s.as_deref().map_or(Value::Null, Value::Text)
    }
    let int = |n: Option<i64>| n.map_or(Value::Null, Value::Int8);
    let json = r.raw_is_json()
        // Postgres cannot turn an escaped NUL into text: such an item would make `->>` fail.
        && !r.raw.contains("\\u0000")
        && (!strict_json || serde_json::from_str::<serde::de::IgnoredAny>(&r.raw).is_ok());
    let (raw_json, raw_text) = if json {
        (Value::Json(&r.raw), Value::Null)
    } else {
        (Value::Null, Value::Text(&r.raw))
    };
    [
        Value::Uuid(r.id.to_bytes()),
        // To the microsecond, as stored; the driver would round it instead.
        Value::Time(stored_time(r.received_at)),
        int(r.age_ms.map(|age| i64::try_from(age).unwrap_or(i64::MAX))),
        Value::Text(r.format.as_str()),
        Value::Text(&r.report_type),
        r.invalid_reason.as_deref().map_or(Value::Null, Value::Text),
        raw_json,
        raw_text,
        text(&r.user_agent),
        r.client_ip.map_or(Value::Null, Value::Inet),
        text(&r.url),
        text(&r.document_uri),
        text(&r.referrer),
        text(&r.blocked_uri),
        text(&r.effective_directive),
        text(&r.violated_directive),
        text(&r.original_policy),
        text(&r.disposition),
        r.status_code.map_or(Value::Null, |n| Value::Int4(n.into())),
        text(&r.script_sample),
        text(&r.source_file),
        int(r.line_number.map(i64::from)),
        int(r.column_number.map(i64::from)),
        // Stored as the same 64 bits, read back with `as u64`.
        Value::Int8(r.fingerprint.0 as i64),
    ]
}

/// The values of one custom column, sent as an array of whatever type the column has.
#[derive(Debug)]
struct DynArray<'a>(&'a [ColumnValue]);

#[derive(Debug)]
struct DynValue<'a>(&'a ColumnValue);

impl ToSql for DynValue<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.0.to_sql_checked(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        // The boxed value checks its own type in `to_sql_checked`.
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        self.0.encode_format(ty)
    }

    to_sql_checked!();
}

impl ToSql for DynArray<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let values: Vec<DynValue<'_>> = self.0.iter().map(DynValue).collect();
        values.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    to_sql_checked!();
}

/// The days (as partition keys) a batch's reports were received on, each once.
fn days_of(batch: &ReportBatch) -> Vec<i64> {
    let mut days: Vec<i64> = batch
        .iter()
        .map(|r| schema::day_of(r.received_at))
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}
