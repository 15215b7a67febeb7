//! The dashboard: a web UI over any [`ReportStore`](crate::store::ReportStore) to see and
//! triage violations, as an axum [`Router`](axum::Router) (a tower `Service`) that an app
//! mounts or a server serves (`csp-reports serve --admin-listen`). Feature `dashboard`.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use std::sync::Arc;
//! use tower::ServiceExt as _;
//! use tower_csp_reports::dashboard::Dashboard;
//! use tower_csp_reports::sqlite::SqliteStore;
//! use tower_csp_reports::store::ReportStore;
//!
//! let path = std::env::temp_dir().join(format!("csp-dashboard-doc-{}.db", std::process::id()));
//! let store: Arc<dyn ReportStore> = Arc::new(SqliteStore::builder(&path).build()?);
//! store.migrate().await?;
//!
//! let dashboard = Dashboard::builder(store.clone())
//!     .password("a long passphrase")
//!     .base_path("/admin/csp")
//!     .report_uri("/csp-report")
//!     .build()?;
//! // Merge it into your app: `app.merge(dashboard.router())`. Without a session, no data:
//! let request = http::Request::get("/admin/csp/violations").body(axum::body::Body::empty())?;
//! let response = dashboard.router().oneshot(request).await?;
//! assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
//! let policy = response.headers()["content-security-policy"].to_str()?;
//! assert!(policy.starts_with("default-src 'none'"));
//!
//! // Behind your own authentication instead:
//! let open = Dashboard::builder(store).without_auth().build()?;
//! let request = http::Request::get("/violations").body(axum::body::Body::empty())?;
//! assert_eq!(open.router().oneshot(request).await?.status(), http::StatusCode::OK);
//! assert!(Dashboard::builder(Arc::new(SqliteStore::builder(&path).build()?)).build().is_err());
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Pages
//!
//! - **Overview** (`/`): a range's totals, reports per hour stacked by directive (SVG drawn
//!   by the server), the new and regressed violations, top documents and blocked hosts.
//! - **Violations** (`/violations`): filter by text, directive, status, document host and
//!   range, sort, page; select several and acknowledge, ignore, mark fixed or reopen, with a
//!   note.
//! - **Violation** (`/violations/{fingerprint}`): its hourly chart, documents, browsers and
//!   dispositions, the violated policy with the directive marked, its latest reports as
//!   sent, pretty-printed; its status and note.
//! - **Reports** (`/reports`) and **Invalid** (`/invalid`): raw reports of any filter,
//!   newest first; exports of any filtered view as CSV or JSON
//!   (`/export/{reports,violations}.{csv,json}`), streamed.
//!
//! # Security
//!
//! Every report field was written by whoever posted to the public endpoint, so:
//! - pages are rendered with maud, which escapes text and attribute values; only `http(s)`
//!   URLs become links (never `javascript:`), with `rel="noopener noreferrer"`;
//! - every answer carries a strict Content-Security-Policy (`default-src 'none';
//!   style-src 'self'`: no script at all, the stylesheet served by the dashboard, no inline
//!   style), `X-Frame-Options: DENY`, `nosniff`, `Referrer-Policy: no-referrer`,
//!   `Cache-Control: no-store`; with [`report_uri`](DashboardBuilder::report_uri) its own
//!   violations go to your collector;
//! - the login compares the password in constant time and rate-limits attempts; the session
//!   cookie is `HttpOnly; Secure; SameSite=Strict`; sessions live in memory (a restart logs
//!   everyone out);
//! - state changes only on POST, with a CSRF token bound to the session, and cross-site
//!   POSTs (by `Sec-Fetch-Site` or `Origin`) are refused;
//! - pages are not compressed (a CSRF token beside attacker-chosen text would make them
//!   open to BREACH); exports are.
//!
//! The dashboard only reads through the [`ReportStore`](crate::store::ReportStore) trait
//! (and sets statuses and notes), so it works alike over SQLite, Postgres or your store.

mod auth;
mod builder;
mod chart;
mod csrf;
mod escape;
mod export;
mod pages;
mod params;
mod router;
mod state;
mod style;

pub use axum;
pub use builder::{Dashboard, DashboardBuilder};
