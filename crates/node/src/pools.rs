//! Worker pools (ShardGroups): a named set of shard actors of one type in a tenant and
//! namespace, with the keys of an update routed to their shards by the pool's partitioning
//! (`crate::partition`), and calls that fan out to every shard.
//!
//! Shard `i` of pool `p` is the actor `<tenant>/<namespace>/<actor type>/p-<i>`, virtual like
//! every actor: created by its first message. The pools are kept in `<data_dir>/pools.json`
//! (written whole, to a temporary file that is synced and renamed over the old one), so they
//! survive restarts; the shards' state is the shard actors' own (durable when their type is).
//! Scaling routes keys anew (with consistent hashing only the keys that must move go to
//! another shard); it does not move the state a shard holds.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use futures_util::future::join_all;
use plexspaces_proto::v1::{self as pb, shard_group_service_server::ShardGroupService};
use plexspaces_sdk::Message;
use plexspaces_types::{ActorId, ActorKey, ActorType, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Api, Error, Result,
    api::name,
    coordination::Scoped,
    partition::Partitioning,
    payload::{JSON, action_of},
    registry::Envelope,
};

/// The most pools one node keeps.
const MAX_POOLS: usize = 10_000;

/// One pool, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pool {
    tenant: String,
    namespace: String,
    name: String,
    actor_type: String,
    shards: u32,
    partitioning: Partitioning,
    config: BTreeMap<String, String>,
    created_ms: u64,
}

impl Pool {
    fn same_parameters(&self, other: &Pool) -> bool {
        (&self.actor_type, self.shards, &self.partitioning, &self.config)
            == (&other.actor_type, other.shards, &other.partitioning, &other.config)
    }

    fn shard_key(&self, shard: u32) -> String {
        format!("{}-{shard}", self.name)
    }

    fn shard_id(&self, shard: u32) -> Result<ActorId> {
        Ok(ActorId::new(
            name(&self.tenant)?,
            name(&self.namespace)?,
            name::<ActorType>(&self.actor_type)?,
            name::<ActorKey>(&self.shard_key(shard))?,
        ))
    }

    fn to_pb(&self) -> pb::WorkerPool {
        let (strategy, split_points) = match &self.partitioning {
            Partitioning::Hash => (pb::PartitionStrategy::Hash, Vec::new()),
            Partitioning::ConsistentHash => (pb::PartitionStrategy::ConsistentHash, Vec::new()),
            Partitioning::Range { split_points } => {
                (pb::PartitionStrategy::Range, split_points.clone())
            }
        };
        pb::WorkerPool {
            scope: Some(pb::Scope {
                tenant: self.tenant.clone(),
                namespace: self.namespace.clone(),
            }),
            name: self.name.clone(),
            actor_type: self.actor_type.clone(),
            shards: self.shards,
            strategy: strategy as i32,
            split_points,
            config: self.config.clone().into_iter().collect(),
            created_ms: self.created_ms,
            shard_actor_ids: (0..self.shards).map(|shard| self.shard_key(shard)).collect(),
        }
    }
}

type Key = (String, String, String);

/// The node's pools, and the file they are kept in.
#[derive(Debug)]
pub(crate) struct Pools {
    file: PathBuf,
    pools: parking_lot::Mutex<BTreeMap<Key, Pool>>,
    /// Orders the writes of the file.
    writing: tokio::sync::Mutex<()>,
}

impl Pools {
    /// The pools kept in `data_dir` (none when the file is not there yet). Blocking.
    pub(crate) fn open(data_dir: &Path) -> Result<Self> {
        let file = data_dir.join("pools.json");
        let pools: Vec<Pool> = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                Error::new(
                    ErrorCode::Internal,
                    format!("{} is damaged ({error}); move it away to start", file.display()),
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(Error::new(
                    ErrorCode::Internal,
                    format!("cannot read {}: {error}", file.display()),
                ));
            }
        };
        let pools = pools
            .into_iter()
            .map(|pool| ((pool.tenant.clone(), pool.namespace.clone(), pool.name.clone()), pool))
            .collect();
        Ok(Self {
            file,
            pools: parking_lot::Mutex::new(pools),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    fn get(&self, key: &Key) -> Result<Pool> {
        self.pools.lock().get(key).cloned().ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!("there is no worker pool {:?} in {}/{}", key.2, key.0, key.1),
            )
        })
    }

    /// Writes every pool to the file, durably.
    async fn save(&self) -> Result<()> {
        let _writing = self.writing.lock().await;
        let pools: Vec<Pool> = self.pools.lock().values().cloned().collect();
        let file = self.file.clone();
        let written = tokio::task::spawn_blocking(move || write_durably(&file, &pools)).await;
        written.map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))?
    }
}

fn write_durably(file: &Path, pools: &[Pool]) -> Result<()> {
    let failed = |error: std::io::Error| {
        Error::new(ErrorCode::Internal, format!("cannot write {}: {error}", file.display()))
    };
    let bytes = serde_json::to_vec_pretty(pools)
        .map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))?;
    let temporary = file.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut out = std::fs::File::create(&temporary).map_err(failed)?;
        out.write_all(&bytes).map_err(failed)?;
        out.sync_all().map_err(failed)?;
    }
    std::fs::rename(&temporary, file).map_err(failed)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(failed)?;
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArguments, message.into())
}

fn partitioning(strategy: i32, split_points: Vec<String>) -> Result<Partitioning> {
    match pb::PartitionStrategy::try_from(strategy) {
        Ok(pb::PartitionStrategy::Hash) => Ok(Partitioning::Hash),
        Ok(pb::PartitionStrategy::ConsistentHash) => Ok(Partitioning::ConsistentHash),
        Ok(pb::PartitionStrategy::Range) => {
            // In any order: kept sorted (a repeated one is refused by the check).
            let mut split_points = split_points;
            split_points.sort_unstable();
            Ok(Partitioning::Range { split_points })
        }
        Ok(pb::PartitionStrategy::Unspecified) | Err(_) => {
            Err(invalid("a pool needs a partition strategy: hash, consistent_hash or range"))
        }
    }
}

fn pool_key(pool: Option<&pb::WorkerPoolRef>) -> Result<Key> {
    let pool = pool.ok_or_else(|| invalid("the request names no worker pool"))?;
    let scope = Scoped::of(pool.scope.as_ref())?;
    name::<ActorType>(&pool.name)?;
    Ok((scope.tenant.to_string(), scope.namespace.to_string(), pool.name.clone()))
}

fn failure(shard: u32, key: &str, error: &Error) -> pb::ShardFailure {
    pb::ShardFailure {
        shard,
        key: key.to_owned(),
        code: error.code.as_str().to_owned(),
        message: error.message.clone(),
    }
}

/// A JSON message for a shard (`action_of` checks that the whole payload is JSON).
fn message(payload: Vec<u8>) -> Result<Message> {
    let payload = if payload.is_empty() { b"{}".to_vec() } else { payload };
    let action = action_of(&payload, JSON)?;
    Ok(Message { action: action.into(), payload, content_type: JSON.into() })
}

impl Api {
    /// Creates a pool, or finds the same one there already.
    pub async fn create_worker_pool(
        &self,
        request: pb::CreateWorkerPoolRequest,
    ) -> Result<pb::CreateWorkerPoolResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        name::<ActorType>(&request.name)?;
        name::<ActorType>(&request.actor_type)?;
        let partitioning = partitioning(request.strategy, request.split_points)?;
        partitioning.check(request.shards)?;
        let pool = Pool {
            tenant: scope.tenant.to_string(),
            namespace: scope.namespace.to_string(),
            name: request.name,
            actor_type: request.actor_type,
            shards: request.shards,
            partitioning,
            config: request.config.into_iter().collect(),
            created_ms: plexspaces_durable::now_ms(),
        };
        // The shards' type must be served here.
        self.kind(&pool.shard_id(0)?)?;
        let key = (pool.tenant.clone(), pool.namespace.clone(), pool.name.clone());
        {
            let mut pools = self.pools().pools.lock();
            if let Some(existing) = pools.get(&key) {
                if existing.same_parameters(&pool) {
                    return Ok(pb::CreateWorkerPoolResponse {
                        pool: Some(existing.to_pb()),
                        created: false,
                    });
                }
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "worker pool {:?} exists in {}/{} with other parameters ({} shards of \
                         {}); delete it first, or scale it",
                        existing.name,
                        existing.tenant,
                        existing.namespace,
                        existing.shards,
                        existing.actor_type
                    ),
                ));
            }
            if pools.len() >= MAX_POOLS {
                return Err(Error::new(
                    ErrorCode::PoolExhausted,
                    format!("this node keeps at most {MAX_POOLS} worker pools"),
                ));
            }
            pools.insert(key.clone(), pool.clone());
        }
        if let Err(error) = self.pools().save().await {
            self.pools().pools.lock().remove(&key);
            return Err(error);
        }
        tracing::info!(pool = %pool.name, shards = pool.shards, actor_type = %pool.actor_type, "worker pool created");
        Ok(pb::CreateWorkerPoolResponse { pool: Some(pool.to_pb()), created: true })
    }

    pub fn get_worker_pool(&self, request: &pb::WorkerPoolRef) -> Result<pb::WorkerPool> {
        Ok(self.pools().get(&pool_key(Some(request))?)?.to_pb())
    }

    pub fn list_worker_pools(
        &self,
        request: &pb::ListWorkerPoolsRequest,
    ) -> Result<pb::ListWorkerPoolsResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let (tenant, namespace) = scope.pair();
        let pools = self
            .pools()
            .pools
            .lock()
            .values()
            .filter(|pool| pool.tenant == tenant && pool.namespace == namespace)
            .map(Pool::to_pb)
            .collect();
        Ok(pb::ListWorkerPoolsResponse { pools })
    }

    /// Removes a pool and its shard actors.
    pub async fn delete_worker_pool(
        &self,
        request: &pb::WorkerPoolRef,
    ) -> Result<pb::DeleteWorkerPoolResponse> {
        let key = pool_key(Some(request))?;
        let pool = self.pools().get(&key)?;
        self.pools().pools.lock().remove(&key);
        if let Err(error) = self.pools().save().await {
            self.pools().pools.lock().insert(key, pool);
            return Err(error);
        }
        for shard in 0..pool.shards {
            let address = pb::ActorAddress {
                tenant: pool.tenant.clone(),
                namespace: pool.namespace.clone(),
                actor_type: pool.actor_type.clone(),
                actor_id: pool.shard_key(shard),
            };
            match self.delete_actor(&pb::DeleteActorRequest { actor: Some(address) }).await {
                Ok(_) => {}
                // Never activated, or its type is gone.
                Err(error) if error.code == ErrorCode::NotFound => {}
                Err(error) => {
                    tracing::warn!(pool = %pool.name, shard, error = %error.message, "a shard of a deleted pool stays");
                }
            }
        }
        Ok(pb::DeleteWorkerPoolResponse { deleted: true })
    }

    /// Gives a pool a new shard count (and split points).
    pub async fn scale_worker_pool(
        &self,
        request: pb::ScaleWorkerPoolRequest,
    ) -> Result<pb::WorkerPool> {
        let key = pool_key(request.pool.as_ref())?;
        let before = self.pools().get(&key)?;
        let partitioning = match &before.partitioning {
            Partitioning::Range { .. } if request.split_points.is_empty() && request.shards > 1 => {
                return Err(Error::new(
                    ErrorCode::InvalidState,
                    format!(
                        "pool {:?} is range-partitioned: scale it with its new split points",
                        before.name
                    ),
                ));
            }
            Partitioning::Range { .. } => {
                let mut split_points = request.split_points;
                split_points.sort_unstable();
                Partitioning::Range { split_points }
            }
            other if request.split_points.is_empty() => other.clone(),
            _ => {
                return Err(Error::new(
                    ErrorCode::InvalidState,
                    format!(
                        "pool {:?} is not range-partitioned: scale it with a shard count, \
                         without split points",
                        before.name
                    ),
                ));
            }
        };
        partitioning.check(request.shards)?;
        let after = Pool { shards: request.shards, partitioning, ..before.clone() };
        self.pools().pools.lock().insert(key.clone(), after.clone());
        if let Err(error) = self.pools().save().await {
            self.pools().pools.lock().insert(key, before);
            return Err(error);
        }
        tracing::info!(pool = %after.name, from = before.shards, to = after.shards, "worker pool scaled");
        Ok(after.to_pb())
    }

    /// One chunk of an update: each message to its key's shard, in per-shard batches.
    async fn update_chunk(
        &self,
        pool: &Pool,
        messages: Vec<pb::KeyedMessage>,
        strong: bool,
        wait: bool,
        timeout: Duration,
        answer: &mut pb::ParallelUpdateResponse,
    ) -> Result<()> {
        // The chunk's messages, grouped by shard.
        let mut batches: Vec<Vec<(String, Message)>> = vec![Vec::new(); pool.shards as usize];
        for keyed in messages {
            let shard = pool.partitioning.shard(&keyed.key, pool.shards);
            let message = message(keyed.payload)?;
            batches[shard as usize].push((keyed.key, message));
        }
        if answer.per_shard.len() < pool.shards as usize {
            answer.per_shard.resize(pool.shards as usize, 0);
        }
        let kind = self.kind(&pool.shard_id(0)?)?;
        let system = self.system();
        if !strong && !wait {
            for (shard, batch) in batches.into_iter().enumerate() {
                let shard = shard as u32;
                let id = pool.shard_id(shard)?;
                for (key, message) in batch {
                    let envelope = Envelope::named(self.next_message_id());
                    match kind.tell(system, id.clone(), message, envelope) {
                        Ok(()) => {
                            answer.delivered += 1;
                            answer.per_shard[shard as usize] += 1;
                        }
                        Err(error) => answer.failures.push(failure(shard, &key, &error)),
                    }
                }
            }
            return Ok(());
        }
        // Every shard's batch is asked at once; each shard handles its own in order.
        let mut calls = Vec::new();
        for (shard, batch) in batches.into_iter().enumerate() {
            let shard = shard as u32;
            let id = pool.shard_id(shard)?;
            for (key, message) in batch {
                let call = kind.call(system, id.clone(), message, timeout, None);
                calls.push(async move { (shard, key, call.await) });
            }
        }
        for (shard, key, outcome) in join_all(calls).await {
            match outcome {
                Ok(reply) => {
                    answer.delivered += 1;
                    answer.per_shard[shard as usize] += 1;
                    if wait {
                        answer.replies.push(pb::KeyReply { key, shard, reply });
                    }
                }
                Err(error) => answer.failures.push(failure(shard, &key, &error)),
            }
        }
        Ok(())
    }

    /// An update over HTTP: one chunk.
    pub async fn parallel_update(
        &self,
        request: pb::ParallelUpdateRequest,
    ) -> Result<pb::ParallelUpdateResponse> {
        self.parallel_update_chunks(futures_util::stream::iter([Ok(request)])).await
    }

    /// An update in chunks: the first names the pool, its consistency and `wait`; each chunk
    /// is routed as it arrives.
    async fn parallel_update_chunks(
        &self,
        chunks: impl futures_util::Stream<Item = Result<pb::ParallelUpdateRequest>>,
    ) -> Result<pb::ParallelUpdateResponse> {
        use futures_util::StreamExt;
        let mut chunks = std::pin::pin!(chunks);
        let Some(first) = chunks.next().await else {
            return Err(invalid("an update names its worker pool in its first chunk"));
        };
        let first = first?;
        let pool = self.pools().get(&pool_key(first.pool.as_ref())?)?;
        let strong = match pb::ConsistencyLevel::try_from(first.consistency) {
            Ok(pb::ConsistencyLevel::Strong) => true,
            Ok(pb::ConsistencyLevel::Eventual | pb::ConsistencyLevel::Unspecified) => false,
            Err(_) => {
                return Err(invalid(format!("unknown consistency level {}", first.consistency)));
            }
        };
        let timeout = self.timeout(first.timeout_ms)?;
        let mut answer = pb::ParallelUpdateResponse::default();
        self.update_chunk(&pool, first.messages, strong, first.wait, timeout, &mut answer).await?;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            self.update_chunk(&pool, chunk.messages, strong, first.wait, timeout, &mut answer)
                .await?;
        }
        Ok(answer)
    }

    /// Asks every shard, each within the deadline.
    async fn scatter(
        &self,
        pool_ref: Option<&pb::WorkerPoolRef>,
        payload: Vec<u8>,
        timeout_ms: u64,
    ) -> Result<(Pool, pb::ParallelMapResponse)> {
        let pool = self.pools().get(&pool_key(pool_ref)?)?;
        let message = message(payload)?;
        let timeout = self.timeout(timeout_ms)?;
        let kind = self.kind(&pool.shard_id(0)?)?;
        let system = self.system();
        let mut calls = Vec::new();
        for shard in 0..pool.shards {
            let id = pool.shard_id(shard)?;
            let call = kind.call(system, id.clone(), message.clone(), timeout, None);
            calls.push(async move {
                // The ask's own timeout, and a guard for a kind that would overrun it.
                let outcome = match tokio::time::timeout(timeout, call).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Error::new(
                        ErrorCode::Timeout,
                        format!("shard {shard} did not reply within {} ms", timeout.as_millis()),
                    )),
                };
                (shard, id, outcome)
            });
        }
        let mut answer = pb::ParallelMapResponse::default();
        for (shard, id, outcome) in join_all(calls).await {
            match outcome {
                Ok(reply) => answer.replies.push(pb::ShardReply {
                    shard,
                    actor_id: id.key.to_string(),
                    reply,
                }),
                Err(error) => answer.failures.push(failure(shard, "", &error)),
            }
        }
        Ok((pool, answer))
    }

    pub async fn parallel_map(
        &self,
        request: pb::ParallelMapRequest,
    ) -> Result<pb::ParallelMapResponse> {
        Ok(self.scatter(request.pool.as_ref(), request.payload, request.timeout_ms).await?.1)
    }

    pub async fn parallel_reduce(
        &self,
        request: pb::ParallelReduceRequest,
    ) -> Result<pb::ParallelReduceResponse> {
        let strategy = pb::ShardGroupAggregationStrategy::try_from(request.strategy)
            .ok()
            .filter(|strategy| {
                *strategy != pb::ShardGroupAggregationStrategy::ShardGroupAggregationUnspecified
            })
            .ok_or_else(|| {
                invalid("a reduce needs a strategy: concat, sum, min, max, count or merge")
            })?;
        let (pool, mapped) =
            self.scatter(request.pool.as_ref(), request.payload, request.timeout_ms).await?;
        let replies: Vec<Value> = mapped
            .replies
            .iter()
            .map(|reply| serde_json::from_slice(&reply.reply).unwrap_or(Value::Null))
            .collect();
        let result = aggregate(strategy, &replies)?;
        let expected = if request.expected == 0 { pool.shards } else { request.expected };
        let replied = u32::try_from(replies.len()).unwrap_or(u32::MAX);
        Ok(pb::ParallelReduceResponse {
            result: serde_json::to_vec(&result).unwrap_or_default(),
            replied,
            expected,
            complete: replied >= expected,
            failures: mapped.failures,
        })
    }
}

/// The replies combined by `strategy`.
pub(crate) fn aggregate(
    strategy: pb::ShardGroupAggregationStrategy,
    replies: &[Value],
) -> Result<Value> {
    use pb::ShardGroupAggregationStrategy as S;
    Ok(match strategy {
        S::ShardGroupAggregationUnspecified | S::ShardGroupAggregationConcat => {
            Value::Array(replies.to_vec())
        }
        S::ShardGroupAggregationCount => Value::from(replies.len()),
        S::ShardGroupAggregationMerge => {
            let mut merged = serde_json::Map::new();
            for reply in replies {
                match reply {
                    Value::Object(fields) => merged.extend(fields.clone()),
                    Value::Null => {}
                    other => {
                        return Err(invalid(format!(
                            "merge combines JSON objects, and a shard replied {other}"
                        )));
                    }
                }
            }
            Value::Object(merged)
        }
        S::ShardGroupAggregationSum => fold(replies, |a, b| a + b)?,
        S::ShardGroupAggregationMin => fold(replies, f64::min)?,
        S::ShardGroupAggregationMax => fold(replies, f64::max)?,
    })
}

/// Numbers folded by `combine`; for objects, each numeric field folded (the others left out).
/// Whole results stay whole numbers.
fn fold(replies: &[Value], combine: impl Fn(f64, f64) -> f64) -> Result<Value> {
    let number = |value: f64| {
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            Value::from(value as i64)
        } else {
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
        }
    };
    if replies.iter().all(|reply| reply.is_number() || reply.is_null()) {
        let folded = replies.iter().filter_map(Value::as_f64).reduce(&combine);
        return Ok(folded.map_or(Value::Null, number));
    }
    let mut fields: BTreeMap<String, f64> = BTreeMap::new();
    for reply in replies {
        let Value::Object(object) = reply else {
            if reply.is_null() {
                continue;
            }
            return Err(invalid(format!(
                "sum, min and max combine numbers or objects of numbers, and a shard replied \
                 {reply}"
            )));
        };
        for (field, value) in object {
            if let Some(value) = value.as_f64() {
                match fields.get_mut(field) {
                    Some(folded) => *folded = combine(*folded, value),
                    None => {
                        fields.insert(field.clone(), value);
                    }
                }
            }
        }
    }
    Ok(Value::Object(fields.into_iter().map(|(field, value)| (field, number(value))).collect()))
}

#[tonic::async_trait]
impl ShardGroupService for Api {
    async fn create_worker_pool(
        &self,
        request: Request<pb::CreateWorkerPoolRequest>,
    ) -> Result<Response<pb::CreateWorkerPoolResponse>, Status> {
        self.observed(
            "plexspaces.v1.ShardGroupService/CreateWorkerPool",
            Api::create_worker_pool(self, request.into_inner()),
        )
        .await
    }

    async fn get_worker_pool(
        &self,
        request: Request<pb::WorkerPoolRef>,
    ) -> Result<Response<pb::WorkerPool>, Status> {
        self.observed("plexspaces.v1.ShardGroupService/GetWorkerPool", async {
            Api::get_worker_pool(self, request.get_ref())
        })
        .await
    }

    async fn list_worker_pools(
        &self,
        request: Request<pb::ListWorkerPoolsRequest>,
    ) -> Result<Response<pb::ListWorkerPoolsResponse>, Status> {
        self.observed("plexspaces.v1.ShardGroupService/ListWorkerPools", async {
            Api::list_worker_pools(self, request.get_ref())
        })
        .await
    }

    async fn delete_worker_pool(
        &self,
        request: Request<pb::WorkerPoolRef>,
    ) -> Result<Response<pb::DeleteWorkerPoolResponse>, Status> {
        self.observed(
            "plexspaces.v1.ShardGroupService/DeleteWorkerPool",
            Api::delete_worker_pool(self, request.get_ref()),
        )
        .await
    }

    async fn scale_worker_pool(
        &self,
        request: Request<pb::ScaleWorkerPoolRequest>,
    ) -> Result<Response<pb::WorkerPool>, Status> {
        self.observed(
            "plexspaces.v1.ShardGroupService/ScaleWorkerPool",
            Api::scale_worker_pool(self, request.into_inner()),
        )
        .await
    }

    async fn parallel_update(
        &self,
        request: Request<Streaming<pb::ParallelUpdateRequest>>,
    ) -> Result<Response<pb::ParallelUpdateResponse>, Status> {
        use futures_util::StreamExt;
        let chunks = request.into_inner().map(|chunk| {
            chunk.map_err(|status| Error::new(ErrorCode::InvalidArguments, status.message()))
        });
        self.observed(
            "plexspaces.v1.ShardGroupService/ParallelUpdate",
            self.parallel_update_chunks(chunks),
        )
        .await
    }

    async fn parallel_map(
        &self,
        request: Request<pb::ParallelMapRequest>,
    ) -> Result<Response<pb::ParallelMapResponse>, Status> {
        self.observed(
            "plexspaces.v1.ShardGroupService/ParallelMap",
            Api::parallel_map(self, request.into_inner()),
        )
        .await
    }

    async fn parallel_reduce(
        &self,
        request: Request<pb::ParallelReduceRequest>,
    ) -> Result<Response<pb::ParallelReduceResponse>, Status> {
        self.observed(
            "plexspaces.v1.ShardGroupService/ParallelReduce",
            Api::parallel_reduce(self, request.into_inner()),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn replies_aggregate_by_each_strategy() {
        use pb::ShardGroupAggregationStrategy as S;
        let replies = [json!({"total": 3, "worker": "a"}), json!({"total": 5, "keys": 2})];
        let sum = aggregate(S::ShardGroupAggregationSum, &replies).unwrap();
        assert_eq!(sum, json!({"total": 8, "keys": 2}));
        let min = aggregate(S::ShardGroupAggregationMin, &replies).unwrap();
        assert_eq!(min, json!({"total": 3, "keys": 2}));
        let max = aggregate(S::ShardGroupAggregationMax, &[json!(1.5), json!(-2), json!(null)]);
        assert_eq!(max.unwrap(), json!(1.5));
        assert_eq!(aggregate(S::ShardGroupAggregationCount, &replies).unwrap(), json!(2));
        let merged = aggregate(S::ShardGroupAggregationMerge, &replies).unwrap();
        assert_eq!(merged, json!({"total": 5, "worker": "a", "keys": 2}));
        let concat = aggregate(S::ShardGroupAggregationConcat, &replies).unwrap();
        assert_eq!(concat, json!(replies));
        let refused = aggregate(S::ShardGroupAggregationSum, &[json!("x")]).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidArguments);
        assert!(aggregate(S::ShardGroupAggregationMerge, &[json!([1])]).is_err());
    }
}
