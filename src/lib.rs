#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
pub mod client_ip;
pub mod cors;
pub mod dispatch;
pub mod endpoint;
pub mod error;
pub mod filter;
mod future;
mod handle;
mod layer;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
pub mod parse;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod rate_limit;
mod receive;
pub mod report;
pub mod sample;
mod service;
pub mod sink;

pub use body::ResponseBody;
pub use bytestring::{self, ByteString};
pub use cors::Cors;
pub use dispatch::{Dispatch, SinkOptions};
pub use endpoint::ReportingEndpoint;
pub use error::ConfigError;
pub use filter::{DefaultFilter, Filter, FilterExt};
pub use future::ResponseFuture;
pub use handle::{CspReportHandle, Stats};
pub use layer::CspReportLayer;
pub use rate_limit::RateLimit;
pub use report::{ContentType, Fingerprint, Report, ReportId, WireFormat};
pub use sample::Sampling;
pub use service::CspReport;
pub use sink::{ReportBatch, ReportSink, SinkError};
