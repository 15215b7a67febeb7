#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod report;
pub mod sink;

pub use error::ConfigError;
pub use report::{ContentType, Fingerprint, Report, WireFormat};
pub use sink::{ReportBatch, ReportSink, SinkError};
