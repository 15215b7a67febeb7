//! Cross-site request forgery: every state-changing request is a POST that carries a token
//! bound to the session, and comes from a page of the dashboard's own origin.
//!
//! The token is an HMAC of the session's secret under a key made at start, so it needs no
//! storage and cannot be computed from another origin. On top of it, a POST whose `Origin`
//! is not the request's own host, or that the browser marks `Sec-Fetch-Site: cross-site`,
//! is refused before its form is read (this is what protects the login form itself).

use http::HeaderMap;
use http::header::{HOST, ORIGIN};
use ring::hmac;

use super::auth::hex;

/// The name of the form field that carries the token.
pub(crate) const FIELD: &str = "csrf";

/// Makes and checks the tokens.
pub(crate) struct CsrfKey {
    key: hmac::Key,
}

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    pub(crate) fn new(secret: &[u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The token of a session (its secret; empty when the dashboard has no login).
    pub(crate) fn token(&self, session: &str) -> String {
        hex(hmac::sign(&self.key, session.as_bytes()).as_ref())
    }

    /// Whether `token` is the session's, compared in constant time.
    pub(crate) fn verify(&self, session: &str, token: &str) -> bool {
        let Some(tag) = unhex(token) else {
            return false;
        };
        hmac::verify(&self.key, session.as_bytes(), &tag).is_ok()
    }
}

/// Whether a POST may come from the dashboard's own pages, judged by the headers a browser
/// sets and a page cannot: `Sec-Fetch-Site` when present, else `Origin` against `Host`.
/// Clients that send neither (scripts, `curl`) pass; the token still has to be right.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), headers.get(HOST).map(|h| h.to_str()))
    else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn tokens_are_bound_to_the_session() {
        let key = CsrfKey::new(&[7; 32]);
        let other = CsrfKey::new(&[8; 32]);
        let token = key.token("session-a");
        assert_eq!(token.len(), 64);
        assert!(key.verify("session-a", &token));
        assert!(!key.verify("session-b", &token));
        assert!(!other.verify("session-a", &token));
        for bad in ["", "zz", &token[..62], "é", &format!("{token}00")] {
            assert!(!key.verify("session-a", bad), "{bad:?}");
        }
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        for (pairs, allowed) in [
            (&[][..], true),
            (&[("sec-fetch-site", "same-origin")][..], true),
            (&[("sec-fetch-site", "cross-site")][..], false),
            (&[("sec-fetch-site", "same-site")][..], false),
            (
                &[
                    ("host", "a.example:8081"),
                    ("origin", "http://a.example:8081"),
                ][..],
                true,
            ),
            (
                &[
                    ("host", "a.example:8081"),
                    ("origin", "http://evil.example"),
                ][..],
                false,
            ),
            (&[("host", "a.example"), ("origin", "null")][..], false),
            (&[("origin", "http://a.example")][..], false),
        ] {
            assert_eq!(same_origin(&headers(pairs)), allowed, "{pairs:?}");
        }
    }
}
