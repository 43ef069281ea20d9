//! The tuple space's journal in one SQLite file (WAL, `synchronous=FULL`): each stored tuple is
//! a row until it is taken or its lease ends. Records queue to a writer thread, which commits
//! every record queued at that moment in one transaction; `flush` resolves after the commit
//! holding everything recorded before it (group commit). At start the rows are read back and
//! put in their spaces under the ids they had.

use std::{
    path::{Path, PathBuf},
    sync::mpsc,
};

use plexspaces_tuplespace::{Flush, Journal, Tuple};
use plexspaces_types::ErrorCode;
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::{Error, Result, kv::now_ms};

/// The most records one transaction takes.
const BATCH: usize = 4096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tuples (
    tenant TEXT NOT NULL,
    namespace TEXT NOT NULL,
    id INTEGER NOT NULL,
    tuple TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant, namespace, id)
) WITHOUT ROWID;
";

enum Record {
    Stored { tenant: String, namespace: String, id: u64, tuple: String, expires_at: Option<u64> },
    Removed { tenant: String, namespace: String, id: u64 },
    Flush(oneshot::Sender<std::result::Result<(), String>>),
}

/// A tuple the journal kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// Its tenant and namespace.
    pub tenant: String,
    /// Its namespace.
    pub namespace: String,
    /// Its id in that space.
    pub id: u64,
    /// The tuple.
    pub tuple: Tuple,
    /// When its lease ends, in ms since the Unix epoch.
    pub expires_at_ms: Option<u64>,
}

/// The SQLite journal of the tuple spaces.
#[derive(Debug)]
pub struct TupleJournal {
    path: PathBuf,
    records: mpsc::Sender<Record>,
}

fn sql_error(path: &Path, error: rusqlite::Error) -> Error {
    crate::sqlite::error("the tuple journal", path, error)
}

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl TupleJournal {
    /// Opens (or creates) the journal at `path` and returns the tuples it kept, oldest first
    /// in each space; those whose lease ended are dropped from it.
    pub fn open(path: &Path) -> Result<(Self, Vec<Kept>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| {
                Error::new(ErrorCode::Internal, format!("cannot create {}: {error}", dir.display()))
            })?;
        }
        let failed = |error| sql_error(path, error);
        let connection = crate::sqlite::connect("the tuple journal", path)?;
        connection.execute_batch(SCHEMA).map_err(failed)?;
        connection
            .execute(
                "DELETE FROM tuples WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                params![to_sql(now_ms())],
            )
            .map_err(failed)?;
        let mut kept = Vec::new();
        {
            let mut statement = connection
                .prepare("SELECT tenant, namespace, id, tuple, expires_at FROM tuples ORDER BY tenant, namespace, id")
                .map_err(failed)?;
            let mut rows = statement.query([]).map_err(failed)?;
            while let Some(row) = rows.next().map_err(failed)? {
                let text: String = row.get(3).map_err(failed)?;
                let tuple: Tuple = serde_json::from_str(&text).map_err(|error| {
                    Error::new(
                        ErrorCode::Internal,
                        format!(
                            "the tuple journal {} holds a damaged tuple: {error}",
                            path.display()
                        ),
                    )
                })?;
                let id: i64 = row.get(2).map_err(failed)?;
                let expires_at: Option<i64> = row.get(4).map_err(failed)?;
                kept.push(Kept {
                    tenant: row.get(0).map_err(failed)?,
                    namespace: row.get(1).map_err(failed)?,
                    id: u64::try_from(id).unwrap_or(0),
                    tuple,
                    expires_at_ms: expires_at.map(|at| u64::try_from(at).unwrap_or(0)),
                });
            }
        }
        let (records, receiver) = mpsc::channel();
        let thread_path = path.to_owned();
        std::thread::Builder::new()
            .name("plexspaces-tuple-journal".to_owned())
            .spawn(move || write(&thread_path, connection, &receiver))
            .map_err(|error| {
                Error::new(ErrorCode::Internal, format!("cannot start the tuple journal: {error}"))
            })?;
        Ok((Self { path: path.to_owned(), records }, kept))
    }
}

/// Commits records in batches until the journal is dropped.
fn write(path: &Path, mut connection: Connection, records: &mpsc::Receiver<Record>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = records.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match records.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let outcome =
            commit(&mut connection, &batch).map_err(|error| sql_error(path, error).message);
        if let Err(message) = &outcome {
            tracing::error!(error = %message, "the tuple journal could not commit");
        }
        for record in batch.drain(..) {
            if let Record::Flush(done) = record {
                let _caller_gone = done.send(outcome.clone());
            }
        }
    }
}

fn commit(connection: &mut Connection, batch: &[Record]) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut store = transaction.prepare_cached(
            "INSERT OR REPLACE INTO tuples (tenant, namespace, id, tuple, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut remove = transaction.prepare_cached(
            "DELETE FROM tuples WHERE tenant = ?1 AND namespace = ?2 AND id = ?3",
        )?;
        for record in batch {
            match record {
                Record::Stored { tenant, namespace, id, tuple, expires_at } => {
                    store.execute(params![
                        tenant,
                        namespace,
                        to_sql(*id),
                        tuple,
                        expires_at.map(to_sql)
                    ])?;
                }
                Record::Removed { tenant, namespace, id } => {
                    remove.execute(params![tenant, namespace, to_sql(*id)])?;
                }
                Record::Flush(_) => {}
            }
        }
    }
    transaction.commit()
}

impl Journal for TupleJournal {
    fn stored(&self, scope: (&str, &str), id: u64, tuple: &Tuple, expires_at_ms: Option<u64>) {
        let record = Record::Stored {
            tenant: scope.0.to_owned(),
            namespace: scope.1.to_owned(),
            id,
            tuple: serde_json::to_string(tuple).unwrap_or_default(),
            expires_at: expires_at_ms,
        };
        // The writer stops only when the journal is dropped; a flush then reports it.
        let _stopped = self.records.send(record);
    }

    fn removed(&self, scope: (&str, &str), id: u64) {
        let record =
            Record::Removed { tenant: scope.0.to_owned(), namespace: scope.1.to_owned(), id };
        let _stopped = self.records.send(record);
    }

    fn flush(&self) -> Flush {
        let (done, answer) = oneshot::channel();
        let sent = self.records.send(Record::Flush(done));
        let path = self.path.clone();
        Box::pin(async move {
            let failed = |message: String| plexspaces_tuplespace::Error {
                code: ErrorCode::Unavailable,
                message,
            };
            if sent.is_err() {
                return Err(failed(format!("the tuple journal {} is closed", path.display())));
            }
            match answer.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(failed(message)),
                Err(_) => Err(failed(format!("the tuple journal {} stopped", path.display()))),
            }
        })
    }
}
