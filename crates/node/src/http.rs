//! The HTTP front doors: the invoke port and the admin port. Each route builds the proto
//! request of the matching gRPC method and calls the same [`Api`] method; errors leave as
//! `application/problem+json` with the catalogue code.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use plexspaces_proto::v1 as pb;
use plexspaces_types::ErrorCode;
use serde_json::{Map, Value, json};

use crate::{
    Api, Error, openapi,
    payload::{JSON, is_json},
};

/// An error on its way out as problem+json.
#[derive(Debug)]
pub(crate) struct Problem(pub(crate) Error);

impl From<Error> for Problem {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.0.problem().to_string();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

pub(crate) fn problem(code: ErrorCode, message: impl Into<String>) -> Problem {
    Problem(Error::new(code, message))
}

/// The body the gate has read already, handed to the handler without a second collection.
#[derive(Clone)]
pub(crate) struct ReadBody(pub(crate) Bytes);

/// The request's body: the one the gate read already, or read here within the body limit.
pub(crate) async fn body_bytes(
    api: &Api,
    parts: &mut Parts,
    body: axum::body::Body,
) -> Result<Bytes, Problem> {
    if let Some(ReadBody(bytes)) = parts.extensions.remove::<ReadBody>() {
        return Ok(bytes);
    }
    axum::body::to_bytes(body, api.options().max_body_bytes).await.map_err(|error| {
        problem(ErrorCode::InvalidArguments, format!("the request body could not be read: {error}"))
    })
}

/// Query pairs, decoded leniently: a malformed query is `invalid_arguments`.
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Problem> {
    let Some(query) = query else { return Ok(Vec::new()) };
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((decode(key)?, decode(value)?));
    }
    Ok(pairs)
}

fn decode(text: &str) -> Result<String, Problem> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(at + 1..at + 3).and_then(|hex| std::str::from_utf8(hex).ok());
                let Some(byte) = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) else {
                    return Err(problem(
                        ErrorCode::InvalidArguments,
                        format!("malformed percent-encoding in the query: {text:?}"),
                    ));
                };
                out.push(byte);
                at += 2;
            }
            byte => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8(out)
        .map_err(|_| problem(ErrorCode::InvalidArguments, "the query is not UTF-8"))
}

/// A listing's page from its query: `prefix`, `after` and `limit`, nothing else.
pub(crate) struct PageQuery {
    pub(crate) prefix: String,
    pub(crate) after: String,
    pub(crate) limit: u32,
}

pub(crate) fn page_query(query: Option<&str>) -> Result<PageQuery, Problem> {
    let mut page = PageQuery { prefix: String::new(), after: String::new(), limit: 0 };
    for (name, value) in query_pairs(query)? {
        match name.as_str() {
            "prefix" => page.prefix = value,
            "after" => page.after = value,
            "limit" => {
                page.limit = value.parse().map_err(|_| {
                    problem(
                        ErrorCode::InvalidArguments,
                        format!("limit is a number, not {value:?}"),
                    )
                })?;
            }
            other => {
                return Err(problem(
                    ErrorCode::InvalidArguments,
                    format!(
                        "unknown query parameter {other:?} (prefix, after and limit are known)"
                    ),
                ));
            }
        }
    }
    Ok(page)
}

/// What the query says about an invocation.
struct Invocation {
    call: bool,
    timeout_ms: u64,
}

fn invocation(pairs: &[(String, String)], default_call: bool) -> Result<Invocation, Problem> {
    let mut call = default_call;
    let mut timeout_ms = 0;
    for (key, value) in pairs {
        match key.as_str() {
            "invocation" => {
                call = match value.as_str() {
                    "call" | "ask" => true,
                    "tell" | "cast" => false,
                    other => {
                        return Err(problem(
                            ErrorCode::InvalidArguments,
                            format!("invocation must be call or tell, not {other:?}"),
                        ));
                    }
                }
            }
            "timeout_ms" => {
                timeout_ms = value.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                    problem(
                        ErrorCode::InvalidArguments,
                        format!("timeout_ms must be a positive integer, not {value:?}"),
                    )
                })?;
            }
            _ => {}
        }
    }
    Ok(Invocation { call, timeout_ms })
}

fn address(
    tenant: String,
    namespace: String,
    actor_type: String,
    actor_id: String,
) -> pb::ActorAddress {
    pb::ActorAddress { tenant, namespace, actor_type, actor_id }
}

/// `POST /api/v1/actors/{tenant}/{namespace}/{actor_type}[/{actor_id}]`: a tell, or a call
/// with `?invocation=call`.
async fn post_invoke(
    api: Api,
    actor: pb::ActorAddress,
    request: Request,
) -> Result<Response, Problem> {
    let (mut parts, body) = request.into_parts();
    let body = body_bytes(&api, &mut parts, body).await?;
    let headers = &parts.headers;
    let query = parts.uri.query();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("invalid").to_owned())
        .unwrap_or_else(|| JSON.to_owned());
    if !is_json(&content_type) {
        return Err(problem(
            ErrorCode::UnsupportedMediaType,
            format!("invoke takes JSON (Content-Type: application/json), not {content_type:?}"),
        ));
    }
    let pairs = query_pairs(query)?;
    let invocation = invocation(&pairs, false)?;
    let idempotency_key = idempotency_key(headers)?;
    let request = pb::InvokeRequest {
        actor: Some(actor),
        payload: body.to_vec(),
        content_type,
        mode: if invocation.call { pb::InvocationMode::Call } else { pb::InvocationMode::Tell }
            as i32,
        timeout_ms: invocation.timeout_ms,
        idempotency_key,
        action: String::new(),
    };
    respond(api.invoke(request).await?, invocation.call)
}

/// The `Idempotency-Key` header: visible ASCII, at most 256 bytes (empty when absent).
fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(String::new()) };
    let bytes = value.as_bytes();
    if bytes.len() > 256 || !bytes.iter().all(|byte| (0x21..=0x7e).contains(byte)) {
        return Err(problem(
            ErrorCode::InvalidArguments,
            "the Idempotency-Key header must be at most 256 visible ASCII characters",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// `GET /api/v1/actors/{tenant}/{namespace}/{actor_type}[/{actor_id}]`: a call whose payload is
/// the query; values that parse as JSON numbers, booleans, null, arrays or objects are decoded.
async fn get_invoke(
    api: Api,
    actor: pb::ActorAddress,
    query: Option<&str>,
) -> Result<Response, Problem> {
    let pairs = query_pairs(query)?;
    let invocation = invocation(&pairs, true)?;
    let mut payload = Map::new();
    for (key, value) in pairs {
        match key.as_str() {
            "invocation" | "timeout_ms" => {}
            // The action is a name, never decoded as JSON.
            "action" => {
                payload.insert(key, Value::String(value));
            }
            _ => {
                payload.insert(key, query_value(value));
            }
        }
    }
    let request = pb::InvokeRequest {
        actor: Some(actor),
        payload: Value::Object(payload).to_string().into_bytes(),
        content_type: JSON.to_owned(),
        mode: if invocation.call { pb::InvocationMode::Call } else { pb::InvocationMode::Tell }
            as i32,
        timeout_ms: invocation.timeout_ms,
        idempotency_key: String::new(),
        action: String::new(),
    };
    respond(api.invoke(request).await?, invocation.call)
}

/// A query value: JSON when it parses as a number, boolean, null, array or object; a string
/// otherwise.
fn query_value(value: String) -> Value {
    match serde_json::from_str::<Value>(&value) {
        Ok(parsed) if !parsed.is_string() => parsed,
        _ => Value::String(value),
    }
}

fn respond(response: pb::InvokeResponse, call: bool) -> Result<Response, Problem> {
    if call {
        let mut reply = (StatusCode::OK, response.payload).into_response();
        reply.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        return Ok(reply);
    }
    let body = json!({ "message_id": response.message_id, "duplicate": response.duplicate });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

type Path3 = Segments<(String, String, String)>;
type Path4 = Segments<(String, String, String, String)>;

/// Path segments; a path that does not decode is `invalid_arguments`.
pub(crate) struct Segments<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(segments)) => Ok(Segments(segments)),
            Err(rejection) => Err(problem(ErrorCode::InvalidArguments, rejection.body_text())),
        }
    }
}

/// The invoke port's routes.
pub(crate) fn invoke_router(api: Api) -> Router {
    let limit = api.options().max_body_bytes;
    Router::new()
        .route(
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}",
            post(|State(api): State<Api>, path: Path3, request: Request| async move {
                let Segments((tenant, namespace, actor_type)) = path;
                post_invoke(api, address(tenant, namespace, actor_type, String::new()), request)
                    .await
            })
            .get(
                |State(api): State<Api>, path: Path3, RawQuery(query): RawQuery| async move {
                    let Segments((tenant, namespace, actor_type)) = path;
                    get_invoke(
                        api,
                        address(tenant, namespace, actor_type, String::new()),
                        query.as_deref(),
                    )
                    .await
                },
            ),
        )
        .route(
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}/{actor_id}",
            post(|State(api): State<Api>, path: Path4, request: Request| async move {
                let Segments((tenant, namespace, actor_type, actor_id)) = path;
                post_invoke(api, address(tenant, namespace, actor_type, actor_id), request).await
            })
            .get(
                |State(api): State<Api>, path: Path4, RawQuery(query): RawQuery| async move {
                    let Segments((tenant, namespace, actor_type, actor_id)) = path;
                    get_invoke(
                        api,
                        address(tenant, namespace, actor_type, actor_id),
                        query.as_deref(),
                    )
                    .await
                },
            ),
        )
        .route(
            "/api/v1/openapi.json",
            get(|State(api): State<Api>| async move {
                Json(openapi::invoke(&api.type_names(), api.options().max_ask_timeout_ms))
            }),
        )
        .merge(crate::http_coordination::routes())
        .merge(crate::http_channels::routes())
        .merge(crate::http_service_registry::routes())
        .merge(crate::http_blobs::routes())
        .merge(crate::http_pools::invoke_routes())
        .merge(health_routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}

/// The admin port's routes.
pub(crate) fn admin_router(api: Api) -> Router {
    let limit = api.options().max_body_bytes;
    Router::new()
        .route("/api/v1/types", get(|State(api): State<Api>| async move { Json(types_json(&api.list_actor_types())) }))
        .route(
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}",
            get(|State(api): State<Api>, path: Path3| async move {
                let Segments((tenant, namespace, actor_type)) = path;
                let actors = api.list_actors(&pb::ListActorsRequest { tenant, namespace, actor_type })?;
                let actors: Vec<Value> = actors
                    .actors
                    .into_iter()
                    .map(|actor| json!({"actor_id": actor.actor_id, "lifecycle": actor.lifecycle, "mailbox_depth": actor.mailbox_depth}))
                    .collect();
                Ok::<_, Problem>(Json(json!({ "actors": actors })))
            }),
        )
        .route(
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}/{actor_id}",
            axum::routing::delete(|State(api): State<Api>, path: Path4| async move {
                let Segments((tenant, namespace, actor_type, actor_id)) = path;
                let actor = Some(address(tenant, namespace, actor_type, actor_id));
                api.delete_actor(&pb::DeleteActorRequest { actor }).await?;
                Ok::<_, Problem>(StatusCode::NO_CONTENT)
            }),
        )
        .route(
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}/{actor_id}/state",
            get(|State(api): State<Api>, path: Path4| async move {
                let Segments((tenant, namespace, actor_type, actor_id)) = path;
                let actor = Some(address(tenant, namespace, actor_type, actor_id));
                let state = api.get_actor_state(&pb::GetActorStateRequest { actor }).await?;
                let mut response = (StatusCode::OK, state.state).into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
                Ok::<_, Problem>(response)
            }),
        )
        .route("/api/v1/status", get(|State(api): State<Api>| async move { Json(status_json(&api.status())) }))
        .route(
            "/metrics",
            get(|State(api): State<Api>| async move {
                let mut response = (StatusCode::OK, api.render_metrics()).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }),
        )
        .route(
            "/api/v1/openapi.json",
            get(|State(api): State<Api>| async move { Json(openapi::admin(&api.type_names())) }),
        )
        .merge(crate::http_deploy::routes())
        .merge(crate::http_pools::admin_routes())
        .merge(health_routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}

fn types_json(types: &pb::ListActorTypesResponse) -> Value {
    let types: Vec<Value> = types
        .types
        .iter()
        .map(|info| json!({"name": info.name, "behavior": info.behavior, "facets": info.facets}))
        .collect();
    json!({ "types": types })
}

pub(crate) fn status_json(status: &pb::GetStatusResponse) -> Value {
    let listeners: Map<String, Value> = status
        .listeners
        .iter()
        .map(|listener| (listener.name.clone(), Value::String(listener.address.clone())))
        .collect();
    let by_lifecycle: Map<String, Value> = status
        .actors_by_lifecycle
        .iter()
        .map(|count| (count.lifecycle.clone(), json!(count.actors)))
        .collect();
    json!({
        "version": status.version,
        "uptime_ms": status.uptime_ms,
        "listeners": listeners,
        "actors": status.actors,
        "actors_by_lifecycle": by_lifecycle,
        "actor_types": status.actor_types,
        "data_dir": status.data_dir,
    })
}

fn health_routes() -> Router<Api> {
    Router::new().route("/healthz", get(|| async { Json(json!({"status": "ok"})) })).route(
        "/readyz",
        get(|State(api): State<Api>| async move {
            if api.system().is_shutting_down() {
                return Err(problem(ErrorCode::Unavailable, "the node is shutting down"));
            }
            Ok(Json(json!({"status": "ready"})))
        }),
    )
}

/// The layers every router shares: metrics, the body limit, the token; and the fallbacks, so
/// unknown routes and methods answer in the catalogue.
pub(crate) fn finish(
    router: Router,
    api: &Api,
    port: &'static str,
    token: Option<std::sync::Arc<str>>,
) -> Router {
    let shared = std::sync::Arc::new(crate::gate::Gate {
        api: api.clone(),
        port,
        token,
        limit: api.options().max_body_bytes,
        module_limit: api.options().max_module_bytes,
        body_timeout: Duration::from_millis(api.options().body_timeout_ms),
    });
    router
        .fallback(|| async {
            problem(ErrorCode::NotFound, "no such route; see /api/v1/openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            problem(
                ErrorCode::MethodNotAllowed,
                "this route does not take this method; see /api/v1/openapi.json",
            )
        })
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            crate::gate::gate(std::sync::Arc::clone(&shared), request, next)
        }))
}
