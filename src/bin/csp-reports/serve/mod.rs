//! `csp-reports serve`: a standalone collector. The options, the collector they build, and
//! the listener that serves it with the limits a public endpoint needs.

mod admin;
mod args;
mod collector;
mod connection;
mod endpoints;
mod limits;
mod listener;
mod tls;

pub(crate) use args::Args;
pub(crate) use collector::serve;
