//! Figures for BENCHMARKS.md: channel messages per second through a queue, in memory and on
//! SQLite (durable: every send, receive and ack answered after its commit), each message sent,
//! received and acknowledged, with producers and consumers running at once; beside plain
//! rusqlite on the same disk in the same run doing the same rows (insert, update, delete per
//! message) one message per transaction and 100 per transaction: the limits our group commit
//! works within.
//!
//! `cargo run --release -p plexspaces-storage --example channels`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use plexspaces_storage::channels::{Channels, Config, Kind};

const SCOPE: (&str, &str) = ("acme", "default");

/// `producers` tasks send `total` messages (100 bytes of JSON each) in all while `consumers`
/// tasks receive them in batches of `batch` and ack each; messages per second end to end.
async fn run(
    channels: &Channels,
    name: &str,
    total: usize,
    producers: usize,
    consumers: usize,
    batch: u32,
) -> f64 {
    assert!(
        total.is_multiple_of(producers) && total.is_multiple_of(consumers),
        "{total} messages split evenly"
    );
    let config = Config { kind: Kind::Queue, capacity: 1_000_000, visibility_timeout_ms: 60_000 };
    channels.create(SCOPE, name, config).await.unwrap();
    let data = format!("\"{}\"", "x".repeat(98));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let (channels, name, data) = (channels.clone(), name.to_owned(), data.clone());
        let each = total / producers;
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                channels.send(SCOPE, &name, data.clone(), Duration::from_secs(60)).await.unwrap();
            }
            0
        }));
    }
    for _ in 0..consumers {
        let (channels, name) = (channels.clone(), name.to_owned());
        let each = total / consumers;
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            while got < each {
                let wait = Duration::from_millis(200);
                let want = batch.min(u32::try_from(each - got).unwrap_or(batch));
                let deliveries =
                    channels.receive(SCOPE, &name, None, want, wait, None).await.unwrap();
                for delivery in &deliveries {
                    assert!(channels.ack(SCOPE, &name, &delivery.receipt).await.unwrap());
                }
                got += deliveries.len();
            }
            got
        }));
    }
    let mut received = 0;
    for task in tasks {
        received += task.await.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(received, total);
    let stats = channels.stats(SCOPE, name).await.unwrap();
    assert_eq!(stats.queues[0].ready + stats.queues[0].in_flight, 0, "every message acknowledged");
    received as f64 / took.as_secs_f64()
}

/// Plain rusqlite, same pragmas: per message an insert (send), an update (receive) and a
/// delete (ack), `per_transaction` messages' rows per commit.
fn raw_sqlite(path: &Path, messages: usize, per_transaction: usize) -> f64 {
    let _ = std::fs::remove_file(path);
    let mut connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE m (id INTEGER PRIMARY KEY, data TEXT NOT NULL, visible_at INTEGER);",
        )
        .unwrap();
    let data = format!("\"{}\"", "x".repeat(98));
    let started = Instant::now();
    let mut id = 0_i64;
    for _ in 0..messages / per_transaction {
        let transaction = connection.transaction().unwrap();
        for _ in 0..per_transaction {
            id += 1;
            transaction
                .execute("INSERT INTO m VALUES (?1, ?2, NULL)", rusqlite::params![id, data])
                .unwrap();
            transaction.execute("UPDATE m SET visible_at = 1 WHERE id = ?1", [id]).unwrap();
            transaction.execute("DELETE FROM m WHERE id = ?1", [id]).unwrap();
        }
        transaction.commit().unwrap();
    }
    messages as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    let dir =
        std::env::temp_dir().join(format!("plexspaces-channels-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let memory = Channels::in_memory();
        for (producers, consumers, batch) in [(1, 1, 1), (1, 1, 100), (16, 16, 100)] {
            let rate = run(&memory, &format!("m{producers}-{batch}"), 400_000, producers, consumers, batch).await;
            println!("memory, {producers} producers, {consumers} consumers, batches of {batch}: {rate:.0} msg/s");
        }
        let sqlite = Channels::open_sqlite(&dir.join("channels.sqlite")).unwrap();
        for (total, producers, consumers, batch) in [(1_000, 1, 1, 1), (20_000, 16, 16, 100), (61_440, 256, 16, 100)] {
            let rate = run(&sqlite, &format!("s{producers}-{batch}"), total, producers, consumers, batch).await;
            println!("sqlite (durable), {producers} producers, {consumers} consumers, batches of {batch}: {rate:.0} msg/s");
        }
    });
    for per_transaction in [1, 100] {
        let messages = if per_transaction == 1 { 1_000 } else { 60_000 };
        let rate = raw_sqlite(&dir.join("raw.sqlite"), messages, per_transaction);
        println!("plain rusqlite, {per_transaction} messages per transaction: {rate:.0} msg/s");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
