//! The one writer of a SQLite store: a thread of its own that owns the write connection, takes
//! every write job from a queue, and runs the jobs waiting together in one transaction, each in
//! a savepoint of its own, so a failing job loses nothing of the others. A job is answered only
//! once its transaction has committed.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::error::{gone, sqlite_error};
use super::schema;
use crate::store::StoreError;

/// The most jobs one transaction takes.
const GROUP: usize = 64;

/// A write to run on the writer's connection.
pub(crate) trait Job: Send {
    /// Runs inside the group's transaction; `false` when it failed (its savepoint is undone).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the group has committed, or failed to.
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

/// A job made of a closure, answered through a channel.
pub(crate) struct Task<T, F> {
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    path: PathBuf,
}

impl<T, F> Task<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    pub(crate) fn new(path: PathBuf, op: F) -> (Self, oneshot::Receiver<Result<T, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let task = Self {
            op: Some(op),
            result: None,
            reply,
            path,
        };
        (task, answer)
    }
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        let result = op(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            // A failed job keeps its own error, whatever became of the others.
            (Err(_), Some(Err(own))) => Err(own),
            (Err(e), _) => Err(e.copied()),
            (Ok(()), None) => Err(gone(&self.path)),
        };
        // The caller may have given up waiting; that is fine.
        let _ = self.reply.send(result);
    }
}

/// Starts the writer thread; it ends when every sender is dropped.
pub(crate) fn spawn(path: PathBuf, busy: Duration) -> std::io::Result<mpsc::Sender<Box<dyn Job>>> {
    let (sender, jobs) = mpsc::channel::<Box<dyn Job>>();
    std::thread::Builder::new()
        .name("csp-sqlite-writer".to_owned())
        .spawn(move || run(&path, busy, &jobs))?;
    Ok(sender)
}

fn run(path: &std::path::Path, busy: Duration, jobs: &mpsc::Receiver<Box<dyn Job>>) {
    let mut conn: Option<Connection> = None;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // Opened on the first job, and again after a failure to open (the directory may
        // have been made since).
        let connection = match &mut conn {
            Some(connection) => connection,
            None => match schema::open(path, true, busy) {
                Ok(connection) => conn.insert(connection),
                Err(e) => {
                    for job in group {
                        job.finish(Err(&e));
                    }
                    continue;
                }
            },
        };
        let outcome = transaction(connection, &mut group).map_err(|e| sqlite_error(path, e));
        for job in group {
            job.finish(outcome.as_ref().map(|_| ()));
        }
    }
}

fn transaction(conn: &Connection, group: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        for job in group.iter_mut() {
            conn.execute_batch("SAVEPOINT job")?;
            if job.run(conn) {
                conn.execute_batch("RELEASE job")?;
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            }
        }
        conn.execute_batch("COMMIT")
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}
