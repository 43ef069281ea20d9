//! A Rust client of a PlexSpaces node, over its gRPC API (`proto/plexspaces/v1`).
//!
//! ```ignore
//! let client = PlexSpacesClient::connect("http://127.0.0.1:9001").await?;
//! let pool = client
//!     .create_worker_pool("pool-1", "worker", 20, PartitionStrategy::PartitionStrategyHash, HashMap::new())
//!     .await?;
//! client.parallel_update(&pool, updates, ConsistencyLevel::ConsistencyLevelEventual, false).await?;
//! let replies = client.parallel_map(&pool, json!({"action": "get_total_count"})).await?;
//! ```
//!
//! Every call works in the client's tenant and namespace (`default`/`default` unless
//! [`PlexSpacesClient::with_scope`] says otherwise). A pool's id is its name.

use std::{collections::HashMap, time::Duration};

use plexspaces_proto::v1::{
    self as pb, invocation_service_client::InvocationServiceClient,
    shard_group_service_client::ShardGroupServiceClient,
};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

pub use plexspaces_proto::v1::WorkerPool;

/// How many keyed messages one chunk of a [`PlexSpacesClient::parallel_update`] carries at
/// most: an update of any size is streamed in chunks.
pub const UPDATE_CHUNK: usize = 4096;

/// How many bytes of keys and messages one chunk carries at most (a single larger message
/// goes alone), well under the node's default request limit.
pub const UPDATE_CHUNK_BYTES: usize = 256 * 1024;

/// What went wrong: the node's stable error code and its message, or the connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node refused the call: `code` is the catalogue's (`not_found`, `already_exists`,
    /// `invalid_arguments`, ...).
    #[error("{code}: {message}")]
    Node {
        /// The stable error code.
        code: String,
        /// What to do about it.
        message: String,
    },
    /// The node could not be reached.
    #[error("cannot reach the node: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A reply that is not the JSON it should be.
    #[error("the node's reply is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        // The node puts the catalogue code in the `plexspaces-error-code` metadata; a status from
        // elsewhere keeps its gRPC code.
        let code = status
            .metadata()
            .get("plexspaces-error-code")
            .and_then(|code| code.to_str().ok())
            .map_or_else(|| format!("{:?}", status.code()), str::to_owned);
        ClientError::Node { code, message: status.message().to_owned() }
    }
}

impl ClientError {
    /// The node's error code (`transport` or `invalid_json` for the client's own failures).
    pub fn code(&self) -> &str {
        match self {
            ClientError::Node { code, .. } => code,
            ClientError::Transport(_) => "transport",
            ClientError::Json(_) => "invalid_json",
        }
    }
}

/// The client's result.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// How a pool spreads its keys over its shards (the proto's `PartitionStrategy` values).
#[allow(clippy::enum_variant_names, reason = "named as the proto's values are")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionStrategy {
    /// The key hash modulo the shard count.
    PartitionStrategyHash,
    /// Jump consistent hashing: scaling moves only the keys that must move.
    PartitionStrategyConsistentHash,
    /// Key ranges cut at split points (see
    /// [`PlexSpacesClient::create_range_worker_pool`]).
    PartitionStrategyRange,
}

impl PartitionStrategy {
    fn to_pb(self) -> pb::PartitionStrategy {
        match self {
            Self::PartitionStrategyHash => pb::PartitionStrategy::Hash,
            Self::PartitionStrategyConsistentHash => pb::PartitionStrategy::ConsistentHash,
            Self::PartitionStrategyRange => pb::PartitionStrategy::Range,
        }
    }
}

/// What a [`PlexSpacesClient::parallel_update`] waits for.
#[allow(clippy::enum_variant_names, reason = "named as the proto's values are")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyLevel {
    /// Every message in its shard's mailbox.
    ConsistencyLevelEventual,
    /// Every shard has handled every message it was sent.
    ConsistencyLevelStrong,
}

/// How a [`PlexSpacesClient::parallel_reduce`] combines the shards' replies.
#[allow(clippy::enum_variant_names, reason = "named as the proto's values are")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardGroupAggregationStrategy {
    /// The replies as a JSON array, in shard order.
    ShardGroupAggregationConcat,
    /// Numbers summed; for objects, each numeric field summed.
    ShardGroupAggregationSum,
    /// The least (per numeric field, for objects).
    ShardGroupAggregationMin,
    /// The greatest (per numeric field, for objects).
    ShardGroupAggregationMax,
    /// How many shards replied.
    ShardGroupAggregationCount,
    /// The objects merged, later shards' fields over earlier ones'.
    ShardGroupAggregationMerge,
}

impl ShardGroupAggregationStrategy {
    fn to_pb(self) -> pb::ShardGroupAggregationStrategy {
        use pb::ShardGroupAggregationStrategy as S;
        match self {
            Self::ShardGroupAggregationConcat => S::ShardGroupAggregationConcat,
            Self::ShardGroupAggregationSum => S::ShardGroupAggregationSum,
            Self::ShardGroupAggregationMin => S::ShardGroupAggregationMin,
            Self::ShardGroupAggregationMax => S::ShardGroupAggregationMax,
            Self::ShardGroupAggregationCount => S::ShardGroupAggregationCount,
            Self::ShardGroupAggregationMerge => S::ShardGroupAggregationMerge,
        }
    }
}

/// A shard that failed or was late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFailure {
    /// The shard.
    pub shard: u32,
    /// The key whose message failed; empty for the whole shard.
    pub key: String,
    /// The node's error code (`timeout` for a late shard).
    pub code: String,
    /// Its message.
    pub message: String,
}

impl From<pb::ShardFailure> for ShardFailure {
    fn from(failure: pb::ShardFailure) -> Self {
        Self {
            shard: failure.shard,
            key: failure.key,
            code: failure.code,
            message: failure.message,
        }
    }
}

/// What a [`PlexSpacesClient::parallel_update`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOutcome {
    /// Messages in their shards' mailboxes (handled, for strong consistency).
    pub delivered: u64,
    /// Per shard, how many messages it was sent.
    pub per_shard: Vec<u64>,
    /// With `wait`: each key's reply.
    pub replies: HashMap<String, Value>,
    /// The messages that failed.
    pub failures: Vec<ShardFailure>,
}

/// What a scatter-gather gathered: the replies that came within the deadline, and each failed
/// or late shard's error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gathered {
    /// (shard, reply), in shard order.
    pub replies: Vec<(u32, Value)>,
    /// The shards that failed or were late (`timeout`).
    pub failures: Vec<ShardFailure>,
}

/// A combined reply of a [`PlexSpacesClient::parallel_reduce_within`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reduced {
    /// The aggregate.
    pub result: Value,
    /// How many shards replied, and how many were expected.
    pub replied: u32,
    /// The number asked for (every shard's, when 0 was asked).
    pub expected: u32,
    /// The shards that failed or were late.
    pub failures: Vec<ShardFailure>,
}

/// A connection to one node.
#[derive(Debug, Clone)]
pub struct PlexSpacesClient {
    channel: Channel,
    tenant: String,
    namespace: String,
}

fn json_bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl PlexSpacesClient {
    /// Connects to the node's gRPC port (`http://host:port`).
    pub async fn connect(url: impl Into<String>) -> Result<Self> {
        let channel = Endpoint::from_shared(url.into())?.connect().await?;
        Ok(Self { channel, tenant: "default".to_owned(), namespace: "default".to_owned() })
    }

    /// The same connection, working in `tenant`/`namespace`.
    pub fn with_scope(mut self, tenant: &str, namespace: &str) -> Self {
        tenant.clone_into(&mut self.tenant);
        namespace.clone_into(&mut self.namespace);
        self
    }

    fn scope(&self) -> Option<pb::Scope> {
        Some(pb::Scope { tenant: self.tenant.clone(), namespace: self.namespace.clone() })
    }

    fn pool(&self, pool_id: &str) -> Option<pb::WorkerPoolRef> {
        Some(pb::WorkerPoolRef { scope: self.scope(), name: pool_id.to_owned() })
    }

    fn pools(&self) -> ShardGroupServiceClient<Channel> {
        ShardGroupServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    async fn invoke(
        &self,
        actor_type: &str,
        actor_id: &str,
        message: &Value,
        mode: pb::InvocationMode,
    ) -> Result<pb::InvokeResponse> {
        let request = pb::InvokeRequest {
            actor: Some(pb::ActorAddress {
                tenant: self.tenant.clone(),
                namespace: self.namespace.clone(),
                actor_type: actor_type.to_owned(),
                actor_id: actor_id.to_owned(),
            }),
            payload: json_bytes(message),
            mode: mode as i32,
            ..pb::InvokeRequest::default()
        };
        let reply = InvocationServiceClient::new(self.channel.clone()).invoke(request).await?;
        Ok(reply.into_inner())
    }

    /// Asks the actor `actor_type/actor_id` and returns its reply.
    pub async fn ask(&self, actor_type: &str, actor_id: &str, message: Value) -> Result<Value> {
        let reply = self.invoke(actor_type, actor_id, &message, pb::InvocationMode::Call).await?;
        Ok(serde_json::from_slice(&reply.payload)?)
    }

    /// Tells the actor `actor_type/actor_id` a message; returns its message id.
    pub async fn tell(&self, actor_type: &str, actor_id: &str, message: Value) -> Result<String> {
        let reply = self.invoke(actor_type, actor_id, &message, pb::InvocationMode::Tell).await?;
        Ok(reply.message_id)
    }

    /// Creates the pool `name` of `shards` actors of `actor_type` and returns its id; the same
    /// pool again returns its id, other parameters are `already_exists`. A range pool needs its
    /// split points: [`PlexSpacesClient::create_range_worker_pool`].
    pub async fn create_worker_pool(
        &self,
        name: &str,
        actor_type: &str,
        shards: u32,
        strategy: PartitionStrategy,
        config: HashMap<String, String>,
    ) -> Result<String> {
        self.create(name, actor_type, shards, strategy, Vec::new(), config).await
    }

    /// A range-partitioned pool: shard `i` after the first holds the keys from split point
    /// `i - 1` on (byte order).
    pub async fn create_range_worker_pool(
        &self,
        name: &str,
        actor_type: &str,
        split_points: Vec<String>,
        config: HashMap<String, String>,
    ) -> Result<String> {
        let shards = u32::try_from(split_points.len() + 1).unwrap_or(u32::MAX);
        let strategy = PartitionStrategy::PartitionStrategyRange;
        self.create(name, actor_type, shards, strategy, split_points, config).await
    }

    async fn create(
        &self,
        name: &str,
        actor_type: &str,
        shards: u32,
        strategy: PartitionStrategy,
        split_points: Vec<String>,
        config: HashMap<String, String>,
    ) -> Result<String> {
        let request = pb::CreateWorkerPoolRequest {
            scope: self.scope(),
            name: name.to_owned(),
            actor_type: actor_type.to_owned(),
            shards,
            strategy: strategy.to_pb() as i32,
            split_points,
            config,
        };
        let created = self.pools().create_worker_pool(request).await?.into_inner();
        Ok(created.pool.map(|pool| pool.name).unwrap_or_else(|| name.to_owned()))
    }

    /// The pool `pool_id`.
    pub async fn get_worker_pool(&self, pool_id: &str) -> Result<WorkerPool> {
        let request = self.pool(pool_id).unwrap_or_default();
        Ok(self.pools().get_worker_pool(request).await?.into_inner())
    }

    /// The pools of the client's namespace.
    pub async fn list_worker_pools(&self) -> Result<Vec<WorkerPool>> {
        let request = pb::ListWorkerPoolsRequest { scope: self.scope() };
        Ok(self.pools().list_worker_pools(request).await?.into_inner().pools)
    }

    /// Deletes the pool and its shard actors.
    pub async fn delete_worker_pool(&self, pool_id: &str) -> Result<bool> {
        let request = self.pool(pool_id).unwrap_or_default();
        Ok(self.pools().delete_worker_pool(request).await?.into_inner().deleted)
    }

    /// Gives the pool `shards` shards (a range pool: [`PlexSpacesClient::scale_range_worker_pool`]).
    pub async fn scale_worker_pool(&self, pool_id: &str, shards: u32) -> Result<WorkerPool> {
        self.scale(pool_id, shards, Vec::new()).await
    }

    /// Gives a range pool new split points (and one more shard than split points).
    pub async fn scale_range_worker_pool(
        &self,
        pool_id: &str,
        split_points: Vec<String>,
    ) -> Result<WorkerPool> {
        let shards = u32::try_from(split_points.len() + 1).unwrap_or(u32::MAX);
        self.scale(pool_id, shards, split_points).await
    }

    async fn scale(
        &self,
        pool_id: &str,
        shards: u32,
        split_points: Vec<String>,
    ) -> Result<WorkerPool> {
        let request = pb::ScaleWorkerPoolRequest { pool: self.pool(pool_id), shards, split_points };
        Ok(self.pools().scale_worker_pool(request).await?.into_inner())
    }

    /// Sends each key's message to the key's shard, in per-shard batches, streamed to the node
    /// in chunks of [`UPDATE_CHUNK`]. Returns once every message is in its shard's mailbox
    /// (strong: once every shard has handled its messages); with `wait`, with each key's reply.
    pub async fn parallel_update(
        &self,
        pool_id: &str,
        updates: HashMap<String, Value>,
        consistency: ConsistencyLevel,
        wait: bool,
    ) -> Result<UpdateOutcome> {
        let consistency = match consistency {
            ConsistencyLevel::ConsistencyLevelEventual => pb::ConsistencyLevel::Eventual,
            ConsistencyLevel::ConsistencyLevelStrong => pb::ConsistencyLevel::Strong,
        };
        let pool = self.pool(pool_id);
        let mut updates = updates
            .into_iter()
            .map(|(key, message)| pb::KeyedMessage { key, payload: json_bytes(&message) })
            .peekable();
        let mut first = true;
        // Chunks are built as the stream is read, not all at once.
        let chunks = std::iter::from_fn(move || {
            if !first && updates.peek().is_none() {
                return None;
            }
            let mut messages = Vec::new();
            let mut bytes = 0;
            while messages.len() < UPDATE_CHUNK {
                // A message that would overflow this chunk starts the next one.
                let fits = |keyed: &pb::KeyedMessage| {
                    messages.is_empty()
                        || bytes + keyed.key.len() + keyed.payload.len() <= UPDATE_CHUNK_BYTES
                };
                let Some(keyed) = updates.next_if(fits) else { break };
                bytes += keyed.key.len() + keyed.payload.len();
                messages.push(keyed);
            }
            let chunk = pb::ParallelUpdateRequest {
                pool: if first { pool.clone() } else { None },
                consistency: consistency as i32,
                wait,
                messages,
                timeout_ms: 0,
            };
            first = false;
            Some(chunk)
        });
        let done =
            self.pools().parallel_update(futures_util::stream::iter(chunks)).await?.into_inner();
        let mut replies = HashMap::with_capacity(done.replies.len());
        for reply in done.replies {
            replies.insert(reply.key, serde_json::from_slice(&reply.reply)?);
        }
        Ok(UpdateOutcome {
            delivered: done.delivered,
            per_shard: done.per_shard,
            replies,
            failures: done.failures.into_iter().map(ShardFailure::from).collect(),
        })
    }

    /// Asks every shard, and returns their replies in shard order; a shard that fails (or
    /// misses the node's default deadline) fails the call: [`PlexSpacesClient::scatter_gather`]
    /// returns the partial results instead.
    pub async fn parallel_map(&self, pool_id: &str, message: Value) -> Result<Vec<Value>> {
        let gathered = self.gather(pool_id, &message, 0).await?;
        if let Some(failure) = gathered.failures.into_iter().next() {
            return Err(ClientError::Node {
                code: failure.code,
                message: format!("shard {}: {}", failure.shard, failure.message),
            });
        }
        Ok(gathered.replies.into_iter().map(|(_, reply)| reply).collect())
    }

    /// Asks every shard within `deadline`: the replies that came, and each failed or late
    /// shard's error.
    pub async fn scatter_gather(
        &self,
        pool_id: &str,
        message: Value,
        deadline: Duration,
    ) -> Result<Gathered> {
        self.gather(pool_id, &message, millis(deadline)).await
    }

    async fn gather(&self, pool_id: &str, message: &Value, timeout_ms: u64) -> Result<Gathered> {
        let request = pb::ParallelMapRequest {
            pool: self.pool(pool_id),
            payload: json_bytes(message),
            timeout_ms,
        };
        let mapped = self.pools().parallel_map(request).await?.into_inner();
        let mut replies = Vec::with_capacity(mapped.replies.len());
        for reply in mapped.replies {
            replies.push((reply.shard, serde_json::from_slice(&reply.reply)?));
        }
        Ok(Gathered {
            replies,
            failures: mapped.failures.into_iter().map(ShardFailure::from).collect(),
        })
    }

    /// Asks every shard and combines the replies by `strategy`; fewer than `expected` replies
    /// (0: every shard's) fail the call with the first shard's error.
    pub async fn parallel_reduce(
        &self,
        pool_id: &str,
        message: Value,
        strategy: ShardGroupAggregationStrategy,
        expected: u32,
    ) -> Result<Value> {
        let reduced =
            self.parallel_reduce_within(pool_id, message, strategy, expected, None).await?;
        if reduced.replied < reduced.expected {
            let (code, detail) = match reduced.failures.first() {
                Some(failure) => {
                    (failure.code.clone(), format!("shard {}: {}", failure.shard, failure.message))
                }
                None => ("unavailable".to_owned(), String::new()),
            };
            return Err(ClientError::Node {
                code,
                message: format!(
                    "{} of the {} expected shards replied; {detail}",
                    reduced.replied, reduced.expected
                ),
            });
        }
        Ok(reduced.result)
    }

    /// [`PlexSpacesClient::parallel_reduce`] with a deadline, returning what came and what
    /// failed instead of failing.
    pub async fn parallel_reduce_within(
        &self,
        pool_id: &str,
        message: Value,
        strategy: ShardGroupAggregationStrategy,
        expected: u32,
        deadline: Option<Duration>,
    ) -> Result<Reduced> {
        let request = pb::ParallelReduceRequest {
            pool: self.pool(pool_id),
            payload: json_bytes(&message),
            strategy: strategy.to_pb() as i32,
            expected,
            timeout_ms: deadline.map_or(0, millis),
        };
        let reduced = self.pools().parallel_reduce(request).await?.into_inner();
        Ok(Reduced {
            result: serde_json::from_slice(&reduced.result)?,
            replied: reduced.replied,
            expected: reduced.expected,
            failures: reduced.failures.into_iter().map(ShardFailure::from).collect(),
        })
    }
}
