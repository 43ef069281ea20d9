//! Blobs over HTTP (invoke port). Bodies stream both ways: the gate leaves a blob upload's
//! body to its route, which writes it as it comes.
//!
//! - `GET /api/v1/blobs/{tenant}/{namespace}?prefix=&after=&limit=`: a page of blobs
//! - `PUT /api/v1/blobs/{tenant}/{namespace}/{key...}`: the body is the blob, its
//!   `Content-Type` the blob's; `GET` (and `HEAD`) streams it back, `DELETE` removes it
//! - `POST /api/v1/blob-urls/{tenant}/{namespace}` with `{"key", "method", "ttl_ms"}`: a
//!   presigned URL
//! - `GET`, `HEAD`, `PUT /api/v1/presigned/{tenant}/{namespace}/{key...}?expires=&signature=`:
//!   what a presigned URL allows, with no other credential

use axum::{
    Json, Router,
    body::Body,
    extract::{RawQuery, Request, State},
    http::{HeaderValue, Method as HttpMethod, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use futures_util::TryStreamExt as _;
use plexspaces_proto::v1 as pb;
use plexspaces_storage::{blobs::BlobInfo, presign::Method};
use plexspaces_types::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Api, Error,
    blobs_api::{Stopped, info},
    coordination::Scoped,
    http::{Problem, Segments, page_query, problem, query_pairs},
    http_coordination::body,
};

/// A blob's route: its body is streamed by the route, not read by the gate.
pub(crate) const BLOB_PATH: &str = "/api/v1/blobs/{tenant}/{namespace}/{*key}";

/// The presigned route: its signature is its credential, and a `PUT`'s body is streamed.
pub(crate) const PRESIGNED_PATH: &str = "/api/v1/presigned/{tenant}/{namespace}/{*key}";

type ScopePath = Segments<(String, String)>;
type KeyPath = Segments<(String, String, String)>;

fn scope(tenant: String, namespace: String) -> Option<pb::Scope> {
    Some(pb::Scope { tenant, namespace })
}

pub(crate) fn info_json(info: &pb::BlobInfo) -> Value {
    json!({
        "key": info.key,
        "size": info.size,
        "content_type": info.content_type,
        "modified_at_ms": info.modified_at_ms,
        "etag": info.etag,
    })
}

fn scoped(tenant: String, namespace: String) -> Result<Scoped, Problem> {
    Ok(Scoped::of(scope(tenant, namespace).as_ref())?)
}

/// The response to a read of a blob: its bytes as they are read (none for `HEAD`).
fn blob_response(
    found: BlobInfo,
    bytes: Option<plexspaces_storage::blobs::ByteStream>,
) -> Response {
    let body = match bytes {
        Some(bytes) => Body::from_stream(bytes.map_err(|error| Error::from(error).message)),
        None => Body::empty(),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&found.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(found.size));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", found.etag)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(modified) = HeaderValue::from_str(&found.modified_at_ms.to_string()) {
        headers.insert("x-plexspaces-modified-at-ms", modified);
    }
    response
}

/// The response to a stopped upload; the rest of a body too large or too slow is not read,
/// so the connection cannot carry another request.
fn stopped(stopped: Stopped) -> Response {
    let close = matches!(stopped, Stopped::TooLarge(_) | Stopped::Slow(_));
    let mut response = Problem(Error::from(stopped)).into_response();
    if close {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Writes the body of `request` as the blob `key`.
async fn store(api: &Api, scope: &Scoped, key: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let limit = api.options().max_blob_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return stopped(Stopped::TooLarge(limit));
    }
    let content_type = match parts.headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        None => "",
        Some(Ok(content_type)) => content_type,
        Some(Err(_)) => {
            return problem(ErrorCode::InvalidArguments, "the Content-Type is not text")
                .into_response();
        }
    };
    match api.blob_store_stream(scope, key, content_type, body.into_data_stream()).await {
        Ok(stored) => (StatusCode::CREATED, Json(info_json(&info(stored)))).into_response(),
        Err(reason) => stopped(reason),
    }
}

async fn read(api: &Api, scope: &Scoped, key: &str, head: bool) -> Result<Response, Problem> {
    if head {
        let found = api.services().blobs.head(scope.pair(), key).await.map_err(Error::from)?;
        let found = found
            .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("there is no blob {key:?}")))?;
        return Ok(blob_response(found, None));
    }
    let (found, bytes) = api.blob_get(scope, key).await?;
    Ok(blob_response(found, Some(bytes)))
}

async fn list(api: Api, path: ScopePath, query: Option<String>) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let page = page_query(query.as_deref())?;
    let request = pb::BlobListRequest {
        scope: scope(tenant, namespace),
        prefix: page.prefix,
        after: page.after,
        limit: page.limit,
    };
    let listed = api.blob_list(request).await?;
    let blobs: Vec<Value> = listed.blobs.iter().map(info_json).collect();
    let next_after = (!listed.next_after.is_empty()).then_some(listed.next_after);
    Ok(Json(json!({"blobs": blobs, "next_after": next_after})).into_response())
}

/// A blob's `GET` (and `HEAD`, which axum routes here too), `PUT` and `DELETE`.
async fn blob(api: Api, path: KeyPath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, key)) = path;
    if request.method() == HttpMethod::DELETE {
        let request = pb::BlobRef { scope: scope(tenant, namespace), key };
        let deleted = api.blob_delete(request).await?.deleted;
        return Ok(Json(json!({"deleted": deleted})).into_response());
    }
    let scope = scoped(tenant, namespace)?;
    match *request.method() {
        HttpMethod::PUT => Ok(store(&api, &scope, &key, request).await),
        HttpMethod::HEAD => read(&api, &scope, &key, true).await,
        _ => read(&api, &scope, &key, false).await,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Presign {
    key: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    ttl_ms: u64,
}

async fn presign(api: Api, path: ScopePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let presign: Presign = body(&api, request).await?;
    let method = if presign.method.is_empty() { "GET".to_owned() } else { presign.method };
    let signed = api
        .blob_presign(pb::BlobPresignRequest {
            scope: scope(tenant, namespace),
            key: presign.key,
            method,
            ttl_ms: presign.ttl_ms,
        })
        .await?;
    let answer =
        json!({"url": signed.url, "path": signed.path, "expires_at_ms": signed.expires_at_ms});
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn presigned(
    api: Api,
    path: KeyPath,
    query: Option<String>,
    request: Request,
) -> Result<Response, Problem> {
    let Segments((tenant, namespace, key)) = path;
    let scope = scoped(tenant, namespace)?;
    let (mut expires, mut signature) = (String::new(), String::new());
    for (name, value) in query_pairs(query.as_deref())? {
        match name.as_str() {
            "expires" => expires = value,
            "signature" => signature = value,
            _ => {}
        }
    }
    let method = if request.method() == HttpMethod::PUT { Method::Put } else { Method::Get };
    api.blob_check_presigned(method, &scope, &key, &expires, &signature)?;
    match *request.method() {
        HttpMethod::PUT => Ok(store(&api, &scope, &key, request).await),
        HttpMethod::HEAD => read(&api, &scope, &key, true).await,
        _ => read(&api, &scope, &key, false).await,
    }
}

/// The routes, for the invoke port's router.
pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route(
            "/api/v1/blobs/{tenant}/{namespace}",
            get(|State(api): State<Api>, path: ScopePath, RawQuery(query): RawQuery| {
                list(api, path, query)
            }),
        )
        .route(
            BLOB_PATH,
            get(|State(api): State<Api>, path: KeyPath, request: Request| blob(api, path, request))
                .put(|State(api): State<Api>, path: KeyPath, request: Request| {
                    blob(api, path, request)
                })
                .delete(|State(api): State<Api>, path: KeyPath, request: Request| {
                    blob(api, path, request)
                }),
        )
        .route(
            "/api/v1/blob-urls/{tenant}/{namespace}",
            post(|State(api): State<Api>, path: ScopePath, request: Request| {
                presign(api, path, request)
            }),
        )
        .route(
            PRESIGNED_PATH,
            get(
                |State(api): State<Api>,
                 path: KeyPath,
                 RawQuery(query): RawQuery,
                 request: Request| presigned(api, path, query, request),
            )
            .put(
                |State(api): State<Api>,
                 path: KeyPath,
                 RawQuery(query): RawQuery,
                 request: Request| presigned(api, path, query, request),
            ),
        )
}
