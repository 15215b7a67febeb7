//! The layer in a plain hyper server, with no framework.
//!
//! ```sh
//! cargo run --example hyper
//! curl -i http://127.0.0.1:3001/csp-report -H 'content-type: application/csp-report' \
//!   -d '{"csp-report":{"document-uri":"https://example.com/","violated-directive":"img-src","blocked-uri":"https://ads.example/x.gif"}}'
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tower::Layer;
use tower_csp_reports::CspReportLayer;
use tower_csp_reports::sink::TracingSink;

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let reports = CspReportLayer::builder().sink(TracingSink::new()).build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(reports.layer(tower::service_fn(hello)));
        tokio::spawn(async move {
            if let Err(error) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {error}");
            }
        });
    }
}
