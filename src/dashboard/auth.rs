//! Logging in: the password check (constant time), the sessions and their cookie, the rate
//! limit on login attempts, and the middleware that keeps every other page behind them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

use super::csrf::same_origin;
use super::pages::login;
use super::state::Shared;
use crate::rate_limit::{RateLimit, RateLimiter};

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "csp_reports_session";

/// The most sessions kept at once; past it the one closest to expiry goes.
const MAX_SESSIONS: usize = 10_000;

/// Login attempts one client address may make: a burst of 5, then one every 12 seconds.
const PER_CLIENT: (u32, Duration) = (5, Duration::from_secs(60));

/// Login attempts all clients together may make: a guesser spread over many addresses
/// gets no more than this.
const OVERALL: (u32, Duration) = (30, Duration::from_secs(60));

/// The password, the sessions and the attempt limits of a dashboard with a login.
pub(crate) struct Auth {
    /// An HMAC of the password under `key`: comparing tags in constant time tells nothing of
    /// the password's length or content.
    password: hmac::Tag,
    key: hmac::Key,
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
    per_client: RateLimiter,
    overall: RateLimiter,
    ttl: Duration,
    secure_cookie: bool,
    random: SystemRandom,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("ttl", &self.ttl)
            .field("secure_cookie", &self.secure_cookie)
            .finish_non_exhaustive()
    }
}

/// The session a request carries, put in its extensions by [`require_login`].
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The cookie's secret (empty without login): what the CSRF token is bound to.
    pub(crate) secret: String,
    /// The CSRF token the page's forms carry.
    pub(crate) token: String,
}

/// Why a login attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Wrong password.
    Wrong,
    /// Too many attempts: wait this long.
    TooMany(Duration),
}

impl Auth {
    pub(crate) fn new(password: &str, ttl: Duration, secure_cookie: bool) -> Self {
        let random = SystemRandom::new();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &random_bytes(&random));
        let limiter = |(burst, period): (u32, Duration)| {
            RateLimiter::new(RateLimit::per_client(burst, period).expect("non-zero limits"))
        };
        Self {
            password: hmac::sign(&key, password.as_bytes()),
            key,
            sessions: Mutex::new(HashMap::new()),
            per_client: limiter(PER_CLIENT),
            overall: limiter(OVERALL),
            ttl,
            secure_cookie,
            random,
        }
    }

    /// Checks a password, after the attempt limits; a new session's secret when right.
    pub(crate) fn login(&self, password: &str, client: Option<IpAddr>) -> Result<String, Refused> {
        if let Some(client) = client {
            self.per_client.check(client).map_err(Refused::TooMany)?;
        }
        self.overall
            .check(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            .map_err(Refused::TooMany)?;
        if hmac::verify(&self.key, password.as_bytes(), self.password.as_ref()).is_err() {
            return Err(Refused::Wrong);
        }
        let secret = hex(&random_bytes(&self.random));
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(session_key(&secret), now + self.ttl);
        Ok(secret)
    }

    /// The secret of the live session the request's cookie names.
    pub(crate) fn session_of(&self, headers: &HeaderMap) -> Option<String> {
        let secret = cookie(headers, COOKIE_NAME)?;
        let expires = *self.lock().get(&session_key(secret))?;
        (expires > Instant::now()).then(|| secret.to_owned())
    }

    /// Ends a session.
    pub(crate) fn logout(&self, secret: &str) {
        self.lock().remove(&session_key(secret));
    }

    /// The `Set-Cookie` of a new session, or (`None`) of one that ends.
    pub(crate) fn set_cookie(&self, secret: Option<&str>, path: &str) -> HeaderValue {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        let (value, age) = match secret {
            Some(secret) => (secret, self.ttl.as_secs()),
            None => ("", 0),
        };
        let path = if path.is_empty() { "/" } else { path };
        HeaderValue::try_from(format!(
            "{COOKIE_NAME}={value}; Path={path}; Max-Age={age}; HttpOnly{secure}; SameSite=Strict"
        ))
        .expect("the base path was checked at build time")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        // The map is left whole by every operation, so a panic elsewhere cannot break it.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sessions are kept by the digest of their secret: the map holds nothing a cookie could be
/// made from.
fn session_key(secret: &str) -> [u8; 32] {
    let mut key = [0; 32];
    key.copy_from_slice(digest(&SHA256, secret.as_bytes()).as_ref());
    key
}

pub(crate) fn random_bytes(random: &SystemRandom) -> [u8; 32] {
    let mut bytes = [0; 32];
    random
        .fill(&mut bytes)
        .expect("the operating system's random source");
    bytes
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// The value of the cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// Keeps every page behind the login (when there is one), refuses cross-site POSTs, and
/// gives the handlers the request's [`Session`].
pub(crate) async fn require_login(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let secret = match state.auth() {
        None => String::new(),
        Some(auth) => match auth.session_of(request.headers()) {
            Some(secret) => secret,
            None => return login::page(&state, StatusCode::UNAUTHORIZED, None),
        },
    };
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let token = state.csrf().token(&secret);
    request.extensions_mut().insert(Session { secret, token });
    next.run(request).await
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    password: String,
}

/// `GET /login`.
pub(crate) async fn login_form(State(state): State<Shared>) -> Response {
    login::page(&state, StatusCode::OK, None)
}

/// `POST /login`: a session cookie and the overview, or the form again.
pub(crate) async fn login_submit(
    State(state): State<Shared>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(auth) = state.auth() else {
        return Redirect::to(&state.link("/")).into_response();
    };
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let client = client.map(|Extension(ConnectInfo(addr))| addr.ip());
    match auth.login(&form.password, client) {
        Ok(secret) => {
            let mut response = Redirect::to(&state.link("/")).into_response();
            response.headers_mut().insert(
                SET_COOKIE,
                auth.set_cookie(Some(&secret), state.cookie_path()),
            );
            response
        }
        Err(Refused::Wrong) => {
            tracing::warn!(target: "csp_reports::dashboard", client = ?client, "failed login");
            login::page(&state, StatusCode::UNAUTHORIZED, Some("Wrong password."))
        }
        Err(Refused::TooMany(wait)) => {
            tracing::warn!(target: "csp_reports::dashboard", client = ?client, "login attempts rate-limited");
            let mut response = login::page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many attempts: wait a minute."),
            );
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::try_from(seconds) {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, value);
            }
            response
        }
    }
}

/// The logout form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(rename = "csrf")]
    token: String,
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !state.csrf().verify(&session.secret, &form.token) {
        return (StatusCode::FORBIDDEN, "invalid CSRF token").into_response();
    }
    let mut response = Redirect::to(&state.link("/login")).into_response();
    if let Some(auth) = state.auth() {
        auth.logout(&session.secret);
        response
            .headers_mut()
            .insert(SET_COOKIE, auth.set_cookie(None, state.cookie_path()));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_opens_a_session() {
        let auth = Auth::new("correct horse", Duration::from_secs(60), true);
        assert_eq!(auth.login("correct hors", None), Err(Refused::Wrong));
        assert_eq!(auth.login("correct horse ", None), Err(Refused::Wrong));
        assert_eq!(auth.login("", None), Err(Refused::Wrong));
        let secret = auth.login("correct horse", None).unwrap();
        assert_eq!(secret.len(), 64);
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::try_from(format!("a=b; {COOKIE_NAME}={secret}")).unwrap(),
        );
        assert_eq!(auth.session_of(&headers).as_deref(), Some(secret.as_str()));
        auth.logout(&secret);
        assert_eq!(auth.session_of(&headers), None);
        headers.insert(COOKIE, HeaderValue::from_static("csp_reports_session=00"));
        assert_eq!(auth.session_of(&headers), None);
    }

    #[test]
    fn failed_logins_are_rate_limited() {
        let auth = Auth::new("pw", Duration::from_secs(60), true);
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..PER_CLIENT.0 {
            assert_eq!(auth.login("guess", Some(client)), Err(Refused::Wrong));
        }
        // Even the right password waits now.
        assert!(matches!(
            auth.login("pw", Some(client)),
            Err(Refused::TooMany(_))
        ));
        assert!(auth.login("pw", Some("192.0.2.8".parse().unwrap())).is_ok());
    }

    #[test]
    fn the_cookie_is_locked_down() {
        let auth = Auth::new("pw", Duration::from_secs(3600), true);
        let cookie = auth.set_cookie(Some("abc"), "/admin");
        assert_eq!(
            cookie.to_str().unwrap(),
            "csp_reports_session=abc; Path=/admin; Max-Age=3600; HttpOnly; Secure; SameSite=Strict"
        );
        let gone = auth.set_cookie(None, "");
        assert!(gone.to_str().unwrap().contains("Max-Age=0"));
    }
}
