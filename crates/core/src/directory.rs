//! The directory: every running actor by id, in shards so spawns on different threads do not
//! contend on one lock.
//!
//! An entry is the cell pointer and its hash (24 bytes): the id lives in the cell, hashed once per
//! lookup with a randomly seeded hasher (actor keys come from callers, so the hash must not be
//! predictable).

use std::{hash::BuildHasher, sync::Arc};

use hashbrown::HashTable;
use parking_lot::Mutex;
use plexspaces_types::ActorId;

use crate::{Pid, cell::AnyCell};

const SHARDS: usize = 32;

/// Entries keep their hash so growing a shard never touches the cells.
type Shard = HashTable<(u64, Arc<dyn AnyCell>)>;

pub(crate) struct Directory {
    hasher: foldhash::fast::RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Directory {
    pub(crate) fn new() -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect();
        Self { hasher: foldhash::fast::RandomState::default(), shards }
    }

    /// The id's hash and its shard.
    fn locate(&self, id: &ActorId) -> (u64, &Mutex<Shard>) {
        let hash = self.hasher.hash_one(id);
        // Middle bits pick the shard: hashbrown uses the low bits for the bucket and the top
        // seven as the tag, and a shard must not narrow either.
        let index = (hash >> 32) as usize % SHARDS;
        (hash, &self.shards[index])
    }

    /// Inserts the cell `build` makes from `id` unless the id is taken (then gives it back);
    /// builds it only if it is not.
    pub(crate) fn insert_with<T>(
        &self,
        id: ActorId,
        build: impl FnOnce(ActorId) -> (Arc<dyn AnyCell>, T),
    ) -> Result<T, ActorId> {
        let (hash, shard) = self.locate(&id);
        let mut shard = shard.lock();
        if shard.find(hash, |(_, cell)| cell.id() == &id).is_some() {
            return Err(id);
        }
        let (cell, value) = build(id);
        shard.insert_unique(hash, (hash, cell), |(hash, _)| *hash);
        Ok(value)
    }

    pub(crate) fn get(&self, id: &ActorId) -> Option<Arc<dyn AnyCell>> {
        let (hash, shard) = self.locate(id);
        shard.lock().find(hash, |(_, cell)| cell.id() == id).map(|(_, cell)| Arc::clone(cell))
    }

    /// Removes the entry if it still names incarnation `pid`.
    pub(crate) fn remove(&self, id: &ActorId, pid: Pid) {
        let (hash, shard) = self.locate(id);
        let mut shard = shard.lock();
        if let Ok(entry) = shard.find_entry(hash, |(_, cell)| cell.pid() == pid && cell.id() == id)
        {
            entry.remove();
        }
    }

    pub(crate) fn all(&self) -> Vec<Arc<dyn AnyCell>> {
        let mut all = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            all.extend(shard.lock().iter().map(|(_, cell)| Arc::clone(cell)));
        }
        all
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_index_stays_in_range() {
        for hash in [0u64, u64::MAX, 1 << 63, 12345] {
            assert!(((hash >> 32) as usize % SHARDS) < SHARDS);
        }
    }
}
