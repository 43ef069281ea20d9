//! The admin port's deployment routes: `POST /api/v1/deploy` (multipart), the deployments,
//! and each deployed type's logs (followed as NDJSON).

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{RawQuery, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use plexspaces_proto::v1 as pb;
use plexspaces_types::ErrorCode;
use serde_json::{Value, json};

use crate::{
    Api,
    deploy_api::{Job, followed},
    http::{Problem, ReadBody, Segments, problem, query_pairs},
};

/// The path whose body may be as large as a module.
pub(crate) const DEPLOY_PATH: &str = "/api/v1/deploy";

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route(DEPLOY_PATH, post(deploy))
        .route("/api/v1/deploy/jobs/{job}", get(job))
        .route("/api/v1/deployments", get(list))
        .route("/api/v1/deployments/{name}", get(inspect).delete(undeploy))
        .route("/api/v1/deployments/{name}/logs", get(logs))
}

fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
}

async fn deploy(State(api): State<Api>, request: Request) -> Result<Response, Problem> {
    let (mut parts, _empty) = request.into_parts();
    let Some(ReadBody(body)) = parts.extensions.remove::<ReadBody>() else {
        return Err(problem(ErrorCode::Internal, "the request body was not read"));
    };
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        problem(
            ErrorCode::UnsupportedMediaType,
            "deploy takes multipart/form-data with the fields namespace, actor_type and wasm \
             (and optionally tenant, version, config)",
        )
    })?;
    let (spec, wasm) = read_form(body, boundary).await?;
    let pairs = query_pairs(parts.uri.query())?;
    if matches!(query_value(&pairs, "async"), "true" | "1") {
        let id = api.deploy_later(spec, wasm)?;
        let status_url = format!("/api/v1/deploy/jobs/{id}");
        let mut response = (
            StatusCode::ACCEPTED,
            Json(json!({"job": id, "status": "compiling", "status_url": status_url})),
        )
            .into_response();
        if let Ok(location) = HeaderValue::from_str(&status_url) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return Ok(response);
    }
    let deployed = api.deploy(spec, wasm).await?;
    Ok((StatusCode::CREATED, Json(deployment_json(&deployed.deployment.unwrap_or_default())))
        .into_response())
}

async fn read_form(body: Bytes, boundary: String) -> Result<(pb::DeploySpec, Bytes), Problem> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut spec = pb::DeploySpec::default();
    let mut wasm = None;
    let malformed = |error: multer::Error| {
        problem(ErrorCode::InvalidArguments, format!("the multipart body is malformed: {error}"))
    };
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_owned();
        let bytes = field.bytes().await.map_err(malformed)?;
        let text = || {
            String::from_utf8(bytes.to_vec()).map(|text| text.trim().to_owned()).map_err(|_| {
                problem(ErrorCode::InvalidArguments, format!("the field {name} is not UTF-8"))
            })
        };
        match name.as_str() {
            "tenant" => spec.tenant = text()?,
            "namespace" => spec.namespace = text()?,
            "actor_type" => spec.actor_type = text()?,
            "version" => spec.version = text()?,
            "config" => spec.config = bytes.to_vec(),
            "wasm" => wasm = Some(bytes),
            other => {
                return Err(problem(
                    ErrorCode::InvalidArguments,
                    format!(
                        "unknown field {other:?}: deploy takes tenant, namespace, actor_type, \
                         version, config and wasm"
                    ),
                ));
            }
        }
    }
    let Some(wasm) = wasm else {
        return Err(problem(
            ErrorCode::InvalidArguments,
            "the form has no wasm field (-F wasm=@file.wasm)",
        ));
    };
    if spec.namespace.is_empty() {
        return Err(problem(ErrorCode::InvalidArguments, "the form has no namespace field"));
    }
    Ok((spec, wasm))
}

async fn job(
    State(api): State<Api>,
    Segments((id,)): Segments<(String,)>,
) -> Result<Response, Problem> {
    let body = match api.deploy_job(&id)? {
        Job::Running { key } => {
            json!({"job": id, "status": "compiling", "tenant": key.0, "namespace": key.1, "name": key.2})
        }
        Job::Done(info) => {
            json!({"job": id, "status": "ready", "deployment": deployment_json(&info)})
        }
        Job::Failed(error) => json!({"job": id, "status": "failed", "error": error.problem()}),
    };
    Ok(Json(body).into_response())
}

fn reference(name: String, pairs: &[(String, String)]) -> pb::DeploymentRef {
    pb::DeploymentRef {
        tenant: query_value(pairs, "tenant").to_owned(),
        namespace: query_value(pairs, "namespace").to_owned(),
        name,
    }
}

async fn list(State(api): State<Api>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let pairs = query_pairs(query.as_deref())?;
    let request = pb::ListDeploymentsRequest {
        tenant: query_value(&pairs, "tenant").to_owned(),
        namespace: query_value(&pairs, "namespace").to_owned(),
    };
    let deployments: Vec<Value> =
        api.list_deployments(&request)?.deployments.iter().map(deployment_json).collect();
    Ok(Json(json!({ "deployments": deployments })).into_response())
}

async fn inspect(
    State(api): State<Api>,
    Segments((name,)): Segments<(String,)>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let pairs = query_pairs(query.as_deref())?;
    let deployed = api.get_deployment(&reference(name, &pairs))?;
    Ok(Json(deployment_json(&deployed.deployment.unwrap_or_default())).into_response())
}

async fn undeploy(
    State(api): State<Api>,
    Segments((name,)): Segments<(String,)>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let pairs = query_pairs(query.as_deref())?;
    api.undeploy(&reference(name, &pairs)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/deployments/{type}/logs?tenant=&namespace=&id=&follow=true`: JSON lines;
/// with `follow` the response stays open and streams new lines.
async fn logs(
    State(api): State<Api>,
    Segments((actor_type,)): Segments<(String,)>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let pairs = query_pairs(query.as_deref())?;
    let request = pb::GetLogsRequest {
        tenant: query_value(&pairs, "tenant").to_owned(),
        namespace: query_value(&pairs, "namespace").to_owned(),
        actor_type,
        actor_id: query_value(&pairs, "id").to_owned(),
        follow: matches!(query_value(&pairs, "follow"), "true" | "1"),
    };
    let (lines, receiver) = api.logs(&request)?;
    let stream = followed(lines, receiver, request.actor_id);
    let body = futures_util::StreamExt::map(stream, |line| {
        let mut text = log_json(&line).to_string();
        text.push('\n');
        Ok::<Bytes, std::convert::Infallible>(Bytes::from(text))
    });
    let mut response = Response::new(Body::from_stream(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

fn log_json(line: &pb::LogLine) -> Value {
    json!({
        "seq": line.seq, "time_ms": line.time_ms, "level": line.level,
        "stream": line.stream, "id": line.actor_id, "message": line.message,
    })
}

pub(crate) fn deployment_json(info: &pb::DeploymentInfo) -> Value {
    let types: Vec<Value> = info
        .types
        .iter()
        .map(|ty| {
            json!({
                "name": ty.name, "class": ty.class_name, "behavior": ty.behavior,
                "facets": ty.facets, "handlers": ty.handlers, "state": ty.state,
            })
        })
        .collect();
    let config: Value = serde_json::from_slice(&info.config).unwrap_or(Value::Null);
    json!({
        "tenant": info.tenant, "namespace": info.namespace, "name": info.name,
        "version": info.version, "sha256": info.sha256, "size_bytes": info.size_bytes,
        "sdk": info.sdk, "types": types, "deployed_at_ms": info.deployed_at_ms,
        "compile_ms": info.compile_ms, "cached": info.cached, "config": config,
        "instances": info.instances, "discarded_instances": info.discarded_instances,
        "pinned_instances": info.pinned_instances,
    })
}
