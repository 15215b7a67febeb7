//! What a built layer works with: its settings, fixed once built.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cors::Cors;
use crate::filter::Filter;
use crate::parse::Limits;
use crate::privacy::Privacy;

/// How the layer learns a request's client address.
pub(crate) type ClientIp = Arc<dyn Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync>;

/// The settings of a built layer. Made by the builder, never changed afterwards.
pub(crate) struct LayerConfig {
    pub(crate) paths: Vec<Box<str>>,
    pub(crate) max_body_size: usize,
    pub(crate) limits: Limits,
    pub(crate) body_timeout: Duration,
    pub(crate) cors: Option<Cors>,
    pub(crate) filter: Arc<dyn Filter>,
    pub(crate) client_ip: ClientIp,
    /// What is removed from each report right after parsing.
    pub(crate) privacy: Privacy,
    /// How long a request waits for room in a required sink's queue before its `503`.
    pub(crate) admission_wait: Duration,
}

impl LayerConfig {
    pub(crate) fn is_report_path(&self, path: &str) -> bool {
        self.paths.iter().any(|p| **p == *path)
    }
}

impl fmt::Debug for LayerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerConfig")
            .field("paths", &self.paths)
            .field("max_body_size", &self.max_body_size)
            .field("limits", &self.limits)
            .field("body_timeout", &self.body_timeout)
            .field("cors", &self.cors)
            .field("privacy", &self.privacy)
            .field("admission_wait", &self.admission_wait)
            .finish_non_exhaustive()
    }
}
