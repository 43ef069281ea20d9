//! kameo 0.22 without its macros: every actor implements [`kameo::Actor`] (its struct is its
//! state and is passed in as the start arguments) and [`Message<M>`] once per message type.
//! All actors get unbounded mailboxes (`kameo::mailbox::unbounded`, like ractor's and the
//! tokio limit's) rather than kameo's default bounded one of 64, so a tell never waits and
//! actors telling each other (Big) cannot deadlock on full mailboxes. A tell is
//! `tell(msg).try_send()`, a synchronous enqueue; an ask is `ask(msg).send().await`, which
//! enqueues the message with a oneshot reply sender and awaits the handler's return value.
//! `spawn_with_mailbox` returns at once; the actor starts (`on_start`) in its own task.
//!
//! Timed regions include creating the actors (Savina style) except for Ask, whose samples are
//! timed one round trip at a time after the echo actor is up and warmed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kameo::actor::{Actor, ActorRef, Spawn};
use kameo::error::Infallible;
use kameo::mailbox;
use kameo::message::{Context, Message};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Countdown, Framework, Outcome, Workload, XorShift, drive, fj_work, multi_thread_runtime,
    neighbour, rss_bytes,
};

/// kameo on the 2-worker multi-thread tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kameo;

impl Framework for Kameo {
    fn name(&self) -> &'static str {
        "kameo"
    }

    fn flavour(&self) -> &'static str {
        "tokio multi-thread, 2 workers"
    }

    fn run(&self, workload: Workload) -> Option<Outcome> {
        let runtime = multi_thread_runtime();
        let outcome = drive(&runtime, async move { run_workload!(workload) });
        Some(outcome)
    }
}

/// Spawns `actor` (its own start arguments) with an unbounded mailbox.
fn start<A: Actor<Args = A>>(actor: A) -> ActorRef<A> {
    A::spawn_with_mailbox(actor, mailbox::unbounded())
}

/// Tells `msg` to `actor`: a synchronous enqueue, as the mailbox is unbounded.
fn tell<A: Message<M>, M: Send + 'static>(actor: &ActorRef<A>, msg: M) {
    actor
        .tell(msg)
        .try_send()
        .unwrap_or_else(|_| panic!("{} is not running", <A as Actor>::name()));
}

/// Stops the actors (after what is already in their mailboxes) and waits until they end.
async fn stop_all<A: Actor>(actors: &[ActorRef<A>]) {
    for actor in actors {
        actor.stop_gracefully().await.unwrap();
    }
    for actor in actors {
        actor.wait_for_shutdown().await;
    }
}

/// Implements `Actor` for a struct that is its own start argument and state.
macro_rules! plain_actor {
    ($($actor:ty),*) => {$(
        impl Actor for $actor {
            type Args = Self;
            type Error = Infallible;

            async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
                Ok(state)
            }
        }
    )*};
}

plain_actor!(Pinger, Ponger, Counter, RingNode, BigActor, FjActor, EchoActor, IdleActor);

// ---- PingPong ----

struct Pinger {
    n: u64,
    pongs: u64,
    ponger: Option<ActorRef<Ponger>>,
    done: Option<oneshot::Sender<u64>>,
}

/// Answers every ping with a pong to its pinger.
struct Ponger {
    pinger: ActorRef<Pinger>,
}

/// Gives the pinger its ponger and makes it send the first ping.
struct StartPinging(ActorRef<Ponger>);
struct Ping;
struct Pong;

impl Pinger {
    fn next(&mut self) {
        if self.pongs == self.n {
            self.done.take().expect("done twice").send(self.pongs).unwrap();
        } else {
            tell(self.ponger.as_ref().expect("no ponger"), Ping);
        }
    }
}

impl Message<StartPinging> for Pinger {
    type Reply = ();

    async fn handle(&mut self, StartPinging(ponger): StartPinging, _: &mut Context<Self, ()>) {
        self.ponger = Some(ponger);
        self.next();
    }
}

impl Message<Pong> for Pinger {
    type Reply = ();

    async fn handle(&mut self, _: Pong, _: &mut Context<Self, ()>) {
        self.pongs += 1;
        self.next();
    }
}

impl Message<Ping> for Ponger {
    type Reply = ();

    async fn handle(&mut self, _: Ping, _: &mut Context<Self, ()>) {
        tell(&self.pinger, Pong);
    }
}

async fn ping_pong(n: u64) -> Duration {
    let start_time = Instant::now();
    let (done_tx, done_rx) = oneshot::channel();
    let pinger = start(Pinger { n, pongs: 0, ponger: None, done: Some(done_tx) });
    let ponger = start(Ponger { pinger: pinger.clone() });
    tell(&pinger, StartPinging(ponger.clone()));
    let pongs = done_rx.await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(pongs, n);
    stop_all(&[pinger]).await;
    stop_all(&[ponger]).await;
    elapsed
}

// ---- Counting ----

struct Counter {
    count: u64,
}

struct Increment;
struct GetCount;

impl Message<Increment> for Counter {
    type Reply = ();

    async fn handle(&mut self, _: Increment, _: &mut Context<Self, ()>) {
        self.count += 1;
    }
}

impl Message<GetCount> for Counter {
    type Reply = u64;

    async fn handle(&mut self, _: GetCount, _: &mut Context<Self, u64>) -> u64 {
        self.count
    }
}

async fn counting(n: u64) -> Duration {
    let start_time = Instant::now();
    let counter = start(Counter { count: 0 });
    for _ in 0..n {
        tell(&counter, Increment);
    }
    let count = counter.ask(GetCount).send().await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(count, n);
    stop_all(&[counter]).await;
    elapsed
}

// ---- ThreadRing ----

/// Every ring member reaches its successor through the shared list, set once all are spawned.
type Ring = Arc<OnceLock<Vec<ActorRef<RingNode>>>>;

struct RingNode {
    index: u64,
    ring: Ring,
    done: mpsc::UnboundedSender<u64>,
}

/// The token: how many passes are left.
struct Token(u64);

impl Message<Token> for RingNode {
    type Reply = ();

    async fn handle(&mut self, Token(left): Token, _: &mut Context<Self, ()>) {
        if left == 0 {
            self.done.send(self.index).unwrap();
        } else {
            let ring = self.ring.get().expect("ring not set");
            tell(&ring[((self.index + 1) % ring.len() as u64) as usize], Token(left - 1));
        }
    }
}

async fn thread_ring(actors: u64, passes: u64) -> Duration {
    let start_time = Instant::now();
    let ring = Ring::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let nodes: Vec<_> = (0..actors)
        .map(|index| start(RingNode { index, ring: Arc::clone(&ring), done: done_tx.clone() }))
        .collect();
    ring.set(nodes.clone()).unwrap();
    tell(&nodes[0], Token(passes));
    let last = done_rx.recv().await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(last, passes % actors, "the token stopped at the wrong actor");
    stop_all(&nodes).await;
    elapsed
}

// ---- Big ----

/// All actors of a Big run, set once all are spawned.
type Peers = Arc<OnceLock<Vec<ActorRef<BigActor>>>>;

struct BigActor {
    me: u64,
    pings: u64,
    pongs: u64,
    rng: XorShift,
    peers: Peers,
    done: Arc<Countdown>,
}

/// Sent by the driver once every peer exists: send the first ping.
struct StartBig;
struct BigPing {
    from: u64,
}
struct BigPong;

impl BigActor {
    fn peers(&self) -> &[ActorRef<BigActor>] {
        self.peers.get().expect("peers not set")
    }

    fn ping_someone(&mut self) {
        let actors = self.peers().len() as u64;
        let to = neighbour(&mut self.rng, self.me, actors);
        tell(&self.peers()[to as usize], BigPing { from: self.me });
    }
}

impl Message<StartBig> for BigActor {
    type Reply = ();

    async fn handle(&mut self, _: StartBig, _: &mut Context<Self, ()>) {
        if self.pings == 0 {
            self.done.tick();
        } else {
            self.ping_someone();
        }
    }
}

impl Message<BigPing> for BigActor {
    type Reply = ();

    async fn handle(&mut self, BigPing { from }: BigPing, _: &mut Context<Self, ()>) {
        tell(&self.peers()[from as usize], BigPong);
    }
}

impl Message<BigPong> for BigActor {
    type Reply = ();

    async fn handle(&mut self, _: BigPong, _: &mut Context<Self, ()>) {
        self.pongs += 1;
        if self.pongs == self.pings {
            self.done.tick();
        } else {
            self.ping_someone();
        }
    }
}

async fn big(actors: u64, pings: u64) -> Duration {
    let start_time = Instant::now();
    let peers = Peers::default();
    let done = Countdown::new(actors);
    let all: Vec<_> = (0..actors)
        .map(|me| {
            start(BigActor {
                me,
                pings,
                pongs: 0,
                rng: XorShift::new(me + 1),
                peers: Arc::clone(&peers),
                done: Arc::clone(&done),
            })
        })
        .collect();
    peers.set(all.clone()).unwrap();
    for actor in &all {
        tell(actor, StartBig);
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    stop_all(&all).await;
    elapsed
}

// ---- FJCreate ----

/// Handles one message, then stops itself.
struct FjActor {
    done: Arc<Countdown>,
    total: Arc<AtomicU64>,
}

struct Go;

impl Message<Go> for FjActor {
    type Reply = ();

    async fn handle(&mut self, _: Go, ctx: &mut Context<Self, ()>) {
        self.total.fetch_add(fj_work(), Ordering::Relaxed);
        self.done.tick();
        ctx.stop();
    }
}

async fn fj_create(n: u64) -> Duration {
    let start_time = Instant::now();
    let done = Countdown::new(n);
    let total = Arc::new(AtomicU64::new(0));
    for _ in 0..n {
        let actor = start(FjActor { done: Arc::clone(&done), total: Arc::clone(&total) });
        tell(&actor, Go);
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    assert_eq!(total.load(Ordering::Relaxed), n * fj_work());
    elapsed
}

// ---- Ask ----

struct EchoActor;

struct Echo(u64);

impl Message<Echo> for EchoActor {
    /// The handler's return value is the reply.
    type Reply = u64;

    async fn handle(&mut self, Echo(value): Echo, _: &mut Context<Self, u64>) -> u64 {
        value
    }
}

/// One ask: `send` (rather than awaiting the request, which boxes it) enqueues the message
/// with a oneshot reply sender and awaits the reply.
async fn ask_once(echo: &ActorRef<EchoActor>, value: u64) -> u64 {
    echo.ask(Echo(value)).send().await.unwrap()
}

async fn ask(samples: u64) -> Outcome {
    let echo = start(EchoActor);
    for value in 0..1_000 {
        assert_eq!(ask_once(&echo, value).await, value);
    }
    let mut latencies_ns = Vec::with_capacity(samples as usize);
    let start_time = Instant::now();
    for value in 0..samples {
        let sent = Instant::now();
        let answer = ask_once(&echo, value).await;
        latencies_ns.push(sent.elapsed().as_nanos() as u64);
        assert_eq!(answer, value);
    }
    let elapsed = start_time.elapsed();
    stop_all(&[echo]).await;
    Outcome { elapsed, latencies_ns, bytes_per_actor: None }
}

// ---- Spawn and IdleMemory ----

/// Does nothing but count the messages it gets, if given a countdown.
struct IdleActor {
    done: Option<Arc<Countdown>>,
}

struct Touch;

impl Message<Touch> for IdleActor {
    type Reply = ();

    async fn handle(&mut self, _: Touch, _: &mut Context<Self, ()>) {
        if let Some(done) = &self.done {
            done.tick();
        }
    }
}

async fn spawn(n: u64) -> Duration {
    let start_time = Instant::now();
    let actors: Vec<_> = (0..n).map(|_| start(IdleActor { done: None })).collect();
    let elapsed = start_time.elapsed();
    assert_eq!(actors.len() as u64, n);
    stop_all(&actors).await;
    elapsed
}

async fn idle_memory(n: u64) -> Outcome {
    let before = rss_bytes();
    let start_time = Instant::now();
    let done = Countdown::new(n);
    let mut actors = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let actor = start(IdleActor { done: Some(Arc::clone(&done)) });
        tell(&actor, Touch);
        actors.push(actor);
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    stop_all(&actors).await;
    Outcome {
        elapsed,
        latencies_ns: Vec::new(),
        bytes_per_actor: Some(grown as f64 / n.max(1) as f64),
    }
}
