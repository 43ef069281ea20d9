//! Figures for BENCHMARKS.md: tuple writes and takes per second in-process, with an empty space
//! and with 10,000 alike tuples present, and blocking takes woken by writes.
//!
//! `cargo run --release -p plexspaces-tuplespace --example throughput`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use plexspaces_tuplespace::{Pattern, Space, Tuple};
use serde_json::{Value, json};

fn tuple(value: Value) -> Tuple {
    value.as_array().cloned().unwrap()
}

/// Pairs of (write, take) on `space`, each tuple made before the clock starts.
fn pairs(space: &Space, label: &str, tuples: Vec<Tuple>, pattern_of: impl Fn(&Tuple) -> Pattern) {
    let patterns: Vec<Pattern> = tuples.iter().map(&pattern_of).collect();
    let n = tuples.len();
    let started = Instant::now();
    for (tuple, pattern) in tuples.into_iter().zip(&patterns) {
        space.write(tuple, None).unwrap();
        black_box(space.take(pattern).unwrap());
    }
    let took = started.elapsed();
    let per_op = took.as_nanos() as f64 / (2 * n) as f64;
    println!("{label:62} {:>6.0} ns per write or take, {:>5.2} M ops/s", per_op, 1e3 / per_op);
}

fn batch(n: usize, at: usize) -> Vec<Tuple> {
    (0..n).map(|i| tuple(json!(["order", format!("new-{}", at + i), i, "pending"]))).collect()
}

fn main() {
    let n = 1_000_000;
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    let exact_second =
        |t: &Tuple| Pattern::from_json(&json!(["order", t[1].clone(), null, null])).unwrap();

    let space = Space::default();
    pairs(
        &space,
        "write + take, empty space, pattern [order, id, _, _]",
        batch(n, 0),
        exact_second,
    );
    let first_only = |_: &Tuple| Pattern::from_json(&json!(["order", null, null, null])).unwrap();
    pairs(&space, "write + take, empty space, pattern [order, _, _, _]", batch(n, n), first_only);

    // 10,000 tuples of the same arity and first field, differing in the second.
    let crowded = Space::default();
    for i in 0..10_000 {
        crowded.write(tuple(json!(["order", format!("old-{i}"), i, "pending"])), None).unwrap();
    }
    pairs(
        &crowded,
        "write + take, 10,000 alike present, pattern [order, id, _, _]",
        batch(n, 2 * n),
        exact_second,
    );

    // Blocking takes: a consumer waits, the producer's write wakes it.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let space = Arc::new(Space::default());
        let rounds = 100_000;
        let consumer = {
            let space = Arc::clone(&space);
            tokio::spawn(async move {
                let pattern = Pattern::from_json(&json!(["job", null])).unwrap();
                for _ in 0..rounds {
                    space.take_within(pattern.clone(), Duration::from_secs(10)).await.unwrap();
                }
            })
        };
        let started = Instant::now();
        for i in 0..rounds {
            while space.stats().waiting == 0 && !consumer.is_finished() {
                tokio::task::yield_now().await;
            }
            space.write(tuple(json!(["job", i])), None).unwrap();
        }
        consumer.await.unwrap();
        let took = started.elapsed();
        println!(
            "{:62} {:>6.2} µs per handoff, {:>7.0} takes/s",
            "blocking take woken by a write (producer and consumer tasks)",
            took.as_secs_f64() * 1e6 / rounds as f64,
            rounds as f64 / took.as_secs_f64()
        );
    });
}
