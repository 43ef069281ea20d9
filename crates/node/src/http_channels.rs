//! Channels over HTTP (invoke port): each route builds the request of the matching gRPC method
//! of `ChannelService` and calls the same [`Api`] method.
//!
//! - `GET /api/v1/channels/{tenant}/{namespace}`: every channel with its queues and consumers
//! - `PUT /api/v1/channels/{tenant}/{namespace}/{name}` with `{"kind", "capacity",
//!   "visibility_timeout_ms"}` (each optional: a queue of 10000 with 30 s), `GET` and `DELETE`
//! - `POST .../{name}/send` with `{"data", "timeout_ms"}`; `.../receive` with
//!   `{"subscription", "max", "timeout_ms", "visibility_timeout_ms"}`; `.../ack` with
//!   `{"receipt"}`; `.../nack` with `{"receipt", "delay_ms"}`; `.../subscribe` and
//!   `.../unsubscribe` with `{"subscription"}`; `.../consume` with `{"actor", "action",
//!   "subscription"}`; `.../stop-consuming` with `{"actor"}`; `.../close` with `{}`

use axum::{
    Json, Router,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use plexspaces_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Api,
    http::{Problem, Segments},
    http_coordination::body,
};

type ScopePath = Segments<(String, String)>;
type NamePath = Segments<(String, String, String)>;

fn scope(tenant: String, namespace: String) -> Option<pb::Scope> {
    Some(pb::Scope { tenant, namespace })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    capacity: u32,
    #[serde(default)]
    visibility_timeout_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    data: Value,
    #[serde(default)]
    timeout_ms: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Receive {
    #[serde(default)]
    subscription: String,
    #[serde(default)]
    max: u32,
    #[serde(default)]
    timeout_ms: u32,
    #[serde(default)]
    visibility_timeout_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settle {
    receipt: String,
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    subscription: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Consume {
    actor: String,
    action: String,
    #[serde(default)]
    subscription: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopConsuming {
    actor: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// The `POST` operations on a channel, by the last segment of their route.
#[derive(Clone, Copy)]
enum Operation {
    Close,
    Send,
    Receive,
    Ack,
    Nack,
    Subscribe,
    Unsubscribe,
    Consume,
    StopConsuming,
}

fn info_json(info: pb::ChannelInfo) -> Value {
    let config = info.config.unwrap_or_default();
    let queues: Vec<Value> = info
        .queues
        .into_iter()
        .map(|queue| {
            json!({
                "subscription": (!queue.subscription.is_empty()).then_some(queue.subscription),
                "ready": queue.ready,
                "in_flight": queue.in_flight,
                "acked": queue.acked,
                "redelivered": queue.redelivered,
            })
        })
        .collect();
    let consumers: Vec<Value> = info
        .consumers
        .into_iter()
        .map(|consumer| {
            json!({
                "actor": consumer.actor,
                "action": consumer.action,
                "subscription": (!consumer.subscription.is_empty()).then_some(consumer.subscription),
            })
        })
        .collect();
    json!({
        "name": info.name,
        "kind": config.kind,
        "capacity": config.capacity,
        "visibility_timeout_ms": config.visibility_timeout_ms,
        "closed": info.closed,
        "sent": info.sent,
        "queues": queues,
        "consumers": consumers,
    })
}

async fn list(api: Api, path: ScopePath) -> Result<Response, Problem> {
    let Segments((tenant, namespace)) = path;
    let listed =
        api.channel_list(pb::ChannelListRequest { scope: scope(tenant, namespace) }).await?;
    let channels: Vec<Value> = listed.channels.into_iter().map(info_json).collect();
    Ok(Json(json!({"channels": channels})).into_response())
}

async fn create(api: Api, path: NamePath, request: Request) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let create: Create = body(&api, request).await?;
    let request = pb::ChannelCreateRequest {
        scope: scope(tenant, namespace),
        name,
        config: Some(pb::ChannelConfig {
            kind: create.kind,
            capacity: create.capacity,
            visibility_timeout_ms: create.visibility_timeout_ms,
        }),
    };
    let created = api.channel_create(request).await?.created;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"created": created}))).into_response())
}

async fn get_channel(api: Api, path: NamePath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let info = api.channel_get(pb::ChannelRef { scope: scope(tenant, namespace), name }).await?;
    Ok(Json(info_json(info)).into_response())
}

async fn delete(api: Api, path: NamePath) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let deleted =
        api.channel_delete(pb::ChannelRef { scope: scope(tenant, namespace), name }).await?;
    Ok(Json(json!({"deleted": deleted.deleted})).into_response())
}

async fn post_operation(
    api: Api,
    path: NamePath,
    request: Request,
    operation: Operation,
) -> Result<Response, Problem> {
    let Segments((tenant, namespace, name)) = path;
    let scope = scope(tenant, namespace);
    let answer = match operation {
        Operation::Close => {
            let Empty {} = body(&api, request).await?;
            json!({"closed": api.channel_close(pb::ChannelRef { scope, name }).await?.closed})
        }
        Operation::Send => {
            let send: Send = body(&api, request).await?;
            let request = pb::ChannelSendRequest {
                scope,
                name,
                data_json: send.data.to_string(),
                timeout_ms: send.timeout_ms,
            };
            json!({"queued": api.channel_send(request).await?.queued})
        }
        Operation::Receive => {
            let receive: Receive = body(&api, request).await?;
            let request = pb::ChannelReceiveRequest {
                scope,
                name,
                subscription: receive.subscription,
                max: receive.max,
                timeout_ms: receive.timeout_ms,
                visibility_timeout_ms: receive.visibility_timeout_ms,
            };
            let deliveries: Vec<Value> = api
                .channel_receive(request)
                .await?
                .deliveries
                .into_iter()
                .map(|delivery| {
                    // Checked JSON when it was sent.
                    let data: Value =
                        serde_json::from_str(&delivery.data_json).unwrap_or(Value::Null);
                    json!({
                        "receipt": delivery.receipt,
                        "data": data,
                        "attempt": delivery.attempt,
                        "sent_at_ms": delivery.sent_at_ms,
                    })
                })
                .collect();
            json!({"deliveries": deliveries})
        }
        Operation::Ack | Operation::Nack => {
            let settle: Settle = body(&api, request).await?;
            let ack = matches!(operation, Operation::Ack);
            let request = pb::ChannelAckRequest {
                scope,
                name,
                receipt: settle.receipt,
                delay_ms: settle.delay_ms,
            };
            let done = api.channel_ack(request, ack).await?.done;
            if ack { json!({"acked": done}) } else { json!({"nacked": done}) }
        }
        Operation::Subscribe | Operation::Unsubscribe => {
            let subscription: Subscription = body(&api, request).await?;
            let subscribe = matches!(operation, Operation::Subscribe);
            let request = pb::ChannelSubscribeRequest {
                scope,
                topic: name,
                subscription: subscription.subscription,
            };
            let changed = api.channel_subscribe(request, subscribe).await?.changed;
            if subscribe {
                json!({"subscribed": changed})
            } else {
                json!({"unsubscribed": changed})
            }
        }
        Operation::Consume => {
            let consume: Consume = body(&api, request).await?;
            let request = pb::ChannelConsumeRequest {
                scope,
                name,
                subscription: consume.subscription,
                actor: consume.actor,
                action: consume.action,
            };
            json!({"added": api.channel_consume(request).await?.added})
        }
        Operation::StopConsuming => {
            let stop: StopConsuming = body(&api, request).await?;
            let request = pb::ChannelStopConsumingRequest { scope, name, actor: stop.actor };
            json!({"removed": api.channel_stop_consuming(request).await?.removed})
        }
    };
    Ok(Json(answer).into_response())
}

/// The routes, for the invoke port's router.
pub(crate) fn routes() -> Router<Api> {
    let mut router = Router::new()
        .route(
            "/api/v1/channels/{tenant}/{namespace}",
            get(|State(api): State<Api>, path: ScopePath| list(api, path)),
        )
        .route(
            "/api/v1/channels/{tenant}/{namespace}/{name}",
            get(|State(api): State<Api>, path: NamePath| get_channel(api, path))
                .put(|State(api): State<Api>, path: NamePath, request: Request| {
                    create(api, path, request)
                })
                .delete(|State(api): State<Api>, path: NamePath| delete(api, path)),
        );
    for (segment, operation) in [
        ("close", Operation::Close),
        ("send", Operation::Send),
        ("receive", Operation::Receive),
        ("ack", Operation::Ack),
        ("nack", Operation::Nack),
        ("subscribe", Operation::Subscribe),
        ("unsubscribe", Operation::Unsubscribe),
        ("consume", Operation::Consume),
        ("stop-consuming", Operation::StopConsuming),
    ] {
        router = router.route(
            &format!("/api/v1/channels/{{tenant}}/{{namespace}}/{{name}}/{segment}"),
            post(move |State(api): State<Api>, path: NamePath, request: Request| {
                post_operation(api, path, request, operation)
            }),
        );
    }
    router
}
