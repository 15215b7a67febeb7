//! `csp-reports serve`: a standalone collector. The options, the collector they build, and
//! the listener that serves it with the limits a public endpoint needs.

mod admin;
mod alerts;
mod args;
mod collector;
mod connection;
mod endpoints;
mod health;
mod intake;
mod limits;
mod listener;
mod metrics_listener;
mod nats;
mod report_log;
mod stack;
mod tls;

pub(crate) use args::{Args, parse_positive_duration};
pub(crate) use collector::serve;
pub(crate) use listener::shutdown_signal;
