//! Properties of the parser over arbitrary input: it never panics, and no bad item loses a
//! good one; with the default privacy applied, no URL keeps a query or fragment, in its
//! field or in the raw JSON.

use proptest::prelude::*;
use tower_csp_reports::parse::{Limits, parse_body};
use tower_csp_reports::{ContentType, Privacy};

fn content_type() -> impl Strategy<Value = ContentType> {
    prop_oneof![
        Just(ContentType::CspReport),
        Just(ContentType::ReportsJson),
        Just(ContentType::Json)
    ]
}

/// Arbitrary JSON values, nested a few levels.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("documentURL"),
            Just("blocked-uri"),
            Just("lineNumber"),
            Just("csp-report"),
            Just("body"),
            Just("type"),
            Just("csp-violation"),
            Just("inline")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("csp-report".to_owned()),
                    Just("body".to_owned()),
                    Just("type".to_owned()),
                    Just("document-uri".to_owned()),
                    Just("effectiveDirective".to_owned()),
                    Just("line-number".to_owned()),
                    Just("age".to_owned()),
                    ".{0,8}".prop_map(|s| s)
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid Reporting API item for document `i`.
fn good_item(i: usize) -> serde_json::Value {
    serde_json::json!({
        "type": "csp-violation",
        "url": format!("https://s.example/{i}"),
        "body": {
            "documentURL": format!("https://s.example/{i}"),
            "effectiveDirective": "img-src",
            "blockedURL": "data",
            "lineNumber": i,
        }
    })
}

/// URLs with what privacy removes, and short text that may look like one.
fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://u:p@a.example:8443/p?q=SECRET#SECRET".to_owned()),
        Just("data:text/html,SECRET?#".to_owned()),
        Just("/relative?SECRET".to_owned()),
        "[a-z/:@?#.\\\\\"é]{0,24}",
    ]
}

/// A CSP report whose URL fields are [`url`]s, legacy or Reporting API, with arbitrary JSON
/// beside them.
fn report_with_urls() -> impl Strategy<Value = serde_json::Value> {
    (url(), url(), url(), url(), url(), json(), any::<bool>()).prop_map(
        |(document, blocked, referrer, source, url, extra, legacy)| {
            if legacy {
                serde_json::json!({"csp-report": {
                    "document-uri": document, "blocked-uri": blocked, "referrer": referrer,
                    "source-file": source, "violated-directive": "img-src", "extra": extra,
                }})
            } else {
                serde_json::json!({"type": "csp-violation", "url": url, "body": {
                    "documentURL": document, "blockedURL": blocked, "referrer": referrer,
                    "sourceFile": source, "effectiveDirective": "img-src", "extra": extra,
                }})
            }
        },
    )
}

/// Fails on a string value under a URL key (spelled any way the parser reads it) that still
/// holds a `?` or a `#`.
fn no_query_under_url_keys(value: &serde_json::Value) -> Result<(), TestCaseError> {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let name: String = key
                    .chars()
                    .filter(|c| !matches!(c, '-' | '_'))
                    .collect::<String>()
                    .to_ascii_lowercase();
                let url_key = matches!(
                    name.as_str(),
                    "documenturi"
                        | "documenturl"
                        | "referrer"
                        | "referer"
                        | "blockeduri"
                        | "blockedurl"
                        | "sourcefile"
                        | "url"
                );
                if let (true, serde_json::Value::String(text)) = (url_key, value) {
                    prop_assert!(!text.contains(['?', '#']), "{key}: {text:?}");
                }
                no_query_under_url_keys(value)?;
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                no_query_under_url_keys(item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), ct in content_type()) {
        let parsed = parse_body(&body, ct, &Limits::default());
        prop_assert!(!parsed.reports.is_empty(), "something is always kept, if only the raw body");
        prop_assert_eq!(parsed.rejection.is_some(), parsed.reports.iter().any(|r| r.format == tower_csp_reports::WireFormat::Unparsed));
    }

    #[test]
    fn arbitrary_json_never_panics(value in json(), ct in content_type()) {
        let body = serde_json::to_vec(&value).unwrap();
        let parsed = parse_body(&body, ct, &Limits::default());
        for report in &parsed.reports {
            prop_assert_eq!(report.is_valid(), report.invalid_reason.is_none());
            if let Some(reason) = &report.invalid_reason {
                prop_assert!(reason.len() <= 256 + 3, "a reason of {} bytes", reason.len());
            }
            let fields = [&report.document_uri, &report.blocked_uri, &report.script_sample, &report.effective_directive];
            for text in fields.into_iter().flatten() {
                prop_assert!(!text.contains(['\r', '\n', '\x1b']), "{text:?}");
            }
        }
    }

    #[test]
    fn every_valid_item_of_a_batch_survives(
        junk in prop::collection::vec(json(), 0..8),
        good in 1usize..8,
        seed in any::<u64>(),
    ) {
        // Interleave the good items among the junk, in an order set by the seed.
        let mut items: Vec<(Option<usize>, serde_json::Value)> =
            junk.into_iter().map(|j| (None, j)).collect();
        for i in 0..good {
            let at = (seed.wrapping_mul(i as u64 + 1) % (items.len() as u64 + 1)) as usize;
            items.insert(at, (Some(i), good_item(i)));
        }
        let body = serde_json::to_vec(&items.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()).unwrap();
        let parsed = parse_body(&body, ContentType::ReportsJson, &Limits::default());
        prop_assert!(parsed.rejection.is_none());
        prop_assert_eq!(parsed.reports.len(), items.len(), "one report per item");
        for ((good, _), report) in items.iter().zip(&parsed.reports) {
            if let Some(i) = good {
                prop_assert!(report.is_valid(), "{:?}", report.invalid_reason);
                let want = format!("https://s.example/{i}");
                prop_assert_eq!(report.document_uri.as_deref(), Some(want.as_str()));
                prop_assert_eq!(report.line_number, Some(*i as u32));
            }
        }
    }

    #[test]
    fn privacy_leaves_no_query_in_fields_or_raw(
        value in prop_oneof![report_with_urls(), json()],
        ct in content_type(),
        batch in any::<bool>(),
    ) {
        let value = if batch { serde_json::Value::Array(vec![value]) } else { value };
        let body = serde_json::to_vec(&value).unwrap();
        let mut parsed = parse_body(&body, ct, &Limits::default());
        for report in &mut parsed.reports {
            Privacy::default().apply(report);
            let fields = [&report.url, &report.document_uri, &report.referrer, &report.blocked_uri, &report.source_file];
            for text in fields.into_iter().flatten() {
                prop_assert!(!text.contains(['?', '#']) && !text.contains("SECRET"), "{text:?}");
            }
            if report.raw_is_json() {
                let raw: serde_json::Value = serde_json::from_str(&report.raw)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {}", report.raw)))?;
                no_query_under_url_keys(&raw)?;
            }
            let once = report.clone();
            Privacy::default().apply(report);
            prop_assert_eq!(&*report, &once, "applying twice changes nothing more");
        }
    }
}
