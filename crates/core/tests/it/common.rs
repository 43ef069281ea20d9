//! Actors and helpers shared by the tests.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;

use plexspaces_core::{Actor, Context, ExitReason, Options, System};
use plexspaces_types::ActorId;

/// `acme/default/<actor_type>/<key>`.
pub fn id(actor_type: &str, key: &str) -> ActorId {
    ActorId::parse(&format!("acme/default/{actor_type}/{key}")).unwrap()
}

pub fn system() -> System {
    Options::default().build().unwrap()
}

/// A counter that can also be told to fail or stop.
#[derive(Debug, Default)]
pub struct Counter {
    pub count: u64,
}

#[derive(Debug)]
pub enum CounterMsg {
    Add(u64),
    Get,
    Panic,
    Stop(ExitReason),
    Sleep(Duration),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type Reply = u64;
    type Snapshot = u64;

    async fn handle(&mut self, msg: CounterMsg, ctx: &mut Context<Self>) -> u64 {
        match msg {
            CounterMsg::Add(n) => self.count += n,
            CounterMsg::Get => {}
            CounterMsg::Panic => panic!("counter asked to panic"),
            CounterMsg::Stop(reason) => ctx.stop(reason),
            CounterMsg::Sleep(pause) => tokio::time::sleep(pause).await,
        }
        self.count
    }

    async fn activate(
        &mut self,
        snapshot: Option<u64>,
        _: &mut Context<Self>,
    ) -> Result<(), ExitReason> {
        if let Some(count) = snapshot {
            self.count = count;
        }
        Ok(())
    }

    async fn deactivate(&mut self, _: &mut Context<Self>) -> Option<u64> {
        Some(self.count)
    }
}

/// Counts how often something happened (starts of a child, for example).
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<AtomicUsize>);

impl Tally {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
