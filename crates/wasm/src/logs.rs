//! Guest output and `host.log` lines: to the node log (tracing, tagged with tenant, namespace,
//! type and id) and to a ring buffer per actor type, which followers can watch.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use plexspaces_types::ActorId;
use tokio::sync::broadcast;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `host.log`.
    Log,
    /// The guest's stdout (`print()`).
    Stdout,
    /// The guest's stderr.
    Stderr,
    /// The host, about the actor (a failed tell, a trap).
    Host,
}

impl Stream {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Log => "log",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Host => "host",
        }
    }

    pub(crate) fn level(self) -> &'static str {
        match self {
            Stream::Stderr => "warn",
            _ => "info",
        }
    }
}

/// One line of an actor type's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Increases by one per line of the type.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// trace, debug, info, warn or error.
    pub level: &'static str,
    /// Where the line came from.
    pub stream: Stream,
    /// The actor's key.
    pub actor_key: String,
    /// The text.
    pub message: String,
}

/// The type a log belongs to: tenant, namespace and actor type.
pub type LogKey = (String, String, String);

struct Ring {
    lines: VecDeque<LogLine>,
    next_seq: u64,
    followers: broadcast::Sender<LogLine>,
}

/// The log buffers of every deployed type: cheap to clone.
#[derive(Clone)]
pub struct Logs {
    rings: Arc<Mutex<HashMap<LogKey, Ring>>>,
    capacity: usize,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

fn key_of(actor: &ActorId) -> LogKey {
    (actor.tenant.to_string(), actor.namespace.to_string(), actor.actor_type.to_string())
}

impl Logs {
    /// Buffers keeping `capacity` lines per type.
    pub fn new(capacity: usize) -> Self {
        Self { rings: Arc::default(), capacity: capacity.max(1) }
    }

    /// Records a line about `actor`, in the node log and the type's buffer.
    pub fn push(&self, actor: &ActorId, level: &'static str, stream: Stream, message: String) {
        match level {
            "error" => {
                tracing::error!(tenant = %actor.tenant, namespace = %actor.namespace, actor_type = %actor.actor_type, id = %actor.key, stream = stream.as_str(), "{message}")
            }
            "warn" => {
                tracing::warn!(tenant = %actor.tenant, namespace = %actor.namespace, actor_type = %actor.actor_type, id = %actor.key, stream = stream.as_str(), "{message}")
            }
            "debug" | "trace" => {
                tracing::debug!(tenant = %actor.tenant, namespace = %actor.namespace, actor_type = %actor.actor_type, id = %actor.key, stream = stream.as_str(), "{message}")
            }
            _ => {
                tracing::info!(tenant = %actor.tenant, namespace = %actor.namespace, actor_type = %actor.actor_type, id = %actor.key, stream = stream.as_str(), "{message}")
            }
        }
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
        let mut rings = self.rings.lock();
        let ring = rings.entry(key_of(actor)).or_insert_with(|| Ring {
            lines: VecDeque::new(),
            next_seq: 1,
            followers: broadcast::channel(256).0,
        });
        let line = LogLine {
            seq: ring.next_seq,
            time_ms,
            level,
            stream,
            actor_key: actor.key.to_string(),
            message,
        };
        ring.next_seq += 1;
        if ring.lines.len() == self.capacity {
            ring.lines.pop_front();
        }
        // No follower is not an error.
        let _followers = ring.followers.send(line.clone());
        ring.lines.push_back(line);
    }

    /// The buffered lines of a type (of one actor when `key` is given).
    pub fn read(&self, log: &LogKey, key: Option<&str>) -> Vec<LogLine> {
        let rings = self.rings.lock();
        let Some(ring) = rings.get(log) else { return Vec::new() };
        ring.lines
            .iter()
            .filter(|line| key.is_none_or(|key| line.actor_key == key))
            .cloned()
            .collect()
    }

    /// The buffered lines, and a receiver of every line after them.
    pub fn follow(
        &self,
        log: &LogKey,
        key: Option<&str>,
    ) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let mut rings = self.rings.lock();
        let ring = rings.entry(log.clone()).or_insert_with(|| Ring {
            lines: VecDeque::new(),
            next_seq: 1,
            followers: broadcast::channel(256).0,
        });
        let lines = ring
            .lines
            .iter()
            .filter(|line| key.is_none_or(|key| line.actor_key == key))
            .cloned()
            .collect();
        (lines, ring.followers.subscribe())
    }

    /// Forgets a type's buffer (on undeploy).
    pub fn remove(&self, log: &LogKey) {
        self.rings.lock().remove(log);
    }
}
