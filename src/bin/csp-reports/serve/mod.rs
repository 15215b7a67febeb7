//! `csp-reports serve`: a standalone collector. The options, the collector they build, and
//! the listener that serves it with the limits a public endpoint needs.

mod args;
mod collector;
mod connection;
mod endpoints;
mod health;
mod limits;
mod listener;
mod metrics_listener;
mod stack;
mod tls;

pub(crate) use args::Args;
pub(crate) use collector::serve;
