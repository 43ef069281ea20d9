//! The machine's limit: the same workloads with bare tokio, the cheapest possible
//! task-per-actor design. Every actor is a tokio task that owns the receiver of an unbounded
//! `tokio::sync::mpsc` channel (its mailbox); its reference is the sender. Messages are plain
//! enums or structs and an ask carries a `tokio::sync::oneshot` sender for the reply.
//!
//! Timed regions include creating the actors (Savina style) except for Ask, whose samples are
//! timed one round trip at a time after the echo actor is up and warmed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::{
    Countdown, Framework, Outcome, Workload, XorShift, drive, fj_work, multi_thread_runtime,
    neighbour, rss_bytes,
};

/// Bare tokio tasks and channels on the 2-worker multi-thread runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioLimit;

impl Framework for TokioLimit {
    fn name(&self) -> &'static str {
        "tokio (limit)"
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

/// Two tasks: ping sends a ping, pong answers with a pong, n round trips.
async fn ping_pong(n: u64) -> Duration {
    struct Ping;
    struct Pong;
    let start = Instant::now();
    let (to_ping, mut ping_mailbox) = mpsc::unbounded_channel::<Pong>();
    let (to_pong, mut pong_mailbox) = mpsc::unbounded_channel::<Ping>();
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(async move {
        while pong_mailbox.recv().await.is_some() {
            to_ping.send(Pong).unwrap();
        }
    });
    tokio::spawn(async move {
        let mut pongs = 0;
        if n > 0 {
            to_pong.send(Ping).unwrap();
            while ping_mailbox.recv().await.is_some() {
                pongs += 1;
                if pongs == n {
                    break;
                }
                to_pong.send(Ping).unwrap();
            }
        }
        // Dropping `to_pong` here ends the pong task too.
        done_tx.send(pongs).unwrap();
    });
    let pongs = done_rx.await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(pongs, n);
    elapsed
}

enum CounterMsg {
    Increment,
    Get(oneshot::Sender<u64>),
}

async fn counting(n: u64) -> Duration {
    let start = Instant::now();
    let (counter, mut mailbox) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut count = 0u64;
        while let Some(msg) = mailbox.recv().await {
            match msg {
                CounterMsg::Increment => count += 1,
                CounterMsg::Get(reply) => reply.send(count).unwrap(),
            }
        }
    });
    for _ in 0..n {
        counter.send(CounterMsg::Increment).unwrap();
    }
    let (reply, count) = oneshot::channel();
    counter.send(CounterMsg::Get(reply)).unwrap();
    let count = count.await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(count, n);
    elapsed
}

enum RingMsg {
    Token(u64),
    /// Passed on around the ring, ending every task.
    Stop,
}

async fn thread_ring(actors: u64, passes: u64) -> Duration {
    let start = Instant::now();
    // Mailboxes first, so every task can be given its successor's sender when spawned.
    let (senders, mailboxes): (Vec<_>, Vec<_>) =
        (0..actors).map(|_| mpsc::unbounded_channel::<RingMsg>()).unzip();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
    for (index, mut mailbox) in (0..actors).zip(mailboxes) {
        let next = senders[((index + 1) % actors) as usize].clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            while let Some(msg) = mailbox.recv().await {
                match msg {
                    RingMsg::Token(0) => done.send(index).unwrap(),
                    RingMsg::Token(left) => next.send(RingMsg::Token(left - 1)).unwrap(),
                    RingMsg::Stop => {
                        // The last one's successor has already stopped: ignore that error.
                        let _ = next.send(RingMsg::Stop);
                        break;
                    }
                }
            }
        });
    }
    senders[0].send(RingMsg::Token(passes)).unwrap();
    let last = done_rx.recv().await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(last, passes % actors, "the token stopped at the wrong actor");
    senders[0].send(RingMsg::Stop).unwrap();
    elapsed
}

enum BigMsg {
    Ping { from: u64 },
    Pong,
    Stop,
}

async fn big(actors: u64, pings: u64) -> Duration {
    let start = Instant::now();
    let (senders, mailboxes): (Vec<_>, Vec<_>) =
        (0..actors).map(|_| mpsc::unbounded_channel::<BigMsg>()).unzip();
    let peers = Arc::new(senders);
    let done = Countdown::new(actors);
    for (me, mut mailbox) in (0..actors).zip(mailboxes) {
        let peers = Arc::clone(&peers);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut rng = XorShift::new(me + 1);
            let mut pongs = 0;
            // Every peer's sender exists already, so the first ping goes out at once.
            if pings == 0 {
                done.tick();
            } else {
                let to = neighbour(&mut rng, me, actors);
                peers[to as usize].send(BigMsg::Ping { from: me }).unwrap();
            }
            while let Some(msg) = mailbox.recv().await {
                match msg {
                    BigMsg::Ping { from } => peers[from as usize].send(BigMsg::Pong).unwrap(),
                    BigMsg::Pong => {
                        pongs += 1;
                        if pongs == pings {
                            done.tick();
                        } else {
                            let to = neighbour(&mut rng, me, actors);
                            peers[to as usize].send(BigMsg::Ping { from: me }).unwrap();
                        }
                    }
                    BigMsg::Stop => break,
                }
            }
        });
    }
    done.wait().await;
    let elapsed = start.elapsed();
    for peer in peers.iter() {
        peer.send(BigMsg::Stop).unwrap();
    }
    elapsed
}

enum FjMsg {
    Go,
}

async fn fj_create(n: u64) -> Duration {
    let start = Instant::now();
    let done = Countdown::new(n);
    let total = Arc::new(AtomicU64::new(0));
    for _ in 0..n {
        let (actor, mut mailbox) = mpsc::unbounded_channel();
        let done = Arc::clone(&done);
        let total = Arc::clone(&total);
        tokio::spawn(async move {
            // One message, then the task ends: the actor stops itself.
            if let Some(FjMsg::Go) = mailbox.recv().await {
                total.fetch_add(fj_work(), Ordering::Relaxed);
                done.tick();
            }
        });
        actor.send(FjMsg::Go).unwrap();
    }
    done.wait().await;
    let elapsed = start.elapsed();
    assert_eq!(total.load(Ordering::Relaxed), n * fj_work());
    elapsed
}

struct Echo {
    value: u64,
    reply: oneshot::Sender<u64>,
}

/// One ask: a fresh oneshot travels with the request and the caller awaits its receiver.
async fn ask_once(echo: &mpsc::UnboundedSender<Echo>, value: u64) -> u64 {
    let (reply, answer) = oneshot::channel();
    echo.send(Echo { value, reply }).unwrap();
    answer.await.unwrap()
}

async fn ask(samples: u64) -> Outcome {
    let (echo, mut mailbox) = mpsc::unbounded_channel::<Echo>();
    tokio::spawn(async move {
        while let Some(Echo { value, reply }) = mailbox.recv().await {
            reply.send(value).unwrap();
        }
    });
    for value in 0..1_000 {
        assert_eq!(ask_once(&echo, value).await, value);
    }
    let mut latencies_ns = Vec::with_capacity(samples as usize);
    let start = Instant::now();
    for value in 0..samples {
        let sent = Instant::now();
        let answer = ask_once(&echo, value).await;
        latencies_ns.push(sent.elapsed().as_nanos() as u64);
        assert_eq!(answer, value);
    }
    let elapsed = start.elapsed();
    Outcome { elapsed, latencies_ns, bytes_per_actor: None }
}

enum IdleMsg {
    Touch,
}

/// A do-nothing actor: it lives until its mailbox closes.
fn spawn_idle(done: Option<Arc<Countdown>>) -> mpsc::UnboundedSender<IdleMsg> {
    let (actor, mut mailbox) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(IdleMsg::Touch) = mailbox.recv().await {
            if let Some(done) = &done {
                done.tick();
            }
        }
    });
    actor
}

async fn spawn(n: u64) -> Duration {
    let start = Instant::now();
    let actors: Vec<_> = (0..n).map(|_| spawn_idle(None)).collect();
    let elapsed = start.elapsed();
    assert_eq!(actors.len() as u64, n);
    // Dropping the senders closes every mailbox, which ends the tasks.
    drop(actors);
    elapsed
}

async fn idle_memory(n: u64) -> Outcome {
    let before = rss_bytes();
    let start = Instant::now();
    let done = Countdown::new(n);
    let mut actors = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let actor = spawn_idle(Some(Arc::clone(&done)));
        actor.send(IdleMsg::Touch).unwrap();
        actors.push(actor);
    }
    done.wait().await;
    let elapsed = start.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    drop(actors);
    Outcome {
        elapsed,
        latencies_ns: Vec::new(),
        bytes_per_actor: Some(grown as f64 / n.max(1) as f64),
    }
}
