//! The KV store in one SQLite file (WAL, `synchronous=FULL`), on threads of its own: async
//! callers never block on SQLite.
//!
//! Writes go to one writer thread, which takes every request queued at that moment into one
//! transaction: one fsync acknowledges the whole batch (group commit), and a call returns only
//! once its batch is durable. Reads go to a reader thread with its own connection (WAL lets it
//! read while the writer commits) and see every write that was acknowledged before they
//! started. The writer removes expired entries once a second.

use std::{
    path::{Path, PathBuf},
    sync::mpsc,
    time::{Duration, Instant},
};

use plexspaces_types::ErrorCode;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::{
    Error, Result,
    kv::{Entry, KvBackend, Scope, now_ms},
};

/// The most requests one transaction takes.
const BATCH: usize = 512;

/// How often the writer removes expired entries.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    tenant TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant, namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
";

enum Op {
    Get { key: String, now_ms: u64 },
    Put { entry: Entry },
    Delete { key: String, now_ms: u64 },
    List { prefix: String, after: Option<String>, limit: usize, now_ms: u64 },
    Swap { key: String, expected: Option<String>, new: Option<Entry>, now_ms: u64 },
}

enum Answer {
    Entry(Option<Entry>),
    Done,
    Flag(bool),
    Entries(Vec<Entry>, bool),
}

struct Request {
    tenant: String,
    namespace: String,
    op: Op,
    reply: oneshot::Sender<Result<Answer>>,
}

/// The SQLite backend.
#[derive(Debug)]
pub(crate) struct Sqlite {
    path: PathBuf,
    writes: mpsc::Sender<Request>,
    reads: mpsc::Sender<Request>,
}

fn sql_error(path: &Path, error: rusqlite::Error) -> Error {
    crate::sqlite::error("the KV store", path, error)
}

fn connect(path: &Path) -> Result<Connection> {
    crate::sqlite::connect("the KV store", path)
}

impl Sqlite {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| {
                Error::new(ErrorCode::Internal, format!("cannot create {}: {error}", dir.display()))
            })?;
        }
        let writer = connect(path)?;
        writer.execute_batch(SCHEMA).map_err(|error| sql_error(path, error))?;
        let reader = connect(path)?;
        let writes = spawn(path, writer, TransactionBehavior::Immediate, "plexspaces-kv-write")?;
        let reads = spawn(path, reader, TransactionBehavior::Deferred, "plexspaces-kv-read")?;
        Ok(Self { path: path.to_owned(), writes, reads })
    }

    async fn run(&self, scope: Scope<'_>, op: Op) -> Result<Answer> {
        let queue = match op {
            Op::Get { .. } | Op::List { .. } => &self.reads,
            _ => &self.writes,
        };
        let (reply, answer) = oneshot::channel();
        let request =
            Request { tenant: scope.0.to_owned(), namespace: scope.1.to_owned(), op, reply };
        let stopped = || {
            Error::new(
                ErrorCode::Unavailable,
                format!("the KV store {} is closed", self.path.display()),
            )
        };
        queue.send(request).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn spawn(
    path: &Path,
    connection: Connection,
    behavior: TransactionBehavior,
    name: &str,
) -> Result<mpsc::Sender<Request>> {
    let (sender, receiver) = mpsc::channel();
    let path = path.to_owned();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || serve(&path, connection, behavior, &receiver))
        .map_err(|error| {
            Error::new(ErrorCode::Internal, format!("cannot start {name}: {error}"))
        })?;
    Ok(sender)
}

/// Serves requests in batches until every sender is gone.
fn serve(
    path: &Path,
    mut connection: Connection,
    behavior: TransactionBehavior,
    requests: &mpsc::Receiver<Request>,
) {
    let sweeps = matches!(behavior, TransactionBehavior::Immediate);
    let mut last_sweep = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match requests.recv_timeout(SWEEP_EVERY) {
            Ok(request) => batch.push(request),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let sweep = sweeps && last_sweep.elapsed() >= SWEEP_EVERY;
        if sweep {
            last_sweep = Instant::now();
        }
        if batch.is_empty() && !sweep {
            continue;
        }
        let answers = run_batch(&mut connection, behavior, &batch, sweep);
        match answers {
            Ok(answers) => {
                for (request, answer) in batch.drain(..).zip(answers) {
                    let _caller_gone = request.reply.send(answer);
                }
            }
            Err(error) => {
                let error = sql_error(path, error);
                for request in batch.drain(..) {
                    let _caller_gone = request.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Runs a batch in one transaction; an error here fails the whole batch (nothing of it was
/// committed).
fn run_batch(
    connection: &mut Connection,
    behavior: TransactionBehavior,
    batch: &[Request],
    sweep: bool,
) -> rusqlite::Result<Vec<Result<Answer>>> {
    let transaction = connection.transaction_with_behavior(behavior)?;
    let mut answers = Vec::with_capacity(batch.len());
    for request in batch {
        let scope = (request.tenant.as_str(), request.namespace.as_str());
        answers.push(execute(&transaction, scope, &request.op));
    }
    if sweep {
        transaction.execute(
            "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            params![to_sql(now_ms())],
        )?;
    }
    transaction.commit()?;
    Ok(answers)
}

fn to_sql(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn from_sql(ms: Option<i64>) -> Option<u64> {
    ms.map(|ms| u64::try_from(ms).unwrap_or(0))
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?4)";

fn live_value(
    connection: &Connection,
    scope: Scope<'_>,
    key: &str,
    now_ms: u64,
) -> rusqlite::Result<Option<(String, Option<i64>)>> {
    connection
        .prepare_cached(&format!(
            "SELECT value, expires_at FROM kv WHERE tenant = ?1 AND namespace = ?2 AND key = ?3 AND {LIVE}"
        ))?
        .query_row(params![scope.0, scope.1, key, to_sql(now_ms)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
}

fn store(connection: &Connection, scope: Scope<'_>, entry: &Entry) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO kv (tenant, namespace, key, value, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant, namespace, key)
             DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )?
        .execute(params![
            scope.0,
            scope.1,
            entry.key,
            entry.value,
            entry.expires_at_ms.map(to_sql)
        ])?;
    Ok(())
}

fn remove(connection: &Connection, scope: Scope<'_>, key: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached("DELETE FROM kv WHERE tenant = ?1 AND namespace = ?2 AND key = ?3")?
        .execute(params![scope.0, scope.1, key])?;
    Ok(())
}

fn execute(connection: &Connection, scope: Scope<'_>, op: &Op) -> Result<Answer> {
    let failed = |error: rusqlite::Error| Error::new(ErrorCode::Internal, error.to_string());
    match op {
        Op::Get { key, now_ms } => {
            let found = live_value(connection, scope, key, *now_ms).map_err(failed)?;
            Ok(Answer::Entry(found.map(|(value, expires_at)| Entry {
                key: key.clone(),
                value,
                expires_at_ms: from_sql(expires_at),
            })))
        }
        Op::Put { entry } => {
            store(connection, scope, entry).map_err(failed)?;
            Ok(Answer::Done)
        }
        Op::Delete { key, now_ms } => {
            let found = live_value(connection, scope, key, *now_ms).map_err(failed)?;
            remove(connection, scope, key).map_err(failed)?;
            Ok(Answer::Flag(found.is_some()))
        }
        Op::List { prefix, after, limit, now_ms } => {
            list(connection, scope, prefix, after.as_deref(), *limit, *now_ms).map_err(failed)
        }
        Op::Swap { key, expected, new, now_ms } => {
            let current = live_value(connection, scope, key, *now_ms).map_err(failed)?;
            if current.as_ref().map(|(value, _)| value.as_str()) != expected.as_deref() {
                return Ok(Answer::Flag(false));
            }
            match new {
                Some(entry) => store(connection, scope, entry).map_err(failed)?,
                None => remove(connection, scope, key).map_err(failed)?,
            }
            Ok(Answer::Flag(true))
        }
    }
}

fn list(
    connection: &Connection,
    scope: Scope<'_>,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    now_ms: u64,
) -> rusqlite::Result<Answer> {
    // Keys compare as bytes (SQLite's BINARY collation), as Rust's strings do: the keys with a
    // prefix are one range starting at the prefix.
    let start = match after {
        Some(after) if after >= prefix => after,
        _ => prefix,
    };
    let exclusive = after.is_some_and(|after| after >= prefix);
    let mut statement = connection.prepare_cached(&format!(
        "SELECT key, value, expires_at FROM kv
         WHERE tenant = ?1 AND namespace = ?2 AND key >= ?3 AND {LIVE}
         ORDER BY key"
    ))?;
    let mut rows = statement.query(params![scope.0, scope.1, start, to_sql(now_ms)])?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        if !key.starts_with(prefix) {
            break;
        }
        if exclusive && key == start {
            continue;
        }
        if entries.len() == limit {
            return Ok(Answer::Entries(entries, true));
        }
        entries.push(Entry { key, value: row.get(1)?, expires_at_ms: from_sql(row.get(2)?) });
    }
    Ok(Answer::Entries(entries, false))
}

fn unexpected() -> Error {
    Error::new(ErrorCode::Internal, "the KV store answered another request's kind")
}

#[async_trait::async_trait]
impl KvBackend for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn get(&self, scope: Scope<'_>, key: &str, now_ms: u64) -> Result<Option<Entry>> {
        match self.run(scope, Op::Get { key: key.to_owned(), now_ms }).await? {
            Answer::Entry(entry) => Ok(entry),
            _ => Err(unexpected()),
        }
    }

    async fn put(&self, scope: Scope<'_>, entry: Entry) -> Result<()> {
        match self.run(scope, Op::Put { entry }).await? {
            Answer::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }

    async fn delete(&self, scope: Scope<'_>, key: &str, now_ms: u64) -> Result<bool> {
        match self.run(scope, Op::Delete { key: key.to_owned(), now_ms }).await? {
            Answer::Flag(found) => Ok(found),
            _ => Err(unexpected()),
        }
    }

    async fn list(
        &self,
        scope: Scope<'_>,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<(Vec<Entry>, bool)> {
        let op =
            Op::List { prefix: prefix.to_owned(), after: after.map(str::to_owned), limit, now_ms };
        match self.run(scope, op).await? {
            Answer::Entries(entries, more) => Ok((entries, more)),
            _ => Err(unexpected()),
        }
    }

    async fn compare_and_swap(
        &self,
        scope: Scope<'_>,
        key: &str,
        expected: Option<&str>,
        new: Option<Entry>,
        now_ms: u64,
    ) -> Result<bool> {
        let op =
            Op::Swap { key: key.to_owned(), expected: expected.map(str::to_owned), new, now_ms };
        match self.run(scope, op).await? {
            Answer::Flag(swapped) => Ok(swapped),
            _ => Err(unexpected()),
        }
    }
}
