//! The node in-process: its HTTP and gRPC front doors over native actors, on ports chosen at
//! random. (The real binary is tested end to end in the CLI crate.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/http.rs"]
mod http;

mod channels;
mod coordination;
mod durable;
mod errors;
mod fuzz;
mod grpc;
mod invoke;
mod operations;
mod pools;
mod registry_blobs;
mod workflow;

use std::{net::SocketAddr, time::Duration};

use plexspaces_node::{Node, NodeBuilder, Options, RunningNode};
use plexspaces_sdk::prelude::*;

/// A node on its own runtime, so tests can use the blocking HTTP client.
#[derive(Debug)]
pub struct TestNode {
    pub node: Option<RunningNode>,
    pub runtime: tokio::runtime::Runtime,
}

impl TestNode {
    pub fn start(options: Options) -> Self {
        Self::start_with(options, |builder| builder)
    }

    pub fn start_with(options: Options, extra: impl FnOnce(NodeBuilder) -> NodeBuilder) -> Self {
        // A data directory per node: nodes of one test binary run at once, and a data
        // directory belongs to one node at a time.
        static NODES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self::start_in(&data_dir(&format!("node-{n}")), options, extra)
    }

    /// A node on the data directory `dir`, which a node started before may have left.
    pub fn start_in(
        dir: &std::path::Path,
        options: Options,
        extra: impl FnOnce(NodeBuilder) -> NodeBuilder,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data_dir = dir.to_path_buf();
        let options = Options { invoke_port: 0, admin_port: 0, grpc_port: 0, data_dir, ..options };
        let builder = Node::builder()
            .options(options)
            .register::<Echo>("echo")
            .register::<Slow>("slow")
            .register::<Failing>("failing");
        let node = runtime.block_on(extra(builder).start()).unwrap();
        Self { node: Some(node), runtime }
    }

    pub fn node(&self) -> &RunningNode {
        self.node.as_ref().unwrap()
    }

    pub fn invoke(&self) -> SocketAddr {
        self.node().invoke_addr()
    }

    pub fn admin(&self) -> SocketAddr {
        self.node().admin_addr()
    }
}

/// A data directory of this test process named `name` (not created).
pub fn data_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("plexspaces-node-it-{}-{name}", std::process::id()))
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            self.runtime.block_on(node.shutdown());
        }
    }
}

#[gen_server_actor]
#[derive(Debug, Serialize, Deserialize)]
pub struct Echo {
    received: u64,
}

#[plexspaces_handlers]
impl Echo {
    #[handler("*")]
    async fn echo(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        self.received += 1;
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        Ok(json!({ "action": msg.action(), "echo": payload, "received": self.received }))
    }
}

#[gen_server_actor]
#[derive(Debug)]
pub struct Slow {}

#[plexspaces_handlers]
impl Slow {
    #[handler("sleep")]
    async fn sleep(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        let ms = payload["ms"].as_u64().unwrap_or(100);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({ "slept_ms": ms }))
    }
}

#[gen_server_actor]
#[derive(Debug)]
pub struct Failing {}

#[plexspaces_handlers]
impl Failing {
    #[handler("fail")]
    async fn fail(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Err(BehaviorError::ProcessingError("the ledger is closed".into()))
    }
}
