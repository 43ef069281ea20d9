//! Worker pools over HTTP: each route builds the request of the matching
//! `ShardGroupService` method and calls the same [`Api`] method.
//!
//! Admin port:
//! - `POST /api/v1/pools/{tenant}/{namespace}` with `{"name", "actor_type", "shards",
//!   "strategy": "hash" | "consistent_hash" | "range", "split_points", "config"}`: 201 with the
//!   pool, 200 when the same pool was there, 409 `already_exists` with other parameters
//! - `GET /api/v1/pools/{tenant}/{namespace}`, `GET` and `DELETE .../{pool}`
//! - `POST .../{pool}/scale` with `{"shards", "split_points"}`
//!
//! Invoke port:
//! - `POST .../{pool}/update` with `{"messages": {key: message}, "consistency": "eventual" |
//!   "strong", "wait", "timeout_ms"}`
//! - `POST .../{pool}/map` with `{"message", "timeout_ms"}`
//! - `POST .../{pool}/reduce` with `{"message", "strategy": "concat" | "sum" | "min" | "max" |
//!   "count" | "merge", "expected", "timeout_ms"}`

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use plexspaces_proto::v1 as pb;
use plexspaces_types::ErrorCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    Api,
    http::{Problem, Segments, problem},
    http_coordination::body,
};

type ScopePath = Segments<(String, String)>;
type PoolPath = Segments<(String, String, String)>;

fn pool_ref(tenant: String, namespace: String, name: String) -> Option<pb::WorkerPoolRef> {
    Some(pb::WorkerPoolRef { scope: Some(pb::Scope { tenant, namespace }), name })
}

pub(crate) fn pool_json(pool: &pb::WorkerPool) -> Value {
    let strategy = match pb::PartitionStrategy::try_from(pool.strategy) {
        Ok(pb::PartitionStrategy::Hash) => "hash",
        Ok(pb::PartitionStrategy::ConsistentHash) => "consistent_hash",
        Ok(pb::PartitionStrategy::Range) => "range",
        _ => "unspecified",
    };
    let scope = pool.scope.clone().unwrap_or_default();
    let config: BTreeMap<&String, &String> = pool.config.iter().collect();
    json!({
        "tenant": scope.tenant,
        "namespace": scope.namespace,
        "name": pool.name,
        "actor_type": pool.actor_type,
        "shards": pool.shards,
        "strategy": strategy,
        "split_points": pool.split_points,
        "config": config,
        "created_ms": pool.created_ms,
        "shard_actor_ids": pool.shard_actor_ids,
    })
}

fn failures_json(failures: &[pb::ShardFailure]) -> Vec<Value> {
    failures
        .iter()
        .map(|failure| {
            let key = (!failure.key.is_empty()).then_some(&failure.key);
            json!({"shard": failure.shard, "key": key, "code": failure.code, "message": failure.message})
        })
        .collect()
}

fn reply_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
    actor_type: String,
    /// Range partitioning: one more than the split points when left out.
    #[serde(default)]
    shards: Option<u32>,
    strategy: String,
    #[serde(default)]
    split_points: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

fn strategy(name: &str) -> Result<pb::PartitionStrategy, Problem> {
    match name {
        "hash" => Ok(pb::PartitionStrategy::Hash),
        "consistent_hash" => Ok(pb::PartitionStrategy::ConsistentHash),
        "range" => Ok(pb::PartitionStrategy::Range),
        other => Err(problem(
            ErrorCode::InvalidArguments,
            format!("strategy is hash, consistent_hash or range, not {other:?}"),
        )),
    }
}

async fn create(api: Api, path: ScopePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let create: Create = body(&api, request).await?;
    let strategy = strategy(&create.strategy)?;
    let shards = match (create.shards, strategy) {
        (Some(shards), _) => shards,
        (None, pb::PartitionStrategy::Range) => {
            u32::try_from(create.split_points.len() + 1).unwrap_or(u32::MAX)
        }
        (None, _) => {
            return Err(problem(ErrorCode::InvalidArguments, "a pool needs its number of shards"));
        }
    };
    let request = pb::CreateWorkerPoolRequest {
        scope: Some(pb::Scope { tenant, namespace }),
        name: create.name,
        actor_type: create.actor_type,
        shards,
        strategy: strategy as i32,
        split_points: create.split_points,
        config: create.config.into_iter().collect(),
    };
    let created = api.create_worker_pool(request).await?;
    let status = if created.created { StatusCode::CREATED } else { StatusCode::OK };
    let pool = created.pool.as_ref().map(pool_json).unwrap_or_default();
    Ok((status, Json(json!({"pool": pool, "created": created.created}))).into_response())
}

async fn list(api: Api, path: ScopePath) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let request = pb::ListWorkerPoolsRequest { scope: Some(pb::Scope { tenant, namespace }) };
    let pools: Vec<Value> = api.list_worker_pools(&request)?.pools.iter().map(pool_json).collect();
    Ok(Json(json!({"pools": pools})).into_response())
}

async fn show(api: Api, path: PoolPath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let request = pool_ref(tenant, namespace, name).unwrap_or_default();
    Ok(Json(pool_json(&api.get_worker_pool(&request)?)).into_response())
}

async fn delete(api: Api, path: PoolPath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let request = pool_ref(tenant, namespace, name).unwrap_or_default();
    let deleted = api.delete_worker_pool(&request).await?;
    Ok(Json(json!({"deleted": deleted.deleted})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scale {
    /// Range partitioning: one more than the split points when left out.
    #[serde(default)]
    shards: Option<u32>,
    #[serde(default)]
    split_points: Vec<String>,
}

async fn scale(api: Api, path: PoolPath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let scale: Scale = body(&api, request).await?;
    let request = pb::ScaleWorkerPoolRequest {
        pool: pool_ref(tenant, namespace, name),
        shards: scale
            .shards
            .unwrap_or_else(|| u32::try_from(scale.split_points.len() + 1).unwrap_or(u32::MAX)),
        split_points: scale.split_points,
    };
    Ok(Json(pool_json(&api.scale_worker_pool(request).await?)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    messages: Map<String, Value>,
    #[serde(default)]
    consistency: Option<String>,
    #[serde(default)]
    wait: bool,
    #[serde(default)]
    timeout_ms: u64,
}

async fn update(api: Api, path: PoolPath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let update: Update = body(&api, request).await?;
    let consistency = match update.consistency.as_deref() {
        None | Some("eventual") => pb::ConsistencyLevel::Eventual,
        Some("strong") => pb::ConsistencyLevel::Strong,
        Some(other) => {
            return Err(problem(
                ErrorCode::InvalidArguments,
                format!("consistency is eventual or strong, not {other:?}"),
            ));
        }
    };
    let messages = update
        .messages
        .into_iter()
        .map(|(key, message)| pb::KeyedMessage { key, payload: message.to_string().into_bytes() })
        .collect();
    let request = pb::ParallelUpdateRequest {
        pool: pool_ref(tenant, namespace, name),
        consistency: consistency as i32,
        wait: update.wait,
        messages,
        timeout_ms: update.timeout_ms,
    };
    let done = api.parallel_update(request).await?;
    let replies: Option<Map<String, Value>> = update.wait.then(|| {
        done.replies.iter().map(|reply| (reply.key.clone(), reply_json(&reply.reply))).collect()
    });
    Ok(Json(json!({
        "delivered": done.delivered,
        "per_shard": done.per_shard,
        "replies": replies,
        "failures": failures_json(&done.failures),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scatter {
    message: Value,
    #[serde(default)]
    timeout_ms: u64,
}

async fn map(api: Api, path: PoolPath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let map: Scatter = body(&api, request).await?;
    let request = pb::ParallelMapRequest {
        pool: pool_ref(tenant, namespace, name),
        payload: map.message.to_string().into_bytes(),
        timeout_ms: map.timeout_ms,
    };
    let mapped = api.parallel_map(request).await?;
    let replies: Vec<Value> = mapped
        .replies
        .iter()
        .map(|reply| json!({"shard": reply.shard, "actor_id": reply.actor_id, "reply": reply_json(&reply.reply)}))
        .collect();
    Ok(Json(json!({"replies": replies, "failures": failures_json(&mapped.failures)}))
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reduce {
    message: Value,
    strategy: String,
    #[serde(default)]
    expected: u32,
    #[serde(default)]
    timeout_ms: u64,
}

async fn reduce(api: Api, path: PoolPath, request: Request) -> Result<Response, Problem> {
    use pb::ShardGroupAggregationStrategy as S;
    let Segments((tenant, namespace, name)) = path;
    let reduce: Reduce = body(&api, request).await?;
    let strategy = match reduce.strategy.as_str() {
        "concat" => S::ShardGroupAggregationConcat,
        "sum" => S::ShardGroupAggregationSum,
        "min" => S::ShardGroupAggregationMin,
        "max" => S::ShardGroupAggregationMax,
        "count" => S::ShardGroupAggregationCount,
        "merge" => S::ShardGroupAggregationMerge,
        other => {
            return Err(problem(
                ErrorCode::InvalidArguments,
                format!("strategy is concat, sum, min, max, count or merge, not {other:?}"),
            ));
        }
    };
    let request = pb::ParallelReduceRequest {
        pool: pool_ref(tenant, namespace, name),
        payload: reduce.message.to_string().into_bytes(),
        strategy: strategy as i32,
        expected: reduce.expected,
        timeout_ms: reduce.timeout_ms,
    };
    let reduced = api.parallel_reduce(request).await?;
    Ok(Json(json!({
        "result": reply_json(&reduced.result),
        "replied": reduced.replied,
        "expected": reduced.expected,
        "complete": reduced.complete,
        "failures": failures_json(&reduced.failures),
    }))
    .into_response())
}

/// The admin port's routes: a pool's life.
pub(crate) fn admin_routes() -> Router<Api> {
    Router::new()
        .route(
            "/api/v1/pools/{tenant}/{namespace}",
            get(|State(api): State<Api>, path: ScopePath| list(api, path)).post(
                |State(api): State<Api>, path: ScopePath, request: Request| {
                    create(api, path, request)
                },
            ),
        )
        .route(
            "/api/v1/pools/{tenant}/{namespace}/{pool}",
            get(|State(api): State<Api>, path: PoolPath| show(api, path))
                .delete(|State(api): State<Api>, path: PoolPath| delete(api, path)),
        )
        .route(
            "/api/v1/pools/{tenant}/{namespace}/{pool}/scale",
            post(|State(api): State<Api>, path: PoolPath, request: Request| {
                scale(api, path, request)
            }),
        )
}

/// The invoke port's routes: messages to a pool's shards.
pub(crate) fn invoke_routes() -> Router<Api> {
    Router::new()
        .route(
            "/api/v1/pools/{tenant}/{namespace}/{pool}/update",
            post(|State(api): State<Api>, path: PoolPath, request: Request| {
                update(api, path, request)
            }),
        )
        .route(
            "/api/v1/pools/{tenant}/{namespace}/{pool}/map",
            post(|State(api): State<Api>, path: PoolPath, request: Request| {
                map(api, path, request)
            }),
        )
        .route(
            "/api/v1/pools/{tenant}/{namespace}/{pool}/reduce",
            post(|State(api): State<Api>, path: PoolPath, request: Request| {
                reduce(api, path, request)
            }),
        )
}
