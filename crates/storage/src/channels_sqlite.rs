//! The channels in one SQLite file (WAL, `synchronous=FULL`): the state is served from memory
//! and every change is written behind it, in order, by one writer thread that takes every
//! change queued at that moment into one transaction (group commit). An operation returns once
//! its changes are committed; a failed commit fails the operations of its batch and every one
//! after it (the file and the memory no longer agree: the node needs a restart).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
};

use parking_lot::Mutex;
use plexspaces_types::ErrorCode;
use rusqlite::{Connection, Transaction, params};
use tokio::sync::oneshot;

use crate::{
    Error, Result,
    channels::{Change, Channel, Config, Consumer, Core, Embedded, Key, Kind, Store, Stored},
};

/// The most changes one transaction takes.
const BATCH: usize = 8_192;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS channels (
    tenant TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    visibility_ms INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_queues (
    tenant TEXT NOT NULL,
    namespace TEXT NOT NULL,
    channel TEXT NOT NULL,
    sub TEXT NOT NULL,
    next_id INTEGER NOT NULL,
    PRIMARY KEY (tenant, namespace, channel, sub)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_messages (
    tenant TEXT NOT NULL,
    namespace TEXT NOT NULL,
    channel TEXT NOT NULL,
    sub TEXT NOT NULL,
    id INTEGER NOT NULL,
    data TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    visible_at INTEGER,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, namespace, channel, sub, id)
);
CREATE TABLE IF NOT EXISTS channel_consumers (
    tenant TEXT NOT NULL,
    namespace TEXT NOT NULL,
    channel TEXT NOT NULL,
    actor TEXT NOT NULL,
    sub TEXT,
    action TEXT NOT NULL,
    PRIMARY KEY (tenant, namespace, channel, actor)
) WITHOUT ROWID;
";

struct Batch {
    changes: Vec<Change>,
    reply: oneshot::Sender<Result<()>>,
}

/// The writer's end.
#[derive(Debug)]
struct File {
    path: PathBuf,
    writes: mpsc::Sender<Batch>,
    /// Set once a commit failed.
    failed: Arc<Mutex<Option<Error>>>,
}

fn sql_error(path: &Path, error: rusqlite::Error) -> Error {
    crate::sqlite::error("the channel store", path, error)
}

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Opens (or creates) the file and loads what it holds.
pub(crate) fn open(path: &Path) -> Result<Embedded> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| {
            Error::new(ErrorCode::Internal, format!("cannot create {}: {error}", dir.display()))
        })?;
    }
    let connection = crate::sqlite::connect("the channel store", path)?;
    connection.execute_batch(SCHEMA).map_err(|error| sql_error(path, error))?;
    let core = load(&connection).map_err(|error| sql_error(path, error))?;
    let (writes, receiver) = mpsc::channel();
    let failed = Arc::new(Mutex::new(None));
    let writer_failed = Arc::clone(&failed);
    let writer_path = path.to_owned();
    std::thread::Builder::new()
        .name("plexspaces-channels-write".to_owned())
        .spawn(move || serve(&writer_path, connection, &receiver, &writer_failed))
        .map_err(|error| {
            Error::new(ErrorCode::Internal, format!("cannot start the channel writer: {error}"))
        })?;
    let file = File { path: path.to_owned(), writes, failed };
    Ok(Embedded::new("sqlite", core, Some(Box::new(file))))
}

fn load(connection: &Connection) -> rusqlite::Result<Core> {
    let mut core = Core::default();
    let mut channels = connection.prepare(
        "SELECT tenant, namespace, name, kind, capacity, visibility_ms, closed FROM channels",
    )?;
    let rows = channels.query_map([], |row| {
        let key: Key = (row.get(0)?, row.get(1)?, row.get(2)?);
        let kind: String = row.get(3)?;
        let config = Config {
            kind: Kind::parse(&kind).unwrap_or(Kind::Queue),
            capacity: row.get(4)?,
            visibility_timeout_ms: from_sql(row.get(5)?),
        };
        Ok((key, config, row.get::<_, bool>(6)?))
    })?;
    for row in rows {
        let (key, config, closed) = row?;
        let mut channel = Channel::new(config, closed);
        channel.queues.clear();
        core.channels.insert(key, channel);
    }
    let mut queues = connection
        .prepare("SELECT tenant, namespace, channel, sub, next_id FROM channel_queues")?;
    let rows = queues.query_map([], |row| {
        Ok(((row.get(0)?, row.get(1)?, row.get(2)?), row.get::<_, String>(3)?, row.get(4)?))
    })?;
    for row in rows {
        let (key, sub, next_id): (Key, String, i64) = row?;
        if let Some(channel) = core.channels.get_mut(&key) {
            channel.queues.entry(sub).or_default().next_id = from_sql(next_id).max(1);
        }
    }
    let mut messages = connection.prepare(
        "SELECT tenant, namespace, channel, sub, id, data, attempt, visible_at, sent_at
         FROM channel_messages",
    )?;
    let rows = messages.query_map([], |row| {
        let key: Key = (row.get(0)?, row.get(1)?, row.get(2)?);
        let data: String = row.get(5)?;
        let stored = Stored {
            data: Arc::from(data),
            attempt: row.get(6)?,
            visible_at: row.get::<_, Option<i64>>(7)?.map(from_sql),
            sent_at: from_sql(row.get(8)?),
        };
        Ok((key, row.get::<_, String>(3)?, from_sql(row.get(4)?), stored))
    })?;
    for row in rows {
        let (key, sub, id, stored) = row?;
        if let Some(queue) = core.channels.get_mut(&key).and_then(|c| c.queues.get_mut(&sub)) {
            queue.insert(id, stored);
        }
    }
    let mut consumers = connection
        .prepare("SELECT tenant, namespace, channel, actor, sub, action FROM channel_consumers")?;
    let rows = consumers.query_map([], |row| {
        let key: Key = (row.get(0)?, row.get(1)?, row.get(2)?);
        let consumer = Consumer {
            channel: key.2.clone(),
            actor: row.get(3)?,
            subscription: row.get(4)?,
            action: row.get(5)?,
        };
        Ok((key, consumer))
    })?;
    for row in rows {
        let (key, consumer) = row?;
        if let Some(channel) = core.channels.get_mut(&key) {
            channel.consumers.insert(consumer.actor.clone(), consumer);
        }
    }
    Ok(core)
}

impl Store for File {
    fn submit(&self, changes: Vec<Change>) -> Result<oneshot::Receiver<Result<()>>> {
        if let Some(error) = self.failed.lock().clone() {
            return Err(error);
        }
        let (reply, done) = oneshot::channel();
        self.writes.send(Batch { changes, reply }).map_err(|_| {
            Error::new(
                ErrorCode::Unavailable,
                format!("the channel store {} is closed", self.path.display()),
            )
        })?;
        Ok(done)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Commits batches until every sender is gone.
fn serve(
    path: &Path,
    mut connection: Connection,
    batches: &mpsc::Receiver<Batch>,
    failed: &Mutex<Option<Error>>,
) {
    let mut taken = Vec::new();
    while let Ok(first) = batches.recv() {
        let mut changes = first.changes.len();
        taken.push(first);
        while changes < BATCH {
            match batches.try_recv() {
                Ok(batch) => {
                    changes += batch.changes.len();
                    taken.push(batch);
                }
                Err(_) => break,
            }
        }
        let earlier = failed.lock().clone();
        let committed = match earlier {
            Some(error) => Err(error),
            None => commit(&mut connection, &taken).map_err(|error| {
                let error = sql_error(path, error);
                tracing::error!(error = %error, "the channel store failed: restart the node");
                *failed.lock() = Some(error.clone());
                error
            }),
        };
        for batch in taken.drain(..) {
            let _caller_gone = batch.reply.send(committed.clone());
        }
    }
}

fn commit(connection: &mut Connection, batches: &[Batch]) -> rusqlite::Result<()> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // The highest id each queue handed out, written once per transaction.
    let mut next_ids: HashMap<(&Key, &str), u64> = HashMap::new();
    for change in batches.iter().flat_map(|batch| &batch.changes) {
        apply(&transaction, change)?;
        if let Change::Put { key, sub, id, .. } = change {
            let next = next_ids.entry((key, sub.as_str())).or_default();
            *next = (*next).max(id + 1);
        }
    }
    let mut advance = transaction.prepare_cached(
        "UPDATE channel_queues SET next_id = ?5
         WHERE tenant = ?1 AND namespace = ?2 AND channel = ?3 AND sub = ?4 AND next_id < ?5",
    )?;
    for ((key, sub), next) in next_ids {
        advance.execute(params![key.0, key.1, key.2, sub, to_sql(next)])?;
    }
    drop(advance);
    transaction.commit()
}

fn apply(transaction: &Transaction<'_>, change: &Change) -> rusqlite::Result<()> {
    match change {
        Change::Create { key, config } => {
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO channels
                     (tenant, namespace, name, kind, capacity, visibility_ms, closed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                )?
                .execute(params![
                    key.0,
                    key.1,
                    key.2,
                    config.kind.as_str(),
                    config.capacity,
                    to_sql(config.visibility_timeout_ms)
                ])?;
        }
        Change::Drop { key } => {
            for table in ["channel_messages", "channel_queues", "channel_consumers"] {
                transaction
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE tenant = ?1 AND namespace = ?2 AND channel = ?3"
                    ))?
                    .execute(params![key.0, key.1, key.2])?;
            }
            transaction
                .prepare_cached(
                    "DELETE FROM channels WHERE tenant = ?1 AND namespace = ?2 AND name = ?3",
                )?
                .execute(params![key.0, key.1, key.2])?;
        }
        Change::Close { key } => {
            transaction
                .prepare_cached(
                    "UPDATE channels SET closed = 1 WHERE tenant = ?1 AND namespace = ?2 AND name = ?3",
                )?
                .execute(params![key.0, key.1, key.2])?;
        }
        Change::AddQueue { key, sub } => {
            transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO channel_queues (tenant, namespace, channel, sub, next_id)
                     VALUES (?1, ?2, ?3, ?4, 1)",
                )?
                .execute(params![key.0, key.1, key.2, sub])?;
        }
        Change::DropQueue { key, sub } => {
            for table in ["channel_messages", "channel_queues"] {
                transaction
                    .prepare_cached(&format!(
                        "DELETE FROM {table}
                         WHERE tenant = ?1 AND namespace = ?2 AND channel = ?3 AND sub = ?4"
                    ))?
                    .execute(params![key.0, key.1, key.2, sub])?;
            }
            transaction
                .prepare_cached(
                    "DELETE FROM channel_consumers
                     WHERE tenant = ?1 AND namespace = ?2 AND channel = ?3 AND sub = ?4",
                )?
                .execute(params![key.0, key.1, key.2, sub])?;
        }
        Change::Put { key, sub, id, stored } => {
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO channel_messages
                     (tenant, namespace, channel, sub, id, data, attempt, visible_at, sent_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    key.0,
                    key.1,
                    key.2,
                    sub,
                    to_sql(*id),
                    &*stored.data,
                    stored.attempt,
                    stored.visible_at.map(to_sql),
                    to_sql(stored.sent_at)
                ])?;
        }
        Change::Visible { key, sub, id, attempt, visible_at } => {
            transaction
                .prepare_cached(
                    "UPDATE channel_messages SET attempt = ?6, visible_at = ?7
                     WHERE tenant = ?1 AND namespace = ?2 AND channel = ?3 AND sub = ?4 AND id = ?5",
                )?
                .execute(params![
                    key.0,
                    key.1,
                    key.2,
                    sub,
                    to_sql(*id),
                    attempt,
                    visible_at.map(to_sql)
                ])?;
        }
        Change::Remove { key, sub, id } => {
            transaction
                .prepare_cached(
                    "DELETE FROM channel_messages
                     WHERE tenant = ?1 AND namespace = ?2 AND channel = ?3 AND sub = ?4 AND id = ?5",
                )?
                .execute(params![key.0, key.1, key.2, sub, to_sql(*id)])?;
        }
        Change::AddConsumer { key, consumer } => {
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO channel_consumers
                     (tenant, namespace, channel, actor, sub, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    key.0,
                    key.1,
                    key.2,
                    consumer.actor,
                    consumer.subscription,
                    consumer.action
                ])?;
        }
        Change::RemoveConsumer { key, actor } => {
            transaction
                .prepare_cached(
                    "DELETE FROM channel_consumers
                     WHERE tenant = ?1 AND namespace = ?2 AND channel = ?3 AND actor = ?4",
                )?
                .execute(params![key.0, key.1, key.2, actor])?;
        }
    }
    Ok(())
}
