//! One POST over a fresh connection (alerts are few: no pool to keep), over TLS for
//! `https` URLs.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::WebhookError;

/// Where posts go, checked once when the sink is built.
#[derive(Clone)]
pub(super) struct Endpoint {
    uri: Uri,
    host: String,
    port: u16,
    /// `scheme://host[:port]`: how errors and logs name it (the path may be a secret).
    pub(super) name: String,
    /// For `https`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Reads `url`; the error says why, without repeating the URL.
    pub(super) fn parse(url: &str, tls: Option<Arc<ClientConfig>>) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the scheme must be http or https".to_owned()),
        };
        let authority = uri.authority().ok_or("the URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("credentials in the URL are not supported".to_owned());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("the URL has no host".to_owned());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| format!("the host is not a TLS server name ({e})"))?;
            let config = match tls {
                Some(config) => config,
                None => default_tls()?,
            };
            Some((TlsConnector::from(config), name))
        } else {
            None
        };
        Ok(Self {
            name: format!("{}://{}", uri.scheme_str().unwrap_or("http"), authority),
            host: host.to_owned(),
            port,
            uri,
            tls,
        })
    }

    /// Posts `body` as JSON and returns the status; the answer's body is not read.
    pub(super) async fn post(&self, body: Vec<u8>) -> Result<StatusCode, WebhookError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| WebhookError::connect(&self.name, e))?;
        // Small posts: no waiting for more bytes to fill a segment.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| WebhookError::tls(&self.name, e))?;
                self.exchange(tls, body).await
            }
            None => self.exchange(tcp, body).await,
        }
    }

    async fn exchange<S>(&self, stream: S, body: Vec<u8>) -> Result<StatusCode, WebhookError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http = |e| WebhookError::http(&self.name, e);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(http)?;
        let path = self
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let request = Request::post(path)
            .header(header::HOST, authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("tower-csp-reports/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| WebhookError::status(&self.name, StatusCode::BAD_REQUEST))?;
        // The connection is driven here, beside the request: nothing outlives the call (a
        // call abandoned at its timeout leaves no task behind).
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            response = sender.send_request(request) => Ok(response.map_err(http)?.status()),
            closed = &mut connection => match closed {
                Err(error) => Err(http(error)),
                Ok(()) => Err(WebhookError::status(&self.name, StatusCode::BAD_GATEWAY)),
            },
        }
    }
}

/// The public web's certificate authorities (webpki-roots), TLS 1.2 and 1.3.
fn default_tls() -> Result<Arc<ClientConfig>, String> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_repeated() {
        let ok =
            Endpoint::parse("https://hooks.slack.example/services/T0/B0/secret", None).unwrap();
        assert_eq!(ok.name, "https://hooks.slack.example");
        assert_eq!(ok.port, 443);
        let local = Endpoint::parse("http://127.0.0.1:9000/hook?x=1", None).unwrap();
        assert_eq!((local.host.as_str(), local.port), ("127.0.0.1", 9000));
        let v6 = Endpoint::parse("http://[::1]:9000/", None).unwrap();
        assert_eq!(v6.host, "::1");
        let cases = [
            ("ftp://example.com/", "the scheme must be http or https"),
            ("/just/a/path", "the scheme must be http or https"),
            (
                "https://user:secret@example.com/",
                "credentials in the URL are not supported",
            ),
        ];
        for (url, expected) in cases {
            let error = Endpoint::parse(url, None).unwrap_err();
            assert_eq!(error, expected, "{url}");
            assert!(!error.contains("secret"));
        }
    }
}
