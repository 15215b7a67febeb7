//! [`CspReportLayerBuilder`], which checks every setting once, and the [`CspReportLayer`] it
//! builds.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::config::{ClientIp, LayerConfig};
use super::core::Core;
use super::handle::CspReportHandle;
use super::service::CspReport;
use crate::cors::Cors;
use crate::dispatch::{
    Dispatch, Dispatcher, ErrorHook, SinkFailure, SinkOptions, default_error_hook,
};
use crate::error::{ConfigError, check_limit, check_nonzero};
use crate::filter::{DefaultFilter, Filter};
use crate::parse::Limits;
use crate::privacy::Privacy;
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::sample::{Sampler, Sampling};
use crate::sink::{ReportSink, TracingSink};

/// The largest body size that can be set.
const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The least room a report takes in a body, for the default report cap: a Reporting API
/// report with a short policy is about 400 bytes, so a body of the largest size holds fewer
/// reports than its size divided by this.
const SMALLEST_REPORT: usize = 200;

/// A [`Layer`] that answers browsers' CSP reports on its report paths and passes every other
/// request to the inner service untouched.
///
/// Made by [`CspReportLayer::builder`]. A built layer never changes: every clone, every
/// service it makes and every [`handle`](Self::handle) taken from it share the same counters
/// and sinks.
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_csp_reports::CspReportLayer;
/// use tower_csp_reports::sink::MemorySink;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let memory = MemorySink::new();
/// let layer = CspReportLayer::builder()
///     .path("/csp-report")
///     .sink(memory.clone())
///     .build()?;
/// let app = layer.layer(service_fn(|_: Request<String>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(String::from("the page")))
/// }));
///
/// let report = r#"{"csp-report": {"document-uri": "https://example.com/",
///     "violated-directive": "img-src", "blocked-uri": "https://ads.example/pixel.gif"}}"#;
/// let request = Request::post("/csp-report")
///     .header("content-type", "application/csp-report")
///     .body(report.to_owned())?;
/// let response = app.clone().oneshot(request).await?;
/// assert_eq!(response.status(), StatusCode::NO_CONTENT);
///
/// layer.handle().flush().await;
/// let stored = memory.reports();
/// assert_eq!(stored[0].blocked_uri.as_deref(), Some("https://ads.example/pixel.gif"));
///
/// // Other paths reach the application.
/// let page = app.oneshot(Request::get("/").body(String::new())?).await?;
/// assert_eq!(page.status(), StatusCode::OK);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[must_use]
#[derive(Clone)]
pub struct CspReportLayer {
    core: Arc<Core>,
}

impl CspReportLayer {
    /// Starts configuring a layer; see [`CspReportLayerBuilder`] for the settings.
    pub fn builder() -> CspReportLayerBuilder {
        CspReportLayerBuilder::default()
    }

    /// A handle on the counters and the shutdown of this layer's sinks.
    pub fn handle(&self) -> CspReportHandle {
        CspReportHandle::new(Arc::clone(&self.core))
    }
}

impl fmt::Debug for CspReportLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl<S> Layer<S> for CspReportLayer {
    type Service = CspReport<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CspReport::new(inner, Arc::clone(&self.core))
    }
}

/// The settings of a [`CspReportLayer`]. Setters cannot fail; [`build`](Self::build) checks
/// everything at once and says what is wrong with a [`ConfigError`], so a bad setting never
/// surfaces at request time.
///
/// | setting | default |
/// |---|---|
/// | [`path`](Self::path) / [`paths`](Self::paths) | `/csp-report` |
/// | [`sink`](Self::sink) | a [`TracingSink`] until a sink is added |
/// | [`filter`](Self::filter) | [`DefaultFilter`] (drops extension noise) |
/// | [`max_body_size`](Self::max_body_size) | 1 MiB |
/// | [`max_reports_per_request`](Self::max_reports_per_request) | the body limit / 200 bytes (5,242 for 1 MiB) |
/// | [`max_field_length`](Self::max_field_length) | 4096 bytes |
/// | [`body_timeout`](Self::body_timeout) | 10 s (then `408`) |
/// | [`max_bytes_in_flight`](Self::max_bytes_in_flight) | 256 MiB (then `503`) |
/// | [`admission_wait`](Self::admission_wait) | 250 ms (then `503`) |
/// | [`cors`](Self::cors) | [`Cors::any`] |
/// | [`dispatch`](Self::dispatch) | [`Dispatch::Background`] |
/// | [`client_ip`](Self::client_ip) | a [`SocketAddr`] request extension, if any |
/// | [`privacy`](Self::privacy) | [`Privacy::default`]: queries, fragments and credentials removed from URLs, addresses truncated |
/// | [`rate_limit`](Self::rate_limit) | none |
/// | [`sampling`](Self::sampling) | none (every report is kept) |
///
/// ```
/// use tower_csp_reports::{ConfigError, CspReportLayer, Cors};
/// use tower_csp_reports::sink::MemorySink;
///
/// let layer = CspReportLayer::builder()
///     .paths(["/csp-report", "/reports"])
///     .max_body_size(256 * 1024)
///     .cors(Cors::origins(["https://example.com"])?)
///     .sink(MemorySink::new())
///     .build()?;
/// assert_eq!(layer.handle().stats().received, 0);
///
/// let error = CspReportLayer::builder().path("no-slash").build().unwrap_err();
/// assert!(matches!(error, ConfigError::InvalidPath { .. }));
/// # Ok::<(), ConfigError>(())
/// ```
#[must_use]
pub struct CspReportLayerBuilder {
    paths: Vec<String>,
    max_body_size: usize,
    max_reports: Option<usize>,
    max_field_length: usize,
    body_timeout: Duration,
    max_bytes_in_flight: usize,
    admission_wait: Duration,
    cors: Option<Cors>,
    filter: Arc<dyn Filter>,
    client_ip: ClientIp,
    privacy: Privacy,
    rate_limit: Option<RateLimit>,
    sampling: Option<Sampling>,
    sinks: Vec<(Arc<dyn ReportSink>, SinkOptions)>,
    mode: Dispatch,
    hook: ErrorHook,
}

fn socket_addr_extension(parts: &http::request::Parts) -> Option<IpAddr> {
    parts.extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

impl Default for CspReportLayerBuilder {
    fn default() -> Self {
        Self {
            paths: vec!["/csp-report".to_owned()],
            max_body_size: 1024 * 1024,
            max_reports: None,
            max_field_length: 4096,
            body_timeout: Duration::from_secs(10),
            max_bytes_in_flight: 256 * 1024 * 1024,
            admission_wait: Duration::from_millis(250),
            cors: Some(Cors::any()),
            filter: Arc::new(DefaultFilter::new()),
            client_ip: Arc::new(socket_addr_extension),
            privacy: Privacy::default(),
            rate_limit: None,
            sampling: None,
            sinks: Vec::new(),
            mode: Dispatch::default(),
            hook: default_error_hook(),
        }
    }
}

impl CspReportLayerBuilder {
    /// Answers reports on this one path (exact match, e.g. `/csp-report`).
    pub fn path(self, path: impl Into<String>) -> Self {
        self.paths([path.into()])
    }

    /// Answers reports on each of these paths (exact match). Each must start with `/` and
    /// hold no query, fragment or white space.
    pub fn paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a sink, fed with the options it asks for
    /// ([`ReportSink::default_options`]: best-effort for most sinks, required for stores).
    /// Until a sink is added, reports go to a [`TracingSink`].
    pub fn sink(self, sink: impl ReportSink) -> Self {
        let options = sink.default_options();
        self.sink_with(sink, options)
    }

    /// Adds a sink with its own queue size, batching, timeout, retries and whether it is
    /// required.
    pub fn sink_with(mut self, sink: impl ReportSink, options: SinkOptions) -> Self {
        self.sinks.push((Arc::new(sink), options));
        self
    }

    /// Replaces the filter (default [`DefaultFilter`]; [`KeepAll`](crate::filter::KeepAll)
    /// keeps everything).
    pub fn filter(mut self, filter: impl Filter) -> Self {
        self.filter = Arc::new(filter);
        self
    }

    /// The largest body read, in bytes (default 1 MiB, at most 16 MiB); larger ones get `413`.
    ///
    /// Browsers batch Reporting API reports: with a realistic policy each report is 700 to
    /// 1,100 bytes, and one page with a hundred violations makes an upload of about 100 KB,
    /// which a browser does not split when it is refused.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The most reports kept from one request (default: the body limit divided by 200
    /// bytes); the rest are counted as truncated. The answer stays `204`, since browsers
    /// resend a whole batch on an error.
    pub fn max_reports_per_request(mut self, reports: usize) -> Self {
        self.max_reports = Some(reports);
        self
    }

    /// The longest string field kept, in bytes (default 4096, at least 16); longer values
    /// are cut and end in `…`. The raw JSON is kept whole.
    pub fn max_field_length(mut self, bytes: usize) -> Self {
        self.max_field_length = bytes;
        self
    }

    /// How long a body may take to arrive (default 10 s); a slower one gets `408`.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How many bytes of request bodies may be read and parsed at once, across every request
    /// (default 256 MiB, at least the body limit). A body of unknown length counts as the
    /// largest allowed; a request over the budget is answered `503` with `Retry-After`
    /// before its body is read, so many large uploads at once cannot exhaust memory.
    pub fn max_bytes_in_flight(mut self, bytes: usize) -> Self {
        self.max_bytes_in_flight = bytes;
        self
    }

    /// How long a request waits for room in a required sink's queue before it is answered
    /// `503` with `Retry-After` (default 250 ms). See [`SinkOptions::required`].
    pub fn admission_wait(mut self, wait: Duration) -> Self {
        self.admission_wait = wait;
        self
    }

    /// Which origins may send cross-origin Reporting API reports (default [`Cors::any`]).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Answers no CORS preflight: only same-origin pages and `report-uri` can report.
    pub fn no_cors(mut self) -> Self {
        self.cors = None;
        self
    }

    /// Limits how often each client may post reports (default: no limit); see
    /// [`RateLimit`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Keeps only a sample of each repeated violation (default: every report); see
    /// [`Sampling`].
    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = Some(sampling);
        self
    }

    /// Background (default) or inline delivery to sinks.
    pub fn dispatch(mut self, mode: Dispatch) -> Self {
        self.mode = mode;
        self
    }

    /// Called on every failed sink call, whatever the sink (default: a `tracing` warning).
    pub fn on_sink_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&SinkFailure<'_>) + Send + Sync + 'static,
    {
        self.hook = Arc::new(hook);
        self
    }

    /// How to learn the client's address from a request (default: a [`SocketAddr`]
    /// extension). With axum, read its `ConnectInfo`:
    ///
    /// ```
    /// # use tower_csp_reports::CspReportLayer;
    /// use axum::extract::ConnectInfo;
    /// use std::net::SocketAddr;
    ///
    /// let layer = CspReportLayer::builder()
    ///     .client_ip(|parts| {
    ///         parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
    ///     })
    ///     .build();
    /// assert!(layer.is_ok());
    /// ```
    pub fn client_ip<F>(mut self, f: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.client_ip = Arc::new(f);
        self
    }

    /// What is removed from each report right after it is parsed, before the filter, the
    /// sinks, the logs, the mail and the stores see it (default [`Privacy::default`]: the
    /// query, fragment and credentials of every URL field, in the fields and in the raw
    /// text, and the host part of the client's address). See the
    /// [`privacy`](crate::privacy) module for what is kept.
    ///
    /// ```
    /// use tower_csp_reports::CspReportLayer;
    /// use tower_csp_reports::privacy::{ClientIpPrivacy, Privacy};
    ///
    /// // Keep the queries (they carry nothing personal on this site), record no address.
    /// let layer = CspReportLayer::builder()
    ///     .privacy(Privacy::default().keep_query(true).client_ip(ClientIpPrivacy::Off))
    ///     .build();
    /// assert!(layer.is_ok());
    /// ```
    pub fn privacy(mut self, privacy: Privacy) -> Self {
        self.privacy = privacy;
        self
    }

    /// Checks every setting and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that cannot work.
    pub fn build(self) -> Result<CspReportLayer, ConfigError> {
        let paths = self
            .paths
            .into_iter()
            .map(|path| {
                let valid = path.starts_with('/')
                    && !path.contains(['?', '#'])
                    && path.chars().all(|c| c.is_ascii_graphic());
                if valid {
                    Ok(path.into_boxed_str())
                } else {
                    Err(ConfigError::InvalidPath { path })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if paths.is_empty() {
            return Err(ConfigError::NoPaths);
        }
        check_limit(
            "max_body_size",
            self.max_body_size as u64,
            MAX_BODY_LIMIT as u64,
        )?;
        let max_reports = self
            .max_reports
            .unwrap_or((self.max_body_size / SMALLEST_REPORT).max(100));
        check_limit("max_reports_per_request", max_reports as u64, 100_000)?;
        check_limit(
            "max_field_length",
            self.max_field_length as u64,
            1024 * 1024,
        )?;
        if self.max_field_length < 16 {
            return Err(ConfigError::Invalid {
                setting: "max_field_length",
                reason: format!(
                    "{} bytes is too short to be useful (at least 16)",
                    self.max_field_length
                ),
            });
        }
        check_nonzero("body_timeout", self.body_timeout)?;
        if self.max_bytes_in_flight < self.max_body_size {
            return Err(ConfigError::Invalid {
                setting: "max_bytes_in_flight",
                reason: format!(
                    "{} bytes cannot hold one body of the largest size ({} bytes)",
                    self.max_bytes_in_flight, self.max_body_size
                ),
            });
        }
        for (_, options) in &self.sinks {
            options.validate()?;
        }
        let sinks = if self.sinks.is_empty() {
            vec![(
                Arc::new(TracingSink::new()) as Arc<dyn ReportSink>,
                SinkOptions::default(),
            )]
        } else {
            self.sinks
        };
        let config = LayerConfig {
            paths,
            max_body_size: self.max_body_size,
            limits: Limits {
                max_reports,
                max_field_length: self.max_field_length,
            },
            body_timeout: self.body_timeout,
            cors: self.cors,
            filter: self.filter,
            client_ip: self.client_ip,
            privacy: self.privacy,
            admission_wait: self.admission_wait,
        };
        let core = Core::new(
            config,
            self.rate_limit.map(RateLimiter::new),
            self.sampling.map(Sampler::new),
            self.max_bytes_in_flight,
            Dispatcher::new(sinks, self.mode, self.hook),
        );
        Ok(CspReportLayer {
            core: Arc::new(core),
        })
    }
}

impl fmt::Debug for CspReportLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CspReportLayerBuilder")
            .field("paths", &self.paths)
            .field("max_body_size", &self.max_body_size)
            .field("max_reports", &self.max_reports)
            .field("max_field_length", &self.max_field_length)
            .field("body_timeout", &self.body_timeout)
            .field("max_bytes_in_flight", &self.max_bytes_in_flight)
            .field("admission_wait", &self.admission_wait)
            .field("cors", &self.cors)
            .field("privacy", &self.privacy)
            .field(
                "sinks",
                &self.sinks.iter().map(|(s, _)| s.name()).collect::<Vec<_>>(),
            )
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}
