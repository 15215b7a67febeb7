//! [`DashboardBuilder`], which checks every setting once, and the [`Dashboard`] it builds.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ring::rand::SystemRandom;

use super::auth::{Auth, random_bytes};
use super::csrf::CsrfKey;
use super::router::router;
use super::state::{DashboardState, Shared};
use crate::CspReportHandle;
use crate::error::ConfigError;
use crate::store::ReportStore;

/// The longest session that can be set: a week.
const MAX_SESSION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A built dashboard: hand its [`router`](Self::router) to your server, or merge it into
/// your axum app.
///
/// Made by [`Dashboard::builder`]. Every router taken from one dashboard shares its
/// sessions.
#[derive(Debug, Clone)]
pub struct Dashboard {
    state: Shared,
}

/// Configures a [`Dashboard`]; [`build`](Self::build) checks the settings.
#[derive(Debug)]
#[must_use]
pub struct DashboardBuilder {
    store: Arc<dyn ReportStore>,
    password: Option<String>,
    without_auth: bool,
    base_path: String,
    report_uri: Option<String>,
    session_ttl: Duration,
    secure_cookie: bool,
    collector: Option<CspReportHandle>,
}

impl Dashboard {
    /// A dashboard over `store`. It needs a [`password`](DashboardBuilder::password), or to
    /// be told it sits [`without_auth`](DashboardBuilder::without_auth) behind the app's
    /// own.
    pub fn builder(store: Arc<dyn ReportStore>) -> DashboardBuilder {
        DashboardBuilder {
            store,
            password: None,
            without_auth: false,
            base_path: String::new(),
            report_uri: None,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookie: true,
            collector: None,
        }
    }

    /// The dashboard as an axum [`Router`] (a tower `Service`), with every path under the
    /// [base path](DashboardBuilder::base_path). Serve it, or `merge` it into your router.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }
}

impl DashboardBuilder {
    /// The password of the login form (required unless [`without_auth`](Self::without_auth)).
    /// It is compared in constant time, and failed attempts are rate-limited per client
    /// address (5 a minute) and overall (30 a minute).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// No login: for an app that mounts the dashboard behind its own authentication. Forms
    /// still carry CSRF tokens and cross-site posts are still refused.
    pub fn without_auth(mut self) -> Self {
        self.without_auth = true;
        self
    }

    /// The path the dashboard is mounted under (`/admin/csp`; default: the root). Links,
    /// forms and the session cookie use it.
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        self.base_path = path.into();
        self
    }

    /// Where the pages' own Content-Security-Policy reports violations: a report path of
    /// your collector, so that the dashboard shows any it commits (it should show none).
    /// Default: not reported.
    pub fn report_uri(mut self, uri: impl Into<String>) -> Self {
        self.report_uri = Some(uri.into());
        self
    }

    /// How long a session lasts (default 12 hours, at most a week).
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Whether the session cookie is marked `Secure` (default `true`). Browsers keep a
    /// `Secure` cookie over plain HTTP only from `localhost` and loopback addresses: turn it
    /// off only behind a proxy that serves the dashboard over HTTPS on another name and
    /// talks HTTP to it.
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// A collector's handle: the overview then shows its counters since start (received,
    /// filtered), which the store cannot know.
    pub fn collector(mut self, handle: CspReportHandle) -> Self {
        self.collector = Some(handle);
        self
    }

    /// Checks the settings and builds the dashboard.
    pub fn build(self) -> Result<Dashboard, ConfigError> {
        let invalid = |setting, reason: &str| ConfigError::Invalid {
            setting,
            reason: reason.to_owned(),
        };
        let auth = match (self.password, self.without_auth) {
            (Some(_), true) => {
                return Err(invalid(
                    "password",
                    "a password was given with without_auth",
                ));
            }
            (None, false) => {
                return Err(invalid(
                    "password",
                    "the dashboard needs a password (or without_auth behind your own login)",
                ));
            }
            (Some(password), false) if password.is_empty() => {
                return Err(invalid("password", "the password is empty"));
            }
            (Some(password), false) => Some(password),
            (None, true) => None,
        };
        let base = self.base_path.trim_end_matches('/').to_owned();
        let plain = |c: char| c.is_ascii_alphanumeric() || "/-_.~".contains(c);
        if !base.is_empty()
            && (!base.starts_with('/') || !base.chars().all(plain) || base.contains("//"))
        {
            return Err(invalid(
                "base_path",
                "it must start with '/' and hold only letters, digits and / - _ . ~",
            ));
        }
        if let Some(uri) = &self.report_uri
            && (uri.is_empty()
                || uri
                    .contains(|c: char| c.is_whitespace() || c.is_control() || ";,'\"".contains(c)))
        {
            return Err(invalid(
                "report_uri",
                "it must be a URL or path without white space, quotes, ';' or ','",
            ));
        }
        if self.session_ttl.is_zero() || self.session_ttl > MAX_SESSION {
            return Err(invalid(
                "session_ttl",
                "it must be between a second and a week",
            ));
        }
        let auth = auth.map(|password| Auth::new(&password, self.session_ttl, self.secure_cookie));
        let csrf = CsrfKey::new(&random_bytes(&SystemRandom::new()));
        Ok(Dashboard {
            state: Arc::new(DashboardState::new(
                self.store,
                auth,
                csrf,
                base,
                self.report_uri,
                self.collector,
            )),
        })
    }
}
