//! Tell, ask, timeouts, errors and one-message-at-a-time.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;

use plexspaces_core::{Actor, Context, Error, ExitReason, Options};
use plexspaces_types::ErrorCode;

use crate::common::{Counter, CounterMsg, id, system};

#[tokio::test]
async fn tell_then_ask_sees_every_tell() {
    let system = system();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    for _ in 0..1000 {
        counter.tell(CounterMsg::Add(1)).unwrap();
    }
    assert_eq!(counter.ask(CounterMsg::Get).await.unwrap(), 1000);
}

#[tokio::test]
async fn spawning_a_taken_id_fails_and_lookup_finds_the_actor() {
    let system = system();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    let again = system.spawn(id("counter", "a"), Counter::default()).unwrap_err();
    assert_eq!(again, Error::AlreadyExists(id("counter", "a")));
    assert_eq!(again.code(), ErrorCode::AlreadyExists);
    let found = system.lookup::<Counter>(&id("counter", "a")).unwrap();
    assert_eq!(found, counter);
    let missing = system.lookup::<Counter>(&id("counter", "b")).unwrap_err();
    assert_eq!(missing, Error::NotFound(id("counter", "b")));
    let wrong = system.lookup::<crate::messaging::Gate>(&id("counter", "a")).unwrap_err();
    assert_eq!(wrong, Error::WrongType(id("counter", "a")));
}

#[tokio::test(start_paused = true)]
async fn an_ask_that_takes_too_long_times_out() {
    let system = system();
    let counter = system.spawn(id("counter", "slow"), Counter::default()).unwrap();
    let asked =
        counter.ask_timeout(CounterMsg::Sleep(Duration::from_secs(10)), Duration::from_secs(1));
    let error = asked.await.unwrap_err();
    assert_eq!(error, Error::Timeout { id: id("counter", "slow"), after: Duration::from_secs(1) });
    assert_eq!(error.code(), ErrorCode::Timeout);
    // The actor is still alive and answers once the sleep is over.
    assert_eq!(counter.ask(CounterMsg::Get).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_default_ask_timeout_applies() {
    let system =
        Options { ask_timeout: Duration::from_millis(50), ..Options::default() }.build().unwrap();
    let counter = system.spawn(id("counter", "slow"), Counter::default()).unwrap();
    let error = counter.ask(CounterMsg::Sleep(Duration::from_secs(1))).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { after, .. } if after == Duration::from_millis(50)));
}

#[tokio::test]
async fn a_stopped_actor_refuses_tell_and_ask() {
    let system = system();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    counter.ask(CounterMsg::Stop(ExitReason::Normal)).await.unwrap();
    assert_eq!(counter.stopped().await, ExitReason::Normal);
    assert_eq!(counter.tell(CounterMsg::Add(1)), Err(Error::Stopped(id("counter", "a"))));
    assert_eq!(counter.ask(CounterMsg::Get).await, Err(Error::Stopped(id("counter", "a"))));
    // Its id is free again.
    assert!(system.lookup_any(&id("counter", "a")).is_none());
    system.spawn(id("counter", "a"), Counter::default()).unwrap();
}

#[tokio::test]
async fn asks_queued_behind_a_stop_get_an_error_not_a_hang() {
    let system = system();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    counter.tell(CounterMsg::Sleep(Duration::from_millis(20))).unwrap();
    counter.tell(CounterMsg::Stop(ExitReason::Normal)).unwrap();
    let queued = counter.ask_timeout(CounterMsg::Get, Duration::from_secs(60)).await;
    assert_eq!(queued, Err(Error::Stopped(id("counter", "a"))));
}

#[tokio::test]
async fn a_panicking_handler_fails_the_ask_and_the_actor() {
    let system = system();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    let error = counter.ask(CounterMsg::Panic).await.unwrap_err();
    let reason = ExitReason::Panic("counter asked to panic".into());
    assert_eq!(error, Error::Failed { id: id("counter", "a"), reason: reason.clone() });
    assert_eq!(error.code(), ErrorCode::ActorError);
    assert_eq!(counter.stopped().await, reason);
}

/// Records how many handlers run at once; each handler yields in the middle.
#[derive(Debug)]
pub struct Gate {
    inside: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Actor for Gate {
    type Msg = ();
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, _: (), _: &mut Context<Self>) {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_micros(10)).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_at_a_time_even_with_concurrent_senders() {
    let system = system();
    let most = Arc::new(AtomicUsize::new(0));
    let gate = Gate { inside: Arc::default(), most: Arc::clone(&most) };
    let gate = system.spawn(id("gate", "g"), gate).unwrap();
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    if i % 2 == 0 { gate.tell(()).unwrap() } else { gate.ask(()).await.unwrap() }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    gate.ask(()).await.unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_from_outside_the_runtime_threads_are_delivered() {
    let system = system();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    let sender = counter.clone();
    std::thread::spawn(move || {
        for _ in 0..100 {
            sender.tell(CounterMsg::Add(2)).unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(counter.ask(CounterMsg::Get).await.unwrap(), 200);
}

/// Holds asks until it is told to release them, answering other messages meanwhile.
#[derive(Debug, Default)]
struct Barrier {
    waiting: Vec<plexspaces_core::ReplyTo<u64>>,
}

#[derive(Debug)]
enum BarrierMsg {
    Wait,
    Count,
    Release,
}

impl Actor for Barrier {
    type Msg = BarrierMsg;
    type Reply = u64;
    type Snapshot = ();

    async fn handle(&mut self, msg: BarrierMsg, ctx: &mut Context<Self>) -> u64 {
        match msg {
            BarrierMsg::Wait => {
                if let Some(reply) = ctx.defer_reply() {
                    self.waiting.push(reply);
                }
                0
            }
            BarrierMsg::Count => self.waiting.len() as u64,
            BarrierMsg::Release => {
                let released = self.waiting.len() as u64;
                for reply in self.waiting.drain(..) {
                    reply.send(released);
                }
                released
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_reply_answers_the_asker_later_while_the_actor_keeps_serving() {
    let system = system();
    let barrier = system.spawn(id("barrier", "b"), Barrier::default()).unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let barrier = barrier.clone();
            tokio::spawn(async move { barrier.ask(BarrierMsg::Wait).await })
        })
        .collect();
    // The actor answers other messages while the three asks wait.
    while barrier.ask(BarrierMsg::Count).await.unwrap() < 3 {
        tokio::task::yield_now().await;
    }
    // A tell has no reply to defer.
    barrier.tell(BarrierMsg::Wait).unwrap();
    assert_eq!(barrier.ask(BarrierMsg::Release).await.unwrap(), 3);
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), 3);
    }
    // A deferred reply that is dropped unsent is an error for the asker, not a hang.
    let asker = barrier.clone();
    let dropped = tokio::spawn(async move { asker.ask(BarrierMsg::Wait).await });
    while barrier.ask(BarrierMsg::Count).await.unwrap() < 1 {
        tokio::task::yield_now().await;
    }
    barrier.stop(ExitReason::Normal);
    assert_eq!(dropped.await.unwrap(), Err(Error::Stopped(id("barrier", "b"))));
}

/// Spins a little on every message and counts them.
struct Busy(Arc<AtomicUsize>);

impl Actor for Busy {
    type Msg = ();
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, (): (), _: &mut Context<Self>) {
        for step in 0..2_000u64 {
            std::hint::black_box(step);
        }
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn a_busy_actor_yields_its_thread_to_other_actors() {
    // One thread: the other actor only runs when the busy one's turn yields.
    let system = system();
    let handled = Arc::new(AtomicUsize::new(0));
    let busy = system.spawn(id("busy", "a"), Busy(Arc::clone(&handled))).unwrap();
    let counter = system.spawn(id("counter", "a"), Counter::default()).unwrap();
    const SENT: usize = 100_000;
    for _ in 0..SENT {
        busy.tell(()).unwrap();
    }
    counter.ask(CounterMsg::Get).await.unwrap();
    let handled_before_the_reply = handled.load(Ordering::Relaxed);
    assert!(
        handled_before_the_reply < SENT / 2,
        "the other actor waited for {handled_before_the_reply} of the busy actor's messages"
    );
    busy.ask(()).await.unwrap();
    assert_eq!(handled.load(Ordering::Relaxed), SENT + 1);
}

/// A counter that shows its state.
struct Shown(u64);

impl Actor for Shown {
    type Msg = u64;
    type Reply = u64;
    type Snapshot = ();

    async fn handle(&mut self, amount: u64, _: &mut Context<Self>) -> u64 {
        self.0 += amount;
        self.0
    }

    fn inspect(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "count": self.0 }))
    }
}

#[tokio::test]
async fn inspect_reads_the_state_between_messages() {
    let system = system();
    let shown = system.spawn(id("shown", "a"), Shown(0)).unwrap();
    shown.tell(2).unwrap();
    shown.tell(3).unwrap();
    let state = shown.as_any().inspect(Duration::from_secs(5)).await.unwrap();
    assert_eq!(state, Some(serde_json::json!({ "count": 5 })), "after the queued messages");
    let hidden = system.spawn(id("counter", "h"), Counter::default()).unwrap();
    assert_eq!(hidden.as_any().inspect(Duration::from_secs(5)).await.unwrap(), None);
    shown.stop(ExitReason::Normal);
    shown.stopped().await;
    let stopped = shown.as_any().inspect(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(stopped.code(), ErrorCode::ActorStopped);
}

#[tokio::test]
async fn a_stopped_actor_hands_the_message_back() {
    let system = system();
    let counter = system.spawn(id("counter", "t"), Counter::default()).unwrap();
    assert!(counter.try_tell(CounterMsg::Add(1)).is_ok());
    let reply = counter.try_ask(CounterMsg::Get, Duration::from_secs(5)).ok().unwrap();
    assert_eq!(reply.await.unwrap(), 1);
    counter.stop(ExitReason::Normal);
    counter.stopped().await;
    assert!(matches!(counter.try_tell(CounterMsg::Add(7)), Err(CounterMsg::Add(7))));
    assert!(matches!(
        counter.try_ask(CounterMsg::Get, Duration::from_secs(5)),
        Err(CounterMsg::Get)
    ));
    // The stopped actor left the directory at once: its id can be spawned again.
    assert!(system.lookup_any(&id("counter", "t")).is_none());
    assert!(system.spawn(id("counter", "t"), Counter::default()).is_ok());
}
