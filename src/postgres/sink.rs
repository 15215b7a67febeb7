use std::borrow::Cow;
use std::error::Error;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type, to_sql_checked};

use super::StoreError;
use super::column::ColumnValue;
use super::schema::{self, COLUMNS, quote};
use super::store::{MakeTls, PostgresStore, WriteMethod};
use crate::Report;
use crate::sink::{ReportBatch, ReportSink, SinkError};

/// Writes every report it receives into the store's table, valid or not.
///
/// A batch is written in one statement (see [`WriteMethod`]); a report already stored (a batch
/// retried after its first attempt committed) is skipped, so retries never duplicate rows.
/// Connection failures are [transient](SinkError::transient): the dispatcher keeps the batch
/// and offers it again with backoff.
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
        if batch.is_empty() {
            return Ok(0);
        }
        let store = &self.store;
        let mut conn = store.conn().await?;
        if store.inner.partitioned {
            store
                .ensure_partitions(&mut conn, &days_of(batch), false)
                .await?;
        }
        let sql = insert_unnest(store);
        let types = store
            .inner
            .param_types
            .get_or_try_init(|| param_types(&conn, &sql))
            .await?;

        let mut strict_json = false;
        let mut partitions_checked = false;
        let mut skip_existing = store.inner.method == WriteMethod::Unnest;
        loop {
            let rows = Rows::encode(store, batch, strict_json);
            let result = if skip_existing {
                write_unnest(&conn, &sql, types, &rows).await
            } else {
                write_copy(&conn, store, types, &rows).await
            };
            let Err(e) = result else { return result };
            let code = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
            if code == "23505" && !skip_existing {
                // Some reports are already stored: this batch is a retry whose first attempt
                // committed. Write it again, skipping them.
                skip_existing = true;
            } else if code.starts_with("22") && !strict_json {
                // A data exception: most likely a raw item the parser took for JSON that jsonb
                // refuses. Check each item and keep the doubtful ones as text.
                strict_json = true;
            } else if code == "23514" && store.inner.partitioned && !partitions_checked {
                // No partition for a row: retention dropped a day this process thought existed.
                store
                    .ensure_partitions(&mut conn, &days_of(batch), true)
                    .await?;
                partitions_checked = true;
            } else {
                return Err(e);
            }
        }
    }
}

#[async_trait]
impl<Tls: MakeTls> ReportSink for PostgresSink<Tls> {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        match self.write(batch).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_transient() => Err(SinkError::transient(e)),
            Err(e) => Err(SinkError::permanent(e)),
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
        "INSERT INTO {} ({}) SELECT * FROM unnest({arrays}) ON CONFLICT (id, received_at) DO NOTHING",
        quote(&store.inner.table),
        column_names(store),
    )
}

/// Asks the server once for the array type of every parameter.
async fn param_types(client: &Client, sql: &str) -> Result<Vec<Type>, StoreError> {
    Ok(client.prepare(sql).await?.params().to_vec())
}

async fn write_unnest(
    client: &Client,
    sql: &str,
    types: &[Type],
    rows: &Rows<'_>,
) -> Result<u64, StoreError> {
    let custom: Vec<DynArray<'_>> = rows.custom.iter().map(|values| DynArray(values)).collect();
    let builtin: [&(dyn ToSql + Sync); 24] = [
        &rows.id,
        &rows.received_at,
        &rows.age_ms,
        &rows.format,
        &rows.report_type,
        &rows.invalid_reason,
        &rows.raw_json,
        &rows.raw_text,
        &rows.user_agent,
        &rows.client_ip,
        &rows.url,
        &rows.document_uri,
        &rows.referrer,
        &rows.blocked_uri,
        &rows.effective_directive,
        &rows.violated_directive,
        &rows.original_policy,
        &rows.disposition,
        &rows.status_code,
        &rows.script_sample,
        &rows.source_file,
        &rows.line_number,
        &rows.column_number,
        &rows.fingerprint,
    ];
    let params: Vec<(&(dyn ToSql + Sync), Type)> = builtin
        .into_iter()
        .chain(custom.iter().map(|c| c as &(dyn ToSql + Sync)))
        .zip(types.iter().cloned())
        .collect();
    Ok(client.execute_typed(sql, &params).await?)
}

async fn write_copy(
    client: &Client,
    store: &PostgresStore<impl MakeTls>,
    types: &[Type],
    rows: &Rows<'_>,
) -> Result<u64, StoreError> {
    let element_types: Vec<Type> = types
        .iter()
        .map(|ty| match ty.kind() {
            Kind::Array(member) => member.clone(),
            _ => ty.clone(),
        })
        .collect();
    // One statement: if any row is already stored, the whole COPY fails and nothing is written.
    let sink = client
        .copy_in(&format!(
            "COPY {} ({}) FROM STDIN BINARY",
            quote(&store.inner.table),
            column_names(store)
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &element_types);
    let mut writer = std::pin::pin!(writer);
    for i in 0..rows.id.len() {
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![
            &rows.id[i],
            &rows.received_at[i],
            &rows.age_ms[i],
            &rows.format[i],
            &rows.report_type[i],
            &rows.invalid_reason[i],
            &rows.raw_json[i],
            &rows.raw_text[i],
            &rows.user_agent[i],
            &rows.client_ip[i],
            &rows.url[i],
            &rows.document_uri[i],
            &rows.referrer[i],
            &rows.blocked_uri[i],
            &rows.effective_directive[i],
            &rows.violated_directive[i],
            &rows.original_policy[i],
            &rows.disposition[i],
            &rows.status_code[i],
            &rows.script_sample[i],
            &rows.source_file[i],
            &rows.line_number[i],
            &rows.column_number[i],
            &rows.fingerprint[i],
        ];
        for column in &rows.custom {
            values.push(column[i].as_ref());
        }
        writer.as_mut().write(&values).await?;
    }
    Ok(writer.finish().await?)
}

/// A batch, column by column, ready to be sent as arrays or COPY rows.
struct Rows<'a> {
    id: Vec<PgUuid>,
    received_at: Vec<jiff::Timestamp>,
    age_ms: Vec<Option<i64>>,
    format: Vec<&'static str>,
    report_type: Vec<Cow<'a, str>>,
    invalid_reason: Vec<Option<Cow<'a, str>>>,
    raw_json: Vec<Option<RawJson<'a>>>,
    raw_text: Vec<Option<Cow<'a, str>>>,
    user_agent: Vec<Option<Cow<'a, str>>>,
    client_ip: Vec<Option<std::net::IpAddr>>,
    url: Vec<Option<Cow<'a, str>>>,
    document_uri: Vec<Option<Cow<'a, str>>>,
    referrer: Vec<Option<Cow<'a, str>>>,
    blocked_uri: Vec<Option<Cow<'a, str>>>,
    effective_directive: Vec<Option<Cow<'a, str>>>,
    violated_directive: Vec<Option<Cow<'a, str>>>,
    original_policy: Vec<Option<Cow<'a, str>>>,
    disposition: Vec<Option<Cow<'a, str>>>,
    status_code: Vec<Option<i32>>,
    script_sample: Vec<Option<Cow<'a, str>>>,
    source_file: Vec<Option<Cow<'a, str>>>,
    line_number: Vec<Option<i64>>,
    column_number: Vec<Option<i64>>,
    fingerprint: Vec<i64>,
    custom: Vec<Vec<ColumnValue>>,
}

/// Postgres text cannot hold NUL; it becomes U+FFFD.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn opt<S: std::ops::Deref<Target = str>>(s: &Option<S>) -> Option<Cow<'_, str>> {
    s.as_deref().map(text)
}

impl<'a> Rows<'a> {
    fn encode(store: &PostgresStore<impl MakeTls>, batch: &'a ReportBatch, strict: bool) -> Self {
        let n = batch.len();
        let mut rows = Rows {
            id: Vec::with_capacity(n),
            received_at: Vec::with_capacity(n),
            age_ms: Vec::with_capacity(n),
            format: Vec::with_capacity(n),
            report_type: Vec::with_capacity(n),
            invalid_reason: Vec::with_capacity(n),
            raw_json: Vec::with_capacity(n),
            raw_text: Vec::with_capacity(n),
            user_agent: Vec::with_capacity(n),
            client_ip: Vec::with_capacity(n),
            url: Vec::with_capacity(n),
            document_uri: Vec::with_capacity(n),
            referrer: Vec::with_capacity(n),
            blocked_uri: Vec::with_capacity(n),
            effective_directive: Vec::with_capacity(n),
            violated_directive: Vec::with_capacity(n),
            original_policy: Vec::with_capacity(n),
            disposition: Vec::with_capacity(n),
            status_code: Vec::with_capacity(n),
            script_sample: Vec::with_capacity(n),
            source_file: Vec::with_capacity(n),
            line_number: Vec::with_capacity(n),
            column_number: Vec::with_capacity(n),
            fingerprint: Vec::with_capacity(n),
            custom: store
                .inner
                .custom
                .iter()
                .map(|_| Vec::with_capacity(n))
                .collect(),
        };
        for report in batch.iter() {
            rows.push(report, strict);
            for (values, column) in rows.custom.iter_mut().zip(&store.inner.custom) {
                values.push(column.value(report));
            }
        }
        rows
    }

    fn push(&mut self, r: &'a Report, strict: bool) {
        let json = r.raw_is_json()
            && if strict {
                serde_json::from_str::<serde::de::IgnoredAny>(&r.raw).is_ok()
                    && !r.raw.contains("\\u0000")
            } else {
                // jsonb refuses the NUL character even when escaped.
                !r.raw.contains("\\u0000")
            };
        self.id.push(PgUuid(r.id.to_bytes()));
        self.received_at.push(r.received_at);
        self.age_ms
            .push(r.age_ms.map(|age| i64::try_from(age).unwrap_or(i64::MAX)));
        self.format.push(r.format.as_str());
        self.report_type.push(text(&r.report_type));
        self.invalid_reason.push(opt(&r.invalid_reason));
        self.raw_json.push(json.then_some(RawJson(&r.raw)));
        self.raw_text.push((!json).then(|| text(&r.raw)));
        self.user_agent.push(opt(&r.user_agent));
        self.client_ip.push(r.client_ip);
        self.url.push(opt(&r.url));
        self.document_uri.push(opt(&r.document_uri));
        self.referrer.push(opt(&r.referrer));
        self.blocked_uri.push(opt(&r.blocked_uri));
        self.effective_directive.push(opt(&r.effective_directive));
        self.violated_directive.push(opt(&r.violated_directive));
        self.original_policy.push(opt(&r.original_policy));
        self.disposition.push(opt(&r.disposition));
        self.status_code.push(r.status_code.map(i32::from));
        self.script_sample.push(opt(&r.script_sample));
        self.source_file.push(opt(&r.source_file));
        self.line_number.push(r.line_number.map(i64::from));
        self.column_number.push(r.column_number.map(i64::from));
        // Stored as the same 64 bits, read back with `as u64`.
        self.fingerprint.push(r.fingerprint.0 as i64);
    }
}

type BoxError = Box<dyn Error + Sync + Send>;

/// A report id in the binary form of a Postgres `uuid`.
#[derive(Debug)]
struct PgUuid([u8; 16]);

impl ToSql for PgUuid {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    to_sql_checked!();
}

/// JSON text sent as `jsonb` (or `json`) without parsing it on this side.
#[derive(Debug)]
struct RawJson<'a>(&'a str);

impl ToSql for RawJson<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty == Type::JSONB {
            // The jsonb binary format: a version byte, then the text.
            out.put_u8(1);
        }
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }

    to_sql_checked!();
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
