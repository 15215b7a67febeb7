use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use super::builder::SqliteStoreBuilder;
use super::error::{gone, sqlite_error};
use super::schema::{self, Tables};
use super::writer::{self, Job, Task};
use crate::store::{EventChannel, StoreError, StoreErrorKind};

/// Reports and violations in a SQLite file: the embedded store, with nothing to install.
/// It implements [`ReportStore`](crate::store::ReportStore).
///
/// One thread of its own writes, batching the writes that wait together into one
/// transaction; reads run on other connections, on Tokio's blocking threads; the file is in
/// write-ahead-log mode, so reads never wait for writes. Other processes (`csp-reports
/// summary` beside a running `serve`) can read and write the same file.
///
/// Cloning is cheap; clones share the writer, the readers and the violation events. The
/// writer thread ends when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) tables: Tables,
    busy: Duration,
    max_readers: usize,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    pub(crate) events: EventChannel,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("table", &self.inner.tables.name)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The settings of a store in the file at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> SqliteStoreBuilder {
        SqliteStoreBuilder::new(path)
    }

    pub(crate) fn from_builder(builder: SqliteStoreBuilder) -> Self {
        Self {
            inner: Arc::new(Inner {
                tables: Tables::new(&builder.table),
                path: builder.path,
                busy: builder.busy_timeout,
                max_readers: builder.readers,
                readers: Mutex::new(Vec::new()),
                writer: Mutex::new(None),
                events: EventChannel::new(),
            }),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The reports table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.tables.name
    }

    /// Runs `op` on the writer's connection, in a transaction shared with the jobs that
    /// waited beside it; answers once that transaction has committed.
    pub(crate) async fn write_job<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let path = self.inner.path.clone();
        let (task, answer) = Task::new(path.clone(), op);
        self.writer()?
            .send(Box::new(task))
            .map_err(|_| gone(&path))?;
        answer.await.map_err(|_| gone(&path))?
    }

    fn writer(&self) -> Result<mpsc::Sender<Box<dyn Job>>, StoreError> {
        let mut writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = &*writer {
            return Ok(sender.clone());
        }
        let sender = writer::spawn(self.inner.path.clone(), self.inner.busy).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "cannot start the SQLite writer of {}",
                    self.inner.path.display()
                ),
            )
            .with_source(e)
        })?;
        *writer = Some(sender.clone());
        Ok(sender)
    }

    /// Runs `op` on a reading connection, in one read transaction, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Tables) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let path = inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.take_reader()?;
            let result = (|| {
                let tx = conn
                    .unchecked_transaction()
                    .map_err(|e| sqlite_error(&inner.path, e))?;
                let value = op(&tx, &inner.tables)?;
                tx.commit().map_err(|e| sqlite_error(&inner.path, e))?;
                Ok(value)
            })();
            inner.give_back(conn);
            result
        })
        .await
        .map_err(|_| gone(&path))?
    }
}

impl Inner {
    fn take_reader(&self) -> Result<Connection, StoreError> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let conn = schema::open(&self.path, false, self.busy)?;
        schema::check(&conn, &self.path, &self.tables)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < self.max_readers {
            readers.push(conn);
        }
    }
}
