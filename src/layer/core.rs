//! What every service of one built layer shares, behind one `Arc`: the settings, and the
//! runtime state next to them (counters, rate limiter, sampler, the body memory budget, the
//! dispatcher).

use std::fmt;

use tokio::sync::Semaphore;

use super::config::LayerConfig;
use super::counters::Counters;
use crate::dispatch::Dispatcher;
use crate::rate_limit::RateLimiter;
use crate::sample::Sampler;

/// The bytes of request bodies one permit of the budget stands for.
pub(crate) const BUDGET_UNIT: usize = 1024;

pub(crate) struct Core {
    config: LayerConfig,
    counters: Counters,
    limiter: Option<RateLimiter>,
    sampler: Option<Sampler>,
    /// Request bodies being read or parsed, in [`BUDGET_UNIT`]s.
    body_budget: Semaphore,
    dispatcher: Dispatcher,
}

impl Core {
    pub(crate) fn new(
        config: LayerConfig,
        limiter: Option<RateLimiter>,
        sampler: Option<Sampler>,
        body_budget: usize,
        dispatcher: Dispatcher,
    ) -> Self {
        Self {
            config,
            counters: Counters::new(),
            limiter,
            sampler,
            body_budget: Semaphore::new(body_budget.div_ceil(BUDGET_UNIT)),
            dispatcher,
        }
    }

    pub(crate) fn config(&self) -> &LayerConfig {
        &self.config
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_ref()
    }

    pub(crate) fn sampler(&self) -> Option<&Sampler> {
        self.sampler.as_ref()
    }

    pub(crate) fn body_budget(&self) -> &Semaphore {
        &self.body_budget
    }

    pub(crate) fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CspReportLayer")
            .field("config", &self.config)
            .field("dispatcher", &self.dispatcher)
            .finish_non_exhaustive()
    }
}
