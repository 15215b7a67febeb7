//! Throughput and CPU cost per report of the NATS path on loopback: `NatsSink` publishing
//! into a JetStream stream, then a `NatsConsumer` draining it into a sink that only counts.
//!
//! ```text
//! cargo run --release --features nats --example nats_throughput -- [reports] [batch] [concurrency]
//! ```
//!
//! Defaults: 200,000 reports, batches of 500, 4 batches at once (as `SinkOptions::batch_size`
//! and `concurrency` would hand them to the sink). It starts its own `nats-server -js` (file
//! storage, in a temporary directory; see `tests/support/nats.rs`), or uses `NATS_URL` with
//! `NATS_PID` (the server's pid, for its CPU time) when set. It prints a table, then one
//! JSON line (`{"publish": {...}, "consume": {...}}`) for the load-test script.
//!
//! CPU is user + system time from `/proc`, for this process and for the server, divided by
//! the reports: what each part costs per report, the figures `deploy/SCALING.md` sizes a
//! deployment with.

#[path = "../tests/support/nats.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tower_csp_reports::nats::{NatsConsumer, NatsSink, StreamSettings};
use tower_csp_reports::sink::sink_fn;
use tower_csp_reports::{Report, ReportBatch, ReportSink, WireFormat};

/// A Reporting API report about as large as a real one (about 1.4 KB of JSON).
fn report(n: usize) -> Report {
    let page = format!(
        "https://shop.example/catalog/{}?utm_source=mail&id={n}",
        n % 113
    );
    let blocked = format!("https://tags{}.analytics.example/collect.js", n % 17);
    let mut report = Report::csp(&page, "script-src-elem", &blocked);
    report.format = WireFormat::ReportingApi;
    report.age_ms = Some(40);
    report.user_agent = Some(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/132.0.0.0 Safari/537.36"
            .into(),
    );
    report.client_ip = Some(std::net::IpAddr::from([198, 51, 100, (n % 200) as u8]));
    report.url = report.document_uri.clone();
    report.original_policy = Some(
        "default-src 'self'; script-src 'self' https://static.shop.example; \
         img-src 'self' data: https:; report-to csp"
            .into(),
    );
    report.disposition = Some("enforce".into());
    report.status_code = Some(200);
    report.source_file = Some("https://static.shop.example/app.min.js".into());
    report.line_number = Some(1);
    report.column_number = Some(4711);
    report.raw = serde_json::json!([{
        "type": "csp-violation", "age": 40, "url": page, "user_agent": report.user_agent,
        "body": {
            "documentURL": page, "blockedURL": blocked, "effectiveDirective": "script-src-elem",
            "originalPolicy": report.original_policy, "disposition": "enforce",
            "statusCode": 200, "sourceFile": report.source_file, "lineNumber": 1,
            "columnNumber": 4711
        }
    }])
    .to_string()
    .into();
    report
}

/// User + system CPU time of a process so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Some(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// Wall time and CPU of this process and of the server over one phase.
struct Phase {
    wall: Duration,
    own_cpu: Option<Duration>,
    server_cpu: Option<Duration>,
    reports: usize,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.reports as f64 / self.wall.as_secs_f64()
    }

    fn micros_per_report(cpu: Option<Duration>, reports: usize) -> Option<f64> {
        cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / reports as f64)
    }

    fn json(&self) -> String {
        let show = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.2}"));
        format!(
            r#"{{"reports":{},"seconds":{:.3},"reports_per_s":{:.0},"client_cpu_us_per_report":{},"server_cpu_us_per_report":{}}}"#,
            self.reports,
            self.wall.as_secs_f64(),
            self.per_second(),
            show(Self::micros_per_report(self.own_cpu, self.reports)),
            show(Self::micros_per_report(self.server_cpu, self.reports)),
        )
    }

    fn line(&self, what: &str) -> String {
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        format!(
            "{what:<9} {:>9} reports in {:>6.2} s  {:>9.0} reports/s  CPU/report: this process {:>6} µs, nats-server {:>6} µs",
            self.reports,
            self.wall.as_secs_f64(),
            self.per_second(),
            show(Self::micros_per_report(self.own_cpu, self.reports)),
            show(Self::micros_per_report(self.server_cpu, self.reports)),
        )
    }
}

fn measure(server_pid: Option<&str>) -> impl FnOnce(usize) -> Phase + use<> {
    let server_pid = server_pid.map(str::to_owned);
    let own = cpu_time("self");
    let server = server_pid.as_deref().and_then(cpu_time);
    let started = Instant::now();
    move |reports| {
        let wall = started.elapsed();
        let own_cpu = own.zip(cpu_time("self")).map(|(a, b)| b - a);
        let server_cpu = server
            .zip(server_pid.as_deref().and_then(cpu_time))
            .map(|(a, b)| b - a);
        Phase {
            wall,
            own_cpu,
            server_cpu,
            reports,
        }
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("arguments: [reports] [batch] [concurrency]")
        })
        .collect();
    let total = args.first().copied().unwrap_or(200_000);
    let batch_size = args.get(1).copied().unwrap_or(500);
    let concurrency = args.get(2).copied().unwrap_or(4);

    let own_server = std::env::var("NATS_URL")
        .is_err()
        .then(support::NatsServer::start_new);
    let url = std::env::var("NATS_URL")
        .unwrap_or_else(|_| own_server.as_ref().map(support::NatsServer::url).unwrap());
    let server_pid = std::env::var("NATS_PID").ok().or_else(|| {
        let dir = own_server.as_ref()?.dir().to_owned();
        Some(
            std::fs::read_to_string(dir.join("nats.pid"))
                .ok()?
                .trim()
                .to_owned(),
        )
    });

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let stream = StreamSettings::new()
            .name("CSP_REPORTS_BENCH")
            .subject_prefix("bench.csp")
            .max_bytes(4 << 30);
        let sink = NatsSink::builder(&url)
            .stream(stream.clone())
            .build()
            .expect("settings")
            .connect()
            .await
            .expect("connect");
        let batches: Vec<ReportBatch> = (0..total.div_ceil(batch_size))
            .map(|b| {
                (b * batch_size..((b + 1) * batch_size).min(total))
                    .map(report)
                    .collect()
            })
            .collect();
        let bytes = serde_json::to_vec(&report(0)).unwrap().len();

        let done = measure(server_pid.as_deref());
        let sink = Arc::new(sink);
        let batches = Arc::new(batches);
        let next = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (sink, batches, next) =
                    (Arc::clone(&sink), Arc::clone(&batches), Arc::clone(&next));
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(batch) = batches.get(i) else { return };
                        sink.send(batch).await.expect("publish");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        let publish = done(total);
        assert_eq!(sink.stats().published as usize, total);
        drop(batches);

        let counted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&counted);
        let counting = sink_fn(move |batch: ReportBatch| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
                Ok(())
            }
        });
        let consumer = NatsConsumer::builder(&url, counting)
            .stream(stream)
            .durable("bench")
            .batch_size(batch_size)
            .max_ack_pending(batch_size * 4)
            .build()
            .expect("settings")
            .connect()
            .await
            .expect("connect");
        let done = measure(server_pid.as_deref());
        let watched = Arc::clone(&counted);
        consumer
            .run(async move {
                while watched.load(Ordering::Relaxed) < total as u64 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        let consume = done(total);
        assert_eq!(consumer.stats().delivered as usize, total);

        println!(
            "NATS JetStream on loopback, file storage; {total} reports of {bytes} bytes of JSON, \
             batches of {batch_size}, {concurrency} batches at once"
        );
        println!("{}", publish.line("publish"));
        println!("{}", consume.line("consume"));
        println!(
            r#"{{"publish":{},"consume":{}}}"#,
            publish.json(),
            consume.json()
        );
    });
}
