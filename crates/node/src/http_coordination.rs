//! The KV store and the tuple space over HTTP (invoke port): each route builds the request of
//! the matching gRPC method and calls the same [`Api`] method.
//!
//! - `GET/PUT/DELETE /api/v1/kv/{tenant}/{namespace}/{key}`, `PUT` taking `{"value", "ttl_ms"}`
//! - `GET /api/v1/kv/{tenant}/{namespace}?prefix=&after=&limit=`
//! - `POST /api/v1/kv/{tenant}/{namespace}/{key}/compare-and-swap` with `{"expected", "value",
//!   "ttl_ms"}`
//! - `POST /api/v1/tuples/{tenant}/{namespace}` with `{"tuple", "lease_ms"}`, and
//!   `.../read`, `.../take` (`{"pattern", "timeout_ms"}`), `.../count`, `.../scan`
//!   (`{"pattern", "limit"}`)
//! - `GET /api/v1/locks/{tenant}/{namespace}/{name}`, and `POST .../acquire` (`{"holder",
//!   "metadata", "lease_ms", "timeout_ms"}`), `.../renew` (`{"holder", "version",
//!   "lease_ms"}`), `.../release` (`{"version"}`); versions are decimal strings
//! - `GET /api/v1/groups/{tenant}/{namespace}`, `GET .../{group}`, and `POST .../{group}/join`,
//!   `.../leave` (`{"member", "topic"}`), `.../publish` (`{"data", "topic"}`)

use axum::{
    Json, Router,
    extract::{RawQuery, Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use plexspaces_proto::v1 as pb;
use plexspaces_types::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Api,
    http::{Problem, Segments, body_bytes, page_query, problem},
    payload::is_json,
};

type ScopePath = Segments<(String, String)>;
type KeyPath = Segments<(String, String, String)>;

fn scope(tenant: String, namespace: String) -> Option<pb::Scope> {
    Some(pb::Scope { tenant, namespace })
}

/// The request's JSON body as `T`.
pub(crate) async fn body<T: serde::de::DeserializeOwned>(
    api: &Api,
    request: Request,
) -> Result<T, Problem> {
    let (mut parts, body) = request.into_parts();
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or("invalid");
        if !is_json(content_type) {
            return Err(problem(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "this route takes JSON (Content-Type: application/json), not {content_type:?}"
                ),
            ));
        }
    }
    let bytes = body_bytes(api, &mut parts, body).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
        problem(ErrorCode::InvalidJson, format!("the body is not JSON: {error}"))
    })?;
    if !value.is_object() {
        return Err(problem(ErrorCode::InvalidArguments, "the body is a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|error| problem(ErrorCode::InvalidArguments, format!("the body: {error}")))
}

fn entry_json(entry: &pb::KvEntry) -> Value {
    json!({
        "key": entry.key,
        "value": entry.value,
        "expires_at_ms": (entry.expires_at_ms > 0).then_some(entry.expires_at_ms),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Put {
    value: String,
    #[serde(default)]
    ttl_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Swap {
    #[serde(default)]
    expected: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    ttl_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Write {
    tuple: Vec<Value>,
    #[serde(default)]
    lease_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Find {
    pattern: Vec<Value>,
    #[serde(default)]
    timeout_ms: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Count {
    pattern: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scan {
    pattern: Vec<Value>,
    #[serde(default)]
    limit: u32,
}

fn text(value: &[Value]) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

async fn kv_list(api: Api, path: ScopePath, raw: Option<String>) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let page = page_query(raw.as_deref())?;
    let request = pb::KvListRequest {
        scope: scope(tenant, namespace),
        prefix: page.prefix,
        after: page.after,
        limit: page.limit,
    };
    let page = api.kv_list(request).await?;
    let entries: Vec<Value> = page.entries.iter().map(entry_json).collect();
    let next_after = (!page.next_after.is_empty()).then_some(page.next_after);
    Ok(Json(json!({"entries": entries, "next_after": next_after})).into_response())
}

async fn kv_get(api: Api, path: KeyPath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, key)) = path;
    let found =
        api.kv_get(pb::KvGetRequest { scope: scope(tenant, namespace), key: key.clone() }).await?;
    match found.entry {
        Some(entry) => Ok(Json(entry_json(&entry)).into_response()),
        None => Err(problem(ErrorCode::NotFound, format!("no value under {key:?}"))),
    }
}

async fn kv_put(api: Api, path: KeyPath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, key)) = path;
    let put: Put = body(&api, request).await?;
    let request = pb::KvPutRequest {
        scope: scope(tenant, namespace),
        key,
        value: put.value,
        ttl_ms: put.ttl_ms,
    };
    api.kv_put(request).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn kv_delete(api: Api, path: KeyPath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, key)) = path;
    let deleted =
        api.kv_delete(pb::KvDeleteRequest { scope: scope(tenant, namespace), key }).await?;
    Ok(Json(json!({"deleted": deleted.deleted})).into_response())
}

async fn kv_swap(api: Api, path: KeyPath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, key)) = path;
    let swap: Swap = body(&api, request).await?;
    let request = pb::KvCompareAndSwapRequest {
        scope: scope(tenant, namespace),
        key,
        expected: swap.expected,
        value: swap.value,
        ttl_ms: swap.ttl_ms,
    };
    let swapped = api.kv_compare_and_swap(request).await?;
    Ok(Json(json!({"swapped": swapped.swapped})).into_response())
}

async fn tuple_write(api: Api, path: ScopePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let write: Write = body(&api, request).await?;
    let request = pb::TupleWriteRequest {
        scope: scope(tenant, namespace),
        tuple_json: text(&write.tuple),
        lease_ms: write.lease_ms,
    };
    api.tuple_write(&request).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse(tuple: &str) -> Value {
    serde_json::from_str(tuple).unwrap_or(Value::Null)
}

/// `read` or `take`.
async fn tuple_find(
    api: Api,
    path: ScopePath,
    request: Request,
    take: bool,
) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let find: Find = body(&api, request).await?;
    let request = pb::TupleFindRequest {
        scope: scope(tenant, namespace),
        pattern_json: text(&find.pattern),
        timeout_ms: find.timeout_ms,
    };
    let found = api.tuple_find(&request, take).await?;
    Ok(Json(json!({"tuple": found.tuple_json.as_deref().map(parse)})).into_response())
}

async fn tuple_count(api: Api, path: ScopePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let count: Count = body(&api, request).await?;
    let request = pb::TupleCountRequest {
        scope: scope(tenant, namespace),
        pattern_json: text(&count.pattern),
    };
    Ok(Json(json!({"count": api.tuple_count(&request)?.count})).into_response())
}

async fn tuple_scan(api: Api, path: ScopePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let scan: Scan = body(&api, request).await?;
    let request = pb::TupleScanRequest {
        scope: scope(tenant, namespace),
        pattern_json: text(&scan.pattern),
        limit: scan.limit,
    };
    let scanned = api.tuple_scan(&request)?;
    let tuples: Vec<Value> = scanned.tuples_json.iter().map(|tuple| parse(tuple)).collect();
    Ok(Json(json!({"tuples": tuples})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Acquire {
    holder: String,
    #[serde(default)]
    metadata: String,
    lease_ms: u64,
    #[serde(default)]
    timeout_ms: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Renew {
    holder: String,
    version: String,
    lease_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Release {
    version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Membership {
    member: String,
    #[serde(default)]
    topic: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Publish {
    data: Value,
    #[serde(default)]
    topic: Option<String>,
}

fn version(text: &str) -> Result<u64, Problem> {
    let digits = (1..=19).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten().ok_or_else(|| {
        problem(ErrorCode::InvalidArguments, format!("a version is a decimal string, not {text:?}"))
    })
}

fn grant_json(grant: Option<&pb::LockGrant>) -> Value {
    grant.map_or(Value::Null, |grant| {
        json!({
            "name": grant.name,
            "version": grant.version.to_string(),
            "holder": grant.holder,
            "metadata": grant.metadata,
            "expires_at_ms": grant.expires_at_ms,
        })
    })
}

/// The `POST` operations on a lock, by the last segment of their route.
#[derive(Clone, Copy)]
enum LockOperation {
    Acquire,
    Renew,
    Release,
}

/// The `POST` operations on a group, by the last segment of their route.
#[derive(Clone, Copy)]
enum GroupOperation {
    Join,
    Leave,
    Publish,
}

async fn lock_post(
    api: Api,
    path: KeyPath,
    request: Request,
    operation: LockOperation,
) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let scope = scope(tenant, namespace);
    let answer = match operation {
        LockOperation::Acquire => {
            let acquire: Acquire = body(&api, request).await?;
            let request = pb::LockAcquireRequest {
                scope,
                name,
                holder: acquire.holder,
                metadata: acquire.metadata,
                lease_ms: acquire.lease_ms,
                timeout_ms: acquire.timeout_ms,
            };
            json!({"grant": grant_json(api.lock_acquire(request).await?.grant.as_ref())})
        }
        LockOperation::Renew => {
            let renew: Renew = body(&api, request).await?;
            let request = pb::LockRenewRequest {
                scope,
                name,
                holder: renew.holder,
                version: version(&renew.version)?,
                lease_ms: renew.lease_ms,
            };
            json!({"grant": grant_json(api.lock_renew(&request)?.grant.as_ref())})
        }
        LockOperation::Release => {
            let release: Release = body(&api, request).await?;
            let request =
                pb::LockReleaseRequest { scope, name, version: version(&release.version)? };
            json!({"released": api.lock_release(&request)?.released})
        }
    };
    Ok(Json(answer).into_response())
}

async fn lock_get(api: Api, path: KeyPath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let held = api.lock_get(&pb::LockGetRequest { scope: scope(tenant, namespace), name })?;
    Ok(Json(json!({"grant": grant_json(held.grant.as_ref())})).into_response())
}

async fn group_post(
    api: Api,
    path: KeyPath,
    request: Request,
    operation: GroupOperation,
) -> Result<Response, Problem> {
    let Segments((tenant, namespace, group)) = path;
    let scope = scope(tenant, namespace);
    let answer = match operation {
        GroupOperation::Join => {
            let join: Membership = body(&api, request).await?;
            let request =
                pb::GroupJoinRequest { scope, group, member: join.member, topic: join.topic };
            json!({"joined": api.group_join(&request)?.joined})
        }
        GroupOperation::Leave => {
            let leave: Membership = body(&api, request).await?;
            let request =
                pb::GroupLeaveRequest { scope, group, member: leave.member, topic: leave.topic };
            json!({"left": api.group_leave(&request)?.left})
        }
        GroupOperation::Publish => {
            let publish: Publish = body(&api, request).await?;
            let request = pb::GroupPublishRequest {
                scope,
                group,
                topic: publish.topic,
                data_json: publish.data.to_string(),
            };
            json!({"sent": api.group_publish(&request)?.sent})
        }
    };
    Ok(Json(answer).into_response())
}

async fn group_members(api: Api, path: KeyPath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, group)) = path;
    let members =
        api.group_members(&pb::GroupMembersRequest { scope: scope(tenant, namespace), group })?;
    Ok(Json(json!({"members": members.members})).into_response())
}

async fn group_list(api: Api, path: ScopePath) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let listed = api.group_list(&pb::GroupListRequest { scope: scope(tenant, namespace) })?;
    let groups: Vec<Value> = listed
        .groups
        .iter()
        .map(|group| json!({"name": group.name, "members": group.members}))
        .collect();
    Ok(Json(json!({"groups": groups})).into_response())
}

/// The routes, for the invoke port's router.
pub(crate) fn routes() -> Router<Api> {
    let mut router = Router::new()
        .route(
            "/api/v1/locks/{tenant}/{namespace}/{name}",
            get(|State(api): State<Api>, path: KeyPath| lock_get(api, path)),
        )
        .route(
            "/api/v1/groups/{tenant}/{namespace}",
            get(|State(api): State<Api>, path: ScopePath| group_list(api, path)),
        )
        .route(
            "/api/v1/groups/{tenant}/{namespace}/{group}",
            get(|State(api): State<Api>, path: KeyPath| group_members(api, path)),
        );
    for (segment, operation) in [
        ("acquire", LockOperation::Acquire),
        ("renew", LockOperation::Renew),
        ("release", LockOperation::Release),
    ] {
        router = router.route(
            &format!("/api/v1/locks/{{tenant}}/{{namespace}}/{{name}}/{segment}"),
            post(move |State(api): State<Api>, path: KeyPath, request: Request| {
                lock_post(api, path, request, operation)
            }),
        );
    }
    for (segment, operation) in [
        ("join", GroupOperation::Join),
        ("leave", GroupOperation::Leave),
        ("publish", GroupOperation::Publish),
    ] {
        router = router.route(
            &format!("/api/v1/groups/{{tenant}}/{{namespace}}/{{group}}/{segment}"),
            post(move |State(api): State<Api>, path: KeyPath, request: Request| {
                group_post(api, path, request, operation)
            }),
        );
    }
    router
        .route(
            "/api/v1/kv/{tenant}/{namespace}",
            get(|State(api): State<Api>, path: ScopePath, RawQuery(raw): RawQuery| {
                kv_list(api, path, raw)
            }),
        )
        .route(
            "/api/v1/kv/{tenant}/{namespace}/{key}",
            get(|State(api): State<Api>, path: KeyPath| kv_get(api, path))
                .put(|State(api): State<Api>, path: KeyPath, request: Request| {
                    kv_put(api, path, request)
                })
                .delete(|State(api): State<Api>, path: KeyPath| kv_delete(api, path)),
        )
        .route(
            "/api/v1/kv/{tenant}/{namespace}/{key}/compare-and-swap",
            post(|State(api): State<Api>, path: KeyPath, request: Request| {
                kv_swap(api, path, request)
            }),
        )
        .route(
            "/api/v1/tuples/{tenant}/{namespace}",
            post(|State(api): State<Api>, path: ScopePath, request: Request| {
                tuple_write(api, path, request)
            }),
        )
        .route(
            "/api/v1/tuples/{tenant}/{namespace}/read",
            post(|State(api): State<Api>, path: ScopePath, request: Request| {
                tuple_find(api, path, request, false)
            }),
        )
        .route(
            "/api/v1/tuples/{tenant}/{namespace}/take",
            post(|State(api): State<Api>, path: ScopePath, request: Request| {
                tuple_find(api, path, request, true)
            }),
        )
        .route(
            "/api/v1/tuples/{tenant}/{namespace}/count",
            post(|State(api): State<Api>, path: ScopePath, request: Request| {
                tuple_count(api, path, request)
            }),
        )
        .route(
            "/api/v1/tuples/{tenant}/{namespace}/scan",
            post(|State(api): State<Api>, path: ScopePath, request: Request| {
                tuple_scan(api, path, request)
            }),
        )
}
