//! Channels for clients and consumers: HTTP and gRPC reach the same channels, bad requests get
//! their catalogue code, a full channel answers 429 `channel_full`, a consumer actor gets each
//! message (again, when its handler failed), consumers outlive a restart, and a shutdown drains
//! what is ready.

use std::time::Duration;

use plexspaces_node::Options;
use plexspaces_proto::v1::{self as pb, channel_service_client::ChannelServiceClient};
use plexspaces_sdk::prelude::*;
use serde_json::json;

use crate::{TestNode, coordination::send, data_dir, http};

fn post(
    node: &TestNode,
    channel: &str,
    operation: &str,
    body: serde_json::Value,
) -> http::Response {
    let path = format!("/api/v1/channels/acme/shop/{channel}/{operation}");
    send(node, "POST", &path, &body.to_string())
}

fn scope() -> Option<pb::Scope> {
    Some(pb::Scope { tenant: "acme".into(), namespace: "shop".into() })
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Records every channel message it gets; fails each message's first delivery when told to.
#[gen_server_actor]
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Collector {
    seen: Vec<(Value, u64)>,
    fail_first: bool,
}

#[plexspaces_handlers]
impl Collector {
    #[handler("flaky")]
    async fn flaky(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.fail_first = true;
        Ok(json!({}))
    }

    #[handler("job")]
    async fn job(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        let attempt = payload["attempt"].as_u64().unwrap_or(0);
        if self.fail_first && attempt == 1 {
            return Err(BehaviorError::ProcessingError("not on the first try".into()));
        }
        self.seen.push((payload["data"].clone(), attempt));
        Ok(json!({}))
    }

    #[handler("slow_job")]
    async fn slow_job(
        &mut self,
        _ctx: &ActorContext,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        self.seen.push((payload["data"].clone(), payload["attempt"].as_u64().unwrap_or(0)));
        Ok(json!({}))
    }

    #[handler("seen")]
    async fn seen(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!(self.seen))
    }
}

fn with_collector(options: Options) -> TestNode {
    TestNode::start_with(options, |builder| builder.register::<Collector>("collector"))
}

fn seen(node: &TestNode, key: &str) -> Vec<Value> {
    let reply = send(
        node,
        "POST",
        &format!("/api/v1/actors/acme/shop/collector/{key}?invocation=call"),
        r#"{"action":"seen"}"#,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json().as_array().cloned().unwrap()
}

#[test]
fn channels_over_http_and_grpc() {
    let node = TestNode::start(Options::default());
    let path = "/api/v1/channels/acme/shop/jobs";
    let created = send(&node, "PUT", path, r#"{"capacity":2,"visibility_timeout_ms":60000}"#);
    assert_eq!((created.status, created.json()), (201, json!({"created": true})), "{created:?}");
    let again = send(&node, "PUT", path, r#"{"capacity":2,"visibility_timeout_ms":60000}"#);
    assert_eq!((again.status, again.json()), (200, json!({"created": false})));
    let other = send(&node, "PUT", path, r#"{"kind":"topic"}"#);
    assert_eq!((other.status, other.code()), (409, "already_exists".into()), "{other:?}");

    assert_eq!(post(&node, "jobs", "send", json!({"data": {"n": 1}})).json(), json!({"queued": 1}));
    assert_eq!(post(&node, "jobs", "send", json!({"data": [2]})).json(), json!({"queued": 1}));
    let full = post(&node, "jobs", "send", json!({"data": 3}));
    assert_eq!((full.status, full.code()), (429, "channel_full".into()), "{full:?}");
    let info = http::get(node.invoke(), path).json();
    assert_eq!(info["kind"], "queue");
    assert_eq!(info["queues"][0]["ready"], 2, "{info}");

    // gRPC receives what HTTP sent, and HTTP acks what gRPC received.
    let endpoint = format!("http://{}", node.node().grpc_addr());
    let receipts = node.runtime.block_on(async {
        let mut channels = ChannelServiceClient::connect(endpoint.clone()).await.unwrap();
        let got = channels
            .receive(pb::ChannelReceiveRequest {
                scope: scope(),
                name: "jobs".into(),
                max: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let data: Vec<&str> = got.deliveries.iter().map(|d| d.data_json.as_str()).collect();
        assert_eq!(data, [r#"{"n":1}"#, "[2]"]);
        got.deliveries.into_iter().map(|d| d.receipt).collect::<Vec<_>>()
    });
    let acked = post(&node, "jobs", "ack", json!({"receipt": receipts[0]}));
    assert_eq!(acked.json(), json!({"acked": true}), "{acked:?}");
    assert_eq!(post(&node, "jobs", "ack", json!({"receipt": receipts[0]})).json()["acked"], false);
    assert_eq!(post(&node, "jobs", "nack", json!({"receipt": receipts[1]})).json()["nacked"], true);
    let back = post(&node, "jobs", "receive", json!({"max": 5})).json();
    assert_eq!(back["deliveries"][0]["data"], json!([2]), "{back}");
    assert_eq!(back["deliveries"][0]["attempt"], 2);
    let info = http::get(node.invoke(), path).json();
    assert_eq!(info["queues"][0]["redelivered"], 1, "{info}");

    // A topic over HTTP: each subscription gets each message.
    let topic = "/api/v1/channels/acme/shop/news";
    assert_eq!(send(&node, "PUT", topic, r#"{"kind":"topic"}"#).status, 201);
    for sub in ["a", "b"] {
        let subscribed = post(&node, "news", "subscribe", json!({"subscription": sub}));
        assert_eq!(subscribed.json(), json!({"subscribed": true}));
    }
    assert_eq!(post(&node, "news", "send", json!({"data": "hi"})).json(), json!({"queued": 2}));
    for sub in ["a", "b"] {
        let got = post(&node, "news", "receive", json!({"subscription": sub})).json();
        assert_eq!(got["deliveries"][0]["data"], "hi", "{sub}: {got}");
    }
    let listed = http::get(node.invoke(), "/api/v1/channels/acme/shop").json();
    let names: Vec<&str> = listed["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["jobs", "news"]);

    // A receive that waits is woken by a send.
    node.runtime.block_on(async {
        let mut channels = ChannelServiceClient::connect(endpoint).await.unwrap();
        let mut receiver = channels.clone();
        let waiting = tokio::spawn(async move {
            receiver
                .receive(pb::ChannelReceiveRequest {
                    scope: scope(),
                    name: "news".into(),
                    subscription: "a".into(),
                    timeout_ms: 20_000,
                    ..Default::default()
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        channels
            .send(pb::ChannelSendRequest {
                scope: scope(),
                name: "news".into(),
                data_json: "7".into(),
                timeout_ms: 0,
            })
            .await
            .unwrap();
        let woken = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap();
        assert_eq!(woken.unwrap().unwrap().into_inner().deliveries[0].data_json, "7");
        // Errors carry their catalogue code over gRPC too.
        let missing = channels
            .send(pb::ChannelSendRequest {
                scope: scope(),
                name: "nope".into(),
                data_json: "1".into(),
                timeout_ms: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert_eq!(missing.metadata().get("plexspaces-error-code").unwrap(), "not_found");
    });

    assert_eq!(send(&node, "DELETE", path, "").json(), json!({"deleted": true}));
    assert_eq!(http::get(node.invoke(), path).code(), "not_found");
}

#[test]
fn bad_channel_requests_get_their_code() {
    let node = TestNode::start(Options::default());
    let path = "/api/v1/channels/acme/shop/jobs";
    assert_eq!(send(&node, "PUT", path, r#"{"kind":"stack"}"#).code(), "invalid_arguments");
    assert_eq!(send(&node, "PUT", path, r#"{"capacity":0,"extra":1}"#).code(), "invalid_arguments");
    assert_eq!(
        send(&node, "PUT", "/api/v1/channels/acme/shop/a.b!", "{}").code(),
        "invalid_arguments"
    );
    assert_eq!(send(&node, "PUT", path, "{not json").code(), "invalid_json");
    assert_eq!(send(&node, "PUT", path, "{}").status, 201);
    assert_eq!(post(&node, "jobs", "send", json!({})).code(), "invalid_arguments");
    assert_eq!(post(&node, "jobs", "ack", json!({"receipt": "x"})).code(), "invalid_arguments");
    let wait = post(&node, "jobs", "receive", json!({"timeout_ms": 100_000_000}));
    assert_eq!(wait.code(), "invalid_arguments", "{wait:?}");
    assert_eq!(
        post(&node, "jobs", "subscribe", json!({"subscription": "s"})).code(),
        "invalid_arguments"
    );
    let consumer = post(&node, "jobs", "consume", json!({"actor": "nobody/1", "action": "job"}));
    assert_eq!(consumer.code(), "not_found", "{consumer:?}");
    let reserved = post(&node, "jobs", "consume", json!({"actor": "echo/1", "action": "__wake"}));
    assert_eq!(reserved.code(), "invalid_arguments");
    assert_eq!(post(&node, "nope", "receive", json!({})).code(), "not_found");
}

#[test]
fn a_consumer_gets_each_message_and_a_failed_one_again() {
    let node = with_collector(Options::default());
    assert_eq!(send(&node, "PUT", "/api/v1/channels/acme/shop/work", "{}").status, 201);
    let flaky = send(
        &node,
        "POST",
        "/api/v1/actors/acme/shop/collector/c1?invocation=call",
        r#"{"action":"flaky"}"#,
    );
    assert_eq!(flaky.status, 200, "{flaky:?}");
    let added = post(&node, "work", "consume", json!({"actor": "collector/c1", "action": "job"}));
    assert_eq!(added.json(), json!({"added": true}), "{added:?}");
    for n in 0..5 {
        post(&node, "work", "send", json!({"data": n}));
    }
    eventually("every message handled", || seen(&node, "c1").len() == 5);
    let got: Vec<(u64, u64)> = seen(&node, "c1")
        .iter()
        .map(|entry| (entry[0].as_u64().unwrap(), entry[1].as_u64().unwrap()))
        .collect();
    let mut values: Vec<u64> = got.iter().map(|(value, _)| *value).collect();
    values.sort_unstable();
    assert_eq!(values, [0, 1, 2, 3, 4]);
    assert!(got.iter().all(|(_, attempt)| *attempt == 2), "each failed once: {got:?}");
    eventually("every message acknowledged", || {
        http::get(node.invoke(), "/api/v1/channels/acme/shop/work").json()["queues"][0]["acked"]
            == 5
    });
    let info = http::get(node.invoke(), "/api/v1/channels/acme/shop/work").json();
    assert_eq!(info["queues"][0]["redelivered"], 5, "{info}");
    assert_eq!(info["consumers"][0]["actor"], "shop/collector/c1");

    // A topic consumer gets its subscription's messages; stopping ends it.
    assert_eq!(
        send(&node, "PUT", "/api/v1/channels/acme/shop/feed", r#"{"kind":"topic"}"#).status,
        201
    );
    let topic = json!({"actor": "collector/c2", "action": "job", "subscription": "c2"});
    assert_eq!(post(&node, "feed", "consume", topic).json(), json!({"added": true}));
    post(&node, "feed", "send", json!({"data": "x"}));
    eventually("the topic's message handled", || seen(&node, "c2").len() == 1);
    let stopped = post(&node, "feed", "stop-consuming", json!({"actor": "collector/c2"}));
    assert_eq!(stopped.json(), json!({"removed": true}));
    post(&node, "feed", "send", json!({"data": "y"}));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(seen(&node, "c2").len(), 1, "a stopped consumer gets nothing more");
}

#[test]
fn consumers_outlive_a_restart_and_a_shutdown_drains_what_is_ready() {
    let dir = data_dir("channels-restart");
    let _ = std::fs::remove_dir_all(&dir);
    {
        let node = TestNode::start_in(&dir, Options::default(), |builder| {
            builder.register::<Collector>("collector")
        });
        assert_eq!(send(&node, "PUT", "/api/v1/channels/acme/shop/work", "{}").status, 201);
        let consume = json!({"actor": "collector/c1", "action": "slow_job"});
        assert_eq!(post(&node, "work", "consume", consume).json(), json!({"added": true}));
        for n in 0..4 {
            post(&node, "work", "send", json!({"data": n}));
        }
        // Dropped at once: the shutdown lets the consumer finish what is ready.
    }
    let node = TestNode::start_in(&dir, Options::default(), |builder| {
        builder.register::<Collector>("collector")
    });
    let info = http::get(node.invoke(), "/api/v1/channels/acme/shop/work").json();
    let queue = &info["queues"][0];
    assert_eq!(
        (queue["ready"].clone(), queue["in_flight"].clone()),
        (json!(0), json!(0)),
        "{info}"
    );
    assert_eq!(info["consumers"][0]["action"], "slow_job", "{info}");
    // The consumer runs again after the restart.
    post(&node, "work", "send", json!({"data": 99}));
    eventually("the restarted consumer handling a new message", || {
        seen(&node, "c1").iter().any(|entry| entry[0] == 99)
    });
}
