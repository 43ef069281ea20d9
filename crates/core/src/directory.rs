//! The directory: every running actor by id, in shards so spawns on different threads do not
//! contend on one lock.

use std::{collections::HashMap, hash::BuildHasher, sync::Arc};

use parking_lot::Mutex;
use plexspaces_types::ActorId;

use crate::{Pid, cell::AnyCell};

const SHARDS: usize = 32;

type Shard = HashMap<ActorId, Arc<dyn AnyCell>, foldhash::fast::RandomState>;

pub(crate) struct Directory {
    hasher: foldhash::fast::RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Directory {
    pub(crate) fn new() -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        Self { hasher: foldhash::fast::RandomState::default(), shards }
    }

    fn shard(&self, id: &ActorId) -> &Mutex<Shard> {
        let hash = self.hasher.hash_one(id);
        // The modulo keeps the index below SHARDS, so the conversion cannot truncate.
        let index = (hash % SHARDS as u64) as usize;
        &self.shards[index]
    }

    /// Inserts `cell` unless the id is taken; builds the cell only if it is not.
    pub(crate) fn insert_with<T>(
        &self,
        id: &ActorId,
        build: impl FnOnce() -> (Arc<dyn AnyCell>, T),
    ) -> Option<T> {
        let mut shard = self.shard(id).lock();
        if shard.contains_key(id) {
            return None;
        }
        let (cell, value) = build();
        shard.insert(id.clone(), cell);
        Some(value)
    }

    pub(crate) fn get(&self, id: &ActorId) -> Option<Arc<dyn AnyCell>> {
        self.shard(id).lock().get(id).cloned()
    }

    /// Removes the entry if it still names incarnation `pid`.
    pub(crate) fn remove(&self, id: &ActorId, pid: Pid) {
        let mut shard = self.shard(id).lock();
        if shard.get(id).is_some_and(|cell| cell.pid() == pid) {
            shard.remove(id);
        }
    }

    pub(crate) fn all(&self) -> Vec<Arc<dyn AnyCell>> {
        self.shards
            .iter()
            .flat_map(|shard| shard.lock().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }
}
