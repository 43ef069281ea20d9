//! Worker pools against a caller that sends each message itself, in the same run: an update
//! of 10,000 and 1,000,000 keys (`parallel_update`, eventual, against one gRPC tell per key,
//! 64 in flight), and the latency of a `parallel_map` over 20 and 200 shards (against one gRPC
//! ask per shard, all at once). The node runs in this process, on the embedded defaults, with
//! the worker of `examples/rust/worker_pool.rs`.
//!
//! `cargo run --release -p plexspaces-client --example bench_pools [-- --quick]`
#![allow(
    clippy::all,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    unused,
    missing_debug_implementations
)]

use std::time::{Duration, Instant};

use futures_util::{StreamExt, future::join_all, stream};
use plexspaces_client::*;
use plexspaces_node::{Node, Options};
use plexspaces_sdk::prelude::*;

include!("../../../examples/rust/worker_actor.rs");

fn updates(pool: &str, count: usize) -> HashMap<String, Value> {
    (0..count)
        .map(|i| {
            let key = format!("{pool}-key-{i:07}");
            (key.clone(), json!({ "action": "set", "key": key, "value": i }))
        })
        .collect()
}

/// Waits until every shard has handled what it was sent (a map is behind it in each mailbox).
async fn settled(client: &PlexSpacesClient, pool: &str, keys: usize) {
    let totals = client
        .parallel_reduce(
            pool,
            json!({"action": "get_total_count"}),
            ShardGroupAggregationStrategy::ShardGroupAggregationSum,
            0,
        )
        .await
        .unwrap();
    assert_eq!(totals["keys_processed"], keys, "{totals}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let data_dir =
        std::env::temp_dir().join(format!("plexspaces-bench-pools-{}", std::process::id()));
    let options = Options {
        invoke_port: 0,
        admin_port: 0,
        grpc_port: 0,
        data_dir: data_dir.clone(),
        ..Options::default()
    };
    let node =
        Node::builder().options(options).register::<WorkerActor>("worker").start().await.unwrap();
    let client = PlexSpacesClient::connect(format!("http://{}", node.grpc_addr())).await.unwrap();

    println!(
        "| workload | ours (parallel_update / parallel_map) | caller sending each message | ratio |"
    );
    println!("|---|---|---|---|");
    let sizes: &[usize] = if quick { &[10_000] } else { &[10_000, 1_000_000] };
    for &count in sizes {
        let ours_pool = format!("u{count}");
        client
            .create_worker_pool(
                &ours_pool,
                "worker",
                20,
                PartitionStrategy::PartitionStrategyHash,
                HashMap::new(),
            )
            .await
            .unwrap();
        let batch = updates(&ours_pool, count);
        let started = Instant::now();
        let done = client
            .parallel_update(&ours_pool, batch, ConsistencyLevel::ConsistencyLevelEventual, false)
            .await
            .unwrap();
        let ours = started.elapsed();
        assert_eq!(done.delivered, count as u64);
        settled(&client, &ours_pool, count).await;
        let ours_handled = started.elapsed();

        // The same messages, each sent by the caller to its shard over gRPC (64 in flight).
        let theirs_pool = format!("t{count}");
        client
            .create_worker_pool(
                &theirs_pool,
                "worker",
                20,
                PartitionStrategy::PartitionStrategyHash,
                HashMap::new(),
            )
            .await
            .unwrap();
        let shards = client.get_worker_pool(&theirs_pool).await.unwrap().shard_actor_ids;
        let batch: Vec<(String, Value)> = updates(&theirs_pool, count).into_iter().collect();
        let started = Instant::now();
        stream::iter(batch.into_iter().enumerate())
            .map(|(i, (_, message))| {
                let client = client.clone();
                let shard = shards[i % shards.len()].clone();
                async move { client.tell("worker", &shard, message).await.unwrap() }
            })
            .buffer_unordered(64)
            .for_each(|_| async {})
            .await;
        let theirs = started.elapsed();
        settled(&client, &theirs_pool, count).await;
        let theirs_handled = started.elapsed();
        let rate = |elapsed: Duration| count as f64 / elapsed.as_secs_f64();
        println!(
            "| update {count} keys, 20 shards: in the mailboxes | {:.0} ms ({:.0} msg/s) | {:.0} ms ({:.0} msg/s) | {:.1}x |",
            ours.as_secs_f64() * 1e3,
            rate(ours),
            theirs.as_secs_f64() * 1e3,
            rate(theirs),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
        println!(
            "| update {count} keys, 20 shards: handled | {:.0} ms | {:.0} ms | {:.1}x |",
            ours_handled.as_secs_f64() * 1e3,
            theirs_handled.as_secs_f64() * 1e3,
            theirs_handled.as_secs_f64() / ours_handled.as_secs_f64()
        );
        client.delete_worker_pool(&ours_pool).await.unwrap();
        client.delete_worker_pool(&theirs_pool).await.unwrap();
    }

    let rounds = if quick { 50 } else { 300 };
    for shards in [20u32, 200] {
        let pool = format!("m{shards}");
        client
            .create_worker_pool(
                &pool,
                "worker",
                shards,
                PartitionStrategy::PartitionStrategyHash,
                HashMap::new(),
            )
            .await
            .unwrap();
        let ids = client.get_worker_pool(&pool).await.unwrap().shard_actor_ids;
        let message = json!({"action": "get_total_count"});
        // Every shard active before timing.
        client.parallel_map(&pool, message.clone()).await.unwrap();
        let mut ours = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            let replies = client.parallel_map(&pool, message.clone()).await.unwrap();
            ours.push(started.elapsed());
            assert_eq!(replies.len(), shards as usize);
        }
        let mut theirs = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            let replies =
                join_all(ids.iter().map(|id| client.ask("worker", id, message.clone()))).await;
            theirs.push(started.elapsed());
            assert!(replies.iter().all(Result::is_ok));
        }
        ours.sort();
        theirs.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| map over {shards} shards: p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.1}x (p50) |",
            ms(percentile(&ours, 0.5)),
            ms(percentile(&ours, 0.99)),
            ms(percentile(&theirs, 0.5)),
            ms(percentile(&theirs, 0.99)),
            ms(percentile(&theirs, 0.5)) / ms(percentile(&ours, 0.5))
        );
    }
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
