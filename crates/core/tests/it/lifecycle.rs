//! Lifecycle states, hooks, gauges, virtual activation and idle deactivation.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use plexspaces_core::{ExitReason, Lifecycle, Options, System};

use crate::common::{Counter, CounterMsg, Tally, id};

/// A system whose observer records every transition.
fn observed() -> (System, Arc<Mutex<Vec<Lifecycle>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let options = Options {
        reaper_interval: Duration::from_millis(100),
        observer: Some(Arc::new(move |_, _, state| record.lock().push(state))),
        ..Options::default()
    };
    (options.build().unwrap(), seen)
}

#[tokio::test]
async fn an_actor_activates_on_its_first_message_and_terminates_on_stop() {
    let (system, seen) = observed();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    assert_eq!(counter.lifecycle(), Lifecycle::Created);
    assert_eq!(system.actors_in(Lifecycle::Created), 1);
    counter.ask(CounterMsg::Add(1)).await.unwrap();
    assert_eq!(counter.lifecycle(), Lifecycle::Active);
    assert_eq!(system.actors_in(Lifecycle::Active), 1);
    assert_eq!(system.actors_in(Lifecycle::Created), 0);
    counter.stop(ExitReason::Shutdown);
    assert_eq!(counter.stopped().await, ExitReason::Shutdown);
    assert_eq!(counter.lifecycle(), Lifecycle::Terminated);
    assert_eq!(
        *seen.lock(),
        [Lifecycle::Activating, Lifecycle::Active, Lifecycle::Deactivating, Lifecycle::Terminated]
    );
    assert_eq!(system.actors_in(Lifecycle::Active), 0);
    assert_eq!(system.actors_in(Lifecycle::Terminated), 1);
}

#[tokio::test]
async fn a_panic_leaves_the_actor_failed_without_running_its_hooks() {
    let (system, seen) = observed();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    counter.tell(CounterMsg::Panic).unwrap();
    assert!(matches!(counter.stopped().await, ExitReason::Panic(_)));
    assert_eq!(counter.lifecycle(), Lifecycle::Failed);
    assert_eq!(*seen.lock(), [Lifecycle::Activating, Lifecycle::Active, Lifecycle::Failed]);
    assert_eq!(system.actors_in(Lifecycle::Failed), 1);
}

#[tokio::test]
async fn stopping_an_actor_that_never_ran_skips_activation() {
    let (system, seen) = observed();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    counter.stop(ExitReason::Normal);
    assert_eq!(counter.stopped().await, ExitReason::Normal);
    assert_eq!(*seen.lock(), [Lifecycle::Terminated]);
    assert_eq!(system.actors_in(Lifecycle::Created), 0);
}

#[tokio::test]
async fn a_failing_activation_fails_the_actor_and_its_askers() {
    #[derive(Debug)]
    struct Broken;
    impl plexspaces_core::Actor for Broken {
        type Msg = ();
        type Reply = ();
        type Snapshot = ();
        async fn handle(&mut self, _: (), _: &mut plexspaces_core::Context<Self>) {}
        async fn activate(
            &mut self,
            _: Option<()>,
            _: &mut plexspaces_core::Context<Self>,
        ) -> Result<(), ExitReason> {
            Err(ExitReason::error("no database"))
        }
    }
    let (system, _) = observed();
    let broken = system.spawn(id("broken", "a"), Broken).unwrap();
    assert!(broken.ask(()).await.is_err());
    assert_eq!(broken.stopped().await, ExitReason::error("no database"));
    assert_eq!(broken.lifecycle(), Lifecycle::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_virtual_actor_deactivates_when_idle_and_comes_back_with_its_snapshot() {
    let (system, seen) = observed();
    let built = Tally::default();
    let factory_built = built.clone();
    let counter = system
        .spawn_virtual(id("counter", "v"), Duration::from_secs(1), move || {
            factory_built.bump();
            Counter::default()
        })
        .unwrap();
    assert_eq!(built.get(), 0, "nothing is built before the first message");
    assert_eq!(counter.ask(CounterMsg::Add(5)).await.unwrap(), 5);
    assert_eq!(built.get(), 1);

    // Busy actors stay active: messages every 500 ms for 3 s.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        counter.ask(CounterMsg::Add(1)).await.unwrap();
        assert_eq!(counter.lifecycle(), Lifecycle::Active);
    }
    // Idle past the timeout (plus one reaper tick): deactivated, object dropped.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(counter.lifecycle(), Lifecycle::Inactive);
    assert_eq!(system.actors_in(Lifecycle::Inactive), 1);
    // The next message reactivates it with the snapshot.
    assert_eq!(counter.ask(CounterMsg::Add(1)).await.unwrap(), 12);
    assert_eq!(built.get(), 2);
    assert_eq!(
        *seen.lock(),
        [
            Lifecycle::Activating,
            Lifecycle::Active,
            Lifecycle::Deactivating,
            Lifecycle::Inactive,
            Lifecycle::Activating,
            Lifecycle::Active,
        ]
    );
    // Still reachable by id while inactive, and deactivates again.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(counter.lifecycle(), Lifecycle::Inactive);
    assert!(system.lookup::<Counter>(&id("counter", "v")).is_ok());
}

#[tokio::test(start_paused = true)]
async fn system_shutdown_stops_every_actor() {
    let (system, _) = observed();
    let refs: Vec<_> = (0..10)
        .map(|i| system.spawn(id("counter", &i.to_string()), Counter::default()).unwrap())
        .collect();
    for counter in &refs[..5] {
        counter.ask(CounterMsg::Add(1)).await.unwrap();
    }
    system.shutdown(Duration::from_secs(1)).await;
    assert_eq!(system.actor_count(), 0);
    for counter in &refs {
        assert!(counter.lifecycle().is_final());
    }
    assert!(system.spawn(id("counter", "late"), Counter::default()).is_err());
}

#[tokio::test(start_paused = true)]
async fn shutdown_kills_an_actor_that_does_not_stop_in_time() {
    let (system, _) = observed();
    let counter = system.spawn(id("counter", "slow"), Counter::default()).unwrap();
    counter.tell(CounterMsg::Sleep(Duration::from_secs(60))).unwrap();
    tokio::task::yield_now().await;
    let reason = counter.as_any().shutdown(ExitReason::Shutdown, Duration::from_secs(1)).await;
    assert_eq!(reason, ExitReason::Killed);
    assert_eq!(counter.lifecycle(), Lifecycle::Failed);
    assert!(counter.tell(CounterMsg::Get).is_err());
}

#[tokio::test]
async fn idle_actors_hold_no_task_beyond_the_lingering_bound() {
    let (system, _) = observed();
    let before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let mut refs = Vec::new();
    for i in 0..2000 {
        let counter = system.spawn(id("counter", &i.to_string()), Counter::default()).unwrap();
        counter.ask(CounterMsg::Add(1)).await.unwrap();
        refs.push(counter);
    }
    // Released turns end once they are polled again.
    tokio::task::yield_now().await;
    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks() - before;
    // One thread: at most 256 recently active actors keep a parked turn; the others none.
    assert!(tasks <= 256 + 1, "{tasks} tasks for 2000 idle actors");
    assert_eq!(system.actors_in(Lifecycle::Active), 2000);
    // A lingering actor and a released one both answer.
    assert_eq!(refs[1999].ask(CounterMsg::Get).await.unwrap(), 1);
    assert_eq!(refs[0].ask(CounterMsg::Get).await.unwrap(), 1);
}
