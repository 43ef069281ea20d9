//! Figures for BENCHMARKS.md: lock acquire + release per second, uncontended and with
//! contending tasks.
//!
//! `cargo run --release -p plexspaces-storage --example locks`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use plexspaces_storage::locks::Locks;

fn main() {
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    let locks = Locks::in_memory();
    let lease = Duration::from_secs(30);
    let n = 1_000_000;
    let names: Vec<String> = (0..1_000).map(|i| format!("lock-{i}")).collect();
    let started = Instant::now();
    for i in 0..n {
        let name = &names[i % names.len()];
        let grant =
            locks.try_acquire(("acme", "default"), name, "holder", "", lease).unwrap().unwrap();
        locks.release(("acme", "default"), name, grant.version);
    }
    let took = started.elapsed();
    println!(
        "{:52} {:>7.0} ns per pair, {:>9.0} pairs/s",
        "try_acquire + release, uncontended (1,000 names)",
        took.as_nanos() as f64 / n as f64,
        n as f64 / took.as_secs_f64()
    );

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let locks = Arc::new(Locks::in_memory());
        let (tasks, each) = (10, 10_000);
        let started = Instant::now();
        let mut running = Vec::new();
        for task in 0..tasks {
            let locks = Arc::clone(&locks);
            running.push(tokio::spawn(async move {
                let holder = format!("task-{task}");
                for _ in 0..each {
                    let grant = locks
                        .acquire(
                            ("acme", "default"),
                            "one",
                            &holder,
                            "",
                            lease,
                            Duration::from_secs(30),
                        )
                        .await
                        .unwrap()
                        .unwrap();
                    tokio::task::yield_now().await;
                    locks.release(("acme", "default"), "one", grant.version);
                }
            }));
        }
        for task in running {
            task.await.unwrap();
        }
        let took = started.elapsed();
        let pairs = tasks * each;
        println!(
            "{:52} {:>7.2} µs per pair, {:>9.0} pairs/s",
            "acquire + release, 10 tasks contending for one lock",
            took.as_secs_f64() * 1e6 / pairs as f64,
            pairs as f64 / took.as_secs_f64()
        );
    });
}
