//! The Postgres store against a real server (see `support/postgres.rs`).
#![cfg(feature = "postgres")]

#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/store_conformance.rs"]
mod store_conformance;
#[path = "support/postgres.rs"]
mod support;

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use support::{Server, TestDb};
use tower_csp_reports::postgres::bb8::Pool;
use tower_csp_reports::postgres::bb8_postgres::PostgresConnectionManager;
use tower_csp_reports::postgres::tokio_postgres::NoTls;
use tower_csp_reports::postgres::{CustomColumn, PostgresStore, WriteMethod};
use tower_csp_reports::store::{
    Count, ReportStore, StoreErrorKind, Summary, SummaryOptions, TimeRange,
};
use tower_csp_reports::{ConfigError, Fingerprint, Report, ReportBatch, ReportSink, WireFormat};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn report_at(at: Timestamp, document: &str, directive: &str, blocked: &str) -> Report {
    let mut report = Report::csp(document, directive, blocked);
    report.received_at = at;
    report
}

fn invalid_at(at: Timestamp, raw: &str, reason: &str) -> Report {
    let mut report = Report::csp("https://x.example/", "img-src", "data");
    report.received_at = at;
    report.format = WireFormat::Unparsed;
    report.raw = raw.into();
    report.invalid_reason = Some(reason.to_owned());
    report.document_uri = None;
    report.effective_directive = None;
    report.violated_directive = None;
    report.blocked_uri = None;
    report.fingerprint = Fingerprint::of(&report);
    report
}

/// `n` reports received now, each on a page of its own.
fn distinct_reports(n: usize) -> ReportBatch {
    (0..n)
        .map(|i| {
            report_at(
                Timestamp::now(),
                &format!("https://a.example/{i}"),
                "img-src",
                "data",
            )
        })
        .collect()
}

async fn store(db: &TestDb) -> PostgresStore {
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.unwrap();
    store
}

/// A migrated store on the default table, written the given way.
async fn store_writing(db: &TestDb, method: WriteMethod) -> PostgresStore {
    let store = PostgresStore::builder(db.pool().await)
        .write_method(method)
        .build()
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// The summary of `[since, to)` with top lists of `top`.
async fn summarize(store: &PostgresStore, since: Timestamp, to: Timestamp, top: usize) -> Summary {
    store
        .summary(TimeRange::new(since, to), &SummaryOptions::new().top(top))
        .await
        .unwrap()
}

async fn partitions(db: &TestDb, table: &str) -> Vec<String> {
    let rows = db
        .client()
        .await
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = to_regclass($1) ORDER BY 1",
            &[&format!("\"{table}\"")],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

#[tokio::test]
async fn migrations_run_twice_and_concurrently() {
    let db = TestDb::new().await;
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();

    // Four processes migrating two tables at once, one partitioned.
    let plain = PostgresStore::builder(db.pool().await)
        .table("plain")
        .build()
        .unwrap();
    let runs = (0..8).map(|i| {
        let store = store.clone();
        let pool = async move {
            // Each run on a pool of its own, like separate processes.
            let own = PostgresStore::builder(TestDbPool::of(&store).await)
                .table(if i % 2 == 0 { "plain" } else { "daily" })
                .partition_by_day(i % 2 == 1)
                .build()
                .unwrap();
            own.migrate().await
        };
        tokio::spawn(pool)
    });
    for run in runs.collect::<Vec<_>>() {
        run.await.unwrap().unwrap();
    }

    let client = db.client().await;
    let versions: Vec<(String, i32)> = client
        .query(
            "SELECT table_name, version FROM tower_csp_reports_migrations ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        versions,
        [
            ("csp_reports".to_owned(), 1),
            ("csp_reports".to_owned(), 2),
            ("daily".to_owned(), 1),
            ("daily".to_owned(), 2),
            ("plain".to_owned(), 1),
            ("plain".to_owned(), 2),
        ]
    );
    let today = Timestamp::now().strftime("daily_p%Y%m%d").to_string();
    let daily_partitions = partitions(&db, "daily").await;
    assert!(daily_partitions.contains(&today), "{daily_partitions:?}");
    assert_eq!(
        daily_partitions.len(),
        9,
        "yesterday, today and 7 days ahead"
    );

    // The other partitioning on an existing table is refused, not silently ignored.
    let err = PostgresStore::builder(db.pool().await)
        .table("plain")
        .partition_by_day(true)
        .build()
        .unwrap()
        .migrate()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Schema, "{err}");
    drop(plain);
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_table_dropped_by_hand_is_made_again() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    db.client()
        .await
        .batch_execute("DROP TABLE csp_reports")
        .await
        .unwrap();
    store.migrate().await.unwrap();

    let batch = ReportBatch::from(vec![full_report()]);
    store.sink().send(&batch).await.unwrap();
    let client = db.client().await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM csp_reports", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    let versions: i64 = client
        .query_one(
            "SELECT count(*) FROM tower_csp_reports_migrations WHERE table_name = 'csp_reports'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, 2, "the versions are recorded once, not twice");
}

/// A pool of its own on the same database as a store.
struct TestDbPool;

impl TestDbPool {
    async fn of(store: &PostgresStore) -> Pool<PostgresConnectionManager<NoTls>> {
        let conn = store.pool().get().await.unwrap();
        let dbname: String = conn
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get(0);
        drop(conn);
        let mut config = match std::env::var("DATABASE_URL") {
            Ok(url) => url.parse().unwrap(),
            Err(_) => Server::shared().config("postgres"),
        };
        config.dbname(&dbname);
        Pool::builder()
            .max_size(1)
            .build(PostgresConnectionManager::new(config, NoTls))
            .await
            .unwrap()
    }
}

fn full_report() -> Report {
    let mut r = Report::csp(
        "https://shop.example/cart?id=7#pay",
        "script-src-elem",
        "https://cdn.evil.example/x.js",
    );
    r.received_at = ts("2026-11-23T10:11:12.123456Z");
    r.age_ms = Some(1234);
    r.format = WireFormat::ReportingApi;
    // Spacing, key order and a repeated key, as a browser might send them: kept as they are.
    r.raw = r#"{"type": "csp-violation", "age":1234, "body":{"documentURL":"https://shop.example/cart?id=7#pay","blockedURL":"https://cdn.evil.example/x.js"}, "age": 1234}"#.into();
    r.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/149.0".into());
    r.client_ip = Some("2001:db8::7".parse().unwrap());
    r.url = Some("https://shop.example/cart?id=7".into());
    r.referrer = Some("https://search.example/?q=shoes".into());
    r.violated_directive = Some("script-src".into());
    r.original_policy = Some("default-src 'self'; report-to csp".into());
    r.disposition = Some("enforce".into());
    r.status_code = Some(65535);
    r.script_sample = Some("alert('é ✓')".into());
    r.source_file = Some("https://shop.example/app.js".into());
    r.line_number = Some(u32::MAX);
    r.column_number = Some(17);
    // The high bit set: stored in a signed bigint, it must come back the same.
    r.fingerprint = Fingerprint(0xfedc_ba98_7654_3210);
    r
}

async fn assert_round_trip(method: WriteMethod) {
    let db = TestDb::new().await;
    let store = store_writing(&db, method).await;
    let report = full_report();
    store
        .sink()
        .send(&ReportBatch::from(vec![report.clone()]))
        .await
        .unwrap();

    let row = db
        .client()
        .await
        .query_one(
            "SELECT id::text, received_at, age_ms, format, report_type, invalid_reason, valid, \
                 raw_json::text, raw_text, user_agent, host(client_ip), url, document_uri, referrer, \
                 blocked_uri, effective_directive, violated_directive, original_policy, \
                 disposition, status_code, script_sample, source_file, line_number, \
                 column_number, fingerprint FROM csp_reports",
            &[],
        )
        .await
        .unwrap();
    let text = |i: usize| row.get::<_, Option<String>>(i);
    assert_eq!(row.get::<_, String>(0), report.id.to_string());
    assert_eq!(row.get::<_, Timestamp>(1), report.received_at);
    assert_eq!(row.get::<_, Option<i64>>(2), Some(1234));
    assert_eq!(
        WireFormat::from_name(&row.get::<_, String>(3)),
        Some(report.format)
    );
    assert_eq!(row.get::<_, String>(4), "csp-violation");
    assert_eq!(text(5), None);
    assert!(row.get::<_, bool>(6));
    assert_eq!(text(7).as_deref(), Some(&*report.raw));
    assert_eq!(text(8), None);
    assert_eq!(text(9).as_deref(), report.user_agent.as_deref());
    assert_eq!(text(10).as_deref(), Some("2001:db8::7"));
    assert_eq!(text(11).as_deref(), report.url.as_deref());
    assert_eq!(text(12).as_deref(), report.document_uri.as_deref());
    assert_eq!(text(13).as_deref(), report.referrer.as_deref());
    assert_eq!(text(14).as_deref(), report.blocked_uri.as_deref());
    assert_eq!(text(15).as_deref(), report.effective_directive.as_deref());
    assert_eq!(text(16).as_deref(), report.violated_directive.as_deref());
    assert_eq!(text(17).as_deref(), report.original_policy.as_deref());
    assert_eq!(text(18).as_deref(), report.disposition.as_deref());
    assert_eq!(row.get::<_, Option<i32>>(19), Some(65535));
    assert_eq!(text(20).as_deref(), report.script_sample.as_deref());
    assert_eq!(text(21).as_deref(), report.source_file.as_deref());
    assert_eq!(row.get::<_, Option<i64>>(22), Some(i64::from(u32::MAX)));
    assert_eq!(row.get::<_, Option<i64>>(23), Some(17));
    assert_eq!(row.get::<_, i64>(24) as u64, report.fingerprint.0);
}

#[tokio::test]
async fn every_field_round_trips_with_unnest() {
    assert_round_trip(WriteMethod::Unnest).await;
}

#[tokio::test]
async fn every_field_round_trips_with_copy() {
    assert_round_trip(WriteMethod::Copy).await;
}

#[tokio::test]
async fn empty_fields_are_null() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let mut report = Report::csp("https://a.example/", "img-src", "data");
    report.document_uri = None;
    report.effective_directive = None;
    report.violated_directive = None;
    report.blocked_uri = None;
    store.sink().send(&vec![report].into()).await.unwrap();
    let row = db
        .client()
        .await
        .query_one(
            "SELECT num_nulls(age_ms, invalid_reason, raw_text, user_agent, client_ip, url, \
             document_uri, referrer, blocked_uri, effective_directive, violated_directive, \
             original_policy, disposition, status_code, script_sample, source_file, \
             line_number, column_number) FROM csp_reports",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 18);
}

#[tokio::test]
async fn invalid_reports_are_stored_with_their_raw_text() {
    for method in [WriteMethod::Unnest, WriteMethod::Copy] {
        let db = TestDb::new().await;
        let store = store_writing(&db, method).await;
        let at = ts("2026-11-23T08:00:00Z");
        let unparsed = invalid_at(at, "not json {{{ \0 nul", "body is not JSON");
        // Items the parser took for JSON that Postgres refuses, or could not read back with
        // `->>`: kept as text, the batch intact.
        let mut nul_escape = report_at(at, "https://b.example/", "img-src", "data");
        nul_escape.raw = r#"{"csp-report":{"blocked-uri":"a\u0000b"}}"#.into();
        let mut broken = report_at(at, "https://c.example/", "img-src", "data");
        broken.raw = "{\"csp-report\": ".into();
        let good = report_at(at, "https://d.example/", "img-src", "data");
        store
            .sink()
            .send(
                &vec![
                    unparsed.clone(),
                    nul_escape.clone(),
                    broken.clone(),
                    good.clone(),
                ]
                .into(),
            )
            .await
            .unwrap();

        let rows = db
            .client()
            .await
            .query(
                "SELECT id::text, valid, invalid_reason, raw_text, raw_json IS NOT NULL \
                 FROM csp_reports",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 4, "{method:?}");
        for row in rows {
            let id: String = row.get(0);
            let (valid, reason, raw_text, is_json): (bool, Option<String>, Option<String>, bool) =
                (row.get(1), row.get(2), row.get(3), row.get(4));
            if id == unparsed.id.to_string() {
                assert!(!valid);
                assert_eq!(reason.as_deref(), Some("body is not JSON"));
                assert_eq!(raw_text.as_deref(), Some("not json {{{ \u{fffd} nul"));
                assert!(!is_json);
            } else if id == nul_escape.id.to_string() {
                assert_eq!(raw_text.as_deref(), Some(&*nul_escape.raw));
            } else if id == broken.id.to_string() {
                assert_eq!(raw_text.as_deref(), Some(&*broken.raw));
            } else {
                assert_eq!(id, good.id.to_string());
                assert!(valid && is_json && raw_text.is_none());
            }
        }
        // Every stored item can be read into text: none of them poisons a query over all rows.
        let blocked = db
            .client()
            .await
            .query(
                "SELECT raw_json->'csp-report'->>'blocked-uri' FROM csp_reports \
                 WHERE raw_json IS NOT NULL",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(blocked.len(), 1, "{method:?}");

        let summary = summarize(&store, at, at + SignedDuration::from_secs(1), 10).await;
        assert_eq!((summary.total, summary.valid, summary.invalid), (4, 3, 1));
        assert_eq!(summary.invalid_reports.len(), 1);
        assert_eq!(summary.invalid_reports[0].id, unparsed.id.to_string());
        assert_eq!(summary.invalid_reports[0].raw, "not json {{{ \u{fffd} nul");
        assert_eq!(
            summary.invalid_reports[0].reason.as_deref(),
            Some("body is not JSON")
        );
    }
}

/// A custom column whose value does not fit its SQL type fails the batch for good (retrying
/// cannot help) and writes none of it, with either write method.
#[tokio::test]
async fn a_custom_value_of_the_wrong_type_fails_the_batch() {
    let db = TestDb::new().await;
    let wrong = CustomColumn::new("line_text", "integer", |r: &Report| {
        Box::new(r.line_number.map(|l| l.to_string()))
    });
    for method in [WriteMethod::Unnest, WriteMethod::Copy] {
        let store = PostgresStore::builder(db.pool().await)
            .column(wrong.clone())
            .write_method(method)
            .build()
            .unwrap();
        store.migrate().await.unwrap();
        let batch: ReportBatch = distinct_reports(3)
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.line_number = Some(7);
                r
            })
            .collect();
        let err = store.sink().write(&batch).await.unwrap_err();
        assert!(!err.is_transient(), "{method:?}: {err}");
        let chain = tower_csp_reports::error::chain(&err);
        assert!(
            chain.contains("String") && chain.contains("int4"),
            "{method:?}: {chain}"
        );
        if method == WriteMethod::Copy {
            assert!(
                chain.starts_with("cannot encode the value of column line_text: "),
                "{chain}"
            );
        }
        let sent = store.sink().send(&batch).await.unwrap_err();
        assert!(!sent.is_transient(), "{method:?}");
        assert_eq!(db.count("csp_reports").await, 0, "{method:?}");
    }
}

#[tokio::test]
async fn custom_table_and_columns() {
    let db = TestDb::new().await;
    let host = CustomColumn::new("document_host", "varchar(255)", |r: &Report| {
        let host = r
            .document()
            .and_then(|uri| uri.split("://").nth(1))
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .map(str::to_owned);
        Box::new(host)
    });
    let ipv6 = CustomColumn::new("from_ipv6", "boolean", |r: &Report| {
        Box::new(r.client_ip.map(|ip| ip.is_ipv6()))
    });
    let line = CustomColumn::new("Line_Plus_One", "integer", |r: &Report| {
        Box::new(
            r.line_number
                .map(|l| i32::try_from(l).unwrap_or(i32::MAX).saturating_add(1)),
        )
    });
    let pool = db.pool().await;
    let builder = |method| {
        PostgresStore::builder(pool.clone())
            .table("AppViolations")
            .column(host.clone())
            .column(ipv6.clone())
            .column(line.clone())
            .partition_by_day(true)
            .write_method(method)
            .build()
            .unwrap()
    };
    builder(WriteMethod::Copy).migrate().await.unwrap();
    builder(WriteMethod::Copy).migrate().await.unwrap();

    for method in [WriteMethod::Unnest, WriteMethod::Copy] {
        let store = builder(method);
        let mut a = report_at(
            Timestamp::now(),
            "https://a.example:8443/p?q",
            "img-src",
            "data",
        );
        a.client_ip = Some("::1".parse().unwrap());
        a.line_number = Some(41);
        let b = report_at(Timestamp::now(), "https://b.example", "img-src", "data");
        store
            .sink()
            .send(&vec![a.clone(), b.clone()].into())
            .await
            .unwrap();

        let client = db.client().await;
        let custom = |id: String| {
            let client = &client;
            async move {
                let row = client
                    .query_one(
                        "SELECT document_host, from_ipv6, \"Line_Plus_One\" FROM \"AppViolations\" \
                         WHERE id = $1::text::uuid",
                        &[&id],
                    )
                    .await
                    .unwrap();
                (
                    row.get::<_, Option<String>>(0),
                    row.get::<_, Option<bool>>(1),
                    row.get::<_, Option<i32>>(2),
                )
            }
        };
        assert_eq!(
            custom(a.id.to_string()).await,
            (Some("a.example:8443".to_owned()), Some(true), Some(42))
        );
        assert_eq!(
            custom(b.id.to_string()).await,
            (Some("b.example".to_owned()), None, None)
        );
    }
    assert_eq!(db.count("AppViolations").await, 4);
    let default_table: Option<String> = db
        .client()
        .await
        .query_one("SELECT to_regclass('csp_reports')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(default_table, None, "the default table is not created");

    // Settings that cannot work are refused when the store is built.
    let build = |table: &str, columns: &[&CustomColumn]| {
        let mut builder = PostgresStore::builder(pool.clone()).table(table);
        for column in columns {
            builder = builder.column((*column).clone());
        }
        builder.build()
    };
    for bad in ["", "1st", "drop table", "a\"b", "x;y"] {
        assert!(matches!(
            build(bad, &[]),
            Err(ConfigError::InvalidIdentifier { .. })
        ));
    }
    assert!(build(&"t".repeat(47), &[]).is_err());
    assert!(build(&"t".repeat(46), &[]).is_ok());
    let taken = CustomColumn::new("blocked_uri", "text", |_| Box::new(None::<String>));
    assert!(build("t", &[&taken]).is_err());
    assert!(build("t", &[&line, &line]).is_err());
    let bad_name = CustomColumn::new("bad name", "text", |_| Box::new(None::<String>));
    assert!(matches!(
        build("t", &[&bad_name]),
        Err(ConfigError::InvalidIdentifier { .. })
    ));
    let bad_type = CustomColumn::new("n", "text; DROP TABLE x", |_| Box::new(None::<String>));
    assert!(build("t", &[&bad_type]).is_err());
}

#[tokio::test]
async fn a_batch_is_one_statement() {
    let db = TestDb::new().await;
    for method in [WriteMethod::Unnest, WriteMethod::Copy] {
        let store = store_writing(&db, method).await;
        let sink = store.sink();
        for _ in 0..3 {
            let batch = distinct_reports(1000);
            sink.send(&batch).await.unwrap();
        }
    }
    // Every row of a batch was written by the same transaction, and there is one per batch.
    let row = db
        .client()
        .await
        .query_one(
            "SELECT count(*), count(DISTINCT xmin::text) FROM csp_reports",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (6000, 6));
}

/// A batch whose `COPY` data is several protocol messages long (the sink sends at most 1 MiB
/// in one) is still one statement, and every row arrives whole.
#[tokio::test]
async fn a_batch_larger_than_one_copy_message_is_stored_whole() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let policy = |i: usize| {
        format!(
            "script-src 'nonce-{i}' {}",
            "https://cdn.example ".repeat(100)
        )
    };
    let batch: ReportBatch = distinct_reports(1500)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r.original_policy = Some(policy(i).into());
            r
        })
        .collect();
    assert_eq!(store.sink().write(&batch).await.unwrap(), 1500);
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT xmin::text), sum(length(original_policy)) \
             FROM csp_reports",
            &[],
        )
        .await
        .unwrap();
    let total: usize = (0..1500).map(|i| policy(i).len()).sum();
    assert_eq!(row.get::<_, i64>(0), 1500);
    assert_eq!(row.get::<_, i64>(1), 1, "one transaction");
    assert_eq!(row.get::<_, i64>(2), total as i64);
    assert!(total > 2 << 20, "the policies alone span {total} bytes");
    let last = batch.iter().last().unwrap();
    let stored: String = client
        .query_one(
            "SELECT original_policy FROM csp_reports WHERE id = $1::text::uuid",
            &[&last.id.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, policy(1499));
}

#[tokio::test]
async fn a_retried_batch_is_not_duplicated() {
    for (method, partitioned) in [
        (WriteMethod::Unnest, false),
        (WriteMethod::Copy, false),
        (WriteMethod::Unnest, true),
        (WriteMethod::Copy, true),
    ] {
        let db = TestDb::new().await;
        let store = PostgresStore::builder(db.pool().await)
            .partition_by_day(partitioned)
            .write_method(method)
            .build()
            .unwrap();
        store.migrate().await.unwrap();
        let batch = distinct_reports(100);
        let sink = store.sink();
        assert_eq!(sink.write(&batch).await.unwrap(), 100);
        assert_eq!(sink.write(&batch).await.unwrap(), 0);
        sink.send(&batch).await.unwrap();
        assert_eq!(db.count("csp_reports").await, 100, "{method:?}");

        // A batch that is half old, half new: only the new half is written.
        let overlapping: ReportBatch = batch
            .iter()
            .skip(50)
            .cloned()
            .chain((0..50).map(|i| {
                report_at(
                    Timestamp::now(),
                    &format!("https://b.example/{i}"),
                    "img-src",
                    "data",
                )
            }))
            .collect();
        assert_eq!(sink.write(&overlapping).await.unwrap(), 50, "{method:?}");
        assert_eq!(db.count("csp_reports").await, 150, "{method:?}");
    }
}

/// A seeded day whose figures are counted by hand below.
fn seeded(day: Timestamp) -> Vec<Report> {
    let at = |minutes: i64| day + SignedDuration::from_mins(minutes);
    let mut reports = Vec::new();
    // shop.example/cart: 4 reports (queries and fragments grouped), 3 of them blocking evil.js.
    for (m, doc) in [
        (1, "https://shop.example/cart?id=1"),
        (2, "https://shop.example/cart?id=2#x"),
        (3, "https://shop.example/cart#top"),
    ] {
        reports.push(report_at(
            at(m),
            doc,
            "script-src-elem",
            "https://cdn.evil.example/evil.js",
        ));
    }
    reports.push(report_at(
        at(4),
        "https://shop.example/cart",
        "img-src",
        "data",
    ));
    // shop.example/: 3 reports, 2 inline and 1 data.
    reports.push(report_at(
        at(5),
        "https://shop.example/",
        "script-src-elem",
        "inline",
    ));
    reports.push(report_at(
        at(6),
        "https://shop.example/?utm=1",
        "script-src-elem",
        "inline",
    ));
    reports.push(report_at(at(7), "https://shop.example/", "img-src", "data"));
    // blog.example/post: 1 report, reported through the Reporting API `url` only.
    let mut api = report_at(
        at(8),
        "https://blog.example/post?p=9",
        "style-src-elem",
        "inline",
    );
    api.url = api.document_uri.take();
    api.fingerprint = Fingerprint::of(&api);
    reports.push(api);
    // Not a CSP violation: counted in the totals, not in the top lists.
    let mut deprecation = report_at(at(9), "https://shop.example/old", "img-src", "data");
    deprecation.report_type = "deprecation".into();
    deprecation.effective_directive = None;
    deprecation.violated_directive = None;
    deprecation.blocked_uri = None;
    reports.push(deprecation);
    // Two invalid ones.
    reports.push(invalid_at(at(10), "garbage one", "not JSON"));
    reports.push(invalid_at(at(11), "[1, 2", "truncated"));
    reports
}

#[tokio::test]
async fn summary_figures_match_a_hand_count() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let day = ts("2026-11-22T00:00:00Z");
    let reports = seeded(day);
    // Outside the range: the day before and the day after.
    let before = report_at(
        day - SignedDuration::from_secs(1),
        "https://x.example/",
        "img-src",
        "data",
    );
    let after = report_at(
        day + SignedDuration::from_hours(24),
        "https://x.example/",
        "img-src",
        "data",
    );
    let mut all = reports.clone();
    all.extend([before, after]);
    store.sink().send(&all.into()).await.unwrap();

    let summary = summarize(&store, day, day + SignedDuration::from_hours(24), 10).await;
    let counts = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(v, c)| ((*v).to_owned(), *c)).collect()
    };
    let got = |list: &[Count]| -> Vec<(String, u64)> {
        list.iter().map(|c| (c.value.clone(), c.count)).collect()
    };
    assert_eq!((summary.total, summary.valid, summary.invalid), (11, 9, 2));
    assert_eq!(
        got(&summary.top_sources),
        counts(&[
            ("https://shop.example/cart", 4),
            ("https://shop.example/", 3),
            ("https://blog.example/post", 1),
        ])
    );
    assert_eq!(
        got(&summary.top_blocked),
        counts(&[("https://cdn.evil.example", 3), ("inline", 3), ("data", 2),])
    );
    assert_eq!(
        got(&summary.top_directives),
        counts(&[
            ("script-src-elem", 5),
            ("img-src", 2),
            ("style-src-elem", 1)
        ])
    );
    let fingerprints: Vec<(Fingerprint, u64)> = summary
        .top_fingerprints
        .iter()
        .map(|f| (f.fingerprint, f.count))
        .collect();
    let fp = |i: usize| reports[i].fingerprint;
    let mut ones = [fp(3), fp(6), fp(7)];
    ones.sort();
    assert_eq!(
        fingerprints,
        [
            (fp(0), 3),
            (fp(4), 2),
            (ones[0], 1),
            (ones[1], 1),
            (ones[2], 1)
        ]
    );
    let first = &summary.top_fingerprints[0];
    assert_eq!(first.directive, "script-src-elem");
    assert_eq!(first.blocked, "https://cdn.evil.example");
    assert_eq!(first.source, "https://shop.example/cart");
    let invalid: Vec<(&str, Option<&str>)> = summary
        .invalid_reports
        .iter()
        .map(|r| (r.raw.as_str(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        invalid,
        [
            ("garbage one", Some("not JSON")),
            ("[1, 2", Some("truncated"))
        ]
    );

    // `top` cuts every list.
    let short = summarize(&store, day, day + SignedDuration::from_hours(24), 1).await;
    assert_eq!(
        got(&short.top_sources),
        counts(&[("https://shop.example/cart", 4)])
    );
    assert_eq!(short.top_blocked.len(), 1);
    assert_eq!(short.top_directives.len(), 1);
    assert_eq!(short.top_fingerprints.len(), 1);
    assert_eq!(short.invalid_reports.len(), 1);
    assert_eq!(short.total, 11);

    // It serializes for the command line's JSON output.
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["total"], 11);
    assert_eq!(
        json["top_fingerprints"][0]["fingerprint"],
        fp(0).to_string()
    );
    assert_eq!(json["since"], "2026-11-22T00:00:00Z");

    let empty: Summary = summarize(
        &store,
        ts("2020-01-01T00:00:00Z"),
        ts("2020-01-02T00:00:00Z"),
        10,
    )
    .await;
    assert_eq!((empty.total, empty.top_sources.len()), (0, 0));
}

#[tokio::test]
async fn time_ranges_are_half_open() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let since = ts("2026-11-20T12:00:00Z");
    let to = ts("2026-11-21T12:00:00Z");
    let micro = SignedDuration::from_micros(1);
    let at = [
        (since - micro, false),
        (since, true),
        (since + micro, true),
        (to - micro, true),
        (to, false),
        (to + micro, false),
    ];
    let reports: Vec<Report> = at
        .iter()
        .map(|(t, _)| report_at(*t, "https://a.example/", "img-src", "data"))
        .collect();
    store.sink().send(&reports.clone().into()).await.unwrap();
    let summary = summarize(&store, since, to, 10).await;
    assert_eq!(summary.total, 3);
    assert_eq!(summary.top_sources[0].count, 3);
    assert_eq!(summarize(&store, since, since, 10).await.total, 0);
    assert_eq!(summarize(&store, to, since, 10).await.total, 0);

    // Retention's limit is excluded too: what is received exactly at it is kept.
    assert_eq!(store.delete_older_than(since, true).await.unwrap(), 1);
    assert_eq!(store.delete_older_than(since, false).await.unwrap(), 1);
    assert_eq!(db.count("csp_reports").await, 5);
}

/// A row pays for two indexes: the primary key, which leads with the received time, so the
/// time-range queries (report pages, retention, the edges of a summary) read it, not the whole
/// table; and the violation's reports, `(fingerprint, received_at)`. Invalid reports have a
/// partial index of their own, which valid rows do not pay for.
#[tokio::test]
async fn time_ranges_are_read_through_the_primary_key() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let client = db.client().await;
    let indexes: Vec<String> = client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'csp_reports' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(indexes.len(), 3, "{indexes:?}");
    assert!(
        indexes[0].contains("csp_reports_fp") && indexes[0].contains("(fingerprint, received_at)"),
        "{indexes:?}"
    );
    assert!(
        indexes[1].contains("csp_reports_invalid") && indexes[1].contains("WHERE (NOT valid)"),
        "{indexes:?}"
    );
    assert!(
        indexes[2].contains("csp_reports_pkey") && indexes[2].contains("(received_at, id)"),
        "{indexes:?}"
    );

    let day = ts("2026-11-20T00:00:00Z");
    store.sink().send(&seeded(day).into()).await.unwrap();
    // A few rows make a sequential scan the cheapest plan; rule it out to see what the index
    // can serve.
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    for query in [
        "SELECT count(*) FROM csp_reports WHERE received_at >= $1 AND received_at < $2",
        "SELECT id FROM csp_reports WHERE received_at >= $1 AND received_at < $2 \
         ORDER BY received_at, id LIMIT 5",
        "DELETE FROM csp_reports WHERE received_at < $1 AND $2::timestamptz IS NOT NULL",
    ] {
        let plan: Vec<String> = client
            .query(
                &format!("EXPLAIN {query}"),
                &[&day, &ts("2026-11-21T00:00:00Z")],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("csp_reports_pkey"), "{query}\n{plan}");
        assert!(!plan.contains("Sort"), "{query}\n{plan}");
    }
}

#[tokio::test]
async fn retention_without_partitions() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let now = Timestamp::now();
    let days = |d: i64| now - SignedDuration::from_hours(24 * d);
    let reports: Vec<Report> = [10, 9, 9, 8, 3, 1, 0]
        .iter()
        .map(|d| report_at(days(*d), "https://a.example/", "img-src", "data"))
        .collect();
    store.sink().send(&reports.into()).await.unwrap();
    let limit = days(7);
    assert_eq!(store.delete_older_than(limit, true).await.unwrap(), 4);
    assert_eq!(
        db.count("csp_reports").await,
        7,
        "a dry run deletes nothing"
    );
    assert_eq!(store.delete_older_than(limit, false).await.unwrap(), 4);
    assert_eq!(db.count("csp_reports").await, 3);
    assert_eq!(store.delete_older_than(limit, false).await.unwrap(), 0);
}

#[tokio::test]
async fn retention_with_partitions_drops_whole_days() {
    let db = TestDb::new().await;
    let store = PostgresStore::builder(db.pool().await)
        .partition_by_day(true)
        .partitions_ahead(2)
        .build()
        .unwrap();
    store.migrate().await.unwrap();
    let at = ts("2026-10-10T00:00:00Z");
    let h = |hours: i64| at + SignedDuration::from_hours(hours);
    // Days with no partition yet (far in the past): the sink creates them on demand.
    let reports: Vec<Report> = [-48, -47, -24, -1, 0, 6, 12, 13, 30]
        .iter()
        .map(|hours| report_at(h(*hours), "https://a.example/", "img-src", "data"))
        .collect();
    store.sink().send(&reports.clone().into()).await.unwrap();
    let names = partitions(&db, "csp_reports").await;
    for day in [
        "20261008", "20261009", "20261010", "20261011", "20261012", "20261013",
    ] {
        assert!(
            names.contains(&format!("csp_reports_p{day}")),
            "{day}: {names:?}"
        );
    }

    // The limit falls in the middle of 2026-10-10: two days go whole, 2 rows go one by one.
    let limit = h(12);
    assert_eq!(store.delete_older_than(limit, true).await.unwrap(), 6);
    assert_eq!(db.count("csp_reports").await, 9);
    assert_eq!(store.delete_older_than(limit, false).await.unwrap(), 6);
    assert_eq!(db.count("csp_reports").await, 3);
    let names = partitions(&db, "csp_reports").await;
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with("20261008") || n.ends_with("20261009")),
        "{names:?}"
    );
    assert!(names.contains(&"csp_reports_p20261010".to_owned()));

    // A late report for a dropped day: its partition comes back.
    let late = report_at(h(-30), "https://a.example/", "img-src", "data");
    store.sink().send(&vec![late].into()).await.unwrap();
    assert_eq!(db.count("csp_reports").await, 4);
    // And the same works for a store that did not do the dropping (a cache that went stale).
    let other = PostgresStore::builder(db.pool().await)
        .partition_by_day(true)
        .build()
        .unwrap();
    other.migrate().await.unwrap();
    other
        .sink()
        .send(&vec![report_at(h(1), "https://a.example/", "img-src", "data")].into())
        .await
        .unwrap();
    store.delete_older_than(h(24), false).await.unwrap();
    let again = report_at(h(2), "https://a.example/", "img-src", "data");
    other.sink().send(&vec![again].into()).await.unwrap();
    assert_eq!(db.count("csp_reports").await, 2);
}

/// Sends like the dispatcher: the same batch again after a backoff while the error is transient.
async fn send_with_retries(sink: &impl ReportSink, batch: &ReportBatch) -> u32 {
    let mut failures = 0;
    loop {
        match sink.send(batch).await {
            Ok(()) => return failures,
            Err(e) if e.is_transient() => {
                failures += 1;
                assert!(failures < 600, "still failing: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("permanent error: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_loses_and_duplicates_nothing() {
    // A server of its own even when DATABASE_URL is set: this test stops and starts it.
    let (server, db, pool) = support::restartable().await;
    let store = PostgresStore::builder(pool)
        .partition_by_day(true)
        .build()
        .unwrap();
    store.migrate().await.unwrap();
    let sink = store.sink();

    let batches: Vec<ReportBatch> = (0..60)
        .map(|b| {
            (0..50)
                .map(|i| {
                    report_at(
                        Timestamp::now(),
                        &format!("https://a.example/{b}/{i}"),
                        "img-src",
                        "data",
                    )
                })
                .collect()
        })
        .collect();
    let ids: HashSet<String> = batches
        .iter()
        .flat_map(|b| b.iter().map(|r| r.id.to_string()))
        .collect();

    let restarter = {
        let server = server.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            tokio::task::spawn_blocking(move || {
                server.stop();
                std::thread::sleep(Duration::from_millis(700));
                server.start();
            })
            .await
            .unwrap();
        })
    };
    let mut failures = 0;
    for batch in &batches {
        failures += send_with_retries(&sink, batch).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    restarter.await.unwrap();
    assert!(
        failures > 0,
        "the restart happened while no batch was in flight"
    );

    let rows = db
        .client()
        .await
        .query("SELECT id::text FROM csp_reports", &[])
        .await
        .unwrap();
    let stored: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), unique.len(), "duplicates");
    assert_eq!(unique, ids, "lost reports");
}

#[tokio::test]
async fn the_sink_passes_the_conformance_suite() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let client = db.client().await;
    conformance::check(&store.sink(), || async {
        client
            .query("SELECT id::text FROM csp_reports", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passes_the_store_conformance_suite() {
    for partitioned in [false, true] {
        store_conformance::check(|| async move {
            let db = TestDb::new().await;
            let store = PostgresStore::builder(db.pool().await)
                .partition_by_day(partitioned)
                .build()
                .unwrap();
            store.migrate().await.unwrap();
            std::sync::Arc::new(store) as std::sync::Arc<dyn ReportStore>
        })
        .await;
    }
}

/// Two collectors on one Postgres (two store handles, each with its own pool) write reports of
/// the same new violations at the same moment: each violation is announced exactly once, by
/// one of them, and counted whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_announce_a_new_violation_once() {
    let db = TestDb::new().await;
    let a = store(&db).await;
    let b = PostgresStore::new(db.pool().await);
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    let rounds = 30;
    for round in 0..rounds {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let batch = |n: usize| -> ReportBatch {
            (0..n)
                .map(|i| {
                    report_at(
                        Timestamp::now(),
                        &format!("https://a.example/{round}/{}", i % 3),
                        "img-src",
                        "https://ads.example/x.png",
                    )
                })
                .collect()
        };
        let (batch_a, batch_b) = (batch(20), batch(20));
        let run = |store: PostgresStore,
                   batch: ReportBatch,
                   barrier: std::sync::Arc<tokio::sync::Barrier>| {
            tokio::spawn(async move {
                barrier.wait().await;
                store.write(&batch).await.unwrap()
            })
        };
        let one = run(a.clone(), batch_a, barrier.clone());
        let two = run(b.clone(), batch_b, barrier);
        let (one, two) = (one.await.unwrap(), two.await.unwrap());
        assert_eq!(one.inserted + two.inserted, 40);
        assert_eq!(
            one.events.len() + two.events.len(),
            3,
            "round {round}: {one:?} {two:?}"
        );
    }
    let mut heard = Vec::new();
    for events in [&mut events_a, &mut events_b] {
        while let Ok(event) = events.try_recv() {
            heard.push(event);
        }
    }
    assert_eq!(heard.len(), 3 * rounds);
    let unique: HashSet<u64> = heard.iter().map(|e| e.violation.fingerprint.0).collect();
    assert_eq!(unique.len(), heard.len(), "no violation announced twice");
    assert!(
        heard
            .iter()
            .all(|e| e.kind == tower_csp_reports::store::ViolationEventKind::New)
    );
    let total: u64 = a
        .violations(&tower_csp_reports::store::ViolationQuery::new().page(1, 1000))
        .await
        .unwrap()
        .violations
        .iter()
        .map(|v| v.count)
        .sum();
    assert_eq!(total, 40 * rounds as u64);

    // A fixed violation seen by both at once is reopened by one of them.
    let fingerprint = heard[0].violation.fingerprint;
    a.set_status(
        &[fingerprint],
        tower_csp_reports::store::ViolationStatus::Fixed,
        None,
    )
    .await
    .unwrap();
    let document = heard[0].violation.document.clone();
    let again = |store: PostgresStore| {
        let document = document.clone();
        tokio::spawn(async move {
            let batch: ReportBatch = (0..10)
                .map(|_| {
                    report_at(
                        Timestamp::now(),
                        &document,
                        "img-src",
                        "https://ads.example/y.png",
                    )
                })
                .collect();
            store.write(&batch).await.unwrap().events
        })
    };
    let (x, y) = (again(a.clone()), again(b.clone()));
    let reopened: Vec<_> = x
        .await
        .unwrap()
        .into_iter()
        .chain(y.await.unwrap())
        .collect();
    assert_eq!(reopened.len(), 1, "{reopened:?}");
    assert_eq!(
        reopened[0].kind,
        tower_csp_reports::store::ViolationEventKind::Regressed
    );
}

/// Two writers upserting the same violations in opposite orders, many times at once, never
/// deadlock: the sink sorts each table's rows by key before it writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_of_the_same_violations_do_not_deadlock() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let documents: Vec<String> = (0..200).map(|i| format!("https://d.example/{i}")).collect();
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let store = PostgresStore::new(db.pool().await);
        let mut documents = documents.clone();
        if writer % 2 == 1 {
            documents.reverse();
        }
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let batch: ReportBatch = documents
                    .iter()
                    .map(|d| report_at(Timestamp::now(), d, "img-src", "data"))
                    .collect();
                store.write(&batch).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let page = store
        .violations(&tower_csp_reports::store::ViolationQuery::new().page(1, 1000))
        .await
        .unwrap();
    assert_eq!(page.total, 200);
    assert!(page.violations.iter().all(|v| v.count == 60));
}

/// A table made by the first version (no violation tables) is upgraded, and its violation
/// tables are filled from the reports already stored.
#[tokio::test]
async fn the_upgrade_fills_the_violation_tables_from_stored_reports() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    let day = ts("2026-11-22T00:00:00Z");
    let mut reports = store_conformance::seeded(day);
    let mut hostile = report_at(
        day,
        "https://u:p@Host.Example:81/a?b#c",
        "img-src",
        "https://x.example:8443/p?q",
    );
    hostile.fingerprint = Fingerprint::of(&hostile);
    reports.push(hostile);
    store.sink().send(&reports.into()).await.unwrap();
    let before = store
        .violations(&tower_csp_reports::store::ViolationQuery::new().page(1, 100))
        .await
        .unwrap();
    let summary = store
        .summary(TimeRange::all(), &SummaryOptions::new())
        .await
        .unwrap();
    // Back to version 1, as an older collector left it.
    db.client()
        .await
        .batch_execute(
            "DROP TABLE csp_reports_violations, csp_reports_violation_hours, \
             csp_reports_violation_days, csp_reports_hours, csp_reports_claims; DROP INDEX csp_reports_fp, csp_reports_invalid; \
             DELETE FROM tower_csp_reports_migrations WHERE version = 2",
        )
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let after = store
        .violations(&tower_csp_reports::store::ViolationQuery::new().page(1, 100))
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(
        store
            .summary(TimeRange::all(), &SummaryOptions::new())
            .await
            .unwrap(),
        summary
    );
}

/// A schema written by a newer version of the crate is refused, naming both versions.
#[tokio::test]
async fn a_schema_from_a_newer_version_is_refused() {
    let db = TestDb::new().await;
    let store = store(&db).await;
    db.client()
        .await
        .batch_execute("INSERT INTO tower_csp_reports_migrations (table_name, version) VALUES ('csp_reports', 9)")
        .await
        .unwrap();
    let error = store.migrate().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::NewerSchema, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("version 9") && text.contains("up to 2"),
        "{text}"
    );
}
