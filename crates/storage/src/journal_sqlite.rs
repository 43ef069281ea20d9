//! The journal of durable actors in two SQLite files (WAL, `synchronous=FULL`): the entries in
//! `journal.sqlite`, the checkpoints in `checkpoints.sqlite`, so that a journal file that lost
//! its tail is caught by its checkpoint's sequence.
//!
//! Appends queue to a writer thread in ticket order. The writer takes every request queued at
//! that moment: checkpoints first, committed in their file, then the entries, truncations and
//! removals in one transaction of the journal file, so one fsync makes a whole batch of many
//! actors' entries durable (group commit), and a truncation never commits before the checkpoint
//! it follows. A failed commit poisons the journal: nothing appended afterwards is acknowledged.
//! Recovery reads go to a reader thread with connections of its own. A clean close folds the
//! write-ahead logs into the files.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
};

use async_trait::async_trait;
use parking_lot::Mutex;
use plexspaces_types::ErrorCode;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::{oneshot, watch};

use crate::{
    Error, Result,
    journal::{
        Checkpoint, Entry, JournalBackend, Recovered, Ticket, Timer, check, damaged,
        decode_checkpoint, decode_entry, decode_head, decode_timer, encode_checkpoint,
        encode_entry, encode_head, encode_timer,
    },
};

/// The most requests one batch takes.
const BATCH: usize = 4096;

const JOURNAL_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    actor TEXT NOT NULL,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (actor, seq, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timers (
    actor TEXT NOT NULL,
    id TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (actor, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    actor TEXT NOT NULL PRIMARY KEY,
    seq INTEGER NOT NULL,
    record BLOB NOT NULL
) WITHOUT ROWID;
";

const CHECKPOINT_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    actor TEXT NOT NULL PRIMARY KEY,
    seq INTEGER NOT NULL,
    record BLOB NOT NULL
) WITHOUT ROWID;
";

enum Write {
    Append { actor: String, seq: u64, index: u32, record: Vec<u8> },
    Checkpoint { actor: String, seq: u64, record: Vec<u8>, done: oneshot::Sender<Result<()>> },
    Remove { actor: String, done: oneshot::Sender<Result<()>> },
    SetTimer { timer: Timer, record: Vec<u8>, done: oneshot::Sender<Result<()>> },
    CancelTimer { actor: String, id: String, done: oneshot::Sender<Result<()>> },
}

impl Write {
    fn done(self) -> Option<oneshot::Sender<Result<()>>> {
        match self {
            Write::Append { .. } => None,
            Write::Checkpoint { done, .. }
            | Write::Remove { done, .. }
            | Write::SetTimer { done, .. }
            | Write::CancelTimer { done, .. } => Some(done),
        }
    }
}

enum Read {
    Actor { actor: String, reply: oneshot::Sender<Result<Recovered>> },
    Timers { reply: oneshot::Sender<Result<Vec<Timer>>> },
}

/// How far the writer got.
#[derive(Debug, Clone, Default)]
struct Progress {
    committed: Ticket,
    failed: Option<Error>,
}

/// The SQLite journal.
#[derive(Debug)]
pub struct SqliteJournal {
    dir: PathBuf,
    /// The next ticket and the writer's queue, under one lock so tickets follow queue order.
    queue: Mutex<(Ticket, mpsc::Sender<Write>)>,
    reads: mpsc::Sender<Read>,
    progress: watch::Receiver<Progress>,
    poisoned: Arc<AtomicBool>,
    /// Set when the files failed their check at open: every call refuses.
    damage: Option<Error>,
    writer: Option<std::thread::JoinHandle<()>>,
}

fn sql_error(path: &Path, error: rusqlite::Error) -> Error {
    crate::sqlite::error("the journal", path, error)
}

fn connect(path: &Path) -> Result<Connection> {
    crate::sqlite::connect("the journal", path)
}

/// SQLite's own check of the file's structure: `None` when sound.
fn structure(path: &Path, connection: &Connection) -> Option<String> {
    let verdict: rusqlite::Result<String> =
        connection.query_row("PRAGMA quick_check", [], |row| row.get(0));
    match verdict {
        Ok(verdict) if verdict == "ok" => None,
        Ok(verdict) => Some(format!("{} fails its check: {verdict}", path.display())),
        Err(error) => Some(format!("{} cannot be checked: {error}", path.display())),
    }
}

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl SqliteJournal {
    /// Opens (or creates) the journal in `dir`: `journal.sqlite` and `checkpoints.sqlite`.
    /// Files that fail SQLite's structural check open as damaged: every call then answers
    /// `journal_damaged` rather than serve state from them.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|error| {
            Error::new(ErrorCode::Internal, format!("cannot create {}: {error}", dir.display()))
        })?;
        let journal_path = dir.join("journal.sqlite");
        let checkpoints_path = dir.join("checkpoints.sqlite");
        let open_pair = || -> Result<(Connection, Connection)> {
            let journal = connect(&journal_path)?;
            let checkpoints = connect(&checkpoints_path)?;
            Ok((journal, checkpoints))
        };
        let (journal, checkpoints) = open_pair()?;
        let mut damage = [(&journal_path, &journal), (&checkpoints_path, &checkpoints)]
            .into_iter()
            .find_map(|(path, connection)| structure(path, connection));
        if damage.is_none() {
            let schema = journal
                .execute_batch(JOURNAL_SCHEMA)
                .map_err(|error| sql_error(&journal_path, error))
                .and_then(|()| {
                    checkpoints
                        .execute_batch(CHECKPOINT_SCHEMA)
                        .map_err(|error| sql_error(&checkpoints_path, error))
                });
            if let Err(error) = schema {
                damage = Some(error.message);
            }
        }
        let damage = damage.map(|what| {
            tracing::error!(dir = %dir.display(), %what, "the journal is damaged; durable actors will not be served from it");
            Error::new(
                ErrorCode::JournalDamaged,
                format!("the journal in {} is damaged ({what}); durable state is not served", dir.display()),
            )
        });
        let (readers_journal, readers_checkpoints) = open_pair()?;
        let (progress_tx, progress) = watch::channel(Progress::default());
        let poisoned = Arc::new(AtomicBool::new(false));
        let (writes, write_queue) = mpsc::channel();
        let paths = (journal_path.clone(), checkpoints_path.clone());
        let writer_poisoned = Arc::clone(&poisoned);
        let writer = std::thread::Builder::new()
            .name("plexspaces-journal-write".to_owned())
            .spawn(move || {
                write_loop(
                    &paths,
                    journal,
                    checkpoints,
                    &write_queue,
                    &progress_tx,
                    &writer_poisoned,
                );
            })
            .map_err(|error| internal(format!("cannot start the journal writer: {error}")))?;
        let (reads, read_queue) = mpsc::channel();
        let paths = (journal_path, checkpoints_path);
        std::thread::Builder::new()
            .name("plexspaces-journal-read".to_owned())
            .spawn(move || read_loop(&paths, &readers_journal, &readers_checkpoints, &read_queue))
            .map_err(|error| internal(format!("cannot start the journal reader: {error}")))?;
        Ok(Self {
            dir: dir.to_owned(),
            queue: Mutex::new((0, writes)),
            reads,
            progress,
            poisoned,
            damage,
            writer: Some(writer),
        })
    }

    /// Closes the journal once every queued write is committed, and folds the write-ahead logs
    /// into the files. Dropping it does the same without waiting.
    pub fn close(mut self) {
        let writer = self.writer.take();
        drop(self);
        if let Some(writer) = writer {
            let _panicked = writer.join();
        }
    }

    fn closed(&self) -> Error {
        Error::new(
            ErrorCode::Unavailable,
            format!("the journal in {} is closed", self.dir.display()),
        )
    }

    fn usable(&self) -> Result<()> {
        if let Some(damage) = &self.damage {
            return Err(damage.clone());
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.progress.borrow().failed.clone().unwrap_or_else(|| self.closed()));
        }
        Ok(())
    }

    /// Queues a write; its ticket is its place in the queue, so the writer knows every
    /// ticket it has committed by counting what it took.
    fn send(&self, write: Write) -> Result<Ticket> {
        self.usable()?;
        let mut queue = self.queue.lock();
        let ticket = queue.0 + 1;
        queue.1.send(write).map_err(|_| self.closed())?;
        queue.0 = ticket;
        Ok(ticket)
    }
}

fn internal(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Internal, what.to_string())
}

#[async_trait]
impl JournalBackend for SqliteJournal {
    fn append(&self, actor: &str, seq: u64, index: u32, entry: &Entry) -> Result<Ticket> {
        let record = encode_entry(actor, seq, index, entry)?;
        self.send(Write::Append { actor: actor.to_owned(), seq, index, record })
    }

    async fn durable(&self, ticket: Ticket) -> Result<()> {
        let mut progress = self.progress.clone();
        let reached = progress
            .wait_for(|progress| progress.committed >= ticket || progress.failed.is_some())
            .await
            .map_err(|_| self.closed())?;
        if reached.committed >= ticket {
            return Ok(());
        }
        Err(reached.failed.clone().unwrap_or_else(|| self.closed()))
    }

    async fn recover(&self, actor: &str) -> Result<Recovered> {
        self.usable()?;
        let (reply, answer) = oneshot::channel();
        let read = Read::Actor { actor: actor.to_owned(), reply };
        self.reads.send(read).map_err(|_| self.closed())?;
        answer.await.map_err(|_| self.closed())?
    }

    async fn set_timer(&self, timer: &Timer) -> Result<()> {
        let record = encode_timer(timer)?;
        let (done, answer) = oneshot::channel();
        self.send(Write::SetTimer { timer: timer.clone(), record, done })?;
        answer.await.map_err(|_| self.closed())?
    }

    async fn cancel_timer(&self, actor: &str, id: &str) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send(Write::CancelTimer { actor: actor.to_owned(), id: id.to_owned(), done })?;
        answer.await.map_err(|_| self.closed())?
    }

    async fn timers(&self) -> Result<Vec<Timer>> {
        self.usable()?;
        let (reply, answer) = oneshot::channel();
        self.reads.send(Read::Timers { reply }).map_err(|_| self.closed())?;
        answer.await.map_err(|_| self.closed())?
    }

    async fn checkpoint(&self, actor: &str, checkpoint: &Checkpoint) -> Result<()> {
        let record = encode_checkpoint(actor, checkpoint)?;
        let (done, answer) = oneshot::channel();
        let seq = checkpoint.seq;
        self.send(Write::Checkpoint { actor: actor.to_owned(), seq, record, done })?;
        answer.await.map_err(|_| self.closed())?
    }

    async fn remove(&self, actor: &str) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send(Write::Remove { actor: actor.to_owned(), done })?;
        answer.await.map_err(|_| self.closed())?
    }
}

fn write_loop(
    paths: &(PathBuf, PathBuf),
    mut journal: Connection,
    mut checkpoints: Connection,
    queue: &mpsc::Receiver<Write>,
    progress: &watch::Sender<Progress>,
    poisoned: &AtomicBool,
) {
    let mut batch = Vec::with_capacity(BATCH);
    // Writes taken so far: the ticket of the last one.
    let mut taken: Ticket = 0;
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        taken += batch.len() as Ticket;
        if poisoned.load(Ordering::Acquire) {
            fail_batch(&mut batch, progress);
            continue;
        }
        match commit(paths, &mut journal, &mut checkpoints, &batch) {
            Ok(()) => {
                progress.send_modify(|progress| progress.committed = taken);
                for done in batch.drain(..).filter_map(Write::done) {
                    let _caller_gone = done.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(error = %error.message, "a journal commit failed; durable actors stop acknowledging");
                poisoned.store(true, Ordering::Release);
                progress.send_modify(|progress| progress.failed = Some(error));
                fail_batch(&mut batch, progress);
            }
        }
    }
    // Every sender is gone: fold the write-ahead logs into the files.
    for (path, connection) in [(&paths.0, &journal), (&paths.1, &checkpoints)] {
        if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(path = %path.display(), %error, "the journal's log was not folded in");
        }
    }
}

fn fail_batch(batch: &mut Vec<Write>, progress: &watch::Sender<Progress>) {
    let error = progress.borrow().failed.clone().unwrap_or_else(|| internal("the journal failed"));
    for done in batch.drain(..).filter_map(Write::done) {
        let _caller_gone = done.send(Err(error.clone()));
    }
}

/// Commits a batch: checkpoints (and removals') in their file first, then the journal's.
fn commit(
    paths: &(PathBuf, PathBuf),
    journal: &mut Connection,
    checkpoints: &mut Connection,
    batch: &[Write],
) -> Result<()> {
    let touches_checkpoints =
        batch.iter().any(|write| matches!(write, Write::Checkpoint { .. } | Write::Remove { .. }));
    if touches_checkpoints {
        let failed = |error| sql_error(&paths.1, error);
        let transaction = checkpoints
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        for write in batch {
            match write {
                Write::Checkpoint { actor, seq, record, .. } => {
                    transaction
                        .prepare_cached(
                            "INSERT INTO checkpoints (actor, seq, record) VALUES (?1, ?2, ?3)
                             ON CONFLICT (actor) DO UPDATE SET seq = excluded.seq, record = excluded.record",
                        )
                        .and_then(|mut statement| {
                            statement.execute(params![actor, to_sql(*seq), record])
                        })
                        .map_err(failed)?;
                }
                Write::Remove { actor, .. } => {
                    transaction
                        .prepare_cached("DELETE FROM checkpoints WHERE actor = ?1")
                        .and_then(|mut statement| statement.execute(params![actor]))
                        .map_err(failed)?;
                }
                Write::Append { .. } | Write::SetTimer { .. } | Write::CancelTimer { .. } => {}
            }
        }
        transaction.commit().map_err(failed)?;
    }
    let failed = |error| sql_error(&paths.0, error);
    let transaction =
        journal.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
    // Each actor's last entry in the batch becomes its head (an actor's entries come in
    // order).
    let mut heads: HashMap<&str, (u64, u32)> = HashMap::new();
    for write in batch {
        match write {
            Write::Append { actor, seq, index, .. } => {
                heads.insert(actor.as_str(), (*seq, *index));
            }
            Write::Remove { actor, .. } => {
                heads.remove(actor.as_str());
            }
            Write::Checkpoint { .. } | Write::SetTimer { .. } | Write::CancelTimer { .. } => {}
        }
    }
    for write in batch {
        let done = match write {
            Write::Append { actor, seq, index, record, .. } => transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO entries (actor, seq, idx, record) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![actor, to_sql(*seq), index, record])
                }),
            Write::Checkpoint { actor, seq, .. } => transaction
                .prepare_cached("DELETE FROM entries WHERE actor = ?1 AND seq < ?2")
                .and_then(|mut statement| statement.execute(params![actor, to_sql(*seq)])),
            Write::Remove { actor, .. } => transaction
                .prepare_cached("DELETE FROM entries WHERE actor = ?1")
                .and_then(|mut statement| statement.execute(params![actor]))
                .and_then(|_| {
                    transaction
                        .prepare_cached("DELETE FROM heads WHERE actor = ?1")
                        .and_then(|mut statement| statement.execute(params![actor]))
                })
                .and_then(|_| {
                    transaction
                        .prepare_cached("DELETE FROM timers WHERE actor = ?1")
                        .and_then(|mut statement| statement.execute(params![actor]))
                }),
            Write::SetTimer { timer, record, .. } => transaction
                .prepare_cached(
                    "INSERT INTO timers (actor, id, due_ms, record) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (actor, id) DO UPDATE SET due_ms = excluded.due_ms, record = excluded.record",
                )
                .and_then(|mut statement| {
                    statement.execute(params![timer.actor, timer.id, to_sql(timer.due_ms), record])
                }),
            Write::CancelTimer { actor, id, .. } => transaction
                .prepare_cached("DELETE FROM timers WHERE actor = ?1 AND id = ?2")
                .and_then(|mut statement| statement.execute(params![actor, id])),
        };
        done.map_err(failed)?;
    }
    for (actor, (seq, index)) in heads {
        transaction
            .prepare_cached(
                "INSERT INTO heads (actor, seq, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT (actor) DO UPDATE SET seq = excluded.seq, record = excluded.record",
            )
            .and_then(|mut statement| {
                statement.execute(params![actor, to_sql(seq), encode_head(actor, seq, index)])
            })
            .map_err(failed)?;
    }
    transaction.commit().map_err(failed)
}

fn read_loop(
    paths: &(PathBuf, PathBuf),
    journal: &Connection,
    checkpoints: &Connection,
    queue: &mpsc::Receiver<Read>,
) {
    while let Ok(read) = queue.recv() {
        match read {
            Read::Actor { actor, reply } => {
                let _caller_gone = reply.send(read_actor(paths, journal, checkpoints, &actor));
            }
            Read::Timers { reply } => {
                let _caller_gone = reply.send(read_timers(&paths.0, journal));
            }
        }
    }
}

fn read_timers(path: &Path, journal: &Connection) -> Result<Vec<Timer>> {
    let failed = |error| sql_error(path, error);
    let mut statement = journal
        .prepare_cached("SELECT actor, due_ms, record FROM timers ORDER BY due_ms")
        .map_err(failed)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, Vec<u8>>(2)?))
        })
        .map_err(failed)?;
    let mut timers = Vec::new();
    for row in rows {
        let (actor, due_ms, record) = row.map_err(failed)?;
        let due_ms = u64::try_from(due_ms).map_err(|_| damaged(&actor, "a negative timer"))?;
        timers.push(decode_timer(&actor, due_ms, &record)?);
    }
    Ok(timers)
}

fn read_actor(
    paths: &(PathBuf, PathBuf),
    journal: &Connection,
    checkpoints: &Connection,
    actor: &str,
) -> Result<Recovered> {
    let stored: Option<(i64, Vec<u8>)> = checkpoints
        .prepare_cached("SELECT seq, record FROM checkpoints WHERE actor = ?1")
        .and_then(|mut statement| {
            statement.query_row(params![actor], |row| Ok((row.get(0)?, row.get(1)?))).optional()
        })
        .map_err(|error| damaged_or_failed(&paths.1, actor, error))?;
    let checkpoint = match stored {
        None => None,
        Some((seq, record)) => {
            let seq = u64::try_from(seq).map_err(|_| damaged(actor, "negative checkpoint seq"))?;
            Some(decode_checkpoint(actor, seq, &record)?)
        }
    };
    let head: Option<(i64, Vec<u8>)> = journal
        .prepare_cached("SELECT seq, record FROM heads WHERE actor = ?1")
        .and_then(|mut statement| {
            statement.query_row(params![actor], |row| Ok((row.get(0)?, row.get(1)?))).optional()
        })
        .map_err(|error| damaged_or_failed(&paths.0, actor, error))?;
    let head = match head {
        None => None,
        Some((seq, record)) => {
            let seq = u64::try_from(seq).map_err(|_| damaged(actor, "negative head seq"))?;
            Some(decode_head(actor, seq, &record)?)
        }
    };
    let base = checkpoint.as_ref().map_or(0, |checkpoint| checkpoint.seq);
    let mut statement = journal
        .prepare_cached(
            "SELECT seq, idx, record FROM entries WHERE actor = ?1 AND seq >= ?2 ORDER BY seq, idx",
        )
        .map_err(|error| damaged_or_failed(&paths.0, actor, error))?;
    let rows = statement
        .query_map(params![actor, to_sql(base)], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Vec<u8>>(2)?))
        })
        .map_err(|error| damaged_or_failed(&paths.0, actor, error))?;
    let mut entries = Vec::new();
    for row in rows {
        let (seq, index, record) =
            row.map_err(|error| damaged_or_failed(&paths.0, actor, error))?;
        let (Ok(seq), Ok(index)) = (u64::try_from(seq), u32::try_from(index)) else {
            return Err(damaged(actor, "an entry has an impossible key"));
        };
        entries.push((seq, index, decode_entry(actor, seq, index, &record)?));
    }
    check(actor, checkpoint, head, entries)
}

/// A read error: SQLite's word for a damaged file is damage, anything else a failure.
fn damaged_or_failed(path: &Path, actor: &str, error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            damaged(actor, format!("{}: {error}", path.display()))
        }
        _ => sql_error(path, error),
    }
}
