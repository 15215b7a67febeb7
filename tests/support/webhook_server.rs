//! A webhook receiver over a real socket on loopback: hyper's HTTP/1 server, answering each
//! post as its script says (a status, or no answer at all), then `200`.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How long a test waits for posts that should come.
const PATIENCE: Duration = Duration::from_secs(60);

/// How the server answers one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Reads the post, then never answers.
    Hang,
}

/// One post as received, and how it was answered.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    pub reply: Reply,
}

impl Post {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Clone)]
pub struct WebhookServer {
    pub addr: SocketAddr,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl WebhookServer {
    /// Serves on the current Tokio runtime; answers `200` once `script` is used up.
    pub async fn start(script: &[Reply]) -> Self {
        Self::serve(script, None).await
    }

    /// The same over TLS, with this server configuration.
    pub async fn start_tls(script: &[Reply], tls: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        Self::serve(script, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn serve(script: &[Reply], tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let server = Self {
            addr,
            posts: Arc::clone(&posts),
        };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (posts, script) = (Arc::clone(&posts), Arc::clone(&script));
                let service = service_fn(move |request: Request<Incoming>| {
                    let (posts, script) = (Arc::clone(&posts), Arc::clone(&script));
                    async move {
                        let path = request.uri().to_string();
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let reply = script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or(Reply::Status(200));
                        posts.lock().unwrap().push(Post {
                            path,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                            reply,
                        });
                        let status = match reply {
                            Reply::Status(status) => status,
                            Reply::Hang => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                200
                            }
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(StatusCode::from_u16(status).unwrap())
                                .body(Full::new(Bytes::from_static(b"ok")))
                                .unwrap(),
                        )
                    }
                });
                let tls = tls.clone();
                tokio::spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        // A client that refuses the certificate ends here.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        server
    }

    /// A URL with a secret in its path, as Slack's are.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/T000/B000/s3cret", self.addr)
    }

    /// The same for a TLS server whose certificate names `localhost`.
    pub fn https_url(&self) -> String {
        format!(
            "https://localhost:{}/hooks/T000/B000/s3cret",
            self.addr.port()
        )
    }

    /// Every post so far, answered or not.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// The posts so far once there are at least `count` (or the patience ran out).
    pub async fn wait_for(&self, count: usize) -> Vec<Post> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let posts = self.posts();
            if posts.len() >= count || tokio::time::Instant::now() > deadline {
                return posts;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
