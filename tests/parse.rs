//! The parser against a corpus of real browser payload shapes and malformed input.

use tower_csp_reports::parse::{Limits, parse_body};
use tower_csp_reports::{ContentType, Report, WireFormat};

/// What one parsed item must look like; `None` fields are not checked.
#[derive(Default)]
struct Expect {
    format: Option<WireFormat>,
    valid: bool,
    reason: Option<&'static str>,
    report_type: Option<&'static str>,
    document: Option<&'static str>,
    blocked: Option<&'static str>,
    directive: Option<&'static str>,
    violated: Option<&'static str>,
    line: Option<u32>,
    sample: Option<&'static str>,
    disposition: Option<&'static str>,
}

fn ok(
    format: WireFormat,
    document: &'static str,
    directive: &'static str,
    blocked: &'static str,
) -> Expect {
    Expect {
        format: Some(format),
        valid: true,
        report_type: Some("csp-violation"),
        document: Some(document),
        directive: Some(directive),
        blocked: Some(blocked),
        ..Expect::default()
    }
}

fn bad(format: WireFormat, reason: &'static str) -> Expect {
    Expect {
        format: Some(format),
        valid: false,
        reason: Some(reason),
        ..Expect::default()
    }
}

struct Case {
    file: &'static str,
    content_type: ContentType,
    rejection: Option<&'static str>,
    items: Vec<Expect>,
}

fn check(case: &Case, i: usize, report: &Report, expect: &Expect) {
    let at = format!("{} item {i}", case.file);
    assert_eq!(
        report.is_valid(),
        expect.valid,
        "{at}: validity ({:?})",
        report.invalid_reason
    );
    if let Some(format) = expect.format {
        assert_eq!(report.format, format, "{at}: format");
    }
    if let Some(reason) = expect.reason {
        let got = report.invalid_reason.as_deref().unwrap_or_default();
        assert!(
            got.contains(reason),
            "{at}: reason {got:?} lacks {reason:?}"
        );
    }
    let pairs = [
        ("type", expect.report_type, Some(&*report.report_type)),
        ("document", expect.document, report.document()),
        ("blocked", expect.blocked, report.blocked_uri.as_deref()),
        (
            "directive",
            expect.directive,
            report.effective_directive.as_deref(),
        ),
        (
            "violated",
            expect.violated,
            report.violated_directive.as_deref(),
        ),
        ("sample", expect.sample, report.script_sample.as_deref()),
        (
            "disposition",
            expect.disposition,
            report.disposition.as_deref(),
        ),
    ];
    for (name, want, got) in pairs {
        if want.is_some() {
            assert_eq!(got, want, "{at}: {name}");
        }
    }
    if expect.line.is_some() {
        assert_eq!(report.line_number, expect.line, "{at}: line");
    }
    assert!(
        !report.raw.is_empty() || case.file == "empty.txt",
        "{at}: raw kept"
    );
}

#[test]
fn corpus() {
    use ContentType::*;
    use WireFormat::*;
    let cases = vec![
        Case {
            file: "chromium_reporting_api.json",
            content_type: ReportsJson,
            rejection: None,
            items: vec![
                Expect {
                    line: Some(12),
                    sample: Some("alert(1)"),
                    disposition: Some("enforce"),
                    violated: Some("script-src-elem"),
                    ..ok(
                        ReportingApi,
                        "https://site.example/page?session=1",
                        "script-src-elem",
                        "inline",
                    )
                },
                Expect {
                    disposition: Some("report"),
                    ..ok(
                        ReportingApi,
                        "https://site.example/page?session=1",
                        "img-src",
                        "https://images.example/cat.png",
                    )
                },
            ],
        },
        Case {
            file: "firefox_reporting_api.json",
            content_type: ReportsJson,
            rejection: None,
            items: vec![Expect {
                sample: Some("eval(\"1+1\")"),
                line: Some(3),
                ..ok(ReportingApi, "https://site.example/", "script-src", "eval")
            }],
        },
        Case {
            file: "safari_single.json",
            content_type: CspReport,
            rejection: None,
            items: vec![Expect {
                line: Some(0),
                sample: None,
                ..ok(
                    ReportingApiSingle,
                    "https://site.example/checkout",
                    "script-src-elem",
                    "https://cdn.example/lib.js",
                )
            }],
        },
        Case {
            file: "legacy_chromium.json",
            content_type: CspReport,
            rejection: None,
            items: vec![Expect {
                line: Some(9),
                sample: Some("color: red"),
                disposition: Some("enforce"),
                ..ok(Legacy, "http://127.0.0.1:3000/", "style-src-attr", "inline")
            }],
        },
        Case {
            file: "legacy_firefox_old.json",
            content_type: CspReport,
            rejection: None,
            items: vec![Expect {
                violated: Some("img-src 'self'"),
                ..ok(
                    Legacy,
                    "https://site.example/news#top",
                    "img-src",
                    "https://ads.example/pixel.gif",
                )
            }],
        },
        Case {
            file: "legacy_bare_webkit.json",
            content_type: Json,
            rejection: None,
            items: vec![Expect {
                line: Some(7),
                ..ok(
                    LegacyBare,
                    "https://site.example/old",
                    "script-src",
                    "https://tracker.example/t.js",
                )
            }],
        },
        Case {
            file: "mixed_batch.json",
            content_type: ReportsJson,
            rejection: None,
            items: vec![
                ok(
                    ReportingApi,
                    "https://site.example/a",
                    "script-src-elem",
                    "inline",
                ),
                bad(ReportingApi, "expected a JSON object"),
                bad(ReportingApi, "line-number out of range: -1"),
                bad(ReportingApi, "missing effective-directive"),
                bad(ReportingApi, "line-number is not a number"),
                Expect {
                    format: Some(ReportingApi),
                    valid: true,
                    report_type: Some("deprecation"),
                    document: Some("https://site.example/e"),
                    ..Expect::default()
                },
                bad(ReportingApi, "status-code out of range: 1000"),
                bad(ReportingApi, "body: invalid type: string"),
                Expect {
                    sample: Some("eval(x)"),
                    ..ok(ReportingApi, "https://site.example/h", "script-src", "eval")
                },
            ],
        },
        Case {
            file: "other_types.json",
            content_type: ReportsJson,
            rejection: None,
            items: [
                "intervention",
                "network-error",
                "coep",
                "permissions-policy-violation",
            ]
            .into_iter()
            .map(|kind| Expect {
                format: Some(ReportingApi),
                valid: true,
                report_type: Some(kind),
                document: Some("https://site.example/"),
                ..Expect::default()
            })
            .collect(),
        },
        Case {
            file: "extension_noise.json",
            content_type: CspReport,
            rejection: None,
            items: vec![ok(
                Legacy,
                "https://site.example/",
                "script-src-elem",
                "chrome-extension",
            )],
        },
        Case {
            file: "numbers_as_strings.json",
            content_type: CspReport,
            rejection: None,
            items: vec![Expect {
                line: Some(12),
                ..ok(Legacy, "https://site.example/", "img-src", "data")
            }],
        },
        Case {
            file: "huge_number.json",
            content_type: CspReport,
            rejection: None,
            items: vec![bad(Legacy, "line-number out of range")],
        },
        Case {
            file: "fractional_number.json",
            content_type: CspReport,
            rejection: None,
            items: vec![bad(Legacy, "column-number out of range: 1.5")],
        },
        Case {
            file: "control_chars.json",
            content_type: CspReport,
            rejection: None,
            items: vec![Expect {
                sample: Some("\\u{1b}[31mred\\u{1b}[0m\\u{2028}x"),
                ..ok(
                    Legacy,
                    "https://site.example/\\r\\nFAKE LOG LINE",
                    "script-src-elem",
                    "inline",
                )
            }],
        },
        Case {
            file: "duplicate_keys.json",
            content_type: CspReport,
            rejection: None,
            items: vec![ok(Legacy, "https://second.example/", "img-src", "data")],
        },
        Case {
            file: "wrong_types.json",
            content_type: CspReport,
            rejection: None,
            items: vec![bad(Legacy, "document-uri is not a string")],
        },
        Case {
            file: "empty_object.json",
            content_type: CspReport,
            rejection: None,
            items: vec![bad(Legacy, "no report fields")],
        },
        Case {
            file: "empty.txt",
            content_type: CspReport,
            rejection: Some("empty body"),
            items: vec![bad(Unparsed, "empty body")],
        },
        Case {
            file: "not_json.txt",
            content_type: Json,
            rejection: Some("body is not valid JSON"),
            items: vec![bad(Unparsed, "not valid JSON")],
        },
        Case {
            file: "json_scalar.json",
            content_type: Json,
            rejection: Some("body is JSON but neither an object nor an array"),
            items: vec![bad(Unparsed, "neither an object nor an array")],
        },
        Case {
            file: "invalid_utf8.bin",
            content_type: CspReport,
            rejection: Some("body is not valid UTF-8"),
            items: vec![bad(Unparsed, "UTF-8")],
        },
        Case {
            file: "deep_nesting.json",
            content_type: ReportsJson,
            rejection: None,
            items: vec![bad(ReportingApi, "expected a JSON object")],
        },
        Case {
            file: "deep_in_field.json",
            content_type: ReportsJson,
            rejection: None,
            items: vec![
                bad(ReportingApi, "script-sample is not a string"),
                ok(ReportingApi, "https://site.example/ok", "img-src", "data"),
            ],
        },
        Case {
            file: "deep_objects.json",
            content_type: CspReport,
            rejection: None,
            items: vec![bad(Legacy, "missing effective-directive")],
        },
    ];
    for case in &cases {
        let path = format!(
            "{}/tests/fixtures/{}",
            env!("CARGO_MANIFEST_DIR"),
            case.file
        );
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let parsed = parse_body(&body, case.content_type, &Limits::default());
        assert_eq!(parsed.rejection, case.rejection, "{}: rejection", case.file);
        assert_eq!(
            parsed.reports.len(),
            case.items.len(),
            "{}: item count",
            case.file
        );
        for (i, (report, expect)) in parsed.reports.iter().zip(&case.items).enumerate() {
            check(case, i, report, expect);
        }
    }
}

#[test]
fn raw_item_is_kept_exactly() {
    let body = br#"[{"type":"csp-violation","body":{"documentURL":"https://a.example/","effectiveDirective":"img-src"}} , 7]"#;
    let parsed = parse_body(body, ContentType::ReportsJson, &Limits::default());
    assert_eq!(
        parsed.reports[0].raw,
        r#"{"type":"csp-violation","body":{"documentURL":"https://a.example/","effectiveDirective":"img-src"}}"#
    );
    assert_eq!(parsed.reports[1].raw, "7");
}

#[test]
fn limits_cap_reports_and_fields() {
    let item = r#"{"type":"csp-violation","body":{"documentURL":"https://a.example/","effectiveDirective":"img-src","sample":"0123456789abcdefghijklmnopqrstuvwxyz"}}"#;
    let body = format!("[{}]", [item; 7].join(","));
    let mut limits = Limits::default();
    limits.max_reports = 5;
    limits.max_field_length = 20;
    let parsed = parse_body(body.as_bytes(), ContentType::ReportsJson, &limits);
    assert_eq!(parsed.reports.len(), 5);
    assert_eq!(parsed.truncated, 2);
    let sample = parsed.reports[0].script_sample.as_deref().unwrap();
    assert!(sample.len() <= 20 + '…'.len_utf8(), "{sample:?}");
    assert_eq!(sample, "0123456789abcdefghij…");
    assert!(
        parsed.reports[0]
            .raw
            .contains("0123456789abcdefghijklmnopqrstuvwxyz")
    );
}

#[test]
fn fingerprint_groups_the_same_violation() {
    let parse = |doc: &str, blocked: &str, directive: &str| {
        let body = format!(
            r#"{{"csp-report":{{"document-uri":"{doc}","blocked-uri":"{blocked}","effective-directive":"{directive}"}}}}"#
        );
        parse_body(body.as_bytes(), ContentType::CspReport, &Limits::default()).reports[0]
            .fingerprint
    };
    let base = parse(
        "https://s.example/p?a=1",
        "https://cdn.example/x.js",
        "script-src-elem",
    );
    assert_eq!(
        base,
        parse(
            "https://s.example/p?b=2#f",
            "https://cdn.example/y.js?v=3",
            "script-src-elem"
        )
    );
    assert_ne!(
        base,
        parse(
            "https://s.example/q",
            "https://cdn.example/x.js",
            "script-src-elem"
        )
    );
    assert_ne!(
        base,
        parse(
            "https://s.example/p",
            "https://other.example/x.js",
            "script-src-elem"
        )
    );
    assert_ne!(
        base,
        parse("https://s.example/p", "https://cdn.example/x.js", "img-src")
    );
    // Stable across processes and versions, so stored fingerprints keep matching: this is
    // FNV-1a 64 of "script-src-elem", "inline", "https://s.example/", each followed by 0xff.
    assert_eq!(
        parse("https://s.example/", "inline", "script-src-elem").to_string(),
        "950cebed40c87358"
    );
}
