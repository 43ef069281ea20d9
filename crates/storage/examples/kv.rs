//! Figures for BENCHMARKS.md: KV get and put per second in memory and on SQLite (durable:
//! WAL, synchronous=FULL, group commit), at 1, 16 and 256 concurrent callers, beside plain
//! rusqlite on the same disk in the same run (one row per transaction, and 100 per
//! transaction): the limits our group commit works within.
//!
//! `cargo run --release -p plexspaces-storage --example kv`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use plexspaces_storage::kv::Kv;

const SCOPE: (&str, &str) = ("acme", "default");

struct Figures {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// `callers` tasks doing `each` operations each; `put` or get.
async fn run(kv: &Kv, callers: usize, each: usize, put: bool) -> Figures {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(each);
            for i in 0..each {
                let key = format!("key-{caller}-{}", i % 1000);
                let at = Instant::now();
                if put {
                    kv.put(SCOPE, &key, "v".repeat(100), None).await.unwrap();
                } else {
                    kv.get(SCOPE, &key).await.unwrap();
                }
                latencies.push(at.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let took = started.elapsed();
    latencies.sort_unstable();
    Figures {
        ops_per_sec: latencies.len() as f64 / took.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

fn report(what: &str, figures: &Figures) {
    println!(
        "{what:44} {:>10.0} ops/s   p50 {:>9.1} µs   p99 {:>9.1} µs",
        figures.ops_per_sec,
        figures.p50.as_secs_f64() * 1e6,
        figures.p99.as_secs_f64() * 1e6
    );
}

/// Plain rusqlite, same pragmas: `rows` inserts, `per_transaction` per commit.
fn raw_sqlite(path: &Path, rows: usize, per_transaction: usize) -> f64 {
    let _ = std::fs::remove_file(path);
    let mut connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
        )
        .unwrap();
    let started = Instant::now();
    for batch in 0..rows / per_transaction {
        let transaction = connection.transaction().unwrap();
        for i in 0..per_transaction {
            transaction
                .execute(
                    "INSERT OR REPLACE INTO kv VALUES (?1, ?2)",
                    rusqlite::params![format!("key-{batch}-{i}"), "v".repeat(100)],
                )
                .unwrap();
        }
        transaction.commit().unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    let dir = std::env::temp_dir().join(format!("plexspaces-kv-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let memory = Kv::in_memory();
        for callers in [1, 16] {
            let each = 400_000 / callers;
            report(
                &format!("memory put, {callers} callers"),
                &run(&memory, callers, each, true).await,
            );
            report(
                &format!("memory get, {callers} callers"),
                &run(&memory, callers, each, false).await,
            );
        }
        let sqlite = Kv::open_sqlite(&dir.join("kv.sqlite")).unwrap();
        for (callers, each) in [(1, 500), (16, 250), (256, 40)] {
            let figures = run(&sqlite, callers, each, true).await;
            report(&format!("sqlite put (durable), {callers} callers"), &figures);
        }
        for callers in [1, 16] {
            let figures = run(&sqlite, callers, 20_000 / callers, false).await;
            report(&format!("sqlite get, {callers} callers"), &figures);
        }
    });
    let raw_one = raw_sqlite(&dir.join("raw.sqlite"), 500, 1);
    let raw_hundred = raw_sqlite(&dir.join("raw.sqlite"), 20_000, 100);
    println!("{:44} {raw_one:>10.0} rows/s", "plain rusqlite, 1 row per transaction");
    println!("{:44} {raw_hundred:>10.0} rows/s", "plain rusqlite, 100 rows per transaction");
    let _ = std::fs::remove_dir_all(&dir);
}
