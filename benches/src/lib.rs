//! Side-by-side actor benchmarks: PlexSpaces, peer frameworks (actix, ractor, kameo) and the
//! machine's limit (bare tokio tasks and channels), on the same workloads in one run.
//!
//! Every framework implements [`Framework::run`] for each [`Workload`]. A run builds its own
//! runtime outside the timed region, drives the work from a spawned task (never from
//! `block_on` directly) and reports what it measured in an [`Outcome`].

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

/// Runs `$workload` with the peer module's own workload functions, which share their names
/// (`ping_pong(n)`, `counting(n)`, `thread_ring(actors, passes)`, `big(actors, pings)`,
/// `fj_create(n)`, `spawn(n)`, each returning its wall time, and `ask(samples)` and
/// `idle_memory(n)`, each returning an `Outcome`); the names resolve where it is used.
macro_rules! run_workload {
    ($workload:expr) => {
        match $workload {
            $crate::Workload::PingPong { n } => $crate::timed(ping_pong(n).await),
            $crate::Workload::Counting { n } => $crate::timed(counting(n).await),
            $crate::Workload::ThreadRing { actors, passes } => {
                $crate::timed(thread_ring(actors, passes).await)
            }
            $crate::Workload::Big { actors, pings } => $crate::timed(big(actors, pings).await),
            $crate::Workload::FjCreate { n } => $crate::timed(fj_create(n).await),
            $crate::Workload::Ask { samples } => ask(samples).await,
            $crate::Workload::Spawn { n } => $crate::timed(spawn(n).await),
            $crate::Workload::IdleMemory { n } => idle_memory(n).await,
        }
    };
}

pub mod actix_peer;
pub mod kameo_peer;
pub mod ours;
pub mod ours_sdk;
pub mod ractor_peer;
pub mod tokio_limit;

use std::hint::black_box;
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use std::time::Duration;

use tokio::sync::Notify;

/// One benchmark workload, with its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Savina PingPong: two actors exchange `n` ping/pong round trips.
    PingPong { n: u64 },
    /// Savina Counting: one producer tells a counter `n` increments, then asks for the total,
    /// which must equal `n`.
    Counting { n: u64 },
    /// Savina ThreadRing: `actors` in a ring pass a token `passes` times in total.
    ThreadRing { actors: u64, passes: u64 },
    /// Savina Big: `actors` each do `pings` sequential ping/pong exchanges with random
    /// neighbours (a seeded xorshift picks them), all at once; done when every actor got
    /// all its pongs.
    Big { actors: u64, pings: u64 },
    /// Savina FJCreate: create `n` actors, send each one message, each handles it (a little
    /// arithmetic) and stops; done when all `n` have handled theirs.
    FjCreate { n: u64 },
    /// `samples` sequential asks to one echo actor; every round trip timed on its own.
    Ask { samples: u64 },
    /// Spawn `n` actors (each reachable by a reference; ours also named in the directory),
    /// no messages; timed until the last is spawned.
    Spawn { n: u64 },
    /// Spawn `n` actors, send each one message and wait until every one has handled it, so
    /// all are active and idle; report resident bytes per actor (RSS growth / n).
    IdleMemory { n: u64 },
}

impl Workload {
    /// A short name for tables.
    pub fn name(&self) -> String {
        match self {
            Workload::PingPong { n } => format!("PingPong N={n}"),
            Workload::Counting { n } => format!("Counting N={n}"),
            Workload::ThreadRing { actors, passes } => {
                format!("ThreadRing {actors} actors, {passes} passes")
            }
            Workload::Big { actors, pings } => format!("Big {actors}x{pings}"),
            Workload::FjCreate { n } => format!("FJCreate N={n}"),
            Workload::Ask { samples } => format!("ask round trip ({samples} samples)"),
            Workload::Spawn { n } => format!("spawn N={n}"),
            Workload::IdleMemory { n } => format!("bytes per idle actor (N={n})"),
        }
    }

    /// How many messages (or actors, for Spawn/FJCreate) the workload processes; the
    /// denominator of its rate.
    pub fn units(&self) -> u64 {
        match *self {
            Workload::PingPong { n } => 2 * n,
            Workload::Counting { n } => n,
            Workload::ThreadRing { passes, .. } => passes,
            Workload::Big { actors, pings } => 2 * actors * pings,
            Workload::FjCreate { n } => n,
            Workload::Ask { samples } => samples,
            Workload::Spawn { n } => n,
            Workload::IdleMemory { n } => n,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Wall time of the timed region.
    pub elapsed: Duration,
    /// Per-operation latencies in nanoseconds (Ask only).
    pub latencies_ns: Vec<u64>,
    /// Resident bytes per actor (IdleMemory only).
    pub bytes_per_actor: Option<f64>,
}

/// A framework under test.
pub trait Framework {
    /// Its name in tables.
    fn name(&self) -> &'static str;
    /// The runtime flavour it runs on (for example "tokio multi-thread, 2 workers").
    fn flavour(&self) -> &'static str;
    /// Runs one workload once. `None` when the framework cannot express it.
    fn run(&self, workload: Workload) -> Option<Outcome>;
}

/// The process's resident set size in bytes, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let resident_pages: u64 =
        statm.split_whitespace().nth(1).and_then(|field| field.parse().ok()).unwrap_or(0);
    resident_pages * 4096
}

/// The multi-thread tokio runtime every tokio-based framework runs on (2 workers: the
/// machine's cores).
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A current-thread tokio runtime.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Runs `work` as a spawned task on `runtime` and returns what it returns.
pub fn drive<T, F>(runtime: &tokio::runtime::Runtime, work: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    runtime.block_on(async move { tokio::spawn(work).await.unwrap() })
}

/// A tiny deterministic random number generator (xorshift64*) for Big's neighbour choice.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

// ---- Helpers shared by every framework's workloads ----------------------------------------

/// An outcome with only a wall time.
pub fn timed(elapsed: Duration) -> Outcome {
    Outcome { elapsed, ..Outcome::default() }
}

#[derive(Debug)]
/// Counts completions down to zero and wakes the waiting driver once.
pub struct Countdown {
    left: AtomicU64,
    zero: Notify,
}

impl Countdown {
    pub fn new(n: u64) -> Arc<Self> {
        Arc::new(Self { left: AtomicU64::new(n), zero: Notify::new() })
    }

    pub fn tick(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            // `notify_one` stores a permit if the driver is not waiting yet.
            self.zero.notify_one();
        }
    }

    pub async fn wait(&self) {
        if self.left.load(Ordering::Acquire) != 0 {
            self.zero.notified().await;
        }
        assert_eq!(self.left.load(Ordering::Acquire), 0);
    }
}

/// A random peer other than `me` (itself only when it is alone).
pub fn neighbour(rng: &mut XorShift, me: u64, actors: u64) -> u64 {
    if actors < 2 {
        return me;
    }
    let other = rng.below(actors - 1);
    if other >= me { other + 1 } else { other }
}

/// The work each FJCreate actor does: a little arithmetic the optimiser cannot skip.
pub fn fj_work() -> u64 {
    (0..100u64).map(black_box).sum()
}
