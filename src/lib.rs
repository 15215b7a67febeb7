#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod alert;
pub mod client_ip;
pub mod cors;
#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod dashboard;
pub mod dispatch;
pub mod endpoint;
pub mod error;
pub mod filter;
mod layer;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
#[allow(unreachable_pub, dead_code)]
mod metrics;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
#[doc(hidden)]
pub mod parse;
pub mod policy;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod privacy;
pub mod rate_limit;
pub mod report;
pub mod sample;
pub mod sink;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
pub mod store;
mod table;

pub use bytestring::{self, ByteString};
pub use cors::Cors;
pub use dispatch::{Dispatch, SinkOptions};
pub use endpoint::ReportingEndpoint;
pub use error::ConfigError;
pub use filter::{DefaultFilter, Filter, FilterExt};
pub use layer::{
    CspReport, CspReportHandle, CspReportLayer, CspReportLayerBuilder, ResponseBody,
    ResponseFuture, Stats,
};
pub use privacy::Privacy;
pub use rate_limit::RateLimit;
pub use report::{ContentType, Fingerprint, Report, ReportId, WireFormat};
pub use sample::Sampling;
pub use sink::{ReportBatch, ReportSink, SinkError};
