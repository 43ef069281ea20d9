//! The coordination services for clients: HTTP and gRPC reach the same data, a take that
//! waits is woken by a write, an acquire that waits by a release, and bad requests get their
//! catalogue code.

use std::time::Duration;

use plexspaces_node::Options;
use plexspaces_proto::v1::{
    self as pb, kv_service_client::KvServiceClient, lock_service_client::LockServiceClient,
    process_group_service_client::ProcessGroupServiceClient,
    tuple_space_service_client::TupleSpaceServiceClient,
};
use serde_json::json;

use crate::{TestNode, http};

/// A JSON request to the invoke port.
pub(crate) fn send(node: &TestNode, method: &str, path: &str, body: &str) -> http::Response {
    http::request(
        node.invoke(),
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn scope() -> Option<pb::Scope> {
    Some(pb::Scope { tenant: "acme".into(), namespace: "shop".into() })
}

#[test]
fn kv_over_http_and_grpc() {
    let node = TestNode::start(Options::default());
    let put = send(&node, "PUT", "/api/v1/kv/acme/shop/user:1", r#"{"value":"ann"}"#);
    assert_eq!(put.status, 204, "{put:?}");
    send(&node, "PUT", "/api/v1/kv/acme/shop/user:2", r#"{"value":"bob","ttl_ms":600000}"#);
    let got = http::get(node.invoke(), "/api/v1/kv/acme/shop/user:1");
    assert_eq!(got.json(), json!({"key": "user:1", "value": "ann", "expires_at_ms": null}));
    assert_eq!(http::get(node.invoke(), "/api/v1/kv/acme/other/user:1").code(), "not_found");
    let listed = http::get(node.invoke(), "/api/v1/kv/acme/shop?prefix=user:&limit=1").json();
    assert_eq!(listed["entries"][0]["key"], "user:1");
    assert_eq!(listed["next_after"], "user:1");
    let rest = http::get(node.invoke(), "/api/v1/kv/acme/shop?prefix=user:&after=user:1").json();
    assert_eq!(rest["entries"][0]["value"], "bob");
    assert!(rest["entries"][0]["expires_at_ms"].as_u64().unwrap() > 0);
    assert_eq!(rest["next_after"], json!(null));
    let path = "/api/v1/kv/acme/shop/user:1/compare-and-swap";
    assert_eq!(
        send(&node, "POST", path, r#"{"expected":"x","value":"y"}"#).json(),
        json!({"swapped": false})
    );
    assert_eq!(
        send(&node, "POST", path, r#"{"expected":"ann","value":"anne"}"#).json(),
        json!({"swapped": true})
    );

    let endpoint = format!("http://{}", node.node().grpc_addr());
    node.runtime.block_on(async {
        let mut kv = KvServiceClient::connect(endpoint).await.unwrap();
        let request = pb::KvGetRequest {
            scope: Some(pb::Scope { tenant: "acme".into(), namespace: "shop".into() }),
            key: "user:1".into(),
        };
        let entry = kv.get(request).await.unwrap().into_inner().entry.unwrap();
        assert_eq!(entry.value, "anne", "gRPC sees what HTTP wrote");
        kv.put(pb::KvPutRequest {
            scope: scope(),
            key: "from-grpc".into(),
            value: "1".into(),
            ttl_ms: 0,
        })
        .await
        .unwrap();
        let deleted =
            kv.delete(pb::KvDeleteRequest { scope: scope(), key: "user:2".into() }).await.unwrap();
        assert!(deleted.into_inner().deleted);
        let refused = kv
            .put(pb::KvPutRequest {
                scope: scope(),
                key: String::new(),
                value: "1".into(),
                ttl_ms: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        let unscoped = kv.get(pb::KvGetRequest { scope: None, key: "k".into() }).await.unwrap_err();
        assert_eq!(unscoped.code(), tonic::Code::InvalidArgument);
        let swapped = kv
            .compare_and_swap(pb::KvCompareAndSwapRequest {
                scope: scope(),
                key: "from-grpc".into(),
                expected: Some("1".into()),
                value: None,
                ttl_ms: 0,
            })
            .await
            .unwrap();
        assert!(swapped.into_inner().swapped, "swapped for nothing: deleted");
    });
    assert_eq!(http::get(node.invoke(), "/api/v1/kv/acme/shop/from-grpc").status, 404);
    assert_eq!(
        send(&node, "DELETE", "/api/v1/kv/acme/shop/user:2", "").json(),
        json!({"deleted": false})
    );

    // Bad requests: their code, and nothing stored.
    for (method, path, body, code) in [
        ("PUT", "/api/v1/kv/acme/shop/k", "{", "invalid_json"),
        ("PUT", "/api/v1/kv/acme/shop/k", r#"{"val":"x"}"#, "invalid_arguments"),
        ("PUT", "/api/v1/kv/acme/shop/k", r#"{"value":"x","ttl_ms":-1}"#, "invalid_arguments"),
        ("PUT", "/api/v1/kv/bad%20tenant/shop/k", r#"{"value":"x"}"#, "invalid_arguments"),
        ("GET", "/api/v1/kv/acme/shop?limit=lots", "", "invalid_arguments"),
        ("GET", "/api/v1/kv/acme/shop?limit=20000", "", "invalid_arguments"),
        ("GET", "/api/v1/kv/acme/shop?limt=5", "", "invalid_arguments"),
    ] {
        let refused = send(&node, method, path, body);
        assert_eq!(refused.code(), code, "{method} {path} {body}: {refused:?}");
    }
    let text = http::request(
        node.invoke(),
        "PUT",
        "/api/v1/kv/acme/shop/k",
        &[("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(text.code(), "unsupported_media_type");
    assert_eq!(http::get(node.invoke(), "/api/v1/kv/acme/shop/k").status, 404);
}

#[test]
fn tuples_over_http_and_grpc_with_a_waiting_take() {
    let node = TestNode::start(Options::default());
    let written = send(&node, "POST", "/api/v1/tuples/acme/shop", r#"{"tuple":["order","o1",3]}"#);
    assert_eq!(written.status, 204, "{written:?}");
    let read = send(
        &node,
        "POST",
        "/api/v1/tuples/acme/shop/read",
        r#"{"pattern":["order",null,{"$type":"int"}]}"#,
    );
    assert_eq!(read.json(), json!({"tuple": ["order", "o1", 3]}));
    let count =
        send(&node, "POST", "/api/v1/tuples/acme/shop/count", r#"{"pattern":["order",null,null]}"#);
    assert_eq!(count.json(), json!({"count": 1}));
    let scanned = send(
        &node,
        "POST",
        "/api/v1/tuples/acme/shop/scan",
        r#"{"pattern":[null,null,null],"limit":5}"#,
    );
    assert_eq!(scanned.json(), json!({"tuples": [["order", "o1", 3]]}));
    let taken =
        send(&node, "POST", "/api/v1/tuples/acme/shop/take", r#"{"pattern":["order","o1",3]}"#);
    assert_eq!(taken.json(), json!({"tuple": ["order", "o1", 3]}));
    let none =
        send(&node, "POST", "/api/v1/tuples/acme/shop/take", r#"{"pattern":["order","o1",3]}"#);
    assert_eq!(none.json(), json!({"tuple": null}), "taken once");

    // A take over gRPC that waits is woken by a write over HTTP.
    let endpoint = format!("http://{}", node.node().grpc_addr());
    let waiting = node.runtime.spawn(async move {
        let mut tuples = TupleSpaceServiceClient::connect(endpoint).await.unwrap();
        let request = pb::TupleFindRequest {
            scope: scope(),
            pattern_json: r#"["job",null]"#.into(),
            timeout_ms: 30_000,
        };
        tuples.take(request).await.unwrap().into_inner().tuple_json
    });
    std::thread::sleep(Duration::from_millis(200));
    send(&node, "POST", "/api/v1/tuples/acme/shop", r#"{"tuple":["job",7]}"#);
    let woken = node.runtime.block_on(waiting).unwrap();
    assert_eq!(woken.as_deref(), Some(r#"["job",7]"#));

    for (path, body, code) in [
        ("/api/v1/tuples/acme/shop", r#"{"tuple":[]}"#, "invalid_arguments"),
        ("/api/v1/tuples/acme/shop", r#"{"tuple":"x"}"#, "invalid_arguments"),
        (
            "/api/v1/tuples/acme/shop",
            r#"{"tuple":[1],"lease_ms":18446744073709551615}"#,
            "invalid_arguments",
        ),
        ("/api/v1/tuples/acme/shop", r#"[["x"]]"#, "invalid_arguments"),
        ("/api/v1/tuples/acme/shop/take", r#"{"pattern":[{"$type":"date"}]}"#, "invalid_arguments"),
        (
            "/api/v1/tuples/acme/shop/take",
            r#"{"pattern":[1],"timeout_ms":999999}"#,
            "invalid_arguments",
        ),
        ("/api/v1/tuples/acme/shop/read", "[", "invalid_json"),
    ] {
        let refused = send(&node, "POST", path, body);
        assert_eq!(refused.code(), code, "{path} {body}: {refused:?}");
    }
}

#[test]
fn locks_and_groups_over_http_and_grpc() {
    let node = TestNode::start(Options::default());
    let acquire = |holder: &str| {
        let body = format!(r#"{{"holder":"{holder}","lease_ms":30000}}"#);
        send(&node, "POST", "/api/v1/locks/acme/shop/job/acquire", &body).json()
    };
    let first = acquire("a");
    let version = first["grant"]["version"].as_str().unwrap().to_owned();
    assert_eq!(first["grant"]["holder"], "a");
    assert_eq!(acquire("b"), json!({"grant": null}), "held by a");
    assert_eq!(
        acquire("a")["grant"]["version"],
        version.as_str(),
        "the holder renews, same version"
    );
    let held = http::get(node.invoke(), "/api/v1/locks/acme/shop/job").json();
    assert_eq!(held["grant"]["holder"], "a");
    let stale = send(
        &node,
        "POST",
        "/api/v1/locks/acme/shop/job/renew",
        r#"{"holder":"a","version":"1","lease_ms":1000}"#,
    );
    assert_eq!(stale.code(), "invalid_state", "{stale:?}");
    for bad in [r#"{"version":"+5"}"#, r#"{"version":"99999999999999999999"}"#, r#"{"version":7}"#]
    {
        let refused = send(&node, "POST", "/api/v1/locks/acme/shop/job/release", bad);
        assert_eq!(refused.code(), "invalid_arguments", "{bad}: {refused:?}");
    }

    // A gRPC acquire that waits is woken by the HTTP release, with a larger token.
    let endpoint = format!("http://{}", node.node().grpc_addr());
    let waiting = node.runtime.spawn({
        let endpoint = endpoint.clone();
        async move {
            let mut locks = LockServiceClient::connect(endpoint).await.unwrap();
            let request = pb::LockAcquireRequest {
                scope: scope(),
                name: "job".into(),
                holder: "b".into(),
                metadata: "waiter".into(),
                lease_ms: 30_000,
                timeout_ms: 30_000,
            };
            locks.acquire(request).await.unwrap().into_inner().grant
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let release = format!(r#"{{"version":"{version}"}}"#);
    assert_eq!(
        send(&node, "POST", "/api/v1/locks/acme/shop/job/release", &release).json(),
        json!({"released": true})
    );
    assert_eq!(
        send(&node, "POST", "/api/v1/locks/acme/shop/job/release", &release).json(),
        json!({"released": false})
    );
    let granted = node.runtime.block_on(waiting).unwrap().unwrap();
    assert_eq!((granted.holder.as_str(), granted.metadata.as_str()), ("b", "waiter"));
    assert!(granted.version > version.parse::<u64>().unwrap());

    // Groups: members are actors of the tenant, kept as namespace/type/key.
    let join = |member: &str, topic: &str| {
        let body =
            json!({"member": member, "topic": (!topic.is_empty()).then_some(topic)}).to_string();
        send(&node, "POST", "/api/v1/groups/acme/shop/room/join", &body).json()
    };
    assert_eq!(join("echo/e1", ""), json!({"joined": true}));
    assert_eq!(join("shop/echo/e1", ""), json!({"joined": false}), "the same member");
    assert_eq!(join("other/echo/e2", "news"), json!({"joined": true}));
    let members = http::get(node.invoke(), "/api/v1/groups/acme/shop/room").json();
    assert_eq!(members, json!({"members": ["other/echo/e2", "shop/echo/e1"]}));
    let listed = http::get(node.invoke(), "/api/v1/groups/acme/shop").json();
    assert_eq!(listed, json!({"groups": [{"name": "room", "members": 2}]}));
    let published =
        send(&node, "POST", "/api/v1/groups/acme/shop/room/publish", r#"{"data":{"n":1}}"#);
    assert_eq!(
        published.json(),
        json!({"sent": 1}),
        "the topic member does not get a topic-less publish"
    );
    let refused =
        send(&node, "POST", "/api/v1/groups/acme/shop/room/join", r#"{"member":"a/b/c/d"}"#);
    assert_eq!(refused.code(), "invalid_arguments");
    node.runtime.block_on(async {
        let mut groups = ProcessGroupServiceClient::connect(endpoint).await.unwrap();
        let request = pb::GroupPublishRequest {
            scope: scope(),
            group: "room".into(),
            topic: Some("news".into()),
            data_json: "[1]".into(),
        };
        assert_eq!(groups.publish(request).await.unwrap().into_inner().sent, 2);
        let request = pb::GroupLeaveRequest {
            scope: scope(),
            group: "room".into(),
            member: "echo/e1".into(),
            topic: None,
        };
        assert!(groups.leave(request).await.unwrap().into_inner().left);
        let request = pb::GroupMembersRequest { scope: scope(), group: "room".into() };
        assert_eq!(groups.members(request).await.unwrap().into_inner().members, ["other/echo/e2"]);
        let bad = pb::GroupPublishRequest {
            scope: scope(),
            group: "room".into(),
            topic: None,
            data_json: "{".into(),
        };
        assert_eq!(groups.publish(bad).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    });
}
