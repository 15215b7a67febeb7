//! `csp-reports policy`, driven as a user would: reports sent over HTTP to a running
//! `csp-reports serve` that stores them in a SQLite file, then proposals read from that file
//! as text and JSON, with every option and every error path with its exit code.
#![cfg(feature = "cli")]

#[path = "support/http.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use http_client::{post, send};
use served::Served;
use tower_csp_reports::sqlite::SqliteStore;
use tower_csp_reports::store::ReportStore;
use tower_csp_reports::{Report, ReportBatch};

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

const STRICT: &str = "default-src 'none'; report-uri /csp-report";

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("csp-reports-policy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `csp-reports policy` with `args`, no `CSP_REPORTS_*` from the environment but `env`.
fn policy(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.arg("policy").args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CSP_REPORTS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
        .stdin(Stdio::null())
        .output()
        .expect("run csp-reports policy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A legacy report, as a browser sends it under `policy`.
fn report(document: &str, directive: &str, blocked: &str, policy: &str) -> String {
    serde_json::json!({"csp-report": {
        "document-uri": document,
        "effective-directive": directive,
        "violated-directive": directive,
        "blocked-uri": blocked,
        "original-policy": policy,
        "disposition": "report",
        "line-number": 7,
        "script-sample": if blocked == "inline" { "window.ok = 1" } else { "" },
    }})
    .to_string()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[tokio::test]
async fn proposals_from_a_served_store() {
    let dir = scratch();
    let file = dir.join("reports.db");
    let url = format!("sqlite://{}", file.display());
    let served = Served::start(&["--database-url", &url]);
    let shop = "https://shop.example";
    let bodies = [
        report(
            &format!("{shop}/a?session=1"),
            "script-src-elem",
            &format!("{shop}/app.js"),
            STRICT,
        ),
        report(
            &format!("{shop}/a"),
            "script-src-elem",
            "https://cdn.example/lib.js",
            STRICT,
        ),
        report(
            &format!("{shop}/b"),
            "script-src-elem",
            "https://cdn.example/lib.js",
            STRICT,
        ),
        report(&format!("{shop}/a"), "img-src", "data", STRICT),
        report(&format!("{shop}/b"), "script-src-elem", "inline", STRICT),
        report(&format!("{shop}/b"), "script-src", "eval", STRICT),
        report(&format!("{shop}/a"), "script-src-elem", "data", STRICT),
        report(
            "https://blog.example/p",
            "img-src",
            "https://ads.example/x.png",
            STRICT,
        ),
        // Hostile: nothing of it reaches a header.
        report(
            &format!("{shop}/a"),
            "img-src",
            "https://evil.example;script-src *",
            STRICT,
        ),
    ];
    for body in bodies {
        let answer = send(
            served.addr,
            post("/csp-report", "application/csp-report", body),
        )
        .await;
        assert_eq!(answer.status.as_u16(), 204);
    }
    served.stop();
    let db = ["--database-url", url.as_str()];
    let range = ["--since", "2000-01-01", "--to", "2100-01-01"];
    let args = |more: &[&'static str]| -> Vec<String> {
        db.iter()
            .chain(range.iter())
            .chain(more.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let run = |more: &[&'static str], env: &[(&str, &str)]| {
        let args = args(more);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        policy(&dir, &args, env)
    };

    // JSON: the header, built on the policy the reports carried, the evidence for each source.
    let proposal = json(&run(&["--format", "json"], &[]));
    assert_eq!(
        proposal["header"],
        "default-src 'none'; script-src 'self' https://cdn.example; \
         img-src data: https://ads.example; report-uri /csp-report",
        "{proposal:#}"
    );
    assert_eq!(proposal["current"]["header"], STRICT);
    assert_eq!(proposal["current"]["origin"]["from"], "reported");
    let script = &proposal["changes"][0];
    assert_eq!(script["directive"], "script-src");
    assert_eq!(script["added"][1]["source"], "https://cdn.example");
    assert_eq!(
        (&script["added"][1]["reports"], &script["added"][1]["pages"]),
        (&serde_json::json!(2), &serde_json::json!(2))
    );
    let needs: Vec<(&str, &str, bool)> = proposal["needs_nonce"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["directive"].as_str().unwrap(),
                n["code"].as_str().unwrap(),
                n["allowed_unsafely"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        needs,
        [
            ("script-src", "eval", false),
            ("script-src-elem", "inline", false)
        ]
    );
    let inline = &proposal["needs_nonce"][1];
    assert_eq!(inline["pages"], serde_json::json!([format!("{shop}/b")]));
    assert_eq!(
        (&inline["line"], &inline["sample"]),
        (&serde_json::json!(7), &serde_json::json!("window.ok = 1"))
    );
    let skipped = proposal["skipped"].to_string();
    assert!(skipped.contains("unsafe-scheme"), "{skipped}");
    assert!(skipped.contains("not-expressible"), "{skipped}");

    // Text: the same for people.
    let plain = run(&[], &[]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let plain = text(&plain.stdout);
    assert!(
        plain.contains("+ https://cdn.example  2 reports, 2 pages"),
        "{plain}"
    );
    assert!(plain.contains("Needs a nonce or a hash"), "{plain}");
    assert!(plain.contains("sample: window.ok = 1"), "{plain}");

    // A page prefix, a base, unsafe keywords asked for (the base also from the environment).
    let prefixed = json(&run(
        &[
            "--format",
            "json",
            "--document-prefix",
            "https://blog.example/",
        ],
        &[],
    ));
    assert_eq!(
        prefixed["header"],
        "default-src 'none'; img-src https://ads.example; report-uri /csp-report"
    );
    let based = json(&run(
        &[
            "--format",
            "json",
            "--base",
            "default-src 'self'",
            "--allow-unsafe-inline",
            "--allow-unsafe-eval",
        ],
        &[],
    ));
    assert_eq!(
        based["header"],
        "default-src 'self'; script-src 'self' https://cdn.example 'unsafe-eval'; \
         script-src-elem 'self' https://cdn.example 'unsafe-eval' 'unsafe-inline'; \
         img-src 'self' data: https://ads.example",
        "{based:#}"
    );
    assert_eq!(based["current"]["origin"]["from"], "base");
    let from_env = json(&run(
        &["--format", "json"],
        &[("CSP_REPORTS_BASE_POLICY", "img-src 'none'")],
    ));
    assert_eq!(from_env["header"], "img-src data: https://ads.example");

    // Nothing in the range, or under the prefix: exit 1, and it says so.
    let output = run(&["--document-prefix", "https://nowhere.example/"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let error = text(&output.stderr);
    assert!(error.contains("nothing to build from"), "{error}");
    assert!(error.contains("https://nowhere.example/"), "{error}");
    let past = policy(
        &dir,
        &[db[0], db[1], "--since", "2001-01-01", "--to", "2001-02-01"],
        &[],
    );
    assert_eq!(past.status.code(), Some(1));
    assert!(
        text(&past.stderr).contains("nothing to build from: no violations from 2001-01-01"),
        "{}",
        text(&past.stderr)
    );

    // Bad input: exit 2, naming what is wrong.
    for (more, says) in [
        (
            &["--base", "default-src 'self'; scirpt-src 'self'"][..],
            "invalid --base: unknown directive \"scirpt-src\"",
        ),
        (&["--base", "img-src 'slef'"][..], "in \"img-src\""),
        (&["--base", ""][..], "invalid --base: the policy is empty"),
        (&["--format", "xml"][..], "invalid value 'xml'"),
    ] {
        let output = run(more, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{more:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(says),
            "{more:?}: {}",
            text(&output.stderr)
        );
    }
    for (args, says) in [
        (&[db[0], db[1], "--since", "soon"][..], "invalid --since"),
        (
            &[db[0], db[1], "--to", "2000-01-01", "--since", "2001-01-01"][..],
            "must be before --to",
        ),
        (
            &["--database-url", "sqlite://./missing.db"][..],
            "no database at",
        ),
    ] {
        let output = policy(&dir, args, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(says),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn help_names_every_setting() {
    let help = policy(&scratch(), &["--help"], &[]);
    assert!(help.status.success());
    let help = text(&help.stdout);
    for setting in [
        "--since",
        "--to",
        "--document-prefix",
        "CSP_REPORTS_DOCUMENT_PREFIX",
        "--base",
        "CSP_REPORTS_BASE_POLICY",
        "--format",
        "--allow-unsafe-inline",
        "--allow-unsafe-eval",
        "--include-ignored",
        "--wildcard-threshold",
        "--no-wildcards",
        "--min-reports",
        "--database-url",
        "7 days ago",
    ] {
        assert!(
            help.contains(setting),
            "policy --help lacks {setting}:\n{help}"
        );
    }
}

/// Wildcards and their settings, a minimum of reports, and reports that carry no policy: on a
/// SQLite file written by the library.
#[tokio::test]
async fn wildcards_minimums_and_a_missing_policy() {
    let dir = scratch();
    let file = dir.join("wildcards.db");
    let store = SqliteStore::builder(&file).build().unwrap();
    store.migrate().await.unwrap();
    let mut reports = Vec::new();
    for (document, blocked, policy) in [
        (
            "https://site.example/",
            "https://a.img.example/1.png",
            STRICT,
        ),
        (
            "https://site.example/",
            "https://b.img.example/1.png",
            STRICT,
        ),
        (
            "https://site.example/",
            "https://c.img.example/1.png",
            STRICT,
        ),
        (
            "https://site.example/x",
            "https://c.img.example/2.png",
            STRICT,
        ),
        ("https://bare.example/", "https://cdn.example/1.png", ""),
    ] {
        let mut report = Report::csp(document, "img-src", blocked);
        report.original_policy = Some(policy.into());
        reports.push(report);
    }
    store.write(&ReportBatch::from(reports)).await.unwrap();
    let url = format!("sqlite://{}", file.display());
    let run = |more: &[&str]| {
        let args = [
            &["--database-url", url.as_str(), "--since", "1 day"][..],
            more,
        ]
        .concat();
        policy(&dir, &args, &[])
    };
    let site = [
        "--format",
        "json",
        "--document-prefix",
        "https://site.example/",
    ];
    let header = |more: &[&str]| json(&run(&[&site[..], more].concat()))["header"].clone();
    assert_eq!(
        header(&[]),
        "default-src 'none'; img-src https://*.img.example; report-uri /csp-report"
    );
    let each = "default-src 'none'; img-src https://a.img.example https://b.img.example \
                https://c.img.example; report-uri /csp-report";
    assert_eq!(header(&["--no-wildcards"]), each);
    assert_eq!(header(&["--wildcard-threshold", "4"]), each);
    assert_eq!(
        header(&["--no-wildcards", "--min-reports", "2"]),
        "default-src 'none'; img-src https://c.img.example; report-uri /csp-report"
    );

    let bare = ["--document-prefix", "https://bare.example/"];
    let output = run(&bare);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("with --base"),
        "{}",
        text(&output.stderr)
    );
    let based = json(&run(&[
        &bare[..],
        &["--format", "json", "--base", "img-src 'self'"],
    ]
    .concat()));
    assert_eq!(based["header"], "img-src 'self' https://cdn.example");

    for (more, says) in [
        (&["--wildcard-threshold", "1"][..], "--wildcard-threshold"),
        (
            &["--no-wildcards", "--wildcard-threshold", "3"][..],
            "cannot be used with",
        ),
        (&["--min-reports", "0"][..], "--min-reports"),
    ] {
        let output = run(more);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{more:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(says),
            "{more:?}: {}",
            text(&output.stderr)
        );
    }
}
