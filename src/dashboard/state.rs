//! What every handler reads: the store, the login, the CSRF key and the paths, fixed at
//! build time.

use std::sync::Arc;

use super::auth::Auth;
use super::csrf::CsrfKey;
use crate::CspReportHandle;
use crate::store::ReportStore;

/// The state the router's handlers share.
pub(crate) type Shared = Arc<DashboardState>;

/// The dashboard's configuration and its one piece of runtime state, the sessions (inside
/// [`Auth`]).
#[derive(Debug)]
pub(crate) struct DashboardState {
    store: Arc<dyn ReportStore>,
    auth: Option<Auth>,
    csrf: CsrfKey,
    base: String,
    report_uri: Option<String>,
    collector: Option<CspReportHandle>,
}

impl DashboardState {
    pub(crate) fn new(
        store: Arc<dyn ReportStore>,
        auth: Option<Auth>,
        csrf: CsrfKey,
        base: String,
        report_uri: Option<String>,
        collector: Option<CspReportHandle>,
    ) -> Self {
        Self {
            store,
            auth,
            csrf,
            base,
            report_uri,
            collector,
        }
    }

    pub(crate) fn store(&self) -> &dyn ReportStore {
        &*self.store
    }

    pub(crate) fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }

    pub(crate) fn csrf(&self) -> &CsrfKey {
        &self.csrf
    }

    /// The collector whose counters the overview shows, when given.
    pub(crate) fn collector(&self) -> Option<&CspReportHandle> {
        self.collector.as_ref()
    }

    /// Where the pages' CSP sends its reports.
    pub(crate) fn report_uri(&self) -> Option<&str> {
        self.report_uri.as_deref()
    }

    /// A path of the dashboard, under its base path.
    pub(crate) fn link(&self, path: &str) -> String {
        if path == "/" && !self.base.is_empty() {
            return self.base.clone();
        }
        format!("{}{path}", self.base)
    }

    /// The session cookie's path: the base path, or `/`.
    pub(crate) fn cookie_path(&self) -> &str {
        if self.base.is_empty() {
            "/"
        } else {
            &self.base
        }
    }
}
