//! Sustained ingest into Postgres: reports/s through `PostgresSink` (both write methods), with
//! and without the violation tables, beside a bare tokio-postgres binary COPY (its
//! `BinaryCopyInWriter`) of the same rows into a table of the same shape.
//!
//! `cargo bench --features postgres --bench postgres_ingest`. Uses `DATABASE_URL` when set,
//! otherwise a throwaway server (see `tests/support/postgres.rs`). After criterion's figures it
//! prints a sustained run: the same number of batches for each writer, interleaved so that
//! both meet the same table sizes and server state, and the ratio sink / bare COPY
//! (goal: at least 70%); then the cost of the violation tables (the sink with them against
//! the sink writing the report rows alone into a table with only its primary key, goal: at
//! least 85%), with this bench's batches (1,000 reports of 1,000 violations each: the worst
//! case) and with the data set of `scripts/seed-store` (2,000 violations, Zipf-distributed).

#[path = "support/seed.rs"]
mod seed;
#[path = "../tests/support/postgres.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;
use tower_csp_reports::postgres::tokio_postgres::Client;
use tower_csp_reports::postgres::tokio_postgres::binary_copy::BinaryCopyInWriter;
use tower_csp_reports::postgres::tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tower_csp_reports::postgres::{PostgresSink, PostgresStore, WriteMethod};
use tower_csp_reports::{Report, ReportBatch, ReportSink, WireFormat};

const BATCH: usize = 1000;

fn batch(seq: usize) -> ReportBatch {
    (0..BATCH)
        .map(|i| {
            let n = seq * BATCH + i;
            let document = format!("https://shop.example/products/{}?ref=mail&n={n}", n % 97);
            let blocked = format!("https://cdn{}.tracker.example/pixel.js", n % 13);
            let mut r = Report::csp(&document, "script-src-elem", &blocked);
            r.format = WireFormat::ReportingApi;
            r.age_ms = Some(12);
            r.user_agent = Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36"
                    .into(),
            );
            r.client_ip = Some(std::net::IpAddr::from([203, 0, 113, (n % 250) as u8]));
            r.url = r.document_uri.clone();
            r.referrer = Some("https://search.example/".into());
            r.original_policy = Some(
                "default-src 'self'; script-src 'self' https://cdn.shop.example; img-src 'self' \
                 data:; style-src 'self' 'unsafe-inline'; report-to csp-endpoint"
                    .into(),
            );
            r.disposition = Some("enforce".into());
            r.status_code = Some(200);
            r.source_file = Some("https://shop.example/static/app.js".into());
            r.line_number = Some(1042);
            r.column_number = Some(17);
            r.raw = serde_json::json!({
                "type": "csp-violation", "age": 12, "url": document,
                "user_agent": r.user_agent,
                "body": {
                    "documentURL": document, "blockedURL": blocked, "referrer": r.referrer,
                    "effectiveDirective": "script-src-elem", "originalPolicy": r.original_policy,
                    "disposition": "enforce", "statusCode": 200,
                    "sourceFile": r.source_file, "lineNumber": 1042, "columnNumber": 17
                }
            })
            .to_string()
            .into();
            r
        })
        .collect()
}

/// The bare baseline: binary COPY of every column straight into the table, nothing else.
async fn bare_copy(client: &Client, table: &str, batch: &ReportBatch) {
    #[derive(Debug)]
    struct Uuid([u8; 16]);
    impl ToSql for Uuid {
        fn to_sql(
            &self,
            _: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            out.put_slice(&self.0);
            Ok(IsNull::No)
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::UUID
        }
        to_sql_checked!();
    }
    #[derive(Debug)]
    struct Json<'a>(&'a str);
    impl ToSql for Json<'_> {
        fn to_sql(
            &self,
            _: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            out.put_slice(self.0.as_bytes());
            Ok(IsNull::No)
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::JSON
        }
        to_sql_checked!();
    }

    let t = |ty: Type| ty;
    let types = [
        t(Type::UUID),
        t(Type::TIMESTAMPTZ),
        t(Type::INT8),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::JSON),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::INET),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::INT4),
        t(Type::TEXT),
        t(Type::TEXT),
        t(Type::INT8),
        t(Type::INT8),
        t(Type::INT8),
    ];
    let sink = client
        .copy_in(&format!(
            "COPY {table} (id, received_at, age_ms, format, report_type, invalid_reason, raw_json, \
             raw_text, user_agent, client_ip, url, document_uri, referrer, blocked_uri, \
             effective_directive, violated_directive, original_policy, disposition, status_code, \
             script_sample, source_file, line_number, column_number, fingerprint) \
             FROM STDIN BINARY"
        ))
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for r in batch.iter() {
        let id = Uuid(r.id.to_bytes());
        let age = r.age_ms.map(|a| a as i64);
        let raw = Json(&r.raw);
        let no_text: Option<&str> = None;
        let status = r.status_code.map(i32::from);
        let line = r.line_number.map(i64::from);
        let column = r.column_number.map(i64::from);
        let fingerprint = r.fingerprint.0 as i64;
        writer
            .as_mut()
            .write(&[
                &id,
                &r.received_at,
                &age,
                &r.format.as_str(),
                &&*r.report_type,
                &r.invalid_reason,
                &raw,
                &no_text,
                &r.user_agent.as_deref(),
                &r.client_ip,
                &r.url.as_deref(),
                &r.document_uri.as_deref(),
                &r.referrer.as_deref(),
                &r.blocked_uri.as_deref(),
                &r.effective_directive.as_deref(),
                &r.violated_directive.as_deref(),
                &r.original_policy.as_deref(),
                &r.disposition.as_deref(),
                &status,
                &r.script_sample.as_deref(),
                &r.source_file.as_deref(),
                &line,
                &column,
                &fingerprint,
            ])
            .await
            .unwrap();
    }
    writer.finish().await.unwrap();
}

struct Setup {
    rt: Runtime,
    unnest: PostgresSink,
    copy: PostgresSink,
    rows_only: PostgresSink,
    client: Client,
    seq: std::cell::Cell<usize>,
}

impl Setup {
    fn new() -> Self {
        let rt = Runtime::new().unwrap();
        let (unnest, copy, rows_only, client) = rt.block_on(async {
            let db = support::TestDb::new().await;
            let pool = db.pool().await;
            let unnest = PostgresStore::builder(pool.clone())
                .table("via_unnest")
                .write_method(WriteMethod::Unnest)
                .build()
                .unwrap();
            let copy = PostgresStore::builder(pool.clone())
                .table("via_copy")
                .write_method(WriteMethod::Copy)
                .build()
                .unwrap();
            let rows_only = PostgresStore::builder(pool.clone())
                .table("rows_only")
                .without_violation_tables()
                .build()
                .unwrap();
            let bare = PostgresStore::builder(pool)
                .table("bare_copy")
                .build()
                .unwrap();
            for store in [&unnest, &copy, &rows_only, &bare] {
                store.migrate().await.unwrap();
            }
            let client = db.client().await;
            // The tables written without violation tables have only their primary key, as
            // before the violation tables came: the index by violation is theirs too.
            client
                .batch_execute(
                    "DROP INDEX rows_only_fp, rows_only_invalid, bare_copy_fp, bare_copy_invalid",
                )
                .await
                .unwrap();
            (unnest.sink(), copy.sink(), rows_only.sink(), client)
        });
        Self {
            rt,
            unnest,
            copy,
            rows_only,
            client,
            seq: std::cell::Cell::new(0),
        }
    }

    fn next(&self, count: u64) -> Vec<ReportBatch> {
        (0..count)
            .map(|_| {
                let seq = self.seq.get();
                self.seq.set(seq + 1);
                batch(seq)
            })
            .collect()
    }

    fn run(&self, writer: &str, batches: &[ReportBatch]) -> Duration {
        self.rt.block_on(async {
            let start = Instant::now();
            for batch in batches {
                match writer {
                    "sink-unnest" => self.unnest.send(batch).await.unwrap(),
                    "sink-copy" => self.copy.send(batch).await.unwrap(),
                    "sink-copy-rows-only" => self.rows_only.send(batch).await.unwrap(),
                    _ => bare_copy(&self.client, "bare_copy", batch).await,
                }
            }
            start.elapsed()
        })
    }
}

const WRITERS: [&str; 4] = [
    "sink-copy",
    "sink-unnest",
    "bare-copy",
    "sink-copy-rows-only",
];

fn main() {
    let setup = Setup::new();
    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("postgres_ingest");
        group.throughput(Throughput::Elements(BATCH as u64));
        for writer in WRITERS {
            group.bench_function(BenchmarkId::new(writer, BATCH), |b| {
                b.iter_custom(|iters| setup.run(writer, &setup.next(iters)));
            });
        }
        group.finish();
    }
    criterion.final_summary();

    // The sustained figures: from empty tables, the writers take turns, batch by batch.
    setup.rt.block_on(async {
        setup
            .client
            .batch_execute(
                "TRUNCATE via_unnest, via_copy, bare_copy, rows_only, via_copy_violations, \
                 via_copy_violation_hours, via_copy_hours, via_unnest_violations, \
                 via_unnest_violation_hours, via_unnest_hours; CHECKPOINT",
            )
            .await
            .unwrap();
    });
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let mut totals = [Duration::ZERO; 4];
    for _ in 0..rounds {
        for (total, writer) in totals.iter_mut().zip(WRITERS) {
            *total += setup.run(writer, &setup.next(1));
        }
    }
    let rate = |d: Duration| (rounds * BATCH) as f64 / d.as_secs_f64();
    let [copy, unnest, bare, rows_only] = totals.map(rate);
    assert_eq!(
        WRITERS,
        [
            "sink-copy",
            "sink-unnest",
            "bare-copy",
            "sink-copy-rows-only"
        ]
    );
    println!("\nsustained, {rounds} batches of {BATCH} reports each, interleaved:");
    println!(
        "  sink, WriteMethod::Copy (default): {copy:>7.0} reports/s = {:>5.1}% of bare COPY",
        100.0 * copy / bare
    );
    println!(
        "  sink, WriteMethod::Unnest:         {unnest:>7.0} reports/s = {:>5.1}% of bare COPY",
        100.0 * unnest / bare
    );
    println!("  bare tokio-postgres binary COPY:   {bare:>7.0} reports/s");
    println!(
        "  sink, report rows alone:           {rows_only:>7.0} reports/s; with the violation \
         tables {:.1}% of it",
        100.0 * copy / rows_only
    );

    // The same two sinks on the seed data set: 2,000 violations, most reports in a few.
    setup.rt.block_on(async {
        setup
            .client
            .batch_execute(
                "TRUNCATE via_copy, rows_only, via_copy_violations, via_copy_violation_hours, \
                 via_copy_hours; CHECKPOINT",
            )
            .await
            .unwrap();
    });
    let mut batches = Vec::new();
    seed::generate(
        (rounds * BATCH) as u64 * 2,
        jiff::Timestamp::now(),
        BATCH,
        |b| batches.push(b),
    );
    let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
    for pair in batches.chunks(2) {
        with += setup.run("sink-copy", &pair[..1]);
        without += setup.run("sink-copy-rows-only", &pair[1..]);
    }
    let half = (batches.len() / 2 * BATCH) as f64;
    let (with, without) = (half / with.as_secs_f64(), half / without.as_secs_f64());
    println!(
        "\nseed data set (2,000 violations), {} batches of {BATCH} each way:",
        batches.len() / 2
    );
    println!("  sink with the violation tables: {with:>7.0} reports/s");
    println!(
        "  sink, report rows alone:        {without:>7.0} reports/s; with = {:.1}% of without",
        100.0 * with / without
    );
}
