//! [`CspReportLayer`]: the builder and the settings shared by every service it makes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tower_layer::Layer;

use crate::cors::Cors;
use crate::dispatch::{
    Dispatch, Dispatcher, ErrorHook, SinkFailure, SinkOptions, default_error_hook,
};
use crate::error::ConfigError;
use crate::filter::{DefaultFilter, Filter};
use crate::handle::{Counters, CspReportHandle};
use crate::parse::Limits;
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::sample::{Sampler, Sampling};
use crate::service::CspReport;
use crate::sink::{ReportSink, TracingSink};

pub(crate) type ClientIp = Arc<dyn Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync>;

/// A [`Layer`] that answers browsers' CSP reports on its report paths and passes every other
/// request to the inner service untouched.
///
/// Configure it fully, then take its [`handle`](Self::handle) and apply it. Settings that
/// can be wrong return a [`ConfigError`] as they are made, never at request time.
///
/// | setting | default |
/// |---|---|
/// | [`path`](Self::path) / [`paths`](Self::paths) | `/csp-report` |
/// | [`sink`](Self::sink) | a [`TracingSink`] until a sink is added |
/// | [`filter`](Self::filter) | [`DefaultFilter`] (drops extension noise) |
/// | [`max_body_size`](Self::max_body_size) | 64 KiB |
/// | [`max_reports_per_request`](Self::max_reports_per_request) | 100 |
/// | [`max_field_length`](Self::max_field_length) | 4096 bytes |
/// | [`body_timeout`](Self::body_timeout) | 10 s (then `408`) |
/// | [`cors`](Self::cors) | [`Cors::any`] |
/// | [`dispatch`](Self::dispatch) | [`Dispatch::Background`] |
/// | [`client_ip`](Self::client_ip) | a [`SocketAddr`] request extension, if any |
/// | [`rate_limit`](Self::rate_limit) | none |
/// | [`sampling`](Self::sampling) | none (every report is kept) |
///
/// ```
/// use tower_csp_reports::{CspReportLayer, Cors};
/// use tower_csp_reports::sink::MemorySink;
///
/// let memory = MemorySink::new();
/// let layer = CspReportLayer::new()
///     .paths(["/csp-report", "/reports"])?
///     .max_body_size(16 * 1024)?
///     .cors(Cors::origins(["https://example.com"])?)
///     .sink(memory.clone());
/// let handle = layer.handle();
/// assert_eq!(handle.stats().received, 0);
/// assert!(CspReportLayer::new().path("no-slash").is_err());
/// # Ok::<(), tower_csp_reports::ConfigError>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct CspReportLayer {
    shared: Arc<Shared>,
}

/// Everything a service needs, behind one `Arc`.
pub(crate) struct Shared {
    pub(crate) paths: Vec<Box<str>>,
    pub(crate) max_body_size: usize,
    pub(crate) limits: Limits,
    pub(crate) body_timeout: Duration,
    pub(crate) cors: Option<Cors>,
    pub(crate) filter: Arc<dyn Filter>,
    pub(crate) client_ip: ClientIp,
    pub(crate) rate_limiter: Option<RateLimiter>,
    pub(crate) sampler: Option<Sampler>,
    sinks: Vec<(Arc<dyn ReportSink>, SinkOptions)>,
    mode: Dispatch,
    hook: ErrorHook,
    dispatcher: OnceLock<Dispatcher>,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn is_report_path(&self, path: &str) -> bool {
        self.paths.iter().any(|p| **p == *path)
    }

    pub(crate) fn dispatcher(&self) -> &Dispatcher {
        self.dispatcher.get_or_init(|| {
            let sinks = if self.sinks.is_empty() {
                vec![(
                    Arc::new(TracingSink::new()) as Arc<dyn ReportSink>,
                    SinkOptions::default(),
                )]
            } else {
                self.sinks.clone()
            };
            Dispatcher::new(sinks, self.mode, Arc::clone(&self.hook))
        })
    }
}

/// A clone is a new, unused configuration: fresh counters and no workers.
impl Clone for Shared {
    fn clone(&self) -> Self {
        Self {
            paths: self.paths.clone(),
            max_body_size: self.max_body_size,
            limits: self.limits,
            body_timeout: self.body_timeout,
            cors: self.cors.clone(),
            filter: Arc::clone(&self.filter),
            client_ip: Arc::clone(&self.client_ip),
            rate_limiter: self
                .rate_limiter
                .as_ref()
                .map(|r| RateLimiter::new(r.limit())),
            sampler: self.sampler.as_ref().map(|s| Sampler::new(s.sampling())),
            sinks: self.sinks.clone(),
            mode: self.mode,
            hook: Arc::clone(&self.hook),
            dispatcher: OnceLock::new(),
            counters: Counters::default(),
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CspReportLayer")
            .field("paths", &self.paths)
            .field("max_body_size", &self.max_body_size)
            .field("limits", &self.limits)
            .field("body_timeout", &self.body_timeout)
            .field("cors", &self.cors)
            .field(
                "sinks",
                &self.sinks.iter().map(|(s, _)| s.name()).collect::<Vec<_>>(),
            )
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for CspReportLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

fn limit(setting: &'static str, value: usize, max: usize) -> Result<usize, ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError::InvalidLimit {
            setting,
            value: value as u64,
            max: max as u64,
        });
    }
    Ok(value)
}

fn socket_addr_extension(parts: &http::request::Parts) -> Option<IpAddr> {
    parts.extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

impl CspReportLayer {
    /// A layer with the defaults in the table above.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                paths: vec!["/csp-report".into()],
                max_body_size: 64 * 1024,
                limits: Limits::default(),
                body_timeout: Duration::from_secs(10),
                cors: Some(Cors::any()),
                filter: Arc::new(DefaultFilter::new()),
                client_ip: Arc::new(socket_addr_extension),
                rate_limiter: None,
                sampler: None,
                sinks: Vec::new(),
                mode: Dispatch::default(),
                hook: default_error_hook(),
                dispatcher: OnceLock::new(),
                counters: Counters::default(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Answers reports on this one path (exact match, e.g. `/csp-report`).
    pub fn path(self, path: impl Into<String>) -> Result<Self, ConfigError> {
        self.paths([path.into()])
    }

    /// Answers reports on each of these paths (exact match).
    pub fn paths<I, S>(self, paths: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let paths = paths
            .into_iter()
            .map(|p| {
                let p: String = p.into();
                let valid = p.starts_with('/')
                    && !p.contains(['?', '#'])
                    && p.chars().all(|c| c.is_ascii_graphic());
                if valid {
                    Ok(p.into_boxed_str())
                } else {
                    Err(ConfigError::InvalidPath { path: p })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if paths.is_empty() {
            return Err(ConfigError::NoPaths);
        }
        Ok(self.edit(|s| s.paths = paths))
    }

    /// Adds a sink with the default [`SinkOptions`]. Until a sink is added, reports go to a
    /// [`TracingSink`].
    pub fn sink(self, sink: impl ReportSink) -> Self {
        self.edit(|s| s.sinks.push((Arc::new(sink), SinkOptions::default())))
    }

    /// Adds a sink with its own queue size, batching, timeout and retries.
    pub fn sink_with(
        self,
        sink: impl ReportSink,
        options: SinkOptions,
    ) -> Result<Self, ConfigError> {
        options.validate()?;
        Ok(self.edit(|s| s.sinks.push((Arc::new(sink), options))))
    }

    /// Replaces the filter (default [`DefaultFilter`]; [`KeepAll`](crate::filter::KeepAll)
    /// keeps everything).
    pub fn filter(self, filter: impl Filter) -> Self {
        self.edit(|s| s.filter = Arc::new(filter))
    }

    /// The largest body read, in bytes (default 64 KiB, at most 16 MiB); larger ones get `413`.
    pub fn max_body_size(self, bytes: usize) -> Result<Self, ConfigError> {
        let bytes = limit("max_body_size", bytes, 16 * 1024 * 1024)?;
        Ok(self.edit(|s| s.max_body_size = bytes))
    }

    /// The most reports kept from one request (default 100); the rest are counted as
    /// truncated. The answer stays `204`, since browsers resend a whole batch on an error.
    pub fn max_reports_per_request(self, reports: usize) -> Result<Self, ConfigError> {
        let reports = limit("max_reports_per_request", reports, 100_000)?;
        Ok(self.edit(|s| s.limits.max_reports = reports))
    }

    /// The longest string field kept, in bytes (default 4096, at least 16); longer values
    /// are cut and end in `…`. The raw JSON is kept whole.
    pub fn max_field_length(self, bytes: usize) -> Result<Self, ConfigError> {
        let bytes = limit("max_field_length", bytes, 1024 * 1024)?;
        if bytes < 16 {
            return Err(ConfigError::Invalid {
                setting: "max_field_length",
                reason: format!("{bytes} bytes is too short to be useful (at least 16)"),
            });
        }
        Ok(self.edit(|s| s.limits.max_field_length = bytes))
    }

    /// How long a body may take to arrive (default 10 s); a slower one gets `408`.
    pub fn body_timeout(self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "body_timeout",
                reason: "must be longer than zero".to_owned(),
            });
        }
        Ok(self.edit(|s| s.body_timeout = timeout))
    }

    /// Which origins may send cross-origin Reporting API reports (default [`Cors::any`]).
    pub fn cors(self, cors: Cors) -> Self {
        self.edit(|s| s.cors = Some(cors))
    }

    /// Answers no CORS preflight: only same-origin pages and `report-uri` can report.
    pub fn no_cors(self) -> Self {
        self.edit(|s| s.cors = None)
    }

    /// Limits how often each client may post reports (default: no limit); see
    /// [`RateLimit`].
    pub fn rate_limit(self, limit: RateLimit) -> Self {
        self.edit(|s| s.rate_limiter = Some(RateLimiter::new(limit)))
    }

    /// Keeps only a sample of each repeated violation (default: every report); see
    /// [`Sampling`].
    pub fn sampling(self, sampling: Sampling) -> Self {
        self.edit(|s| s.sampler = Some(Sampler::new(sampling)))
    }

    /// Background (default) or inline delivery to sinks.
    pub fn dispatch(self, mode: Dispatch) -> Self {
        self.edit(|s| s.mode = mode)
    }

    /// Called on every failed sink call (default: a `tracing` warning).
    pub fn on_sink_error<F>(self, hook: F) -> Self
    where
        F: Fn(&SinkFailure<'_>) + Send + Sync + 'static,
    {
        self.edit(|s| s.hook = Arc::new(hook))
    }

    /// How to learn the client's address from a request (default: a [`SocketAddr`]
    /// extension). With axum, read its `ConnectInfo`:
    ///
    /// ```
    /// # use tower_csp_reports::CspReportLayer;
    /// use axum::extract::ConnectInfo;
    /// use std::net::SocketAddr;
    ///
    /// let layer = CspReportLayer::new().client_ip(|parts| {
    ///     parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
    /// });
    /// ```
    pub fn client_ip<F>(self, f: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.edit(|s| s.client_ip = Arc::new(f))
    }

    /// A handle on the counters and the shutdown of this layer's sinks.
    ///
    /// Take it after the last setting: a setting changed later makes a new configuration
    /// that this handle does not see.
    pub fn handle(&self) -> CspReportHandle {
        CspReportHandle::new(Arc::clone(&self.shared))
    }
}

impl Default for CspReportLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for CspReportLayer {
    type Service = CspReport<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CspReport::new(inner, Arc::clone(&self.shared))
    }
}
