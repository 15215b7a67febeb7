//! The demo site: a page that breaks its own Content-Security-Policy in four ways, and a
//! server for it over plain HTTP or TLS.
//!
//! Shared by `examples/demo/main.rs` and `tests/browsers.rs` (through `#[path]`), so the
//! browsers in the tests load exactly the page the demo shows.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tower::ServiceExt as _;
use tower_csp_reports::{ConfigError, ReportingEndpoint};

/// How the page asks for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// `report-uri URL`: one `application/csp-report` POST per violation, over http or https.
    ReportUri,
    /// `report-uri URL; report-to csp` and a `Reporting-Endpoints` header. Browsers that know
    /// `report-to` ignore the `report-uri`; they send only from an https page to an https
    /// endpoint.
    ReportTo,
}

/// What the page's headers say.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// Where reports go: `scheme://host:port/csp-report`, this origin or another one.
    pub(crate) endpoint: ReportingEndpoint,
    /// How the page asks for them.
    pub(crate) delivery: Delivery,
    /// Split the policy: scripts enforced, styles and images only reported
    /// (`Content-Security-Policy-Report-Only`), so both dispositions show.
    pub(crate) report_only: bool,
    /// The image from another origin that the page shows (blocked, or only reported).
    pub(crate) image_url: String,
}

/// The inline script, blocked.
pub(crate) const INLINE_SCRIPT: &str = "document.title = \"inline script ran\";";
/// The inline style attribute: blocked when enforced, reported either way.
pub(crate) const INLINE_STYLE: &str = "color: red";
/// What `eval` runs, in the one script the policy allows (`/app.js`).
pub(crate) const EVAL_CODE: &str = "window.evalRan = true";
/// How many inline style attributes `/many` carries: more violations than a browser puts in
/// one small upload, so its batches are as large as real pages make them.
pub(crate) const MANY: usize = 120;

/// The style attribute of the `i`th paragraph of `/many` (each a violation of its own).
pub(crate) fn many_style(i: usize) -> String {
    format!("color: rgb({}, 0, 0)", i % 256)
}

impl Site {
    /// A site that reports to `endpoint_url` (an absolute URL) with `delivery`.
    pub(crate) fn new(
        endpoint_url: &str,
        delivery: Delivery,
        report_only: bool,
    ) -> Result<Self, ConfigError> {
        let scheme = if endpoint_url.starts_with("https:") {
            "https"
        } else {
            "http"
        };
        Ok(Self {
            endpoint: ReportingEndpoint::new("csp", endpoint_url)?,
            delivery,
            report_only,
            // Another origin than the page's (port 9 is "discard": nothing answers there),
            // with the page's scheme so that mixed-content rules do not rewrite it.
            image_url: format!("{scheme}://localhost:9/foreign.png"),
        })
    }

    fn reporting(&self) -> String {
        match self.delivery {
            Delivery::ReportUri => self.endpoint.report_uri_directive(),
            Delivery::ReportTo => self.endpoint.directives(),
        }
    }

    /// The response headers of the page: the policies, and `Reporting-Endpoints` for
    /// `report-to`.
    pub(crate) fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let reporting = self.reporting();
        let scripts = "script-src 'self' 'report-sample'";
        let styles_images = "style-src 'self' 'report-sample'; img-src 'self'";
        let policies = if self.report_only {
            // No default-src in either: it would make each policy cover the other's part.
            vec![
                (
                    header::CONTENT_SECURITY_POLICY,
                    format!("{scripts}; {reporting}"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
                    format!("{styles_images}; {reporting}"),
                ),
            ]
        } else {
            vec![(
                header::CONTENT_SECURITY_POLICY,
                format!("default-src 'self'; {scripts}; {styles_images}; {reporting}"),
            )]
        };
        let mut headers: Vec<_> = policies
            .into_iter()
            .map(|(name, value)| {
                let value = HeaderValue::try_from(value).expect("the policy is header-safe");
                (name, value)
            })
            .collect();
        if self.delivery == Delivery::ReportTo {
            headers.push((
                HeaderName::from_static("reporting-endpoints"),
                self.endpoint.reporting_endpoints_header(),
            ));
        }
        headers
    }

    /// The headers of `/many`: the same policy with a realistic list of image hosts, about
    /// 430 bytes as a real site's policy is, which every report carries.
    fn many_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let hosts: Vec<String> = (1..=12)
            .map(|i| format!("https://img{i}.cdn.example"))
            .collect();
        let policy = format!(
            "default-src 'self'; script-src 'self' 'report-sample'; style-src 'self' 'report-sample'; img-src 'self' {}; {}",
            hosts.join(" "),
            self.reporting()
        );
        let mut headers = vec![(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::try_from(policy).expect("the policy is header-safe"),
        )];
        if self.delivery == Delivery::ReportTo {
            headers.push((
                HeaderName::from_static("reporting-endpoints"),
                self.endpoint.reporting_endpoints_header(),
            ));
        }
        headers
    }

    fn many_page() -> String {
        let paragraphs: String = (0..MANY)
            .map(|i| format!("<p style=\"{}\">Paragraph {i}.</p>\n", many_style(i)))
            .collect();
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>many violations</title>\n<link rel=\"icon\" href=\"/favicon.svg\">\n</head>\n<body>\n<h1>{MANY} inline style attributes</h1>\n{paragraphs}</body>\n</html>\n"
        )
    }

    fn page(&self) -> String {
        let image = &self.image_url;
        let explain = if self.report_only {
            "Scripts are enforced; styles and images are only reported \
             (<code>Content-Security-Policy-Report-Only</code>)."
        } else {
            "Everything is enforced."
        };
        format!(
            r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tower-csp-reports demo</title>
<link rel="icon" href="/favicon.svg">
<script src="/app.js"></script>
</head>
<body>
<h1>tower-csp-reports demo</h1>
<p>This page breaks its policy four ways; each violation is reported to
<code>{endpoint}</code>. {explain}</p>
<p style="{INLINE_STYLE}">1. An inline style attribute.</p>
<p>2. An image from another origin: <img src="{image}" alt="(foreign image)"></p>
<p>3. An inline script:</p>
<script>{INLINE_SCRIPT}</script>
<p>4. <code>eval</code> in the allowed script <code>/app.js</code>.</p>
</body>
</html>
"#,
            endpoint = self.endpoint.url(),
        )
    }

    /// The site's pages (without the report endpoint: add the layer to this router, or to
    /// another server's).
    pub(crate) fn router(&self) -> Router {
        let page = self.page();
        let headers = self.headers();
        let many_headers = self.many_headers();
        Router::new()
            .route(
                "/many",
                get(move || {
                    let headers = many_headers.clone();
                    async move {
                        let mut response = Html(Self::many_page()).into_response();
                        response.headers_mut().extend(headers);
                        response
                    }
                }),
            )
            .route(
                "/",
                get(move || {
                    let (page, headers) = (page.clone(), headers.clone());
                    async move {
                        let mut response = Html(page).into_response();
                        response.headers_mut().extend(headers);
                        response
                    }
                }),
            )
            .route(
                "/app.js",
                get(|| async {
                    let script = format!("try {{ eval({EVAL_CODE:?}); }} catch (e) {{}}\n");
                    ([(header::CONTENT_TYPE, "text/javascript")], script)
                }),
            )
            // Served from 'self', so the browser's own icon request breaks no policy.
            .route(
                "/favicon.svg",
                get(|| async {
                    let icon = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1" fill="teal"/></svg>"#;
                    ([(header::CONTENT_TYPE, "image/svg+xml")], icon)
                }),
            )
            .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
    }
}

/// A throwaway certificate authority and a certificate it signed for `127.0.0.1` and
/// `localhost`, made at start.
pub(crate) struct Tls {
    /// The acceptor that serves the leaf certificate.
    pub(crate) acceptor: TlsAcceptor,
    /// The authority's certificate, PEM (for a browser's trust store, e.g. with `certutil`).
    pub(crate) ca_pem: String,
    /// base64 of the SHA-256 of the leaf's SubjectPublicKeyInfo, for Chromium's
    /// `--ignore-certificate-errors-spki-list`.
    pub(crate) spki_sha256: String,
}

impl Tls {
    /// Makes the authority, the leaf and the acceptor.
    pub(crate) fn generate() -> Result<Self, Box<dyn Error + Send + Sync>> {
        use base64::Engine as _;
        use rcgen::PublicKeyData as _;

        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tower-csp-reports throwaway CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let leaf_key = KeyPair::generate()?;
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
        let spki = ring::digest::digest(&ring::digest::SHA256, &leaf_key.subject_public_key_info());

        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem: ca.pem(),
            spki_sha256: base64::engine::general_purpose::STANDARD.encode(spki.as_ref()),
        })
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until the returned task is
/// aborted or dropped with the runtime.
pub(crate) fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, client) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of file descriptors, say: wait rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (tls, app) = (tls.clone(), app.clone());
            tokio::spawn(async move {
                // The layer reads the client's address from this extension.
                let service = service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(client);
                    app.clone().oneshot(request)
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                // A failed handshake or a browser closing a connection is not worth a message.
                let _ = match tls {
                    None => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
            });
        }
    })
}
