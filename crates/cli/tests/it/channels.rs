//! Channels on the real binary: the SEDA pipeline example (three Python stages connected by
//! bounded channels) backs up to its producer, survives a kill -9 of the node and delivers
//! every accepted order once it drains; and a consumer process killed (SIGKILL) holding
//! messages loses none of them: they come back after their visibility timeout, counted as
//! redeliveries.

use std::{
    collections::BTreeSet,
    io::BufRead as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{NodeProcess, data_dir, guests, http, wasm};

fn channel_post(
    node: &NodeProcess,
    channel: &str,
    operation: &str,
    body: &Value,
) -> http::Response {
    http::post_json(
        node.invoke,
        &format!("/api/v1/channels/default/default/{channel}/{operation}"),
        &body.to_string(),
    )
}

fn held(node: &NodeProcess, channel: &str) -> u64 {
    let info =
        http::get(node.invoke, &format!("/api/v1/channels/default/default/{channel}")).json();
    let queue = &info["queues"][0];
    queue["ready"].as_u64().unwrap() + queue["in_flight"].as_u64().unwrap()
}

fn ask(node: &NodeProcess, actor: &str, body: &str) -> Value {
    let reply = wasm::call(node, actor, body);
    assert_eq!(reply.status, 200, "{actor} {body}: {reply:?}");
    reply.json()
}

/// Checks what a fixture's `channels` handler answers (tests/fixtures/python/channel_user.py
/// and the TypeScript `services.ts` make the same calls), then that the actor, a consumer of
/// `cu-in` now, gets what a client sends there until it stops; `got` reads what it recorded
/// as `[channel, data, attempt]`.
pub(crate) fn check_every_channel_call(
    node: &NodeProcess,
    actor: &str,
    got: &dyn Fn() -> Vec<Value>,
) {
    let answer = ask(node, actor, r#"{"action":"channels"}"#);
    assert_eq!(
        answer,
        json!({
            "created": true, "again": false, "sent": 2,
            "first": [[{"n": 1}, 1], [{"n": 2}, 1]], "acked": true, "nacked": true,
            "second": [[{"n": 2}, 2]], "closed": true, "refused": "invalid_state",
            "subscribed": true, "to_one": 1, "from_topic": "hello", "unsubscribed": true,
            "to_none": 0, "consuming": true,
        }),
        "{actor}"
    );
    for n in 0..3 {
        assert_eq!(channel_post(node, "cu-in", "send", &json!({"data": n})).status, 200);
    }
    wasm::eventually("the consumer getting three messages", || got().len() == 3);
    assert_eq!(got(), [json!(["cu-in", 0, 1]), json!(["cu-in", 1, 1]), json!(["cu-in", 2, 1])]);
    assert_eq!(ask(node, actor, r#"{"action":"stop"}"#), json!({"stopped": true}));
    channel_post(node, "cu-in", "send", &json!({"data": 9}));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(got().len(), 3, "a consumer that stopped gets nothing more");
    assert_eq!(held(node, "cu-in"), 1);
}

fn order(n: u64) -> Value {
    json!({"data": {"id": format!("o{n}"), "sku": "pear", "qty": 3}, "timeout_ms": 3000})
}

#[test]
fn the_seda_pipeline_backs_up_to_its_producer_and_delivers_every_order_after_a_kill_9() {
    const CAPACITY: u64 = 4; // examples/python/seda_pipeline.py
    let module = guests::python_module("examples/python/seda_pipeline.py");
    let dir = data_dir("channels-seda");
    let node = wasm::start(&dir);
    let deployed = wasm::deploy(&node, "seda", &module);
    assert_eq!(deployed["types"].as_array().map(Vec::len), Some(3), "{deployed}");
    for stage in ["validate", "enrich", "store"] {
        ask(&node, &format!("seda.{stage}"), r#"{"action":"start"}"#);
    }
    // The producer sends, waiting up to 3 s for room each time, until the pipeline is full
    // from end to end and a send is refused.
    let mut accepted = 0;
    let refused = loop {
        let sent = channel_post(&node, "orders", "send", &order(accepted));
        if sent.status != 200 {
            break sent;
        }
        accepted += 1;
        assert!(accepted < 100, "no backpressure after 100 orders");
    };
    assert_eq!((refused.status, refused.code().as_str()), (429, "channel_full"), "{refused:?}");
    assert_eq!(accepted, 3 * CAPACITY, "each stage's channel full");
    for channel in ["orders", "validated", "enriched"] {
        assert_eq!(held(&node, channel), CAPACITY, "{channel}");
    }
    drop(node); // SIGKILL, with messages in the stages' hands.

    let node = wasm::start(&dir);
    let store = "seda.store";
    let deadline = Instant::now() + Duration::from_secs(120);
    let drained = loop {
        let drained = ask(&node, store, r#"{"action":"drain"}"#);
        if drained["orders"] == accepted {
            break drained;
        }
        assert!(Instant::now() < deadline, "the pipeline did not drain: {drained}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(drained["revenue"], accepted * 3 * 5, "{drained}");
    let stats = ask(&node, store, r#"{"action":"stats"}"#);
    let ids: BTreeSet<String> = stats["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, (0..accepted).map(|n| format!("o{n}")).collect(), "each order stored once");
    // Drained, the pipeline takes orders again.
    assert_eq!(channel_post(&node, "orders", "send", &order(1000)).status, 200);
    wasm::eventually("the new order stored", || {
        ask(&node, store, r#"{"action":"drain"}"#)["orders"] == accepted + 1
    });
}

/// A consumer over HTTP: receives batches of five with a visibility timeout of 1 s, prints
/// `ACK <data>` after each ack returned, and ends when the queue is empty.
const CONSUMER: &str = r#"
import json, sys, time, urllib.request
base = sys.argv[1]
def post(op, body):
    request = urllib.request.Request(f"{base}/{op}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)
while True:
    got = post("receive", {"max": 5, "visibility_timeout_ms": 1000, "timeout_ms": 2000})["deliveries"]
    if not got:
        break
    for delivery in got:
        time.sleep(0.01)
        if post("ack", {"receipt": delivery["receipt"]})["acked"]:
            print("ACK", delivery["data"], flush=True)
"#;

fn consumer(node: &NodeProcess) -> std::process::Child {
    let base = format!("http://{}/api/v1/channels/default/default/work", node.invoke);
    Command::new("python3")
        .args(["-c", CONSUMER, &base])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs the consumer")
}

#[test]
fn messages_a_killed_consumer_held_come_back_and_none_is_lost() {
    const MESSAGES: u64 = 300;
    let dir = data_dir("channels-consumer-crash");
    let node = wasm::start(&dir);
    let created = http::request(
        node.invoke,
        "PUT",
        "/api/v1/channels/default/default/work",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(created.status, 201, "{created:?}");
    for n in 0..MESSAGES {
        assert_eq!(channel_post(&node, "work", "send", &json!({"data": n})).status, 200);
    }
    let mut acked = Vec::new();
    // Two consumers killed mid-stream, each holding part of a batch it received.
    for _ in 0..2 {
        let mut child = consumer(&node);
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.map_while(Result::ok).take(42) {
            acked.push(line.strip_prefix("ACK ").unwrap().parse::<u64>().unwrap());
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // The last consumer runs to the end.
    let child = consumer(&node);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        acked.push(line.strip_prefix("ACK ").unwrap().parse().unwrap());
    }
    let unique: BTreeSet<u64> = acked.iter().copied().collect();
    let lost: Vec<u64> = (0..MESSAGES).filter(|n| !unique.contains(n)).collect();
    assert!(lost.is_empty(), "{} lost: {lost:?}", lost.len());
    assert_eq!(acked.len(), unique.len(), "an ack succeeds once per message");
    let info = http::get(node.invoke, "/api/v1/channels/default/default/work").json();
    let queue = &info["queues"][0];
    assert_eq!(queue["acked"], MESSAGES, "{info}");
    assert!(
        queue["redelivered"].as_u64().unwrap() > 0,
        "the killed consumers' messages came again: {info}"
    );
    assert_eq!((queue["ready"].clone(), queue["in_flight"].clone()), (json!(0), json!(0)));
}
