//! The middleware: [`CspReportLayer`] (built by [`CspReportLayerBuilder`]), the service it
//! makes, [`CspReport`], its future and body, and [`CspReportHandle`] on its counters.
//!
//! The settings are fixed when the layer is built; the runtime state (counters, rate limiter,
//! sampler, body budget, the dispatcher and its workers) lives beside them in one `Arc` that
//! every clone and service shares. A request goes builder → service → receive → dispatcher,
//! never back.

mod answer;
mod body;
mod builder;
mod config;
mod core;
mod counters;
mod future;
mod handle;
mod receive;
mod service;

pub use body::ResponseBody;
pub use builder::{CspReportLayer, CspReportLayerBuilder};
pub use future::ResponseFuture;
pub use handle::{CspReportHandle, Stats};
pub use service::CspReport;
