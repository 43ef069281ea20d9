//! Invocation over HTTP as users write it, inspection on the admin port, idempotency and
//! graceful shutdown.

use std::time::Duration;

use plexspaces_node::Options;
use serde_json::json;

use crate::{TestNode, http};

const ECHO: &str = "/api/v1/actors/acme/default/echo";

#[test]
fn post_tells_call_asks_and_get_asks_with_the_query_as_payload() {
    let node = TestNode::start(Options::default());
    let told = http::post_json(node.invoke(), &format!("{ECHO}/e1"), r#"{"action":"note","n":1}"#);
    assert_eq!(told.status, 202, "{told:?}");
    assert!(!told.json()["message_id"].as_str().unwrap().is_empty());

    let called = http::post_json(
        node.invoke(),
        &format!("{ECHO}/e1?invocation=call"),
        r#"{"action":"note","big":12345678901234567890}"#,
    );
    assert_eq!(called.status, 200);
    assert_eq!(called.header("content-type"), Some("application/json"));
    let reply = called.json();
    assert_eq!(reply["received"], 2, "the tell arrived first");
    assert_eq!(reply["action"], "note");
    assert_eq!(
        reply["echo"]["big"],
        json!(12345678901234567890u64),
        "the payload reaches the actor untouched"
    );

    let got = http::get(
        node.invoke(),
        &format!(
            "{ECHO}/e1?action=look&n=5&ok=true&none=null&list=%5B1%2C2%5D&obj=%7B%22a%22%3A1%7D&name=bob&quoted=%22x%22"
        ),
    );
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(
        got.json()["echo"],
        json!({"action": "look", "n": 5, "ok": true, "none": null, "list": [1, 2], "obj": {"a": 1}, "name": "bob", "quoted": "\"x\""})
    );

    // Without an id: the type's default actor.
    let default =
        http::post_json(node.invoke(), &format!("{ECHO}?invocation=call"), r#"{"action":"hi"}"#);
    assert_eq!(default.json()["received"], 1);
    let listed = http::get(node.admin(), ECHO);
    assert_eq!(
        listed.json(),
        json!({"actors": [
            {"actor_id": "default", "lifecycle": "active", "mailbox_depth": 0},
            {"actor_id": "e1", "lifecycle": "active", "mailbox_depth": 0}
        ]})
    );
}

#[test]
fn the_admin_port_shows_types_state_and_deletes_actors() {
    let node = TestNode::start(Options::default());
    let types = http::get(node.admin(), "/api/v1/types").json();
    let names: Vec<&str> =
        types["types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo", "failing", "slow"]);
    assert_eq!(types["types"][0]["behavior"], "gen_server");

    http::post_json(node.invoke(), &format!("{ECHO}/s1?invocation=call"), r#"{"action":"a"}"#);
    let state = http::get(node.admin(), &format!("{ECHO}/s1/state"));
    assert_eq!((state.status, state.json()), (200, json!({"received": 1})));

    let unshowable = http::get(node.admin(), "/api/v1/actors/acme/default/slow/x/state");
    assert_eq!((unshowable.status, unshowable.code().as_str()), (404, "not_found"));
    http::post_json(
        node.invoke(),
        "/api/v1/actors/acme/default/slow/x?invocation=call",
        r#"{"action":"sleep","ms":1}"#,
    );
    let unshowable = http::get(node.admin(), "/api/v1/actors/acme/default/slow/x/state");
    assert_eq!((unshowable.status, unshowable.code().as_str()), (400, "state_not_serializable"));

    let deleted = http::request(node.admin(), "DELETE", &format!("{ECHO}/s1"), &[], b"");
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let gone = http::get(node.admin(), &format!("{ECHO}/s1/state"));
    assert_eq!(gone.code(), "not_found");
    let again = http::request(node.admin(), "DELETE", &format!("{ECHO}/s1"), &[], b"");
    assert_eq!(again.code(), "not_found");
    // The next message starts a fresh actor: its state was deleted.
    let fresh =
        http::post_json(node.invoke(), &format!("{ECHO}/s1?invocation=call"), r#"{"action":"a"}"#);
    assert_eq!(fresh.json()["received"], 1);

    let status = http::get(node.admin(), "/api/v1/status").json();
    assert_eq!(status["actor_types"], 3);
    assert_eq!(status["listeners"]["invoke"], node.invoke().to_string());
    assert_eq!(status["actors_by_lifecycle"]["active"], 2);
}

#[test]
fn an_idempotency_key_delivers_a_tell_once() {
    let node = TestNode::start(Options::default());
    let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "order-17")];
    let first = http::request(
        node.invoke(),
        "POST",
        &format!("{ECHO}/i"),
        &headers,
        br#"{"action":"pay"}"#,
    );
    let retry = http::request(
        node.invoke(),
        "POST",
        &format!("{ECHO}/i"),
        &headers,
        br#"{"action":"pay"}"#,
    );
    assert_eq!((first.status, retry.status), (202, 202));
    assert_eq!(first.json()["message_id"], retry.json()["message_id"]);
    assert_eq!(
        (first.json()["duplicate"].clone(), retry.json()["duplicate"].clone()),
        (json!(false), json!(true))
    );
    let other = http::request(
        node.invoke(),
        "POST",
        &format!("{ECHO}/i"),
        &[("Content-Type", "application/json"), ("Idempotency-Key", "order-18")],
        br#"{"action":"pay"}"#,
    );
    assert_eq!(other.json()["duplicate"], false);
    let count = http::post_json(
        node.invoke(),
        &format!("{ECHO}/i?invocation=call"),
        r#"{"action":"count"}"#,
    );
    assert_eq!(count.json()["received"], 3, "order-17 once, order-18 once, then this call");
}

#[test]
fn shutdown_finishes_the_calls_in_flight() {
    let mut node = TestNode::start(Options::default());
    let address = node.invoke();
    let in_flight = std::thread::spawn(move || {
        http::post_json(
            address,
            "/api/v1/actors/acme/default/slow/s?invocation=call",
            r#"{"action":"sleep","ms":1000}"#,
        )
    });
    // The call is in the handler once its actor is active.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lifecycle = || {
        http::get(node.admin(), "/api/v1/actors/acme/default/slow").json()["actors"][0]["lifecycle"]
            .clone()
    };
    while lifecycle() != "active" {
        assert!(std::time::Instant::now() < deadline, "the call never reached its actor");
        std::thread::sleep(Duration::from_millis(10));
    }
    let running = node.node.take().unwrap();
    node.runtime.block_on(running.shutdown());
    let reply = in_flight.join().unwrap();
    assert_eq!((reply.status, reply.json()), (200, json!({"slept_ms": 1000})));
    assert!(std::net::TcpStream::connect(address).is_err(), "the port is closed after shutdown");
}
