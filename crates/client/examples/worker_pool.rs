//! `examples/rust/worker_pool.rs`, as written: a node started in this process serves its
//! worker as `worker`, the orchestration runs over the client, and the totals are checked.
//!
//! `cargo run -p plexspaces-client --example worker_pool`
#![allow(
    clippy::all,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    unused,
    missing_debug_implementations
)]

use plexspaces_client::*;
use plexspaces_node::{Node, Options};
use plexspaces_sdk::prelude::*;

include!("../../../examples/rust/worker_pool.rs");

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir =
        std::env::temp_dir().join(format!("plexspaces-worker-pool-{}", std::process::id()));
    let options = Options {
        invoke_port: 0,
        admin_port: 0,
        grpc_port: 0,
        data_dir: data_dir.clone(),
        ..Options::default()
    };
    let node = Node::builder().options(options).register::<WorkerActor>("worker").start().await?;
    let client = PlexSpacesClient::connect(format!("http://{}", node.grpc_addr())).await?;

    orchestrate(&client).await?;

    let totals = client
        .parallel_reduce(
            "worker-pool-1",
            json!({ "action": "get_total_count" }),
            ShardGroupAggregationStrategy::ShardGroupAggregationSum,
            20,
        )
        .await?;
    println!("20 workers, 10,000 keys: {totals}");
    let expected: u64 = (0..10_000).sum();
    assert_eq!(totals["total"], expected, "the totals add up");
    assert_eq!(totals["keys_processed"], 10_000, "every key landed on exactly one shard");
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}
