//! Lease-based locks with fencing tokens.
//!
//! A grant carries a version, its fencing token: every grant gets a larger one than every
//! grant before it, also across restarts of the node. The token is a boot epoch shifted above
//! a counter; the epoch is read, incremented and fsynced once when the locks open, so no grant
//! costs an fsync. A resource that remembers the largest token it has seen and refuses smaller
//! ones is safe from a holder that was paused past its lease.
//!
//! Acquiring a lock one already holds (same holder) renews it and keeps its version. Release
//! names the version, so releasing twice, or after the lease passed to another holder, changes
//! nothing. A waiting acquire is woken by the release, or by the lease's end.

use std::{
    collections::HashMap,
    io::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use plexspaces_types::ErrorCode;
use tokio::sync::Notify;

use crate::{Error, Result};

/// The longest lock name, in characters.
pub const MAX_NAME: usize = 256;

/// The longest lease a grant may have.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// A held lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The fencing token: larger than every earlier grant's, across restarts too.
    pub version: u64,
    /// Who holds it.
    pub holder: String,
    /// What the holder said about itself.
    pub metadata: String,
    /// When the lease ends, in ms since the Unix epoch.
    pub expires_at_ms: u64,
}

struct Held {
    grant: Grant,
    expires: Instant,
}

#[derive(Default)]
struct Lock {
    held: Option<Held>,
    released: Arc<Notify>,
}

/// A lock someone else holds: what to wait on, and when its lease ends.
type Busy = (Arc<Notify>, Instant);

/// Which lock: tenant, namespace and name.
type Key = (String, String, String);

/// Fencing tokens: `epoch << 32 | counter`.
#[derive(Debug)]
struct Tokens {
    epoch: u64,
    counter: u64,
    file: Option<PathBuf>,
    /// Held open, locked, while these tokens are in use: two processes reading one epoch
    /// would hand out the same tokens.
    _guard: Option<std::fs::File>,
}

/// Locks `<file>.lock` for this process, or says who cannot share it.
fn guard(file: &Path) -> Result<std::fs::File> {
    let path = file.with_extension("epoch.lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| io_error("create", dir, error))?;
    }
    let guard = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| io_error("open", &path, error))?;
    match guard.try_lock() {
        Ok(()) => Ok(guard),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorCode::Unavailable,
            format!(
                "{} is locked by another process: two nodes cannot share a data directory",
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(error)) => Err(io_error("lock", &path, error)),
    }
}

impl Tokens {
    fn open(file: Option<PathBuf>) -> Result<Self> {
        let guard = file.as_deref().map(guard).transpose()?;
        let mut tokens = Self { epoch: 0, counter: 0, file, _guard: guard };
        let stored = match &tokens.file {
            Some(path) => read_epoch(path)?,
            None => 0,
        };
        tokens.advance_epoch(stored)?;
        Ok(tokens)
    }

    /// Takes the epoch after `from`, fsynced before any token of it is handed out.
    fn advance_epoch(&mut self, from: u64) -> Result<()> {
        let epoch = from
            .checked_add(1)
            .filter(|epoch| *epoch < (1 << 31))
            .ok_or_else(|| Error::new(ErrorCode::Internal, "the lock epoch is exhausted"))?;
        if let Some(path) = &self.file {
            write_epoch(path, epoch)?;
        }
        self.epoch = epoch;
        self.counter = 0;
        Ok(())
    }

    fn next(&mut self) -> Result<u64> {
        if self.counter == u64::from(u32::MAX) {
            self.advance_epoch(self.epoch)?;
        }
        self.counter += 1;
        Ok(self.epoch << 32 | self.counter)
    }
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::new(ErrorCode::Internal, format!("cannot {what} {}: {error}", path.display()))
}

fn read_epoch(path: &Path) -> Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            Error::new(
                ErrorCode::Internal,
                format!(
                    "{} holds no lock epoch ({text:?}): fencing cannot continue",
                    path.display()
                ),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(io_error("read", path, error)),
    }
}

/// Writes the epoch so that a crash leaves the old value or the new one, and fsyncs it (and
/// the directory) before returning.
fn write_epoch(path: &Path, epoch: u64) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|error| io_error("create", dir, error))?;
    let partial = path.with_extension("partial");
    let mut file =
        std::fs::File::create(&partial).map_err(|error| io_error("create", &partial, error))?;
    file.write_all(epoch.to_string().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| io_error("write", &partial, error))?;
    std::fs::rename(&partial, path).map_err(|error| io_error("rename", path, error))?;
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| io_error("sync", dir, error))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Refuses a lock name that no lock can have.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(Error::new(
            ErrorCode::InvalidArguments,
            format!("a lock name is 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(())
}

fn check(name: &str, holder: &str, lease: Duration) -> Result<()> {
    check_name(name)?;
    if holder.is_empty() {
        return Err(Error::new(ErrorCode::InvalidArguments, "a lock needs a holder id"));
    }
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(Error::new(
            ErrorCode::InvalidArguments,
            format!("a lease is more than 0 and at most {} s", MAX_LEASE.as_secs()),
        ));
    }
    Ok(())
}

/// The locks of a node, by tenant, namespace and name.
#[derive(Debug)]
pub struct Locks {
    locks: Mutex<LockTable>,
}

#[derive(Debug)]
struct LockTable {
    by_key: HashMap<Key, Lock>,
    tokens: Tokens,
    /// Acquires since the last sweep of locks whose lease ended unreleased.
    since_sweep: usize,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("held", &self.held.as_ref().map(|held| &held.grant)).finish()
    }
}

/// How many acquires pass between sweeps of ended leases (each sweep visits every lock).
const SWEEP_EVERY: usize = 4096;

impl LockTable {
    fn new(tokens: Tokens) -> Self {
        Self { by_key: HashMap::new(), tokens, since_sweep: 0 }
    }

    /// Forgets locks whose lease ended without a release and that nobody waits for, so names
    /// used once do not pile up.
    fn sweep(&mut self, now: Instant) {
        self.since_sweep += 1;
        if self.since_sweep < SWEEP_EVERY {
            return;
        }
        self.since_sweep = 0;
        self.by_key.retain(|_, lock| {
            lock.held.as_ref().is_some_and(|held| held.expires > now)
                || Arc::strong_count(&lock.released) > 1
        });
    }
}

impl Default for Locks {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl Locks {
    /// Locks whose tokens survive restarts: the boot epoch lives in `epoch_file`, advanced and
    /// fsynced here, once.
    pub fn open(epoch_file: &Path) -> Result<Self> {
        let tokens = Tokens::open(Some(epoch_file.to_path_buf()))?;
        Ok(Self { locks: Mutex::new(LockTable::new(tokens)) })
    }

    /// Locks whose tokens increase only within this process (tests, embedded use).
    pub fn in_memory() -> Self {
        let tokens = Tokens { epoch: 1, counter: 0, file: None, _guard: None };
        Self { locks: Mutex::new(LockTable::new(tokens)) }
    }

    /// The boot epoch: the high half of every token this process grants.
    pub fn epoch(&self) -> u64 {
        self.locks.lock().tokens.epoch
    }

    /// Takes the lock if it is free, its lease has ended, or `holder` holds it already (then
    /// the lease is renewed and the version kept). `Ok(None)`: someone else holds it.
    pub fn try_acquire(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        metadata: &str,
        lease: Duration,
    ) -> Result<Option<Grant>> {
        self.attempt(scope, name, holder, metadata, lease).map(|(grant, _)| grant)
    }

    fn attempt(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        metadata: &str,
        lease: Duration,
    ) -> Result<(Option<Grant>, Option<Busy>)> {
        check(name, holder, lease)?;
        let key = (scope.0.to_owned(), scope.1.to_owned(), name.to_owned());
        let mut table = self.locks.lock();
        let now = Instant::now();
        table.sweep(now);
        let current = table.by_key.get(&key).and_then(|entry| {
            entry
                .held
                .as_ref()
                .filter(|held| held.expires > now)
                .map(|held| (held.grant.holder == holder, held.grant.version, held.expires))
        });
        let version = match current {
            Some((false, _, expires)) => {
                let released = Arc::clone(&table.by_key.entry(key).or_default().released);
                return Ok((None, Some((released, expires))));
            }
            Some((true, version, _)) => version,
            None => table.tokens.next()?,
        };
        let grant = Grant {
            version,
            holder: holder.to_owned(),
            metadata: metadata.to_owned(),
            expires_at_ms: now_ms()
                .saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)),
        };
        let entry = table.by_key.entry(key).or_default();
        entry.held = Some(Held { grant: grant.clone(), expires: now + lease });
        Ok((Some(grant), None))
    }

    /// As [`Locks::try_acquire`], waiting up to `timeout` for the holder to release the lock
    /// or its lease to end.
    pub async fn acquire(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        metadata: &str,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Option<Grant>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (grant, wait) = self.attempt(scope, name, holder, metadata, lease)?;
            let Some((released, expires)) = wait else { return Ok(grant) };
            let notified = released.notified();
            tokio::pin!(notified);
            // Registered before the next look, so a release in between is not missed.
            notified.as_mut().enable();
            if let (Some(grant), _) = self.attempt(scope, name, holder, metadata, lease)? {
                return Ok(Some(grant));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let lease_end = now + expires.saturating_duration_since(Instant::now());
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline.min(lease_end)) => {}
            }
        }
    }

    /// Extends the lease of the grant `version` held by `holder`.
    pub fn renew(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        version: u64,
        lease: Duration,
    ) -> Result<Grant> {
        check(name, holder, lease)?;
        let key = (scope.0.to_owned(), scope.1.to_owned(), name.to_owned());
        let mut table = self.locks.lock();
        let now = Instant::now();
        let held = table
            .by_key
            .get_mut(&key)
            .and_then(|entry| entry.held.as_mut())
            .filter(|held| held.expires > now && held.grant.version == version && held.grant.holder == holder)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidState,
                    format!("lock {name:?} is not held by {holder} with version {version}: acquire it again"),
                )
            })?;
        held.expires = now + lease;
        held.grant.expires_at_ms =
            now_ms().saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX));
        Ok(held.grant.clone())
    }

    /// Releases the grant `version`. Safe to repeat: a version that no longer holds the lock
    /// (released, or its lease ended and another holder has it) changes nothing. Returns
    /// whether this call released it.
    pub fn release(&self, scope: (&str, &str), name: &str, version: u64) -> bool {
        let key = (scope.0.to_owned(), scope.1.to_owned(), name.to_owned());
        let mut table = self.locks.lock();
        let Some(entry) = table.by_key.get_mut(&key) else { return false };
        let holds = entry
            .held
            .as_ref()
            .is_some_and(|held| held.grant.version == version && held.expires > Instant::now());
        if !holds {
            return false;
        }
        entry.held = None;
        entry.released.notify_waiters();
        // Nobody waits on it (only the table has its notifier): forget it.
        if Arc::strong_count(&entry.released) == 1 {
            table.by_key.remove(&key);
        }
        true
    }

    /// Releases every lock of `tenant` that `holder` holds (an actor stopped for good); how
    /// many it held.
    pub fn release_held_by(&self, tenant: &str, holder: &str) -> usize {
        let mut table = self.locks.lock();
        let now = Instant::now();
        let mut released = 0;
        table.by_key.retain(|key, entry| {
            let holds = key.0 == tenant
                && entry
                    .held
                    .as_ref()
                    .is_some_and(|held| held.grant.holder == holder && held.expires > now);
            if !holds {
                return true;
            }
            entry.held = None;
            entry.released.notify_waiters();
            released += 1;
            Arc::strong_count(&entry.released) > 1
        });
        released
    }

    /// The current grant of a lock, if its lease has not ended.
    pub fn holder(&self, scope: (&str, &str), name: &str) -> Option<Grant> {
        let key = (scope.0.to_owned(), scope.1.to_owned(), name.to_owned());
        let table = self.locks.lock();
        let now = Instant::now();
        table
            .by_key
            .get(&key)?
            .held
            .as_ref()
            .filter(|held| held.expires > now)
            .map(|held| held.grant.clone())
    }
}

/// What a lock store does, for every backend: the embedded [`Locks`] here; a shared store
/// (PostgreSQL, Redis) for a cluster implements the same. Tokens must strictly increase across
/// every grant the store ever makes.
#[async_trait::async_trait]
pub trait LockBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Takes the lock now or not at all (`Ok(None)`: another holder has it).
    fn try_acquire(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        metadata: &str,
        lease: Duration,
    ) -> Result<Option<Grant>>;

    /// Takes the lock, waiting up to `timeout` for its release or the end of its lease.
    async fn acquire(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        metadata: &str,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Option<Grant>>;

    /// Extends the lease of the grant `version`; `invalid_state` when it no longer holds.
    fn renew(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        version: u64,
        lease: Duration,
    ) -> Result<Grant>;

    /// Releases the grant `version`; false when it no longer holds.
    fn release(&self, scope: (&str, &str), name: &str, version: u64) -> bool;

    /// The current grant, if its lease has not ended.
    fn holder(&self, scope: (&str, &str), name: &str) -> Option<Grant>;

    /// Releases every lock of `tenant` that `holder` holds; how many.
    fn release_held_by(&self, tenant: &str, holder: &str) -> usize;
}

#[async_trait::async_trait]
impl LockBackend for Locks {
    fn try_acquire(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        metadata: &str,
        lease: Duration,
    ) -> Result<Option<Grant>> {
        Locks::try_acquire(self, scope, name, holder, metadata, lease)
    }

    async fn acquire(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        metadata: &str,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Option<Grant>> {
        Locks::acquire(self, scope, name, holder, metadata, lease, timeout).await
    }

    fn renew(
        &self,
        scope: (&str, &str),
        name: &str,
        holder: &str,
        version: u64,
        lease: Duration,
    ) -> Result<Grant> {
        Locks::renew(self, scope, name, holder, version, lease)
    }

    fn release(&self, scope: (&str, &str), name: &str, version: u64) -> bool {
        Locks::release(self, scope, name, version)
    }

    fn holder(&self, scope: (&str, &str), name: &str) -> Option<Grant> {
        Locks::holder(self, scope, name)
    }

    fn release_held_by(&self, tenant: &str, holder: &str) -> usize {
        Locks::release_held_by(self, tenant, holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_whose_lease_ended_unreleased_are_forgotten() {
        let locks = Locks::in_memory();
        let scope = ("acme", "default");
        for n in 0..SWEEP_EVERY {
            let name = format!("once-{n}");
            locks.try_acquire(scope, &name, "a", "", Duration::from_millis(1)).unwrap().unwrap();
        }
        let kept = locks.try_acquire(scope, "kept", "a", "", Duration::from_secs(60)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        for _ in 0..SWEEP_EVERY {
            locks.try_acquire(scope, "again", "a", "", Duration::from_secs(60)).unwrap();
        }
        let table = locks.locks.lock();
        assert_eq!(table.by_key.len(), 2, "only the live leases stay");
        drop(table);
        assert_eq!(locks.holder(scope, "kept").map(|grant| grant.version), kept.map(|g| g.version));
    }

    #[test]
    fn tokens_increase_across_the_counter_and_across_epochs() {
        let mut tokens =
            Tokens { epoch: 3, counter: u64::from(u32::MAX) - 1, file: None, _guard: None };
        let a = tokens.next().unwrap();
        let b = tokens.next().unwrap();
        assert!(b > a, "{a} {b}");
        assert_eq!(tokens.epoch, 4);
    }
}
