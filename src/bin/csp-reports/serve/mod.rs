//! `csp-reports serve`: a standalone collector. The options, the collector they build, and
//! the listener that serves it with the limits a public endpoint needs.

mod args;
mod collector;
mod connection;
mod endpoints;
mod intake;
mod limits;
mod listener;
mod report_log;
mod tls;

pub(crate) use args::{Args, parse_positive_duration};
pub(crate) use collector::serve;
