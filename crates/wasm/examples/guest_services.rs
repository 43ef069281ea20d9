//! Figures for BENCHMARKS.md: the tuple space, KV and locks called from a Python guest. A
//! handler loops over the calls (tests/fixtures/python/bench_services.py); the time per call is
//! the handler's time, less an empty handler's, over the calls it made. Also one tuple-space
//! call per message, end to end.
//!
//! `cargo run --release -p plexspaces-wasm --example guest_services`. Needs `PLEXSPACES_PYTHON`
//! as for the `wasm_actors` example.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "common/timing.rs"]
#[allow(dead_code)]
mod timing;

use timing::percentile;

use std::time::{Duration, Instant};

use plexspaces_core::{ActorRef, System};
use plexspaces_wasm::{Options, WasmActor};

use support::message as invocation;

async fn timed(actor: &ActorRef<WasmActor>, action: &str, payload: &str) -> Duration {
    let started = Instant::now();
    actor.ask(invocation(action, payload)).await.unwrap().unwrap();
    started.elapsed()
}

/// The best of 5 runs of a handler making `calls` host calls, less the empty handler's time,
/// per call.
async fn per_call(actor: &ActorRef<WasmActor>, action: &str, n: usize, calls: usize) -> Duration {
    let payload = format!(r#"{{"n":{n}}}"#);
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let empty = timed(actor, "noop", &payload).await;
        let full = timed(actor, action, &payload).await;
        best = best.min(full.saturating_sub(empty));
    }
    best / u32::try_from(calls).unwrap()
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async { tokio::spawn(run()).await.unwrap() });
}

async fn run() {
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    let wasm =
        std::fs::read(guests::python_module("tests/fixtures/python/bench_services.py")).unwrap();
    let host = support::host(Options::default());
    let module = support::load(&host, &wasm).await.unwrap();
    let system = System::new().unwrap();
    let actor = support::spawn(&host, &system, &module, 0, "bench");
    timed(&actor, "ts_pairs", r#"{"n":1000}"#).await;

    let n = 10_000;
    let pair = per_call(&actor, "ts_pairs", n, 2 * n).await;
    println!(
        "{:60} {:>8.2} µs per call",
        "tuple write + take (pattern with an exact id), empty space",
        pair.as_secs_f64() * 1e6
    );
    timed(&actor, "crowd", r#"{"n":10000}"#).await;
    let crowded = per_call(&actor, "ts_pairs", n, 2 * n).await;
    println!(
        "{:60} {:>8.2} µs per call",
        "the same with 10,000 alike tuples present",
        crowded.as_secs_f64() * 1e6
    );
    let kv = per_call(&actor, "kv_pairs", n, 2 * n).await;
    println!(
        "{:60} {:>8.2} µs per call",
        "KV put + get (in memory), 100-byte values",
        kv.as_secs_f64() * 1e6
    );
    let locks = per_call(&actor, "lock_pairs", n, 2 * n).await;
    println!(
        "{:60} {:>8.2} µs per call",
        "lock acquire + release (short form)",
        locks.as_secs_f64() * 1e6
    );

    // One call per message: a write, then its take, each a message of its own.
    let mut writes = Vec::new();
    let mut takes = Vec::new();
    for i in 0..5_000 {
        let payload = format!(r#"{{"i":{i}}}"#);
        writes.push(timed(&actor, "ts_write_one", &payload).await);
        takes.push(timed(&actor, "ts_take_one", &payload).await);
    }
    for (what, mut samples) in
        [("message writing one tuple", writes), ("message taking one tuple", takes)]
    {
        samples.sort_unstable();
        println!(
            "{what:60} p50 {:>7.1?}  p99 {:>7.1?}",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99)
        );
    }
    let noop: Vec<Duration> = {
        let mut samples = Vec::new();
        for _ in 0..5_000 {
            samples.push(timed(&actor, "noop", r#"{"n":0}"#).await);
        }
        samples.sort_unstable();
        samples
    };
    println!(
        "{:60} p50 {:>7.1?}  p99 {:>7.1?}",
        "empty message (the baseline)",
        percentile(&noop, 0.5),
        percentile(&noop, 0.99)
    );
}
