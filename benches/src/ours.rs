//! The workloads on the PlexSpaces runtime, through the same `Actor`/`ActorRef` path that
//! every actor (and, later, every SDK actor) uses: named actors in the directory, cell
//! mailboxes, turns scheduled on tokio.

use std::hint::black_box;
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use plexspaces_core::{
    Actor, ActorRef, Context, ExitReason, Options, System,
    supervisor::{ChildSpec, Restart, Strategy, SupervisorSpec},
};
use plexspaces_types::{ActorId, ActorKey};
use tokio::sync::oneshot;

use crate::{Framework, Outcome, Workload, XorShift, drive, fj_work, neighbour, rss_bytes};

/// Which tokio runtime our actors run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Two worker threads (the node's default: the machine's cores).
    MultiThread,
    /// One thread.
    CurrentThread,
}

/// PlexSpaces on the given runtime flavour.
#[derive(Debug, Clone, Copy)]
pub struct Ours(pub Flavour);

impl Framework for Ours {
    fn name(&self) -> &'static str {
        match self.0 {
            Flavour::MultiThread => "plexspaces",
            Flavour::CurrentThread => "plexspaces (1 thread)",
        }
    }

    fn flavour(&self) -> &'static str {
        match self.0 {
            Flavour::MultiThread => "tokio multi-thread, 2 workers",
            Flavour::CurrentThread => "tokio current-thread",
        }
    }

    fn run(&self, workload: Workload) -> Option<Outcome> {
        let runtime = match self.0 {
            Flavour::MultiThread => crate::multi_thread_runtime(),
            Flavour::CurrentThread => crate::current_thread_runtime(),
        };
        let outcome = drive(&runtime, async move {
            let system = Options::default().build().unwrap();
            let outcome = match workload {
                Workload::PingPong { n } => ping_pong(&system, n).await,
                Workload::Counting { n } => counting(&system, n).await,
                Workload::ThreadRing { actors, passes } => {
                    thread_ring(&system, actors, passes).await
                }
                Workload::Big { actors, pings } => big(&system, actors, pings).await,
                Workload::FjCreate { n } => fj_create(&system, n).await,
                Workload::Ask { samples } => ask(&system, samples).await,
                Workload::Spawn { n } => spawn(&system, n).await,
                Workload::IdleMemory { n } => idle_memory(&system, n).await,
            };
            system.shutdown(Duration::from_secs(10)).await;
            outcome
        });
        Some(outcome)
    }
}

/// `bench/default/<actor_type>/<key>`; the tenant, namespace and type strings are shared by
/// every id of one type, as in a real node.
fn actor_id(actor_type: &str, key: u64) -> ActorId {
    thread_local! {
        static BASES: std::cell::RefCell<Vec<ActorId>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = ActorKey::new(key.to_string()).unwrap();
    BASES.with_borrow_mut(|bases| {
        if let Some(base) = bases.iter().find(|base| base.actor_type.as_str() == actor_type) {
            return base.with_key(key);
        }
        let base = ActorId::parse(&format!("bench/default/{actor_type}/0")).unwrap();
        bases.push(base.clone());
        base.with_key(key)
    })
}

/// Fires a oneshot once, from whichever actor finishes the work.
#[derive(Debug, Clone, Default)]
struct Done(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl Done {
    fn new() -> (Self, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(sender)))), receiver)
    }
    fn fire(&self) {
        if let Some(sender) = self.0.lock().take() {
            let _ = sender.send(());
        }
    }
}

// ---- PingPong ------------------------------------------------------------------------------

#[derive(Debug)]
struct Ping {
    pong: Option<ActorRef<Pong>>,
    remaining: u64,
    done: Done,
}

#[derive(Debug)]
enum PingMsg {
    Start(ActorRef<Pong>),
    Pong,
}

impl Actor for Ping {
    type Msg = PingMsg;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, msg: PingMsg, _: &mut Context<Self>) {
        if let PingMsg::Start(pong) = msg {
            self.pong = Some(pong);
        } else {
            self.remaining -= 1;
        }
        match (&self.pong, self.remaining) {
            (_, 0) => self.done.fire(),
            (Some(pong), _) => pong.tell(()).unwrap(),
            (None, _) => {}
        }
    }
}

#[derive(Debug)]
struct Pong {
    ping: ActorRef<Ping>,
}

impl Actor for Pong {
    type Msg = ();
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, _: (), _: &mut Context<Self>) {
        self.ping.tell(PingMsg::Pong).unwrap();
    }
}

async fn ping_pong(system: &System, n: u64) -> Outcome {
    let (done, finished) = Done::new();
    let ping = system.spawn(actor_id("ping", 0), Ping { pong: None, remaining: n, done }).unwrap();
    let pong = system.spawn(actor_id("pong", 0), Pong { ping: ping.clone() }).unwrap();
    let start = Instant::now();
    ping.tell(PingMsg::Start(pong)).unwrap();
    finished.await.unwrap();
    Outcome { elapsed: start.elapsed(), ..Outcome::default() }
}

// ---- Counting ------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Counter {
    count: u64,
}

#[derive(Debug)]
enum CounterMsg {
    Increment,
    Get,
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type Reply = u64;
    type Snapshot = ();

    async fn handle(&mut self, msg: CounterMsg, _: &mut Context<Self>) -> u64 {
        if let CounterMsg::Increment = msg {
            self.count += 1;
        }
        self.count
    }
}

async fn counting(system: &System, n: u64) -> Outcome {
    let counter = system.spawn(actor_id("counter", 0), Counter::default()).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        counter.tell(CounterMsg::Increment).unwrap();
    }
    let total = counter.ask(CounterMsg::Get).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(total, n);
    Outcome { elapsed, ..Outcome::default() }
}

// ---- ThreadRing ----------------------------------------------------------------------------

#[derive(Debug)]
struct RingNode {
    next: Option<ActorRef<RingNode>>,
    done: Done,
}

#[derive(Debug)]
enum RingMsg {
    Next(ActorRef<RingNode>),
    Token(u64),
}

impl Actor for RingNode {
    type Msg = RingMsg;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, msg: RingMsg, _: &mut Context<Self>) {
        match msg {
            RingMsg::Next(next) => self.next = Some(next),
            RingMsg::Token(0) => self.done.fire(),
            RingMsg::Token(left) => {
                if let Some(next) = &self.next {
                    next.tell(RingMsg::Token(left - 1)).unwrap();
                }
            }
        }
    }
}

async fn thread_ring(system: &System, actors: u64, passes: u64) -> Outcome {
    let (done, finished) = Done::new();
    let nodes: Vec<_> = (0..actors)
        .map(|i| system.spawn(actor_id("ring", i), RingNode { next: None, done: done.clone() }))
        .collect::<Result<_, _>>()
        .unwrap();
    for (i, node) in nodes.iter().enumerate() {
        let next = nodes[(i + 1) % nodes.len()].clone();
        node.ask(RingMsg::Next(next)).await.unwrap();
    }
    let start = Instant::now();
    nodes[0].tell(RingMsg::Token(passes)).unwrap();
    finished.await.unwrap();
    Outcome { elapsed: start.elapsed(), ..Outcome::default() }
}

// ---- Big -----------------------------------------------------------------------------------

#[derive(Debug)]
struct BigActor {
    index: usize,
    peers: Arc<Vec<ActorRef<BigActor>>>,
    rng: XorShift,
    pongs: u64,
    pings: u64,
    remaining_actors: Arc<AtomicU64>,
    done: Done,
}

#[derive(Debug)]
enum BigMsg {
    Peers(Arc<Vec<ActorRef<BigActor>>>),
    Start,
    Ping { from: usize },
    Pong,
}

impl BigActor {
    fn send_ping(&mut self) {
        let to = neighbour(&mut self.rng, self.index as u64, self.peers.len() as u64) as usize;
        self.peers[to].tell(BigMsg::Ping { from: self.index }).unwrap();
    }
}

impl Actor for BigActor {
    type Msg = BigMsg;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, msg: BigMsg, _: &mut Context<Self>) {
        match msg {
            BigMsg::Peers(peers) => self.peers = peers,
            BigMsg::Start => self.send_ping(),
            BigMsg::Ping { from } => self.peers[from].tell(BigMsg::Pong).unwrap(),
            BigMsg::Pong => {
                self.pongs += 1;
                if self.pongs < self.pings {
                    self.send_ping();
                } else if self.remaining_actors.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.done.fire();
                }
            }
        }
    }
}

async fn big(system: &System, actors: u64, pings: u64) -> Outcome {
    let (done, finished) = Done::new();
    let remaining_actors = Arc::new(AtomicU64::new(actors));
    let refs: Vec<_> = (0..actors)
        .map(|i| {
            let actor = BigActor {
                index: i as usize,
                peers: Arc::new(Vec::new()),
                rng: XorShift::new(i + 1),
                pongs: 0,
                pings,
                remaining_actors: Arc::clone(&remaining_actors),
                done: done.clone(),
            };
            system.spawn(actor_id("big", i), actor)
        })
        .collect::<Result<_, _>>()
        .unwrap();
    let peers = Arc::new(refs.clone());
    for actor in &refs {
        actor.ask(BigMsg::Peers(Arc::clone(&peers))).await.unwrap();
    }
    let start = Instant::now();
    for actor in &refs {
        actor.tell(BigMsg::Start).unwrap();
    }
    finished.await.unwrap();
    let elapsed = start.elapsed();
    drop(peers);
    for actor in &refs {
        // Break the peers cycle so the actors can be freed.
        actor.ask(BigMsg::Peers(Arc::new(Vec::new()))).await.unwrap();
    }
    Outcome { elapsed, ..Outcome::default() }
}

// ---- FJCreate ------------------------------------------------------------------------------

#[derive(Debug)]
struct Forked {
    remaining: Arc<AtomicU64>,
    done: Done,
}

impl Actor for Forked {
    type Msg = u64;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, work: u64, ctx: &mut Context<Self>) {
        assert_eq!(black_box(fj_work()), work);
        ctx.stop(ExitReason::Normal);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.fire();
        }
    }
}

async fn fj_create(system: &System, n: u64) -> Outcome {
    let (done, finished) = Done::new();
    let remaining = Arc::new(AtomicU64::new(n));
    let start = Instant::now();
    for i in 0..n {
        let forked = Forked { remaining: Arc::clone(&remaining), done: done.clone() };
        system.spawn(actor_id("fj", i), forked).unwrap().tell(4950).unwrap();
    }
    finished.await.unwrap();
    Outcome { elapsed: start.elapsed(), ..Outcome::default() }
}

// ---- Ask -----------------------------------------------------------------------------------

#[derive(Debug)]
struct Echo;

impl Actor for Echo {
    type Msg = u64;
    type Reply = u64;
    type Snapshot = ();

    async fn handle(&mut self, msg: u64, _: &mut Context<Self>) -> u64 {
        msg
    }
}

async fn ask(system: &System, samples: u64) -> Outcome {
    let echo = system.spawn(actor_id("echo", 0), Echo).unwrap();
    for i in 0..1000 {
        assert_eq!(echo.ask(i).await.unwrap(), i);
    }
    let mut latencies_ns = Vec::with_capacity(samples as usize);
    let start = Instant::now();
    for i in 0..samples {
        let sent = Instant::now();
        let reply = echo.ask(i).await.unwrap();
        latencies_ns.push(sent.elapsed().as_nanos() as u64);
        assert_eq!(reply, i);
    }
    Outcome { elapsed: start.elapsed(), latencies_ns, bytes_per_actor: None }
}

// ---- Spawn and idle memory -----------------------------------------------------------------

#[derive(Debug, Default)]
struct Idle {
    touched: u64,
}

impl Actor for Idle {
    type Msg = Arc<AtomicU64>;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, handled: Arc<AtomicU64>, _: &mut Context<Self>) {
        self.touched += 1;
        handled.fetch_add(1, Ordering::Release);
    }
}

async fn spawn(system: &System, n: u64) -> Outcome {
    let ids: Vec<_> = (0..n).map(|i| actor_id("idle", i)).collect();
    let mut refs = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for id in ids {
        refs.push(system.spawn(id, Idle::default()).unwrap());
    }
    let elapsed = start.elapsed();
    assert_eq!(system.actor_count() as u64, n);
    Outcome { elapsed, ..Outcome::default() }
}

/// Every actor is a supervised child (one-for-one, temporary), so the figure includes its
/// directory entry and its supervisor's child record, as the issue asks.
async fn idle_memory(system: &System, n: u64) -> Outcome {
    let handled = Arc::new(AtomicU64::new(0));
    let before = rss_bytes();
    let start = Instant::now();
    let spec = SupervisorSpec::new(Strategy::OneForOne);
    let supervisor = system.spawn_supervisor(actor_id("supervisor", 0), spec).await.unwrap();
    let mut refs = Vec::with_capacity(n as usize);
    for i in 0..n {
        let child = ChildSpec::worker(actor_id("idle", i), Restart::Temporary, Idle::default);
        let actor = supervisor.start_child(child).await.unwrap().downcast::<Idle>().unwrap();
        actor.tell(Arc::clone(&handled)).unwrap();
        refs.push(actor);
    }
    while handled.load(Ordering::Acquire) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    assert_eq!(system.actors_in(plexspaces_core::Lifecycle::Active) as u64, n + 1);
    Outcome { elapsed, latencies_ns: Vec::new(), bytes_per_actor: Some(grown as f64 / n as f64) }
}
