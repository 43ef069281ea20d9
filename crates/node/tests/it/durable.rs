//! Native actors with the `durability` facet, in-process: a tell is acknowledged once
//! journaled, a repeated `Idempotency-Key` is a duplicate, the state (a GenFSM's state name
//! too) comes back after a restart, the admin delete removes the journal, and what cannot be
//! journaled or checkpointed is refused with a clear error. (Recovery after a kill -9 is tested
//! on the real binary, in the CLI crate's crash loop.)

use std::path::Path;

use plexspaces_node::{Node, Options};
use plexspaces_sdk::prelude::*;
use serde_json::json;

use crate::{TestNode, http};

const TALLY: &str = "/api/v1/actors/acme/default/tally";
const DOOR: &str = "/api/v1/actors/acme/default/door";

#[gen_server_actor]
#[derive(Debug, Serialize, Deserialize)]
struct Tally {
    total: i64,
    seen: Vec<i64>,
}

#[plexspaces_handlers]
impl Tally {
    #[handler("add")]
    async fn add(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        let n = payload["n"]
            .as_i64()
            .ok_or_else(|| BehaviorError::ProcessingError("n must be an integer".to_owned()))?;
        self.total += n;
        self.seen.push(n);
        Ok(json!({ "total": self.total }))
    }

    #[handler("get")]
    async fn get(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "total": self.total, "seen": self.seen }))
    }
}

#[gen_fsm_actor(initial = "closed")]
#[derive(Debug, Serialize, Deserialize)]
struct Door {
    openings: u32,
}

#[plexspaces_handlers]
impl Door {
    #[handler("open", from = "closed", to = "open")]
    async fn open(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.openings += 1;
        Ok(json!({ "openings": self.openings }))
    }

    #[handler("close", from = "open", to = "closed")]
    async fn close(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({}))
    }

    #[handler("status")]
    async fn status(&mut self, ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "state": ctx.fsm_state(), "openings": self.openings }))
    }
}

/// No serde: it cannot be checkpointed.
#[gen_server_actor]
#[derive(Debug)]
struct Opaque {}

#[plexspaces_handlers]
impl Opaque {
    #[handler("*")]
    async fn any(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

fn start(dir: &Path) -> TestNode {
    TestNode::start_in(dir, Options::default(), |builder| {
        builder
            .register_with_facets::<Tally>(
                "tally",
                &[("durability", json!({"checkpoint_every": 4}))],
            )
            .register_with_facets::<Door>("door", &[("durability", json!({}))])
    })
}

fn ask(node: &TestNode, path: &str, body: &str) -> Value {
    let reply = http::post_json(node.invoke(), &format!("{path}?invocation=call"), body);
    assert_eq!(reply.status, 200, "{path} {body}: {reply:?}");
    reply.json()
}

fn tell_keyed(node: &TestNode, path: &str, body: &str, key: &str) -> http::Response {
    let headers = [("Content-Type", "application/json"), ("Idempotency-Key", key)];
    http::request(node.invoke(), "POST", path, &headers, body.as_bytes())
}

#[test]
fn a_durable_native_actor_drops_repeated_keys_and_keeps_its_state_across_restarts() {
    let dir = crate::data_dir("durable-native");
    let node = start(&dir);
    let first = tell_keyed(&node, &format!("{TALLY}/t1"), r#"{"action":"add","n":5}"#, "k-1");
    assert_eq!(first.status, 202, "{first:?}");
    let again = tell_keyed(&node, &format!("{TALLY}/t1"), r#"{"action":"add","n":5}"#, "k-1");
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(again.json()["duplicate"], true, "{again:?}");
    assert_eq!(again.json()["message_id"], first.json()["message_id"]);
    for n in 1..=6 {
        ask(&node, &format!("{TALLY}/t1"), &format!(r#"{{"action":"add","n":{n}}}"#));
    }
    // A failed handler is journaled as failed and changes nothing.
    let failed = http::post_json(
        node.invoke(),
        &format!("{TALLY}/t1?invocation=call"),
        r#"{"action":"add","n":"x"}"#,
    );
    assert_eq!(failed.code(), "actor_error", "{failed:?}");
    let expected = json!({"total": 26, "seen": [5, 1, 2, 3, 4, 5, 6]});
    assert_eq!(ask(&node, &format!("{TALLY}/t1"), r#"{"action":"get"}"#), expected);
    // A GenFSM's state name is checkpointed with its state.
    ask(&node, &format!("{DOOR}/d1"), r#"{"action":"open"}"#);
    drop(node);

    let node = start(&dir);
    assert_eq!(ask(&node, &format!("{TALLY}/t1"), r#"{"action":"get"}"#), expected);
    let repeated = tell_keyed(&node, &format!("{TALLY}/t1"), r#"{"action":"add","n":5}"#, "k-1");
    assert_eq!(repeated.json()["duplicate"], true, "keys survive the restart: {repeated:?}");
    assert_eq!(
        ask(&node, &format!("{DOOR}/d1"), r#"{"action":"status"}"#),
        json!({"state": "open", "openings": 1})
    );
    let invalid = http::post_json(
        node.invoke(),
        &format!("{DOOR}/d1?invocation=call"),
        r#"{"action":"open"}"#,
    );
    assert_eq!(invalid.code(), "invalid_state", "{invalid:?}");
    // The state is visible to operators as its JSON.
    let state = http::get(node.admin(), &format!("{TALLY}/t1/state"));
    assert_eq!(state.json()["total"], 26, "{state:?}");

    // Deleting the actor deletes its journal and checkpoint: it starts over.
    let deleted = http::request(node.admin(), "DELETE", &format!("{TALLY}/t1"), &[], b"");
    assert_eq!(deleted.status, 204, "{deleted:?}");
    drop(node);
    let node = start(&dir);
    assert_eq!(
        ask(&node, &format!("{TALLY}/t1"), r#"{"action":"get"}"#),
        json!({"total": 0, "seen": []})
    );
}

#[test]
fn what_a_durable_native_actor_cannot_journal_or_checkpoint_is_refused() {
    let dir = crate::data_dir("durable-native-refusals");
    let node = start(&dir);
    let binary = http::request(
        node.invoke(),
        "POST",
        &format!("{TALLY}/t2?action=add"),
        &[("Content-Type", "application/octet-stream")],
        b"\x00\x01",
    );
    assert_eq!(binary.status, 415, "{binary:?}");
    assert_eq!(binary.code(), "unsupported_media_type");
    drop(node);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options = Options {
        invoke_port: 0,
        admin_port: 0,
        grpc_port: 0,
        data_dir: crate::data_dir("durable-native-opaque"),
        ..Options::default()
    };
    let started = runtime.block_on(
        Node::builder()
            .options(options)
            .register_with_facets::<Opaque>("opaque", &[("durability", json!({}))])
            .start(),
    );
    let error = started.expect_err("a durable type whose state has no serde is refused");
    assert_eq!(error.code.as_str(), "state_not_serializable", "{error}");
    assert!(error.message.contains("Serialize"), "{error}");
}
