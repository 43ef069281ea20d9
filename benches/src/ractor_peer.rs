//! ractor 0.16 (tokio runtime, no async-trait). Each actor here is a state struct with a
//! message type and a synchronous handler (`Behaviour`); one generic [`ractor::Actor`] impl
//! (`Plain`) runs any of them, its state being the struct. Tells are `ActorRef::cast` (a
//! synchronous send into the actor's unbounded mailbox); an ask is `ActorRef::call`, which
//! hands the actor an [`RpcReplyPort`] (a oneshot sender) built into the message and awaits
//! the reply. `Actor::spawn` returns once the actor's `pre_start` has run.
//!
//! Timed regions include creating the actors (Savina style) except for Ask, whose samples are
//! timed one round trip at a time after the echo actor is up and warmed.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Countdown, Framework, Outcome, Workload, XorShift, drive, fj_work, multi_thread_runtime,
    neighbour, rss_bytes,
};

/// ractor on the 2-worker multi-thread tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ractor;

impl Framework for Ractor {
    fn name(&self) -> &'static str {
        "ractor"
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

/// What every actor here does with a message, given its state (`self`) and its own reference.
trait Behaviour: Send + Sized + 'static {
    type Msg: ractor::Message;

    fn handle(
        &mut self,
        myself: &ActorRef<Self::Msg>,
        msg: Self::Msg,
    ) -> Result<(), ActorProcessingErr>;
}

/// The ractor actor for a [`Behaviour`]: ractor splits an actor into an immutable handler
/// (this, stateless), start arguments and a mutable state; here the behaviour value is both
/// the arguments and the state, and `pre_start` just hands it over.
struct Plain<B>(PhantomData<fn() -> B>);

impl<B: Behaviour> Actor for Plain<B> {
    type Msg = B::Msg;
    type State = B;
    type Arguments = B;

    async fn pre_start(&self, _: ActorRef<B::Msg>, state: B) -> Result<B, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<B::Msg>,
        msg: B::Msg,
        state: &mut B,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(&myself, msg)
    }
}

/// An actor's reference and the handle that completes when it has ended.
type Started<M> = (ActorRef<M>, JoinHandle<()>);

/// Spawns an unnamed, unsupervised actor and waits for its `pre_start`.
async fn start<B: Behaviour>(state: B) -> Started<B::Msg> {
    Actor::spawn(None, Plain(PhantomData), state).await.expect("ractor spawn failed")
}

/// Stops the actors and waits until every one has ended.
async fn stop_all<M>(actors: Vec<Started<M>>) {
    for (actor, _) in &actors {
        actor.stop(None);
    }
    for (_, handle) in actors {
        handle.await.unwrap();
    }
}

// ---- PingPong ----

struct Pinger {
    n: u64,
    pongs: u64,
    ponger: Option<ActorRef<Ping>>,
    done: Option<oneshot::Sender<u64>>,
}

enum PingerMsg {
    /// The pong actor to play with; sends the first ping.
    Start(ActorRef<Ping>),
    Pong,
}

struct Ping;

impl Behaviour for Pinger {
    type Msg = PingerMsg;

    fn handle(
        &mut self,
        _: &ActorRef<PingerMsg>,
        msg: PingerMsg,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PingerMsg::Start(ponger) => self.ponger = Some(ponger),
            PingerMsg::Pong => self.pongs += 1,
        }
        if self.pongs == self.n {
            self.done.take().expect("done twice").send(self.pongs).unwrap();
        } else {
            self.ponger.as_ref().expect("no ponger").cast(Ping)?;
        }
        Ok(())
    }
}

/// Answers every ping with a pong to its pinger.
struct Ponger {
    pinger: ActorRef<PingerMsg>,
}

impl Behaviour for Ponger {
    type Msg = Ping;

    fn handle(&mut self, _: &ActorRef<Ping>, _: Ping) -> Result<(), ActorProcessingErr> {
        self.pinger.cast(PingerMsg::Pong)?;
        Ok(())
    }
}

async fn ping_pong(n: u64) -> Duration {
    let start_time = Instant::now();
    let (done_tx, done_rx) = oneshot::channel();
    let pinger = start(Pinger { n, pongs: 0, ponger: None, done: Some(done_tx) }).await;
    let ponger = start(Ponger { pinger: pinger.0.clone() }).await;
    pinger.0.cast(PingerMsg::Start(ponger.0.clone())).unwrap();
    let pongs = done_rx.await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(pongs, n);
    stop_all(vec![pinger]).await;
    stop_all(vec![ponger]).await;
    elapsed
}

// ---- Counting ----

struct Counter {
    count: u64,
}

enum CounterMsg {
    Increment,
    Get(RpcReplyPort<u64>),
}

impl Behaviour for Counter {
    type Msg = CounterMsg;

    fn handle(
        &mut self,
        _: &ActorRef<CounterMsg>,
        msg: CounterMsg,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Increment => self.count += 1,
            CounterMsg::Get(reply) => reply.send(self.count)?,
        }
        Ok(())
    }
}

async fn counting(n: u64) -> Duration {
    let start_time = Instant::now();
    let counter = start(Counter { count: 0 }).await;
    for _ in 0..n {
        counter.0.cast(CounterMsg::Increment).unwrap();
    }
    // An ask: `call` builds the message around a fresh reply port and awaits the reply.
    let count = counter.0.call(CounterMsg::Get, None).await.unwrap().unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(count, n);
    stop_all(vec![counter]).await;
    elapsed
}

// ---- ThreadRing ----

/// Every ring member reaches its successor through the shared list, set once all are spawned.
type Ring = Arc<OnceLock<Vec<ActorRef<u64>>>>;

struct RingNode {
    index: u64,
    ring: Ring,
    done: mpsc::UnboundedSender<u64>,
}

impl Behaviour for RingNode {
    /// The token: how many passes are left.
    type Msg = u64;

    fn handle(&mut self, _: &ActorRef<u64>, left: u64) -> Result<(), ActorProcessingErr> {
        if left == 0 {
            self.done.send(self.index)?;
        } else {
            let ring = self.ring.get().expect("ring not set");
            ring[((self.index + 1) % ring.len() as u64) as usize].cast(left - 1)?;
        }
        Ok(())
    }
}

async fn thread_ring(actors: u64, passes: u64) -> Duration {
    let start_time = Instant::now();
    let ring = Ring::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut nodes = Vec::with_capacity(actors as usize);
    for index in 0..actors {
        nodes.push(start(RingNode { index, ring: Arc::clone(&ring), done: done_tx.clone() }).await);
    }
    ring.set(nodes.iter().map(|(node, _)| node.clone()).collect()).unwrap();
    nodes[0].0.cast(passes).unwrap();
    let last = done_rx.recv().await.unwrap();
    let elapsed = start_time.elapsed();
    assert_eq!(last, passes % actors, "the token stopped at the wrong actor");
    stop_all(nodes).await;
    elapsed
}

// ---- Big ----

/// All actors of a Big run, set once all are spawned.
type Peers = Arc<OnceLock<Vec<ActorRef<BigMsg>>>>;

struct BigActor {
    me: u64,
    pings: u64,
    pongs: u64,
    rng: XorShift,
    peers: Peers,
    done: Arc<Countdown>,
}

enum BigMsg {
    /// Sent by the driver once every peer exists: send the first ping.
    Start,
    Ping {
        from: u64,
    },
    Pong,
}

impl BigActor {
    fn peers(&self) -> &[ActorRef<BigMsg>] {
        self.peers.get().expect("peers not set")
    }

    fn ping_someone(&mut self) -> Result<(), ActorProcessingErr> {
        let actors = self.peers().len() as u64;
        let to = neighbour(&mut self.rng, self.me, actors);
        self.peers()[to as usize].cast(BigMsg::Ping { from: self.me })?;
        Ok(())
    }
}

impl Behaviour for BigActor {
    type Msg = BigMsg;

    fn handle(&mut self, _: &ActorRef<BigMsg>, msg: BigMsg) -> Result<(), ActorProcessingErr> {
        match msg {
            BigMsg::Start if self.pings == 0 => self.done.tick(),
            BigMsg::Start => self.ping_someone()?,
            BigMsg::Ping { from } => self.peers()[from as usize].cast(BigMsg::Pong)?,
            BigMsg::Pong => {
                self.pongs += 1;
                if self.pongs == self.pings {
                    self.done.tick();
                } else {
                    self.ping_someone()?;
                }
            }
        }
        Ok(())
    }
}

async fn big(actors: u64, pings: u64) -> Duration {
    let start_time = Instant::now();
    let peers = Peers::default();
    let done = Countdown::new(actors);
    let mut all = Vec::with_capacity(actors as usize);
    for me in 0..actors {
        all.push(
            start(BigActor {
                me,
                pings,
                pongs: 0,
                rng: XorShift::new(me + 1),
                peers: Arc::clone(&peers),
                done: Arc::clone(&done),
            })
            .await,
        );
    }
    peers.set(all.iter().map(|(actor, _)| actor.clone()).collect()).unwrap();
    for (actor, _) in &all {
        actor.cast(BigMsg::Start).unwrap();
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    stop_all(all).await;
    elapsed
}

// ---- FJCreate ----

/// Handles one message, then stops itself.
struct FjActor {
    done: Arc<Countdown>,
    total: Arc<AtomicU64>,
}

struct Go;

impl Behaviour for FjActor {
    type Msg = Go;

    fn handle(&mut self, myself: &ActorRef<Go>, _: Go) -> Result<(), ActorProcessingErr> {
        self.total.fetch_add(fj_work(), Ordering::Relaxed);
        self.done.tick();
        myself.stop(None);
        Ok(())
    }
}

async fn fj_create(n: u64) -> Duration {
    let start_time = Instant::now();
    let done = Countdown::new(n);
    let total = Arc::new(AtomicU64::new(0));
    for _ in 0..n {
        let (actor, _) =
            start(FjActor { done: Arc::clone(&done), total: Arc::clone(&total) }).await;
        actor.cast(Go).unwrap();
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    assert_eq!(total.load(Ordering::Relaxed), n * fj_work());
    elapsed
}

// ---- Ask ----

struct EchoActor;

struct Echo(u64, RpcReplyPort<u64>);

impl Behaviour for EchoActor {
    type Msg = Echo;

    fn handle(
        &mut self,
        _: &ActorRef<Echo>,
        Echo(value, reply): Echo,
    ) -> Result<(), ActorProcessingErr> {
        reply.send(value)?;
        Ok(())
    }
}

/// One ask: `call` builds the message around a fresh reply port (a oneshot sender), with no
/// timeout, and awaits the reply.
async fn ask_once(echo: &ActorRef<Echo>, value: u64) -> u64 {
    echo.call(|reply| Echo(value, reply), None).await.unwrap().unwrap()
}

async fn ask(samples: u64) -> Outcome {
    let echo = start(EchoActor).await;
    for value in 0..1_000 {
        assert_eq!(ask_once(&echo.0, value).await, value);
    }
    let mut latencies_ns = Vec::with_capacity(samples as usize);
    let start_time = Instant::now();
    for value in 0..samples {
        let sent = Instant::now();
        let answer = ask_once(&echo.0, value).await;
        latencies_ns.push(sent.elapsed().as_nanos() as u64);
        assert_eq!(answer, value);
    }
    let elapsed = start_time.elapsed();
    stop_all(vec![echo]).await;
    Outcome { elapsed, latencies_ns, bytes_per_actor: None }
}

// ---- Spawn and IdleMemory ----

/// Does nothing but count the messages it gets, if given a countdown.
struct IdleActor {
    done: Option<Arc<Countdown>>,
}

struct Touch;

impl Behaviour for IdleActor {
    type Msg = Touch;

    fn handle(&mut self, _: &ActorRef<Touch>, _: Touch) -> Result<(), ActorProcessingErr> {
        if let Some(done) = &self.done {
            done.tick();
        }
        Ok(())
    }
}

async fn spawn(n: u64) -> Duration {
    let start_time = Instant::now();
    let mut actors = Vec::with_capacity(n as usize);
    for _ in 0..n {
        actors.push(start(IdleActor { done: None }).await);
    }
    let elapsed = start_time.elapsed();
    assert_eq!(actors.len() as u64, n);
    stop_all(actors).await;
    elapsed
}

async fn idle_memory(n: u64) -> Outcome {
    let before = rss_bytes();
    let start_time = Instant::now();
    let done = Countdown::new(n);
    let mut actors = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let actor = start(IdleActor { done: Some(Arc::clone(&done)) }).await;
        actor.0.cast(Touch).unwrap();
        actors.push(actor);
    }
    done.wait().await;
    let elapsed = start_time.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    stop_all(actors).await;
    Outcome {
        elapsed,
        latencies_ns: Vec::new(),
        bytes_per_actor: Some(grown as f64 / n.max(1) as f64),
    }
}
