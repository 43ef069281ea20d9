//! A key-value store per tenant and namespace: get, put, delete, list by prefix, time to
//! live, and compare-and-swap.
//!
//! [`Kv`] checks every request on its face (sizes, leases, limits) and hands it to a backend:
//! in memory ([`Kv::in_memory`]) or in one SQLite file ([`Kv::open_sqlite`], see `kv_sqlite`).
//! Other backends implement [`KvBackend`]. An entry past its time to live is gone for every
//! call at once; backends reclaim its space later.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap},
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use plexspaces_types::ErrorCode;

use crate::{Error, Result};

/// The longest key, in characters (so at most 1 KiB of UTF-8).
pub const MAX_KEY: usize = 256;

/// The largest value, in bytes.
pub const MAX_VALUE: usize = 1 << 20;

/// The most entries one `list` returns.
pub const MAX_LIST: usize = 10_000;

/// The longest time to live.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Whose keys: tenant and namespace.
pub type Scope<'a> = (&'a str, &'a str);

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value (text; JSON for the SDKs).
    pub value: String,
    /// When it expires, in ms since the Unix epoch; `None`: never.
    pub expires_at_ms: Option<u64>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Entries with the prefix, in key order.
    pub entries: Vec<Entry>,
    /// Set when more entries follow: pass it as `after` for the next page.
    pub next_after: Option<String>,
}

/// What a backend stores. Every request reaching it is already checked; `now_ms` is the
/// clock the request is judged by (so that a backend's idea of expiry is the caller's).
#[async_trait::async_trait]
pub trait KvBackend: Send + Sync + std::fmt::Debug + 'static {
    /// The backend's name, for logs and the status page.
    fn name(&self) -> &'static str;

    /// The live entry under `key`.
    async fn get(&self, scope: Scope<'_>, key: &str, now_ms: u64) -> Result<Option<Entry>>;

    /// Stores `value` under `key`, replacing what was there.
    async fn put(&self, scope: Scope<'_>, entry: Entry) -> Result<()>;

    /// Removes `key`; true when a live entry was there.
    async fn delete(&self, scope: Scope<'_>, key: &str, now_ms: u64) -> Result<bool>;

    /// Up to `limit` live entries whose keys start with `prefix` and sort after `after`, in
    /// key order, and whether more follow.
    async fn list(
        &self,
        scope: Scope<'_>,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<(Vec<Entry>, bool)>;

    /// Replaces the live value under `key` by `new` (a delete when `None`) if it is
    /// `expected` (`None`: no live entry); true when it did.
    async fn compare_and_swap(
        &self,
        scope: Scope<'_>,
        key: &str,
        expected: Option<&str>,
        new: Option<Entry>,
        now_ms: u64,
    ) -> Result<bool>;
}

/// The store: cheap to clone.
#[derive(Debug, Clone)]
pub struct Kv {
    backend: Arc<dyn KvBackend>,
}

impl Default for Kv {
    fn default() -> Self {
        Self::in_memory()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArguments, message)
}

fn check_key(key: &str) -> Result<()> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY {
        return Err(invalid(format!("a key is 1 to {MAX_KEY} characters, not {chars}")));
    }
    Ok(())
}

fn entry(key: &str, value: String, ttl: Option<Duration>, now_ms: u64) -> Result<Entry> {
    check_key(key)?;
    if value.len() > MAX_VALUE {
        return Err(invalid(format!("a value is at most {MAX_VALUE} bytes, not {}", value.len())));
    }
    Ok(Entry { key: key.to_owned(), value, expires_at_ms: expiry(ttl, now_ms)? })
}

/// When an entry written now with `ttl` expires.
fn expiry(ttl: Option<Duration>, now_ms: u64) -> Result<Option<u64>> {
    match ttl {
        None => Ok(None),
        Some(ttl) if ttl.is_zero() || ttl > MAX_TTL => Err(invalid(format!(
            "a time to live is more than 0 and at most {} s",
            MAX_TTL.as_secs()
        ))),
        Some(ttl) => Ok(Some(now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(0)))),
    }
}

impl Kv {
    /// A store that lives as long as the process.
    pub fn in_memory() -> Self {
        Self { backend: Arc::new(Memory::default()) }
    }

    /// The store in the SQLite file `path` (created when missing), durable once a call
    /// returns.
    pub fn open_sqlite(path: &Path) -> Result<Self> {
        Ok(Self { backend: Arc::new(crate::kv_sqlite::Sqlite::open(path)?) })
    }

    /// A store over another backend.
    pub fn with_backend(backend: Arc<dyn KvBackend>) -> Self {
        Self { backend }
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// The live entry under `key`.
    pub async fn get(&self, scope: Scope<'_>, key: &str) -> Result<Option<Entry>> {
        check_key(key)?;
        self.backend.get(scope, key, now_ms()).await
    }

    /// Stores `value` under `key`; with a `ttl` it is gone after that long.
    pub async fn put(
        &self,
        scope: Scope<'_>,
        key: &str,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let entry = entry(key, value, ttl, now_ms())?;
        self.backend.put(scope, entry).await
    }

    /// Removes `key`; true when it was there.
    pub async fn delete(&self, scope: Scope<'_>, key: &str) -> Result<bool> {
        check_key(key)?;
        self.backend.delete(scope, key, now_ms()).await
    }

    /// Up to `limit` (at most [`MAX_LIST`]) entries whose keys start with `prefix`, in key
    /// order, after the key `after` when given.
    pub async fn list(
        &self,
        scope: Scope<'_>,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        if prefix.chars().count() > MAX_KEY {
            return Err(invalid(format!("a prefix is at most {MAX_KEY} characters")));
        }
        if limit == 0 || limit > MAX_LIST {
            return Err(invalid(format!("a listing holds 1 to {MAX_LIST} entries")));
        }
        let (entries, more) = self.backend.list(scope, prefix, after, limit, now_ms()).await?;
        let next_after = if more { entries.last().map(|entry| entry.key.clone()) } else { None };
        Ok(Page { entries, next_after })
    }

    /// Stores `new` under `key` (removes it when `None`) only if its live value is
    /// `expected` (`None`: absent); true when it did. With a `ttl` the new value expires.
    pub async fn compare_and_swap(
        &self,
        scope: Scope<'_>,
        key: &str,
        expected: Option<&str>,
        new: Option<String>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let now = now_ms();
        check_key(key)?;
        expiry(ttl, now)?;
        let new = new.map(|value| entry(key, value, ttl, now)).transpose()?;
        self.backend.compare_and_swap(scope, key, expected, new, now).await
    }
}

type Key = (String, String, String);

fn owned_key(scope: Scope<'_>, key: &str) -> Key {
    (scope.0.to_owned(), scope.1.to_owned(), key.to_owned())
}

struct Stored {
    value: String,
    expires_at_ms: Option<u64>,
}

impl Stored {
    fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| at > now_ms)
    }
}

#[derive(Default)]
struct Table {
    entries: BTreeMap<Key, Stored>,
    /// When entries with a time to live expire: checked against the entry on removal, since
    /// it may have been rewritten since.
    expiries: BinaryHeap<Reverse<(u64, Key)>>,
}

impl Table {
    /// Forgets entries that expired (a few per call, so no call pays for many).
    fn sweep(&mut self, now_ms: u64) {
        for _ in 0..8 {
            match self.expiries.peek() {
                Some(Reverse((at, _))) if *at <= now_ms => {}
                _ => return,
            }
            let Some(Reverse((at, key))) = self.expiries.pop() else { return };
            if self.entries.get(&key).is_some_and(|stored| stored.expires_at_ms == Some(at)) {
                self.entries.remove(&key);
            }
        }
    }

    fn insert(&mut self, entry: Entry, scope: Scope<'_>, now_ms: u64) {
        self.sweep(now_ms);
        let key = owned_key(scope, &entry.key);
        if let Some(at) = entry.expires_at_ms {
            self.expiries.push(Reverse((at, key.clone())));
        }
        self.entries.insert(key, Stored { value: entry.value, expires_at_ms: entry.expires_at_ms });
    }

    fn live(&self, key: &Key, now_ms: u64) -> Option<&Stored> {
        self.entries.get(key).filter(|stored| stored.live(now_ms))
    }
}

/// The in-memory backend: one ordered map, so a prefix is a range.
#[derive(Default)]
pub(crate) struct Memory {
    table: Mutex<Table>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory").field("entries", &self.table.lock().entries.len()).finish()
    }
}

#[async_trait::async_trait]
impl KvBackend for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, scope: Scope<'_>, key: &str, now_ms: u64) -> Result<Option<Entry>> {
        let table = self.table.lock();
        Ok(table.live(&owned_key(scope, key), now_ms).map(|stored| Entry {
            key: key.to_owned(),
            value: stored.value.clone(),
            expires_at_ms: stored.expires_at_ms,
        }))
    }

    async fn put(&self, scope: Scope<'_>, entry: Entry) -> Result<()> {
        let now = now_ms();
        self.table.lock().insert(entry, scope, now);
        Ok(())
    }

    async fn delete(&self, scope: Scope<'_>, key: &str, now_ms: u64) -> Result<bool> {
        let mut table = self.table.lock();
        table.sweep(now_ms);
        Ok(table.entries.remove(&owned_key(scope, key)).is_some_and(|stored| stored.live(now_ms)))
    }

    async fn list(
        &self,
        scope: Scope<'_>,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<(Vec<Entry>, bool)> {
        let table = self.table.lock();
        let start = match after {
            Some(after) if after >= prefix => std::ops::Bound::Excluded(owned_key(scope, after)),
            _ => std::ops::Bound::Included(owned_key(scope, prefix)),
        };
        let mut entries = Vec::new();
        let in_scope = table
            .entries
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(key, _)| {
                key.0 == scope.0 && key.1 == scope.1 && key.2.starts_with(prefix)
            })
            .filter(|(_, stored)| stored.live(now_ms));
        for (key, stored) in in_scope {
            if entries.len() == limit {
                return Ok((entries, true));
            }
            entries.push(Entry {
                key: key.2.clone(),
                value: stored.value.clone(),
                expires_at_ms: stored.expires_at_ms,
            });
        }
        Ok((entries, false))
    }

    async fn compare_and_swap(
        &self,
        scope: Scope<'_>,
        key: &str,
        expected: Option<&str>,
        new: Option<Entry>,
        now_ms: u64,
    ) -> Result<bool> {
        let mut table = self.table.lock();
        let owned = owned_key(scope, key);
        let current = table.live(&owned, now_ms).map(|stored| stored.value.as_str());
        if current != expected {
            return Ok(false);
        }
        match new {
            Some(entry) => table.insert(entry, scope, now_ms),
            None => {
                table.entries.remove(&owned);
            }
        }
        Ok(true)
    }
}
