//! What a message on the stream holds: one [`Report`] as JSON, every field, so that a
//! consumer rebuilds it exactly; its id is the message's `Nats-Msg-Id`.

use bytes::Bytes;

use crate::Report;

/// The message body for a report.
pub(crate) fn encode(report: &Report) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(report).map(Bytes::from)
}

/// The report a message body holds.
pub(crate) fn decode(payload: &[u8]) -> Result<Report, serde_json::Error> {
    serde_json::from_slice(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContentType;
    use crate::parse::{Limits, parse_body};

    #[test]
    fn parsed_reports_round_trip() {
        let bodies: &[(&[u8], ContentType)] = &[
            (
                br#"{"csp-report":{"document-uri":"https://a.example/?q=1","blocked-uri":"inline","violated-directive":"script-src","line-number":3}}"#,
                ContentType::CspReport,
            ),
            (
                br#"[{"type":"csp-violation","age":5,"url":"https://a.example/","user_agent":"UA","body":{"blockedURL":"eval","effectiveDirective":"script-src"}},{"type":"x.y>*","body":{}}]"#,
                ContentType::ReportsJson,
            ),
            (b"\xff\xfe not json \x1b[2J", ContentType::Json),
        ];
        for &(body, content_type) in bodies {
            for report in parse_body(body, content_type, &Limits::default()).reports {
                let payload = encode(&report).unwrap();
                assert_eq!(decode(&payload).unwrap(), report);
            }
        }
    }

    #[test]
    fn what_is_not_a_report_is_refused() {
        for payload in [
            &b""[..],
            b"null",
            b"{}",
            b"[1]",
            b"\xff",
            br#"{"id":"not-an-id"}"#,
        ] {
            assert!(decode(payload).is_err(), "{payload:?}");
        }
    }
}
