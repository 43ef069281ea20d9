//! actix 0.13 on its own runtime: an actix `System` (a current-thread tokio runtime with a
//! local task set, the single arbiter) built per run. The timed work is spawned onto it with
//! `actix_rt::spawn`, so the driver and every actor share that one thread. Every actor is an
//! [`actix::Actor`] with a [`Context`]; every message type implements [`actix::Message`] and
//! its actor a [`Handler`]. A tell is `Addr::do_send` (enqueues even past the mailbox's
//! capacity of 16, so it never waits); an ask is `Addr::send(msg).await`, which enqueues the
//! message with a oneshot sender for the handler's result and awaits it.
//!
//! Timed regions include creating the actors (Savina style) except for Ask, whose samples are
//! timed one round trip at a time after the echo actor is up and warmed. Actors still alive at
//! the end of a run (those holding each other's addresses) end when the run drops its System.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, Context, Handler, Message};
use tokio::sync::{mpsc, oneshot};

use crate::{Countdown, Framework, Outcome, Workload, XorShift, fj_work, neighbour, rss_bytes};

/// actix actors on an actix System.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actix;

impl Framework for Actix {
    fn name(&self) -> &'static str {
        "actix"
    }

    fn flavour(&self) -> &'static str {
        "actix System (single-thread arbiter)"
    }

    fn run(&self, workload: Workload) -> Option<Outcome> {
        let system = actix_rt::System::new();
        let outcome = system.block_on(async move {
            let work = actix_rt::spawn(async move { run_workload!(workload) });
            work.await.unwrap()
        });
        Some(outcome)
    }
}

/// Declares message types whose handlers return `$result`.
macro_rules! messages {
    ($result:ty: $($msg:ty),*) => {$(
        impl Message for $msg {
            type Result = $result;
        }
    )*};
}

/// Declares actors that run in a plain [`Context`].
macro_rules! actors {
    ($($actor:ty),*) => {$(
        impl Actor for $actor {
            type Context = Context<Self>;
        }
    )*};
}

actors!(Pinger, Ponger, Counter, RingNode, BigActor, FjActor, EchoActor, IdleActor);
messages!((): StartPinging, Ping, Pong, Increment, Token, StartBig, BigPing, BigPong, Go, Touch);
messages!(u64: GetCount, Echo);

// ---- PingPong ----

struct Pinger {
    n: u64,
    pongs: u64,
    ponger: Option<Addr<Ponger>>,
    done: Option<oneshot::Sender<u64>>,
}

/// Answers every ping with a pong to its pinger.
struct Ponger {
    pinger: Addr<Pinger>,
}

/// Gives the pinger its ponger and makes it send the first ping.
struct StartPinging(Addr<Ponger>);
struct Ping;
struct Pong;

impl Pinger {
    fn next(&mut self) {
        if self.pongs == self.n {
            self.done.take().expect("done twice").send(self.pongs).unwrap();
        } else {
            self.ponger.as_ref().expect("no ponger").do_send(Ping);
        }
    }
}

impl Handler<StartPinging> for Pinger {
    type Result = ();

    fn handle(&mut self, StartPinging(ponger): StartPinging, _: &mut Context<Self>) {
        self.ponger = Some(ponger);
        self.next();
    }
}

impl Handler<Pong> for Pinger {
    type Result = ();

    fn handle(&mut self, _: Pong, _: &mut Context<Self>) {
        self.pongs += 1;
        self.next();
    }
}

impl Handler<Ping> for Ponger {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {
        self.pinger.do_send(Pong);
    }
}

async fn ping_pong(n: u64) -> Duration {
    let start_time = Instant::now();
    let (done_tx, done_rx) = oneshot::channel();
    let pinger = Pinger { n, pongs: 0, ponger: None, done: Some(done_tx) }.start();
    let ponger = Ponger { pinger: pinger.clone() }.start();
    pinger.do_send(StartPinging(ponger));
    let pongs = done_rx.await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(pongs, n);
    elapsed
}

// ---- Counting ----

struct Counter {
    count: u64,
}

struct Increment;
struct GetCount;

impl Handler<Increment> for Counter {
    type Result = ();

    fn handle(&mut self, _: Increment, _: &mut Context<Self>) {
        self.count += 1;
    }
}

impl Handler<GetCount> for Counter {
    type Result = u64;

    fn handle(&mut self, _: GetCount, _: &mut Context<Self>) -> u64 {
        self.count
    }
}

async fn counting(n: u64) -> Duration {
    let start_time = Instant::now();
    let counter = Counter { count: 0 }.start();
    for _ in 0..n {
        counter.do_send(Increment);
    }
    let count = counter.send(GetCount).await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(count, n);
    elapsed
}

// ---- ThreadRing ----

/// Every ring member reaches its successor through the shared list, set once all are started.
/// Everything runs on one thread, so `Rc` suffices.
type Ring = Rc<OnceCell<Vec<Addr<RingNode>>>>;

struct RingNode {
    index: u64,
    ring: Ring,
    done: mpsc::UnboundedSender<u64>,
}

/// The token: how many passes are left.
struct Token(u64);

impl Handler<Token> for RingNode {
    type Result = ();

    fn handle(&mut self, Token(left): Token, _: &mut Context<Self>) {
        if left == 0 {
            self.done.send(self.index).unwrap();
        } else {
            let ring = self.ring.get().expect("ring not set");
            ring[((self.index + 1) % ring.len() as u64) as usize].do_send(Token(left - 1));
        }
    }
}

async fn thread_ring(actors: u64, passes: u64) -> Duration {
    let start_time = Instant::now();
    let ring = Ring::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let nodes: Vec<_> = (0..actors)
        .map(|index| RingNode { index, ring: Rc::clone(&ring), done: done_tx.clone() }.start())
        .collect();
    ring.set(nodes).unwrap();
    ring.get().unwrap()[0].do_send(Token(passes));
    let last = done_rx.recv().await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(last, passes % actors, "the token stopped at the wrong actor");
    elapsed
}

// ---- Big ----

/// All actors of a Big run, set once all are started.
type Peers = Rc<OnceCell<Vec<Addr<BigActor>>>>;

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
    fn peers(&self) -> &[Addr<BigActor>] {
        self.peers.get().expect("peers not set")
    }

    fn ping_someone(&mut self) {
        let actors = self.peers().len() as u64;
        let to = neighbour(&mut self.rng, self.me, actors);
        self.peers()[to as usize].do_send(BigPing { from: self.me });
    }
}

impl Handler<StartBig> for BigActor {
    type Result = ();

    fn handle(&mut self, _: StartBig, _: &mut Context<Self>) {
        if self.pings == 0 {
            self.done.tick();
        } else {
            self.ping_someone();
        }
    }
}

impl Handler<BigPing> for BigActor {
    type Result = ();

    fn handle(&mut self, BigPing { from }: BigPing, _: &mut Context<Self>) {
        self.peers()[from as usize].do_send(BigPong);
    }
}

impl Handler<BigPong> for BigActor {
    type Result = ();

    fn handle(&mut self, _: BigPong, _: &mut Context<Self>) {
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
            BigActor {
                me,
                pings,
                pongs: 0,
                rng: XorShift::new(me + 1),
                peers: Rc::clone(&peers),
                done: Arc::clone(&done),
            }
            .start()
        })
        .collect();
    peers.set(all).unwrap();
    for actor in peers.get().unwrap() {
        actor.do_send(StartBig);
    }
    done.wait().await;
    start_time.elapsed()
}

// ---- FJCreate ----

/// Handles one message, then stops itself.
struct FjActor {
    done: Arc<Countdown>,
    total: Arc<AtomicU64>,
}

struct Go;

impl Handler<Go> for FjActor {
    type Result = ();

    fn handle(&mut self, _: Go, ctx: &mut Context<Self>) {
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
        let actor = FjActor { done: Arc::clone(&done), total: Arc::clone(&total) }.start();
        actor.do_send(Go);
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    assert_eq!(total.load(Ordering::Relaxed), n * fj_work());
    elapsed
}

// ---- Ask ----

struct EchoActor;

struct Echo(u64);

impl Handler<Echo> for EchoActor {
    /// The handler's return value is the reply.
    type Result = u64;

    fn handle(&mut self, Echo(value): Echo, _: &mut Context<Self>) -> u64 {
        value
    }
}

/// One ask: `send` enqueues the message with a oneshot sender for the result and awaits it.
async fn ask_once(echo: &Addr<EchoActor>, value: u64) -> u64 {
    echo.send(Echo(value)).await.unwrap()
}

async fn ask(samples: u64) -> Outcome {
    let echo = EchoActor.start();
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
    Outcome { elapsed, latencies_ns, bytes_per_actor: None }
}

// ---- Spawn and IdleMemory ----

/// Does nothing but count the messages it gets, if given a countdown.
struct IdleActor {
    done: Option<Arc<Countdown>>,
}

struct Touch;

impl Handler<Touch> for IdleActor {
    type Result = ();

    fn handle(&mut self, _: Touch, _: &mut Context<Self>) {
        if let Some(done) = &self.done {
            done.tick();
        }
    }
}

/// Starting an actix actor is synchronous: it is queued on the arbiter and first runs when
/// the driver yields.
async fn spawn(n: u64) -> Duration {
    let start_time = Instant::now();
    let actors: Vec<_> = (0..n).map(|_| IdleActor { done: None }.start()).collect();
    let elapsed = start_time.elapsed();
    assert_eq!(actors.len() as u64, n);
    // With no address left, each actor stops when next polled (or when the System drops).
    drop(actors);
    elapsed
}

async fn idle_memory(n: u64) -> Outcome {
    let before = rss_bytes();
    let start_time = Instant::now();
    let done = Countdown::new(n);
    let mut actors = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let actor = IdleActor { done: Some(Arc::clone(&done)) }.start();
        actor.do_send(Touch);
        actors.push(actor);
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    drop(actors);
    Outcome {
        elapsed,
        latencies_ns: Vec::new(),
        bytes_per_actor: Some(grown as f64 / n.max(1) as f64),
    }
}
