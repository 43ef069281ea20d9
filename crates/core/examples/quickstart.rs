//! A tour of the runtime: a supervised counter that crashes and comes back, asks with a
//! timeout, a monitor's down notice, and a virtual actor that deactivates when idle.
//!
//! Run it with `make run` (or `cargo run -p plexspaces-core --example quickstart`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use plexspaces_core::{
    Actor, Context, Down, ExitReason, Options,
    supervisor::{ChildSpec, Restart, Strategy, SupervisorSpec},
};
use plexspaces_types::ActorId;

#[derive(Debug, Default)]
struct Counter {
    count: i64,
}

#[derive(Debug)]
enum CounterMsg {
    Add(i64),
    Crash,
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type Reply = i64;
    type Snapshot = i64;

    async fn handle(&mut self, msg: CounterMsg, _: &mut Context<Self>) -> i64 {
        match msg {
            CounterMsg::Add(amount) => self.count += amount,
            CounterMsg::Crash => panic!("the counter was asked to crash"),
        }
        self.count
    }

    async fn activate(
        &mut self,
        saved: Option<i64>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ExitReason> {
        self.count = saved.unwrap_or(0);
        println!("  {} activated with count {}", ctx.id(), self.count);
        Ok(())
    }

    async fn deactivate(&mut self, ctx: &mut Context<Self>) -> Option<i64> {
        println!("  {} deactivated, keeping count {}", ctx.id(), self.count);
        Some(self.count)
    }
}

/// Monitors whatever it is given and prints the down notices.
#[derive(Debug)]
struct Observer;

impl Actor for Observer {
    type Msg = plexspaces_core::AnyRef;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, target: plexspaces_core::AnyRef, ctx: &mut Context<Self>) {
        ctx.monitor(&target);
    }

    async fn on_down(&mut self, down: Down, _: &mut Context<Self>) {
        println!("  observer: {} ({}) went down: {}", down.id, down.pid, down.reason);
    }
}

fn id(path: &str) -> ActorId {
    ActorId::parse(path).expect("a valid actor id")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The runtime catches actor panics; print them on one line instead of with a backtrace.
    std::panic::set_hook(Box::new(|info| println!("  (panic caught by the runtime: {info})")));
    let system = Options { reaper_interval: Duration::from_millis(50), ..Options::default() }
        .build()
        .expect("inside a tokio runtime");

    println!("1. a supervisor with one counter child (one_for_one, 3 restarts in 5 s)");
    let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(3, Duration::from_secs(5)).child(
        ChildSpec::worker(id("demo/default/counter/c1"), Restart::Permanent, Counter::default),
    );
    let supervisor =
        system.spawn_supervisor(id("demo/default/supervisor/root"), spec).await.unwrap();
    let counter = system.lookup::<Counter>(&id("demo/default/counter/c1")).unwrap();
    println!("  ask Add(5) -> {}", counter.ask(CounterMsg::Add(5)).await.unwrap());

    println!("2. an observer monitors the counter; the counter crashes");
    let observer = system.spawn(id("demo/default/observer/o1"), Observer).unwrap();
    observer.ask(counter.as_any()).await.unwrap();
    let failed = counter.ask(CounterMsg::Crash).await.unwrap_err();
    println!("  the ask failed with [{}] {failed}", failed.code());
    counter.stopped().await;
    supervisor.which_children().await.unwrap();
    let restarted = system.lookup::<Counter>(&id("demo/default/counter/c1")).unwrap();
    println!("  restarted as {} (was {}); count starts again at 0", restarted.pid(), counter.pid());
    println!("  ask Add(1) -> {}", restarted.ask(CounterMsg::Add(1)).await.unwrap());

    println!("3. a virtual actor deactivates after 200 ms idle and comes back with its state");
    let virtual_counter = system
        .spawn_virtual(id("demo/default/counter/v1"), Duration::from_millis(200), Counter::default)
        .unwrap();
    virtual_counter.ask(CounterMsg::Add(41)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    println!("  lifecycle while idle: {}", virtual_counter.lifecycle());
    println!("  ask Add(1) -> {}", virtual_counter.ask(CounterMsg::Add(1)).await.unwrap());

    println!("4. shutdown");
    system.shutdown(Duration::from_secs(5)).await;
    println!("  actors left: {}", system.actor_count());
}
