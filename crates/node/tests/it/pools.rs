//! Worker pools in-process, over HTTP: every key routed to exactly one shard and the totals
//! adding up (the worker of `examples/rust/worker_pool.rs`), create answering the same pool
//! again and refusing other parameters, pools kept across a restart, routing under scaling,
//! and a scatter-gather that returns the partial results with each failed or late shard's
//! error.

use std::{collections::BTreeMap, time::Duration};

use plexspaces_node::Options;
use plexspaces_sdk::prelude::*;
use serde_json::json;

use crate::{TestNode, http};

#[allow(clippy::all, unreachable_pub)]
mod worker {
    include!("../../../../examples/rust/worker_actor.rs");
}

/// A worker whose shard 3 fails and whose shard 5 is slow.
#[gen_server_actor]
struct Picky {}

#[plexspaces_handlers]
impl Picky {
    #[handler("*")]
    async fn any(&mut self, ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        let id = ctx.actor_id().key.to_string();
        if id.ends_with("-3") {
            return Err(BehaviorError::ProcessingError("shard 3 is broken".to_owned()));
        }
        if id.ends_with("-5") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok(json!({ "id": id, "one": 1 }))
    }
}

/// A worker that says which shard it is.
#[gen_server_actor]
struct Where {}

#[plexspaces_handlers]
impl Where {
    #[handler("*")]
    async fn any(&mut self, ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "id": ctx.actor_id().key.to_string() }))
    }
}

const POOLS: &str = "/api/v1/pools/acme/default";

fn start(dir: &std::path::Path) -> TestNode {
    TestNode::start_in(dir, Options::default(), |builder| {
        builder.register::<worker::WorkerActor>("worker").register::<Picky>("picky")
    })
}

fn create(node: &TestNode, body: Value) -> http::Response {
    http::post_json(node.admin(), POOLS, &body.to_string())
}

fn post(node: &TestNode, path: &str, body: Value) -> Value {
    let got = http::post_json(node.invoke(), &format!("{POOLS}/{path}"), &body.to_string());
    assert_eq!(got.status, 200, "{path}: {got:?}");
    got.json()
}

#[test]
fn a_pool_routes_every_key_to_one_shard_and_its_totals_add_up() {
    let dir = crate::data_dir("pools");
    let node = start(&dir);
    let spec = json!({"name": "wp1", "actor_type": "worker", "shards": 20, "strategy": "hash"});
    let created = create(&node, spec.clone());
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json()["pool"]["shard_actor_ids"][19], "wp1-19");
    // The same pool again is that pool; other parameters are a conflict.
    let again = create(&node, spec.clone());
    assert_eq!((again.status, again.json()["created"].clone()), (200, json!(false)), "{again:?}");
    let other = create(
        &node,
        json!({"name": "wp1", "actor_type": "worker", "shards": 8, "strategy": "hash"}),
    );
    assert_eq!((other.status, other.code()), (409, "already_exists".to_owned()), "{other:?}");
    let bad = create(
        &node,
        json!({"name": "wp2", "actor_type": "worker", "shards": 2, "strategy": "random"}),
    );
    assert_eq!((bad.status, bad.code()), (400, "invalid_arguments".to_owned()), "{bad:?}");
    let zero = create(
        &node,
        json!({"name": "wp2", "actor_type": "worker", "shards": 0, "strategy": "hash"}),
    );
    assert_eq!(zero.code(), "invalid_arguments", "{zero:?}");
    let unknown = create(
        &node,
        json!({"name": "wp2", "actor_type": "nobody", "shards": 2, "strategy": "hash"}),
    );
    assert_eq!((unknown.status, unknown.code()), (404, "not_found".to_owned()), "{unknown:?}");

    // 10,000 keys, each to its shard.
    let messages: serde_json::Map<String, Value> = (0..10_000)
        .map(|i| {
            let key = format!("key-{i:05}");
            (key.clone(), json!({"action": "set", "key": key, "value": i}))
        })
        .collect();
    let updated =
        post(&node, "wp1/update", json!({"messages": messages, "consistency": "eventual"}));
    assert_eq!(updated["delivered"], 10_000, "{updated}");
    let per_shard: Vec<u64> =
        updated["per_shard"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    assert_eq!((per_shard.len(), per_shard.iter().sum::<u64>()), (20, 10_000));
    assert!(per_shard.iter().all(|n| *n > 300), "uneven: {per_shard:?}");

    // Every shard answers; its keys are those it was sent, and the totals add up.
    let mapped = post(&node, "wp1/map", json!({"message": {"action": "get_total_count"}}));
    let replies = mapped["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 20, "{mapped}");
    for reply in replies {
        let shard = reply["shard"].as_u64().unwrap() as usize;
        assert_eq!(reply["reply"]["keys_processed"], per_shard[shard], "{reply}");
    }
    let reduced = post(
        &node,
        "wp1/reduce",
        json!({"message": {"action": "get_total_count"}, "strategy": "sum"}),
    );
    assert_eq!(reduced["result"]["total"], 49_995_000, "{reduced}");
    assert_eq!(reduced["result"]["keys_processed"], 10_000, "{reduced}");
    assert_eq!((reduced["replied"].clone(), reduced["complete"].clone()), (json!(20), json!(true)));
    let stats = post(
        &node,
        "wp1/reduce",
        json!({"message": {"action": "stats"}, "strategy": "concat", "expected": 20}),
    );
    assert_eq!(stats["result"].as_array().map(Vec::len), Some(20), "{stats}");
    let tasks: u64 = stats["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tasks_processed"].as_u64().unwrap())
        .sum();
    assert_eq!(tasks, 10_000);

    // Strong, with each key's reply; a key goes where it went before.
    let some: serde_json::Map<String, Value> = (0..100)
        .map(|i| {
            let key = format!("key-{i:05}");
            (key.clone(), json!({"action": "set", "key": key, "value": i}))
        })
        .collect();
    let strong =
        post(&node, "wp1/update", json!({"messages": some, "consistency": "strong", "wait": true}));
    assert_eq!(strong["replies"].as_object().map(serde_json::Map::len), Some(100), "{strong}");
    assert_eq!(strong["replies"]["key-00007"]["action"], "set");
    let reduced = post(
        &node,
        "wp1/reduce",
        json!({"message": {"action": "get_total_count"}, "strategy": "sum"}),
    );
    assert_eq!(
        reduced["result"]["keys_processed"], 10_000,
        "a key landed on two shards: {reduced}"
    );

    // A bad message is refused as a whole, before anything is sent.
    let bad = http::post_json(
        node.invoke(),
        &format!("{POOLS}/wp1/update"),
        r#"{"messages": {"k": {"action": "set"}}, "consistency": "sometimes"}"#,
    );
    assert_eq!(bad.code(), "invalid_arguments", "{bad:?}");
    let missing =
        http::post_json(node.invoke(), &format!("{POOLS}/nope/map"), r#"{"message": {}}"#);
    assert_eq!((missing.status, missing.code()), (404, "not_found".to_owned()), "{missing:?}");
    drop(node);

    // The pool outlives the node.
    let node = start(&dir);
    let listed = http::get(node.admin(), POOLS).json();
    assert_eq!(listed["pools"][0]["name"], "wp1", "{listed}");
    assert_eq!(listed["pools"][0]["shards"], 20);
    let deleted = http::request(node.admin(), "DELETE", &format!("{POOLS}/wp1"), &[], b"");
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let gone = http::get(node.admin(), &format!("{POOLS}/wp1"));
    assert_eq!(gone.status, 404, "{gone:?}");
    drop(node);
    let node = start(&dir);
    assert_eq!(http::get(node.admin(), POOLS).json()["pools"], json!([]));
}

#[test]
fn scaling_a_consistent_hash_pool_moves_only_the_keys_the_new_shard_takes() {
    let node =
        TestNode::start_with(Options::default(), |builder| builder.register::<Where>("where"));
    let body =
        json!({"name": "ch", "actor_type": "where", "shards": 10, "strategy": "consistent_hash"});
    assert_eq!(create(&node, body).status, 201);
    let shard_of = |node: &TestNode| -> BTreeMap<String, u64> {
        let messages: serde_json::Map<String, Value> =
            (0..2000).map(|i| (format!("user-{i}"), json!({"action": "where"}))).collect();
        let done = post(
            node,
            "ch/update",
            json!({"messages": messages, "wait": true, "timeout_ms": 10000}),
        );
        let mut routes = BTreeMap::new();
        for (key, reply) in done["replies"].as_object().unwrap() {
            let id = reply["id"].as_str().unwrap();
            routes.insert(key.clone(), id.rsplit('-').next().unwrap().parse().unwrap());
        }
        assert_eq!(done["failures"], json!([]), "{done}");
        routes
    };
    let before = shard_of(&node);
    assert_eq!(before.len(), 2000);
    let scaled = http::post_json(node.admin(), &format!("{POOLS}/ch/scale"), r#"{"shards": 11}"#);
    assert_eq!((scaled.status, scaled.json()["shards"].clone()), (200, json!(11)), "{scaled:?}");
    let after = shard_of(&node);
    let moved: Vec<&String> = before.keys().filter(|key| before[*key] != after[*key]).collect();
    // Every key that moved went to the new shard, and about 1/11 of them did.
    assert!(moved.iter().all(|key| after[*key] == 10), "a key moved between old shards");
    assert!((80..=300).contains(&moved.len()), "{} of 2000 keys moved", moved.len());
    let refused = http::post_json(node.admin(), &format!("{POOLS}/ch/scale"), r#"{"shards": 0}"#);
    assert_eq!(refused.code(), "invalid_arguments", "{refused:?}");
}

#[test]
fn a_scatter_gather_returns_the_partial_results_and_each_failed_or_late_shards_error() {
    let node =
        TestNode::start_with(Options::default(), |builder| builder.register::<Picky>("picky"));
    let body = json!({"name": "pk", "actor_type": "picky", "shards": 8, "strategy": "hash"});
    assert_eq!(create(&node, body).status, 201);
    let started = std::time::Instant::now();
    let mapped = post(&node, "pk/map", json!({"message": {"action": "ping"}, "timeout_ms": 500}));
    // The deadline holds (wide margin): the slow shard does not hold the others' replies.
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
    assert_eq!(mapped["replies"].as_array().map(Vec::len), Some(6), "{mapped}");
    let failures: BTreeMap<u64, String> = mapped["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["shard"].as_u64().unwrap(), f["code"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        failures,
        BTreeMap::from([(3, "actor_error".to_owned()), (5, "timeout".to_owned())])
    );
    let reduced = post(
        &node,
        "pk/reduce",
        json!({"message": {"action": "ping"}, "strategy": "sum", "timeout_ms": 500}),
    );
    assert_eq!(
        (reduced["result"]["one"].clone(), reduced["complete"].clone()),
        (json!(6), json!(false)),
        "{reduced}"
    );
    assert_eq!(reduced["failures"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_range_pool_keeps_each_key_range_on_its_shard_and_scales_by_split_points() {
    let node =
        TestNode::start_with(Options::default(), |builder| builder.register::<Where>("where"));
    // Split points in any order: kept sorted; one shard more than split points.
    let body = json!({"name": "rg", "actor_type": "where", "strategy": "range", "split_points": ["t", "g"]});
    let created = create(&node, body);
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json()["pool"]["split_points"], json!(["g", "t"]));
    assert_eq!(created.json()["pool"]["shards"], 3);
    let shard_of = |node: &TestNode, keys: &[&str]| -> Vec<String> {
        let messages: serde_json::Map<String, Value> =
            keys.iter().map(|key| ((*key).to_owned(), json!({"action": "where"}))).collect();
        let done = post(node, "rg/update", json!({"messages": messages, "wait": true}));
        keys.iter().map(|key| done["replies"][*key]["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        shard_of(&node, &["apple", "g", "melon", "t", "zebra"]),
        ["rg-0", "rg-1", "rg-1", "rg-2", "rg-2"]
    );
    let scaled = http::post_json(
        node.admin(),
        &format!("{POOLS}/rg/scale"),
        r#"{"split_points": ["n", "g", "t"]}"#,
    );
    assert_eq!((scaled.status, scaled.json()["shards"].clone()), (200, json!(4)), "{scaled:?}");
    assert_eq!(
        shard_of(&node, &["apple", "melon", "pear", "zebra"]),
        ["rg-0", "rg-1", "rg-2", "rg-3"]
    );
    // A range pool scales by split points, a hash pool by a shard count: 409 otherwise.
    let by_count = http::post_json(node.admin(), &format!("{POOLS}/rg/scale"), r#"{"shards": 5}"#);
    assert_eq!(
        (by_count.status, by_count.code()),
        (409, "invalid_state".to_owned()),
        "{by_count:?}"
    );
    let repeated = http::post_json(
        node.admin(),
        &format!("{POOLS}/rg/scale"),
        r#"{"split_points": ["g", "g"]}"#,
    );
    assert_eq!(repeated.code(), "invalid_arguments", "{repeated:?}");
    assert_eq!(
        create(&node, json!({"name": "h", "actor_type": "where", "shards": 2, "strategy": "hash"}))
            .status,
        201
    );
    let by_points =
        http::post_json(node.admin(), &format!("{POOLS}/h/scale"), r#"{"split_points": ["m"]}"#);
    assert_eq!(
        (by_points.status, by_points.code()),
        (409, "invalid_state".to_owned()),
        "{by_points:?}"
    );
}
