//! The service registry over HTTP (invoke port): each route builds the request of the matching
//! gRPC method of `RegistryService` and calls the same [`Api`] method.
//!
//! - `GET /api/v1/registry/{tenant}/{namespace}?prefix=&after=&limit=`: services with live
//!   instances, and how many each has
//! - `GET /api/v1/registry/{tenant}/{namespace}/{service}`: its live instances
//! - `PUT /api/v1/registry/{tenant}/{namespace}/{service}/{instance}` with `{"metadata",
//!   "ttl_ms"}` (each optional): register; `DELETE`: deregister
//! - `POST .../{service}/{instance}/heartbeat` with `{"ttl_ms"}` (optional): renew

use axum::{
    Json, Router,
    extract::{RawQuery, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use plexspaces_proto::v1 as pb;
use plexspaces_types::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Api,
    http::{Problem, Segments, page_query, problem},
    http_coordination::body,
};

type ScopePath = Segments<(String, String)>;
type ServicePath = Segments<(String, String, String)>;
type InstancePath = Segments<(String, String, String, String)>;

fn scope(tenant: String, namespace: String) -> Option<pb::Scope> {
    Some(pb::Scope { tenant, namespace })
}

fn registration_json(registration: pb::Registration) -> Value {
    // Checked to be a JSON object when it was registered.
    let metadata: Value = serde_json::from_str(&registration.metadata_json).unwrap_or(Value::Null);
    json!({
        "service": registration.service,
        "instance": registration.instance,
        "metadata": metadata,
        "ttl_ms": registration.ttl_ms,
        "registered_at_ms": registration.registered_at_ms,
        "expires_at_ms": registration.expires_at_ms,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    ttl_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Heartbeat {
    #[serde(default)]
    ttl_ms: u64,
}

async fn list(api: Api, path: ScopePath, query: Option<String>) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let page = page_query(query.as_deref())?;
    let request = pb::RegistryListRequest {
        scope: scope(tenant, namespace),
        prefix: page.prefix,
        after: page.after,
        limit: page.limit,
    };
    let listed = api.registry_list(request).await?;
    let services: Vec<Value> = listed
        .services
        .into_iter()
        .map(|summary| json!({"service": summary.service, "instances": summary.instances}))
        .collect();
    let next_after = (!listed.next_after.is_empty()).then_some(listed.next_after);
    Ok(Json(json!({"services": services, "next_after": next_after})).into_response())
}

async fn lookup(api: Api, path: ServicePath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, service)) = path;
    let request = pb::RegistryLookupRequest { scope: scope(tenant, namespace), service };
    let found = api.registry_lookup(request.clone()).await?;
    let instances: Vec<Value> = found.instances.into_iter().map(registration_json).collect();
    Ok(Json(json!({"service": request.service, "instances": instances})).into_response())
}

async fn register(api: Api, path: InstancePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, service, instance)) = path;
    let register: Register = body(&api, request).await?;
    let metadata_json = match register.metadata {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(metadata)) => Value::Object(metadata).to_string(),
        Some(_) => {
            return Err(problem(ErrorCode::InvalidArguments, "metadata is a JSON object"));
        }
    };
    let request = pb::RegistryRegisterRequest {
        scope: scope(tenant, namespace),
        service,
        instance,
        metadata_json,
        ttl_ms: register.ttl_ms,
    };
    let registered = api.registry_register(request).await?;
    Ok(Json(registration_json(registered)).into_response())
}

async fn heartbeat(api: Api, path: InstancePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, service, instance)) = path;
    let heartbeat: Heartbeat = body(&api, request).await?;
    let request = pb::RegistryHeartbeatRequest {
        scope: scope(tenant, namespace),
        service,
        instance,
        ttl_ms: heartbeat.ttl_ms,
    };
    Ok(Json(registration_json(api.registry_heartbeat(request).await?)).into_response())
}

async fn deregister(api: Api, path: InstancePath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, service, instance)) = path;
    let request = pb::RegistryInstanceRef { scope: scope(tenant, namespace), service, instance };
    let deregistered = api.registry_deregister(request).await?.deregistered;
    Ok((StatusCode::OK, Json(json!({"deregistered": deregistered}))).into_response())
}

/// The routes, for the invoke port's router.
pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route(
            "/api/v1/registry/{tenant}/{namespace}",
            get(|State(api): State<Api>, path: ScopePath, RawQuery(query): RawQuery| {
                list(api, path, query)
            }),
        )
        .route(
            "/api/v1/registry/{tenant}/{namespace}/{service}",
            get(|State(api): State<Api>, path: ServicePath| lookup(api, path)),
        )
        .route(
            "/api/v1/registry/{tenant}/{namespace}/{service}/{instance}",
            put(|State(api): State<Api>, path: InstancePath, request: Request| {
                register(api, path, request)
            })
            .delete(|State(api): State<Api>, path: InstancePath| deregister(api, path)),
        )
        .route(
            "/api/v1/registry/{tenant}/{namespace}/{service}/{instance}/heartbeat",
            post(|State(api): State<Api>, path: InstancePath, request: Request| {
                heartbeat(api, path, request)
            }),
        )
}
