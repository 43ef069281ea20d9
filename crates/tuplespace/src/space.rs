//! One space per (tenant, namespace), and the map of them.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::{
    Pattern, Result, Tuple,
    pattern::{Field, check_arity, value_hash},
};

type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;

/// What [`Journal::flush`] returns.
pub type Flush = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Where spaces record the tuples they store and remove, so that they outlive the process
/// (the node's SQLite journal). Called under the space's lock: it must only queue the record.
pub trait Journal: Send + Sync + std::fmt::Debug + 'static {
    /// A tuple was stored under `id` in the space of `scope` (tenant, namespace).
    fn stored(&self, scope: (&str, &str), id: u64, tuple: &Tuple, expires_at_ms: Option<u64>);

    /// The tuple `id` left the space (taken, or its lease ended).
    fn removed(&self, scope: (&str, &str), id: u64);

    /// Resolves once every record made before the call is durable.
    fn flush(&self) -> Flush;
}

/// A space's journal and its scope.
struct Journaled {
    journal: Arc<dyn Journal>,
    tenant: String,
    namespace: String,
}

impl Journaled {
    fn stored(&self, id: u64, tuple: &Tuple, expires: Option<Instant>) {
        let expires_at_ms = expires.map(|expires| {
            let left = expires.saturating_duration_since(Instant::now());
            now_ms().saturating_add(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
        });
        self.journal.stored((&self.tenant, &self.namespace), id, tuple, expires_at_ms);
    }

    fn removed(&self, id: u64) {
        self.journal.removed((&self.tenant, &self.namespace), id);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// A tuple in the space.
struct Stored {
    fields: Tuple,
    hashes: Vec<u64>,
    expires: Option<Instant>,
}

/// Where a waiting read or take gets its tuple.
enum Deliver {
    /// A blocked caller; a send that fails (the caller gave up) hands the tuple back.
    Waiter(oneshot::Sender<Tuple>),
    /// An asynchronous take: called at most once, under the space's lock, so it must only
    /// queue the tuple (a tell). `Err` hands the tuple back (the receiver is gone).
    Callback(Box<dyn FnOnce(Tuple) -> std::result::Result<(), Tuple> + Send>),
}

struct Waiter {
    id: u64,
    pattern: Pattern,
    take: bool,
    deliver: Deliver,
}

/// The tuples of one arity, and the reads and takes waiting for one.
#[derive(Default)]
struct Arity {
    live: Map<u64, Stored>,
    /// Every id in write order; ids of tuples gone since are skipped and dropped lazily.
    order: VecDeque<u64>,
    /// Per position: value hash → ids in write order (with the same lazy removal).
    by_field: Vec<Map<u64, VecDeque<u64>>>,
    /// Index entries that point at tuples gone since.
    stale: usize,
    waiters: VecDeque<Waiter>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    arities: Map<usize, Arity>,
    /// Leased tuples by expiry, for the sweep.
    leases: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    tuples: usize,
    journal: Option<Journaled>,
}

/// The figures of one space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Tuples in the space (leases past their time not counted once swept).
    pub tuples: usize,
    /// Reads and takes waiting.
    pub waiting: usize,
}

/// One tenant's namespace's tuples.
#[derive(Default)]
pub struct Space {
    state: Mutex<State>,
}

impl std::fmt::Debug for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Space").field("stats", &self.stats()).finish()
    }
}

/// A read or take that waits: dropping it gives up the wait.
#[derive(Debug)]
pub struct Waiting {
    space: Arc<Space>,
    arity: usize,
    id: u64,
    take: bool,
    receiver: oneshot::Receiver<Tuple>,
}

impl Waiting {
    /// The tuple, once a write delivers one, or `None` after `timeout`.
    pub async fn wait(mut self, timeout: Duration) -> Option<Tuple> {
        match tokio::time::timeout(timeout, &mut self.receiver).await {
            Ok(Ok(tuple)) => Some(tuple),
            _ => None,
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut state = self.space.state.lock();
        if let Some(arity) = state.arities.get_mut(&self.arity) {
            arity.waiters.retain(|waiter| waiter.id != self.id);
        }
        // Writes deliver under the lock: a tuple taken for this wait just as it gave up is
        // here now, and goes back into the space, so it is neither lost nor taken twice.
        if self.take
            && let Ok(tuple) = self.receiver.try_recv()
        {
            state.insert(tuple, None);
        }
    }
}

/// Offers a new tuple to the waiters: every matching read gets a copy, then the oldest
/// matching take that is still there gets the tuple. Returns it unless a take has it.
fn offer(waiters: &mut VecDeque<Waiter>, tuple: Tuple, hashes: &[u64]) -> Option<Tuple> {
    let send = |deliver: Deliver, tuple: Tuple| match deliver {
        Deliver::Waiter(sender) => sender.send(tuple).err(),
        Deliver::Callback(callback) => callback(tuple).err(),
    };
    let mut index = 0;
    while index < waiters.len() {
        let waiter = &waiters[index];
        if waiter.take || !waiter.pattern.matches_hashed(&tuple, hashes) {
            index += 1;
        } else if let Some(reader) = waiters.remove(index) {
            // A reader that is gone needs nothing.
            let _ = send(reader.deliver, tuple.clone());
        }
    }
    let mut tuple = tuple;
    let mut index = 0;
    while index < waiters.len() {
        let waiter = &waiters[index];
        if !waiter.take || !waiter.pattern.matches_hashed(&tuple, hashes) {
            index += 1;
        } else if let Some(taker) = waiters.remove(index) {
            match send(taker.deliver, tuple) {
                None => return None,
                // That taker is gone: the next one may have it.
                Some(back) => tuple = back,
            }
        }
    }
    Some(tuple)
}

impl State {
    fn sweep(&mut self, now: Instant) {
        while let Some(Reverse((expires, id, arity))) = self.leases.peek().copied() {
            if expires > now {
                break;
            }
            self.leases.pop();
            if let Some(bucket) = self.arities.get_mut(&arity)
                && bucket.live.remove(&id).is_some()
            {
                bucket.stale += arity + 1;
                self.tuples -= 1;
                if let Some(journal) = &self.journal {
                    journal.removed(id);
                }
            }
        }
    }

    fn sweep_due(&mut self) {
        if !self.leases.is_empty() {
            self.sweep(Instant::now());
        }
    }

    /// Offers a new tuple to the waiters; stores it unless a take consumed it.
    fn insert(&mut self, tuple: Tuple, expires: Option<Instant>) {
        let hashes: Vec<u64> = tuple.iter().map(value_hash).collect();
        let arity = tuple.len();
        let bucket = self.arities.entry(arity).or_default();
        let fields = if bucket.waiters.is_empty() {
            tuple
        } else {
            match offer(&mut bucket.waiters, tuple, &hashes) {
                Some(fields) => fields,
                None => return,
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        if let Some(journal) = &self.journal {
            journal.stored(id, &fields, expires);
        }
        self.store(id, fields, hashes, expires);
    }

    /// Stores a tuple under `id` (the index entries, the lease).
    fn store(&mut self, id: u64, fields: Tuple, hashes: Vec<u64>, expires: Option<Instant>) {
        let arity = fields.len();
        let bucket = self.arities.entry(arity).or_default();
        if bucket.by_field.len() < arity {
            bucket.by_field.resize_with(arity, Map::default);
        }
        for (position, hash) in hashes.iter().enumerate() {
            bucket.by_field[position].entry(*hash).or_default().push_back(id);
        }
        bucket.order.push_back(id);
        bucket.live.insert(id, Stored { fields, hashes, expires });
        if let Some(expires) = expires {
            self.leases.push(Reverse((expires, id, arity)));
        }
        self.tuples += 1;
    }

    /// The oldest live tuple matching `pattern`, removed when `take`.
    fn find(&mut self, pattern: &Pattern, take: bool) -> Option<Tuple> {
        let arity = pattern.arity();
        let bucket = self.arities.get_mut(&arity)?;
        if bucket.live.is_empty() {
            return None;
        }
        let now = if self.leases.is_empty() { None } else { Some(Instant::now()) };
        // The rarest exact field's list, or every tuple of the arity.
        let mut list: Option<(usize, u64)> = None;
        let mut shortest = usize::MAX;
        for (position, field) in pattern.fields.iter().enumerate() {
            if let Field::Exact(_, hash) = field {
                let len = bucket.by_field.get(position)?.get(hash)?.len();
                if len < shortest {
                    shortest = len;
                    list = Some((position, *hash));
                }
            }
        }
        let Arity { live, order, by_field, stale, .. } = bucket;
        let ids = match list {
            Some((position, hash)) => by_field[position].get_mut(&hash)?,
            None => order,
        };
        let mut at = 0;
        let mut found = None;
        while at < ids.len() {
            let id = ids[at];
            let Some(stored) = live.get(&id) else {
                if at == 0 {
                    ids.pop_front();
                    *stale = stale.saturating_sub(1);
                } else {
                    at += 1;
                }
                continue;
            };
            let expired =
                matches!((stored.expires, now), (Some(expires), Some(now)) if expires <= now);
            if !expired && pattern.matches_hashed(&stored.fields, &stored.hashes) {
                found = Some((at, id));
                break;
            }
            at += 1;
        }
        let (_, id) = found?;
        if !take {
            return live.get(&id).map(|stored| stored.fields.clone());
        }
        let stored = live.remove(&id)?;
        if let Some(journal) = &self.journal {
            journal.removed(id);
        }
        // Drop its entries where that is cheap (the first or last of a list: a queue taken
        // from the front, or the tuple just written); the rest go stale, for the compaction.
        let mut unlink = |list: &mut VecDeque<u64>| {
            if list.front() == Some(&id) {
                list.pop_front();
            } else if list.back() == Some(&id) {
                list.pop_back();
            } else {
                *stale += 1;
            }
        };
        unlink(order);
        for (position, hash) in stored.hashes.iter().enumerate() {
            if let hashbrown::hash_map::EntryRef::Occupied(mut entry) =
                by_field[position].entry_ref(hash)
            {
                unlink(entry.get_mut());
                if entry.get().is_empty() {
                    entry.remove();
                }
            }
        }
        self.tuples -= 1;
        let compact = {
            let bucket = self.arities.get_mut(&arity)?;
            bucket.stale > 4096 && bucket.stale > 2 * (arity + 1) * bucket.live.len()
        };
        if compact {
            self.compact(arity);
        }
        Some(stored.fields)
    }

    /// Rebuilds an arity's lists from its live tuples, dropping every stale entry.
    fn compact(&mut self, arity: usize) {
        let Some(bucket) = self.arities.get_mut(&arity) else { return };
        let mut ids: Vec<u64> = bucket.live.keys().copied().collect();
        ids.sort_unstable();
        bucket.order = ids.iter().copied().collect();
        for position in bucket.by_field.iter_mut() {
            position.clear();
        }
        for id in ids {
            if let Some(stored) = bucket.live.get(&id) {
                for (position, hash) in stored.hashes.iter().enumerate() {
                    bucket.by_field[position].entry(*hash).or_default().push_back(id);
                }
            }
        }
        bucket.stale = 0;
    }

    fn scan(&mut self, pattern: &Pattern, limit: usize) -> Vec<Tuple> {
        self.sweep_due();
        let Some(bucket) = self.arities.get(&pattern.arity()) else { return Vec::new() };
        bucket
            .order
            .iter()
            .filter_map(|id| bucket.live.get(id))
            .filter(|stored| pattern.matches_hashed(&stored.fields, &stored.hashes))
            .take(limit)
            .map(|stored| stored.fields.clone())
            .collect()
    }
}

impl Space {
    fn journaled(journal: Journaled) -> Self {
        let space = Self::default();
        space.state.lock().journal = Some(journal);
        space
    }

    /// Puts back a tuple its journal kept, under the id it had, before the space serves.
    fn restore(&self, id: u64, tuple: Tuple, expires_at_ms: Option<u64>) -> Result<()> {
        check_arity(tuple.len(), "tuple")?;
        let now = now_ms();
        let expires = match expires_at_ms {
            None => None,
            Some(at) if at <= now => return Ok(()),
            Some(at) => Some(Instant::now() + Duration::from_millis(at - now)),
        };
        let mut state = self.state.lock();
        state.next_id = state.next_id.max(id + 1);
        let hashes = tuple.iter().map(value_hash).collect();
        state.store(id, tuple, hashes, expires);
        Ok(())
    }

    /// Writes a tuple (`out`); with a lease it is gone after that long. A waiting take that
    /// matches gets it at once (then it is never stored), and waiting reads get copies.
    pub fn write(&self, tuple: Tuple, lease: Option<Duration>) -> Result<()> {
        check_arity(tuple.len(), "tuple")?;
        if lease.is_some_and(|lease| lease > crate::MAX_LEASE) {
            return Err(crate::Error::invalid(format!(
                "a lease is at most {} s",
                crate::MAX_LEASE.as_secs()
            )));
        }
        let expires = lease.map(|lease| Instant::now() + lease);
        let mut state = self.state.lock();
        state.sweep_due();
        state.insert(tuple, expires);
        Ok(())
    }

    /// The oldest matching tuple, left in the space (`rdp`).
    pub fn read(&self, pattern: &Pattern) -> Option<Tuple> {
        let mut state = self.state.lock();
        state.sweep_due();
        state.find(pattern, false)
    }

    /// The oldest matching tuple, removed from the space (`inp`).
    pub fn take(&self, pattern: &Pattern) -> Option<Tuple> {
        let mut state = self.state.lock();
        state.sweep_due();
        state.find(pattern, true)
    }

    /// Reads or takes a matching tuple, or registers to get the next one written. The wait
    /// is given up when the returned [`Waiting`] is dropped.
    pub fn wait(
        self: &Arc<Self>,
        pattern: Pattern,
        take: bool,
    ) -> std::result::Result<Tuple, Waiting> {
        let mut state = self.state.lock();
        state.sweep_due();
        if let Some(tuple) = state.find(&pattern, take) {
            return Ok(tuple);
        }
        let (sender, receiver) = oneshot::channel();
        let id = state.next_id;
        state.next_id += 1;
        let arity = pattern.arity();
        state.arities.entry(arity).or_default().waiters.push_back(Waiter {
            id,
            pattern,
            take,
            deliver: Deliver::Waiter(sender),
        });
        Err(Waiting { space: Arc::clone(self), arity, id, take, receiver })
    }

    /// `rd` with a timeout: the oldest matching tuple, or the next one written within
    /// `timeout`, else `None`.
    pub async fn read_within(
        self: &Arc<Self>,
        pattern: Pattern,
        timeout: Duration,
    ) -> Option<Tuple> {
        match self.wait(pattern, false) {
            Ok(tuple) => Some(tuple),
            Err(waiting) => waiting.wait(timeout).await,
        }
    }

    /// `in` with a timeout.
    pub async fn take_within(
        self: &Arc<Self>,
        pattern: Pattern,
        timeout: Duration,
    ) -> Option<Tuple> {
        match self.wait(pattern, true) {
            Ok(tuple) => Some(tuple),
            Err(waiting) => waiting.wait(timeout).await,
        }
    }

    /// An asynchronous take: `deliver` gets the matching tuple now or when one is written
    /// (called under the space's lock: it must only queue the tuple, as a tell does; `Err`
    /// gives the tuple back, for the next taker). Returns the id to [`Space::cancel`] it.
    pub fn take_later(
        &self,
        pattern: Pattern,
        deliver: Box<dyn FnOnce(Tuple) -> std::result::Result<(), Tuple> + Send>,
    ) -> Option<u64> {
        let mut state = self.state.lock();
        state.sweep_due();
        if let Some(tuple) = state.find(&pattern, true) {
            match deliver(tuple) {
                Ok(()) => return None,
                Err(back) => {
                    state.insert(back, None);
                    return None;
                }
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        state.arities.entry(pattern.arity()).or_default().waiters.push_back(Waiter {
            id,
            pattern,
            take: true,
            deliver: Deliver::Callback(deliver),
        });
        Some(id)
    }

    /// Whether the asynchronous take `id` still waits.
    pub fn is_waiting(&self, arity: usize, id: u64) -> bool {
        let state = self.state.lock();
        state
            .arities
            .get(&arity)
            .is_some_and(|bucket| bucket.waiters.iter().any(|waiter| waiter.id == id))
    }

    /// Withdraws an asynchronous take that has not been served.
    pub fn cancel(&self, arity: usize, id: u64) -> bool {
        let mut state = self.state.lock();
        let Some(bucket) = state.arities.get_mut(&arity) else { return false };
        let before = bucket.waiters.len();
        bucket.waiters.retain(|waiter| waiter.id != id);
        bucket.waiters.len() != before
    }

    /// How many tuples match.
    pub fn count(&self, pattern: &Pattern) -> usize {
        let mut state = self.state.lock();
        state.sweep_due();
        let Some(bucket) = state.arities.get(&pattern.arity()) else { return 0 };
        bucket
            .live
            .values()
            .filter(|stored| pattern.matches_hashed(&stored.fields, &stored.hashes))
            .count()
    }

    /// Up to `limit` matching tuples, oldest first, left in the space.
    pub fn scan(&self, pattern: &Pattern, limit: usize) -> Vec<Tuple> {
        self.state.lock().scan(pattern, limit)
    }

    /// The space's figures.
    pub fn stats(&self) -> Stats {
        let mut state = self.state.lock();
        state.sweep_due();
        let waiting = state.arities.values().map(|bucket| bucket.waiters.len()).sum();
        Stats { tuples: state.tuples, waiting }
    }
}

/// Every space of the node, by tenant and namespace.
#[derive(Debug, Default)]
pub struct TupleSpace {
    spaces: RwLock<Map<(String, String), Arc<Space>>>,
    journal: Option<Arc<dyn Journal>>,
}

impl TupleSpace {
    /// No spaces yet; each is made at its first use. Nothing outlives the process.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spaces that record what they store and remove in `journal`.
    pub fn with_journal(journal: Arc<dyn Journal>) -> Self {
        Self { spaces: RwLock::default(), journal: Some(journal) }
    }

    /// Puts back a tuple the journal kept (`id` in the space of `tenant`/`namespace`; one
    /// whose lease ended meanwhile is dropped). Call before the spaces serve, oldest first.
    pub fn restore(
        &self,
        (tenant, namespace): (&str, &str),
        id: u64,
        tuple: Tuple,
        expires_at_ms: Option<u64>,
    ) -> Result<()> {
        self.space(tenant, namespace).restore(id, tuple, expires_at_ms)
    }

    /// Resolves once everything the spaces recorded so far is durable (at once, with nothing
    /// to wait for, without a journal).
    pub async fn flush(&self) -> Result<()> {
        match &self.journal {
            Some(journal) => journal.flush().await,
            None => Ok(()),
        }
    }

    /// The space of a tenant's namespace.
    pub fn space(&self, tenant: &str, namespace: &str) -> Arc<Space> {
        let key = (tenant.to_owned(), namespace.to_owned());
        if let Some(space) = self.spaces.read().get(&key) {
            return Arc::clone(space);
        }
        let mut spaces = self.spaces.write();
        let space = spaces.entry(key).or_insert_with(|| {
            Arc::new(match &self.journal {
                None => Space::default(),
                Some(journal) => Space::journaled(Journaled {
                    journal: Arc::clone(journal),
                    tenant: tenant.to_owned(),
                    namespace: namespace.to_owned(),
                }),
            })
        });
        Arc::clone(space)
    }

    /// Drops a namespace's space and every tuple in it.
    pub fn drop_space(&self, tenant: &str, namespace: &str) -> bool {
        self.spaces.write().remove(&(tenant.to_owned(), namespace.to_owned())).is_some()
    }
}

/// Parses a tuple from its JSON form (a non-empty array).
pub fn tuple_from_json(value: Value) -> Result<Tuple> {
    match value {
        Value::Array(fields) => {
            check_arity(fields.len(), "tuple")?;
            Ok(fields)
        }
        _ => Err(crate::Error::invalid("a tuple is a JSON array, like [\"order\", 1]")),
    }
}
