//! One connection: its deadlines, and what its requests are doing.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::stack::Collector;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use tokio::sync::{Notify, watch};
use tower_service::Service;

/// How long a connection may go without a request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// From the accept to the first request's headers.
    pub(super) header_read: Duration,
    /// From the end of the last request, with none in flight.
    pub(super) idle: Duration,
}

/// One accepted connection and what it needs to serve.
pub(super) struct Connection {
    pub(super) peer: SocketAddr,
    pub(super) accepted: Instant,
    pub(super) service: Collector,
    pub(super) builder: Arc<Builder<TokioExecutor>>,
    pub(super) timeouts: Timeouts,
    pub(super) stopped: watch::Receiver<()>,
}

impl Connection {
    /// Serves requests until the client leaves, the connection sends no request in time or
    /// sits idle, or the server stops.
    ///
    /// hyper's header-read timeout covers an HTTP/1 request once hyper has seen that the
    /// connection is HTTP/1; before that (a client that sends nothing, or part of the HTTP/2
    /// preface) and for HTTP/2, which has no such timeout, the deadlines are kept here.
    pub(super) async fn serve<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new(self.accepted));
        let hyper_service = {
            let activity = activity.clone();
            let (peer, service) = (self.peer, self.service);
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(peer);
                let mut service = service.clone();
                let busy = Activity::begin(&activity);
                async move {
                    let _busy = busy;
                    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                    service.call(request).await
                }
            })
        };
        let conn = self.builder.serve_connection(io, hyper_service);
        let mut conn = pin!(conn);
        // Once closing, the connection has this long to finish; `None`: until the server's
        // own shutdown timeout.
        let mut closing: Option<Option<Instant>> = None;
        loop {
            let deadline = match closing {
                Some(give_up) => give_up,
                None => Some(activity.deadline(self.timeouts)),
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(target: "csp_reports", peer = %self.peer, %error, "connection ended with an error");
                    }
                    return;
                }
                // A request ended: the deadline moves.
                () = activity.ended.notified(), if closing.is_none() => {}
                _ = self.stopped.changed(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(None);
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    if closing.is_some() {
                        return;
                    }
                    let now = Instant::now();
                    match activity.idle(now, self.timeouts) {
                        Idle::No => {}
                        Idle::NeverAsked => {
                            tracing::debug!(target: "csp_reports", peer = %self.peer, "no request within the header-read timeout: closed");
                            return;
                        }
                        Idle::Yes => {
                            conn.as_mut().graceful_shutdown();
                            closing = Some(Some(now + self.timeouts.header_read));
                        }
                    }
                }
            }
        }
    }
}

/// Sleeps until `deadline`; forever when there is none (the branch is disabled then).
pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// What a connection's requests have been doing, as its deadlines need to know.
#[derive(Debug)]
pub(super) struct Activity {
    pub(super) state: Mutex<ActivityState>,
    /// Told when a request ends, so that the deadline is computed again.
    pub(super) ended: Notify,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ActivityState {
    pub(super) in_flight: usize,
    /// Whether any request has begun.
    pub(super) asked: bool,
    /// The accept, then the end of the last request.
    pub(super) since: Instant,
}

/// Whether a connection has gone too long without a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Idle {
    No,
    /// No request at all within the header-read timeout.
    NeverAsked,
    /// No request in flight for the idle timeout.
    Yes,
}

impl Activity {
    pub(super) fn new(accepted: Instant) -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                asked: false,
                since: accepted,
            }),
            ended: Notify::new(),
        }
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a request as begun until the guard is dropped (answered, or given up).
    pub(super) fn begin(this: &Arc<Self>) -> Busy {
        let mut state = this.state();
        state.in_flight += 1;
        state.asked = true;
        Busy(this.clone())
    }

    /// When to look again.
    pub(super) fn deadline(&self, timeouts: Timeouts) -> Instant {
        let state = *self.state();
        if state.in_flight > 0 {
            Instant::now() + timeouts.idle
        } else if state.asked {
            state.since + timeouts.idle
        } else {
            state.since + timeouts.header_read
        }
    }

    pub(super) fn idle(&self, now: Instant, timeouts: Timeouts) -> Idle {
        let state = *self.state();
        let quiet = now.saturating_duration_since(state.since);
        if state.in_flight > 0 {
            Idle::No
        } else if !state.asked {
            if quiet >= timeouts.header_read {
                Idle::NeverAsked
            } else {
                Idle::No
            }
        } else if quiet >= timeouts.idle {
            Idle::Yes
        } else {
            Idle::No
        }
    }
}

/// A request in flight on a connection.
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        {
            let mut state = self.0.state();
            state.in_flight -= 1;
            state.since = Instant::now();
        }
        self.0.ended.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_connection_is_idle_only_with_nothing_in_flight() {
        let timeouts = Timeouts {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let activity = Arc::new(Activity::new(t0));
        assert_eq!(activity.idle(t0 + s(9), timeouts), Idle::No);
        assert_eq!(activity.idle(t0 + s(10), timeouts), Idle::NeverAsked);
        assert_eq!(activity.deadline(timeouts), t0 + s(10));
        let busy = Activity::begin(&activity);
        assert_eq!(
            activity.idle(t0 + s(1_000), timeouts),
            Idle::No,
            "in flight"
        );
        drop(busy);
        let ended = activity.state().since;
        assert_eq!(activity.deadline(timeouts), ended + s(60));
        assert_eq!(activity.idle(ended + s(59), timeouts), Idle::No);
        assert_eq!(activity.idle(ended + s(60), timeouts), Idle::Yes);
    }
}
