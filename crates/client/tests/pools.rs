//! The client against a node in this process: `examples/rust/worker_pool.rs` as written (20
//! workers, 10,000 keys, the totals adding up and every key on exactly one shard), an update
//! streamed in many chunks, the node's error codes, and a scatter-gather past its deadline.
#![allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    unused,
    missing_debug_implementations
)]

use std::time::Duration;

use plexspaces_client::*;
use plexspaces_node::{Node, Options, RunningNode};
use plexspaces_sdk::prelude::*;

include!("../../../examples/rust/worker_pool.rs");

/// A worker that takes its time on shard 1.
#[gen_server_actor]
struct Sleepy {}

#[plexspaces_handlers]
impl Sleepy {
    #[handler("*")]
    async fn any(&mut self, ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        if ctx.actor_id().key.to_string().ends_with("-1") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok(json!(1))
    }
}

async fn node(name: &str) -> (RunningNode, PlexSpacesClient) {
    let data_dir =
        std::env::temp_dir().join(format!("plexspaces-client-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let options =
        Options { invoke_port: 0, admin_port: 0, grpc_port: 0, data_dir, ..Options::default() };
    let node = Node::builder()
        .options(options)
        .register::<WorkerActor>("worker")
        .register::<Sleepy>("sleepy")
        .start()
        .await
        .unwrap();
    let client = PlexSpacesClient::connect(format!("http://{}", node.grpc_addr())).await.unwrap();
    (node, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pool_example_runs_as_written_and_its_totals_add_up() {
    let (node, client) = node("example").await;
    orchestrate(&client).await.unwrap();
    let counts =
        client.parallel_map("worker-pool-1", json!({"action": "get_total_count"})).await.unwrap();
    assert_eq!(counts.len(), 20);
    let keys: u64 = counts.iter().map(|count| count["keys_processed"].as_u64().unwrap()).sum();
    let total: u64 = counts.iter().map(|count| count["total"].as_u64().unwrap()).sum();
    assert_eq!((keys, total), (10_000, (0..10_000).sum::<u64>()));
    let stats = client
        .parallel_reduce(
            "worker-pool-1",
            json!({"action": "stats"}),
            ShardGroupAggregationStrategy::ShardGroupAggregationConcat,
            20,
        )
        .await
        .unwrap();
    assert_eq!(stats.as_array().map(Vec::len), Some(20));

    // Creating it again is the same pool; other parameters are a conflict, with its code.
    let again = client
        .create_worker_pool(
            "worker-pool-1",
            "worker",
            20,
            PartitionStrategy::PartitionStrategyHash,
            HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(again, "worker-pool-1");
    let other = client
        .create_worker_pool(
            "worker-pool-1",
            "worker",
            5,
            PartitionStrategy::PartitionStrategyHash,
            HashMap::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(other.code(), "already_exists", "{other}");
    let missing = client.parallel_map("no-such-pool", json!({})).await.unwrap_err();
    assert_eq!(missing.code(), "not_found", "{missing}");
    assert_eq!(client.list_worker_pools().await.unwrap().len(), 1);
    assert!(client.delete_worker_pool("worker-pool-1").await.unwrap());
    assert!(client.list_worker_pools().await.unwrap().is_empty());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_update_streams_in_chunks_and_strong_waits_for_every_shard() {
    let (node, client) = node("chunks").await;
    let pool = client
        .create_worker_pool(
            "big",
            "worker",
            7,
            PartitionStrategy::PartitionStrategyConsistentHash,
            HashMap::new(),
        )
        .await
        .unwrap();
    // Many chunks of UPDATE_CHUNK messages, none of them an oversized request.
    let count = UPDATE_CHUNK * 10 + 17;
    let updates: HashMap<String, Value> = (0..count)
        .map(|i| (format!("k{i}"), json!({"action": "set", "key": format!("k{i}"), "value": 1})))
        .collect();
    let done = client
        .parallel_update(&pool, updates, ConsistencyLevel::ConsistencyLevelStrong, false)
        .await
        .unwrap();
    assert_eq!((done.delivered, done.per_shard.iter().sum::<u64>()), (count as u64, count as u64));
    assert!(done.failures.is_empty() && done.replies.is_empty());
    let totals = client
        .parallel_reduce(
            &pool,
            json!({"action": "get_total_count"}),
            ShardGroupAggregationStrategy::ShardGroupAggregationSum,
            0,
        )
        .await
        .unwrap();
    assert_eq!(totals["keys_processed"], count as u64);

    // Large messages: chunks are cut by size too, under the node's 1 MiB request limit.
    let blob = "x".repeat(10_000);
    let large: HashMap<String, Value> = (0..300)
        .map(|i| {
            (format!("big{i}"), json!({"action": "set", "key": format!("big{i}"), "value": blob}))
        })
        .collect();
    let done = client
        .parallel_update(&pool, large, ConsistencyLevel::ConsistencyLevelEventual, false)
        .await
        .unwrap();
    assert_eq!(done.delivered, 300);

    // With wait, each key's reply.
    let some: HashMap<String, Value> = (0..10)
        .map(|i| (format!("k{i}"), json!({"action": "set", "key": format!("k{i}"), "value": 2})))
        .collect();
    let done = client
        .parallel_update(&pool, some, ConsistencyLevel::ConsistencyLevelEventual, true)
        .await
        .unwrap();
    assert_eq!(done.replies.len(), 10);
    assert_eq!(done.replies["k3"]["key"], "k3");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scatter_gather_past_its_deadline_returns_what_came_and_the_late_shard() {
    let (node, client) = node("deadline").await;
    let pool = client
        .create_worker_pool(
            "sleepy",
            "sleepy",
            4,
            PartitionStrategy::PartitionStrategyHash,
            HashMap::new(),
        )
        .await
        .unwrap();
    let gathered = client
        .scatter_gather(&pool, json!({"action": "go"}), Duration::from_millis(300))
        .await
        .unwrap();
    let shards: Vec<u32> = gathered.replies.iter().map(|(shard, _)| *shard).collect();
    assert_eq!(shards, [0, 2, 3]);
    assert_eq!(gathered.failures.len(), 1);
    assert_eq!((gathered.failures[0].shard, gathered.failures[0].code.as_str()), (1, "timeout"));
    let reduced = client
        .parallel_reduce_within(
            &pool,
            json!({}),
            ShardGroupAggregationStrategy::ShardGroupAggregationCount,
            4,
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert_eq!((reduced.result.clone(), reduced.replied, reduced.expected), (json!(3), 3, 4));
    let refused = client
        .parallel_reduce(
            &pool,
            json!({}),
            ShardGroupAggregationStrategy::ShardGroupAggregationCount,
            4,
        )
        .await;
    // Within the node's default deadline the slow shard answers: all four reply.
    assert_eq!(refused.unwrap(), json!(4));
    node.shutdown().await;
}
