//! The gate every HTTP request passes on a port: the admin token, the body limit and body
//! timeout, and the request metrics. One middleware, not three: each `from_fn` layer costs a
//! boxed future per request.

use std::time::Duration;

use axum::{
    extract::Request,
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use plexspaces_types::ErrorCode;

use crate::{
    Api,
    http::{ReadBody, problem},
};

/// What every request passes on a port: the token check, the body limit and timeout, and the
/// metrics. One middleware, not three: each `from_fn` layer costs a boxed future per request.
pub(crate) struct Gate {
    pub(crate) api: Api,
    pub(crate) port: &'static str,
    pub(crate) token: Option<std::sync::Arc<str>>,
    pub(crate) limit: usize,
    /// The limit of the deploy route, whose body is a module.
    pub(crate) module_limit: usize,
    pub(crate) body_timeout: Duration,
}

pub(crate) async fn gate(gate: std::sync::Arc<Gate>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<axum::extract::MatchedPath>().cloned();
    let limit = match &route {
        Some(path) if path.as_str() == crate::http_deploy::DEPLOY_PATH => gate.module_limit,
        _ => gate.limit,
    };
    let route_path = route.as_ref().map(axum::extract::MatchedPath::as_str);
    // A presigned URL's signature is its credential; a blob's body is streamed by its route,
    // which bounds its size and the time between its chunks.
    let presigned = route_path == Some(crate::http_blobs::PRESIGNED_PATH);
    let streamed = presigned || route_path == Some(crate::http_blobs::BLOB_PATH);
    let admitted = if streamed {
        match token_refusal(&gate, presigned, &request) {
            Some(refusal) => Err(refusal),
            None => Ok(request),
        }
    } else {
        admit(&gate, limit, request).await
    };
    let response = match admitted {
        Ok(request) => next.run(request).await,
        Err(refused) => refused,
    };
    let route = route.as_ref().map_or("unmatched", |path| path.as_str());
    let status = response.status().as_u16();
    gate.api.metrics().observe_http(gate.port, method.as_str(), route, status, started.elapsed());
    response
}

/// The refusal of a request without the bearer token (unless `exempt`).
fn token_refusal(gate: &Gate, exempt: bool, request: &Request) -> Option<Response> {
    let token = gate.token.as_ref()?;
    if exempt || crate::auth::bearer_matches(request.headers().get(header::AUTHORIZATION), token) {
        return None;
    }
    Some(
        problem(
            ErrorCode::Unauthenticated,
            "this node requires `Authorization: Bearer <admin token>`",
        )
        .into_response(),
    )
}

/// Checks the token, then reads the body within the limit and the body timeout, so a body
/// over the limit is `payload_too_large` on every route, whether its length is declared or it
/// arrives chunked, and whether or not the route reads it.
async fn admit(gate: &Gate, limit: usize, request: Request) -> Result<Request, Response> {
    if let Some(refusal) = token_refusal(gate, false, &request) {
        return Err(refusal);
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let too_large = || {
        let mut response = problem(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than this node accepts ({limit} bytes)"),
        )
        .into_response();
        // The rest of the body is not read: the connection cannot carry another request.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    // Most bodies are complete on arrival: only a body still on its way gets a timer.
    let mut collect = std::pin::pin!(axum::body::to_bytes(body, limit));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(collect.as_mut().poll(cx))).await;
    let read = match first {
        std::task::Poll::Ready(collected) => Ok(collected),
        std::task::Poll::Pending => tokio::time::timeout(gate.body_timeout, collect).await,
    };
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => {
            let over = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if over {
                return Err(too_large());
            }
            return Err(problem(
                ErrorCode::InvalidArguments,
                format!("the request body could not be read: {error}"),
            )
            .into_response());
        }
        Err(_elapsed) => {
            let mut response = problem(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms",
                    gate.body_timeout.as_millis()
                ),
            )
            .into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(response);
        }
    };
    let mut parts = parts;
    parts.extensions.insert(ReadBody(bytes));
    Ok(Request::from_parts(parts, axum::body::Body::empty()))
}
