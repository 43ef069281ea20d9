//! Counting and ask through a `#[gen_server_actor]` actor (no facets): the SDK's message path
//! (a `Message` with an action, `Handlers::dispatch`, a `Result<Value, BehaviorError>` reply)
//! on the same runtime as `ours`.

use std::time::{Duration, Instant};

use plexspaces_core::{Options, facet::FacetMetrics};
use plexspaces_sdk::prelude::*;
use plexspaces_types::ActorId;

use crate::{Framework, Outcome, Workload, drive, multi_thread_runtime};

/// The SDK on the 2-worker multi-thread runtime, with no facets or with the built-in
/// `metrics` facet.
#[derive(Debug, Clone, Copy, Default)]
pub struct OursSdk {
    /// Attach the `metrics` facet.
    pub metrics_facet: bool,
}

#[gen_server_actor]
struct SdkCounter {
    count: u64,
}

#[plexspaces_handlers]
impl SdkCounter {
    #[handler("increment")]
    async fn increment(
        &mut self,
        _ctx: &ActorContext,
        _msg: &Message,
    ) -> Result<Value, BehaviorError> {
        self.count += 1;
        Ok(Value::Null)
    }

    #[handler("get")]
    async fn get(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!(self.count))
    }
}

impl Framework for OursSdk {
    fn name(&self) -> &'static str {
        if self.metrics_facet {
            "plexspaces SDK GenServer + metrics facet"
        } else {
            "plexspaces SDK GenServer"
        }
    }

    fn flavour(&self) -> &'static str {
        "tokio multi-thread, 2 workers"
    }

    fn run(&self, workload: Workload) -> Option<Outcome> {
        if !matches!(workload, Workload::Counting { .. } | Workload::Ask { .. }) {
            return None;
        }
        let runtime = multi_thread_runtime();
        let metrics_facet = self.metrics_facet;
        Some(drive(&runtime, async move {
            let system = Options::default().build().unwrap();
            let id = ActorId::parse("bench/default/counter/sdk").unwrap();
            let actor = if metrics_facet {
                let registry = FacetRegistry::with_builtins(FacetMetrics::default());
                let chain = registry.build(&[("metrics", Value::Null)]).unwrap();
                GenServer::with_facets(SdkCounter::default(), chain)
            } else {
                GenServer::<SdkCounter>::default()
            };
            let counter = system.spawn(id, actor).unwrap();
            let outcome = match workload {
                Workload::Counting { n } => {
                    let start = Instant::now();
                    for _ in 0..n {
                        counter.tell(Message::new("increment", Vec::new())).unwrap();
                    }
                    let total =
                        counter.ask(Message::new("get", Vec::new())).await.unwrap().unwrap();
                    let elapsed = start.elapsed();
                    assert_eq!(total, json!(n));
                    Outcome { elapsed, ..Outcome::default() }
                }
                Workload::Ask { samples } => {
                    for _ in 0..1000 {
                        counter.ask(Message::new("get", Vec::new())).await.unwrap().unwrap();
                    }
                    let mut latencies_ns = Vec::with_capacity(samples as usize);
                    let start = Instant::now();
                    for _ in 0..samples {
                        let sent = Instant::now();
                        counter.ask(Message::new("get", Vec::new())).await.unwrap().unwrap();
                        latencies_ns.push(sent.elapsed().as_nanos() as u64);
                    }
                    Outcome { elapsed: start.elapsed(), latencies_ns, bytes_per_actor: None }
                }
                _ => Outcome::default(),
            };
            system.shutdown(Duration::from_secs(10)).await;
            outcome
        }))
    }
}

/// The bare runtime carrying a message as large as the SDK's `Message` (72 bytes): separates
/// what the SDK's machinery costs from what moving a larger message costs.
#[derive(Debug, Clone, Copy, Default)]
pub struct OursLargeMessage;

#[derive(Debug, Default)]
struct LargeCounter {
    count: u64,
}

impl plexspaces_core::Actor for LargeCounter {
    type Msg = [u64; 9];
    type Reply = u64;
    type Snapshot = ();

    async fn handle(&mut self, msg: [u64; 9], _: &mut plexspaces_core::Context<Self>) -> u64 {
        self.count += msg[0];
        self.count
    }
}

impl Framework for OursLargeMessage {
    fn name(&self) -> &'static str {
        "plexspaces, 72-byte message"
    }

    fn flavour(&self) -> &'static str {
        "tokio multi-thread, 2 workers"
    }

    fn run(&self, workload: Workload) -> Option<Outcome> {
        let Workload::Counting { n } = workload else { return None };
        let runtime = multi_thread_runtime();
        Some(drive(&runtime, async move {
            let system = Options::default().build().unwrap();
            let id = ActorId::parse("bench/default/counter/large").unwrap();
            let counter = system.spawn(id, LargeCounter::default()).unwrap();
            let start = Instant::now();
            for _ in 0..n {
                counter.tell([1; 9]).unwrap();
            }
            let total = counter.ask([0; 9]).await.unwrap();
            let elapsed = start.elapsed();
            assert_eq!(total, n);
            system.shutdown(Duration::from_secs(10)).await;
            Outcome { elapsed, ..Outcome::default() }
        }))
    }
}
