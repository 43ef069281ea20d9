//! Figures for BENCHMARKS.md: durable tells to Python actors (tests/fixtures/python/durable_total.py)
//! beside the raw group-commit limit of this disk measured in the same run (appends to a file,
//! batched, each batch written and fdatasync'ed by one thread), and the recovery of an actor
//! whose journal holds 100,000 entries, with and without checkpoints.
//!
//! A durable tell here takes the node's path without HTTP: the message goes to the actor with
//! an admission channel, the actor journals it, and the sender waits until that entry is
//! durable, as `Api::tell_durable` does.
//!
//! `cargo run --release -p plexspaces-wasm --example durable`. Needs `PLEXSPACES_PYTHON` as for
//! the `wasm_actors` example.

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

use std::{
    io::Write as _,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use plexspaces_core::{ActorRef, System};
use plexspaces_storage::{
    SqliteJournal,
    journal::{Entry, JournalBackend, MessageRecord},
};
use plexspaces_types::ActorId;
use plexspaces_wasm::{Binding, Durability, Invocation, Module, Options, Served, WasmActor};
use tokio::sync::{mpsc, oneshot};

const RUN: Duration = Duration::from_secs(3);

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort_unstable();
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

fn report(what: &str, figures: &Figures) {
    println!(
        "{what:58} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        figures.per_second,
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3
    );
}

/// The raw limit: `writers` tasks each appending 64 bytes and waiting for its batch's
/// fdatasync.
async fn raw_group_commit(dir: &Path, writers: usize) -> Figures {
    let path = dir.join(format!("raw-{writers}.log"));
    let (sender, mut receiver) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
    let writer = std::thread::spawn(move || {
        let mut file = std::fs::File::create(&path).unwrap();
        let record = [7u8; 64];
        while let Some(first) = receiver.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(next) = receiver.try_recv() {
                batch.push(next);
            }
            let mut bytes = Vec::with_capacity(batch.len() * record.len());
            for _ in &batch {
                bytes.extend_from_slice(&record);
            }
            file.write_all(&bytes).unwrap();
            file.sync_data().unwrap();
            for ack in batch {
                let _ = ack.send(());
            }
        }
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < RUN {
                    let sent = Instant::now();
                    let (ack, acked) = oneshot::channel();
                    sender.send(ack).unwrap();
                    acked.await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    drop(sender);
    writer.join().unwrap();
    figures(latencies, elapsed)
}

/// The journal alone: `writers` tasks appending a message entry each and waiting until it is
/// durable, as a durable actor's sender does, without the actor and its guest.
async fn journal_alone(journal: &Arc<SqliteJournal>, writers: usize) -> Figures {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let journal = Arc::clone(journal);
            tokio::spawn(async move {
                let actor = format!("acme/default/journal/{writers}-{writer}");
                let mut latencies = Vec::new();
                let mut seq = 0;
                while started.elapsed() < RUN {
                    seq += 1;
                    let sent = Instant::now();
                    let entry = Entry::Message(MessageRecord {
                        action: "add".to_owned(),
                        payload: br#"{"action":"add","amount":1}"#.to_vec(),
                        message_id: "m".to_owned(),
                        idempotency_key: None,
                        origin: None,
                        admitted_ms: 0,
                        ask: false,
                    });
                    let ticket = journal.append(&actor, seq, 0, &entry).unwrap();
                    journal.durable(ticket).await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    figures(latencies, started.elapsed())
}

fn durable_actor(
    host: &plexspaces_wasm::Host,
    system: &System,
    module: &Module,
    durability: &Arc<Durability>,
    key: &str,
) -> ActorRef<WasmActor> {
    let served = Served::new(Binding { module: module.clone(), class: 0 }, host.logs().clone());
    let id = ActorId::parse(&format!("acme/default/bank/{key}")).unwrap();
    let durability = Arc::clone(durability);
    system
        .spawn_virtual(id, Duration::from_secs(600), move || {
            WasmActor::durable(Arc::clone(&served), Default::default(), Arc::clone(&durability))
        })
        .unwrap()
}

fn durability(journal: &Arc<SqliteJournal>, checkpoint_every: u64) -> Arc<Durability> {
    Arc::new(Durability {
        journal: Arc::clone(journal) as Arc<dyn JournalBackend>,
        checkpoint_every,
        key_window: Duration::from_secs(600),
        max_keys: 1000,
    })
}

fn deposit(admission: Option<plexspaces_wasm::Admission>) -> Invocation {
    let mut invocation = Invocation::new(
        "add".to_owned(),
        br#"{"action":"add","amount":1}"#.to_vec(),
        Some("m".to_owned()),
    );
    invocation.admission = admission;
    invocation
}

/// `actors` durable actors, one sender each, every tell acknowledged once durable.
async fn durable_tells(
    host: &plexspaces_wasm::Host,
    module: &Module,
    journal: &Arc<SqliteJournal>,
    actors: usize,
) -> Figures {
    let durability = durability(journal, 1000);
    let system = System::new().unwrap();
    let refs: Vec<_> = (0..actors)
        .map(|n| durable_actor(host, &system, module, &durability, &format!("tells-{actors}-{n}")))
        .collect();
    // Activated (and recovered: nothing) before the clock starts.
    for actor in &refs {
        actor.ask(deposit(None)).await.unwrap().unwrap();
    }
    let started = Instant::now();
    let tasks: Vec<_> = refs
        .into_iter()
        .map(|actor| {
            let journal = Arc::clone(journal);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < RUN {
                    let sent = Instant::now();
                    let (admission, admitted) = oneshot::channel();
                    actor.tell(deposit(Some(admission))).unwrap();
                    let admitted = admitted.await.unwrap().unwrap();
                    journal.durable(admitted.ticket).await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    system.shutdown(Duration::from_secs(30)).await;
    figures(latencies, elapsed)
}

/// Fills the journal of actor `key` with `messages` additions (two entries each: the message
/// and its end), through the actor, checkpointing every `every` entries.
async fn fill(
    host: &plexspaces_wasm::Host,
    module: &Module,
    journal: &Arc<SqliteJournal>,
    key: &str,
    messages: usize,
    every: u64,
) {
    let durability = durability(journal, every);
    let system = System::new().unwrap();
    let actor = durable_actor(host, &system, module, &durability, key);
    for _ in 0..messages {
        actor.tell(deposit(None)).unwrap();
    }
    // An ask answers once everything before it is durable.
    actor.ask(support::message("add", r#"{"action":"add","amount":1}"#)).await.unwrap().unwrap();
    // Dropped without deactivating: no checkpoint beyond those taken on the way.
    std::mem::forget(system);
}

/// Recovers actor `key` in a fresh system `runs` times: the time to its first reply.
async fn recover(
    host: &plexspaces_wasm::Host,
    module: &Module,
    journal: &Arc<SqliteJournal>,
    key: &str,
    every: u64,
    runs: usize,
) -> (Vec<Duration>, String) {
    let durability = durability(journal, every);
    let mut times = Vec::new();
    let mut reply = String::new();
    for _ in 0..runs {
        let system = System::new().unwrap();
        let actor = durable_actor(host, &system, module, &durability, key);
        let started = Instant::now();
        let replayed = actor.ask(support::message("get", "{}")).await.unwrap().unwrap();
        times.push(started.elapsed());
        reply = String::from_utf8(replayed).unwrap();
        std::mem::forget(system);
    }
    times.sort_unstable();
    (times, reply)
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async { tokio::spawn(run()).await.unwrap() });
}

async fn run() {
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    let wasm =
        std::fs::read(guests::python_module("tests/fixtures/python/durable_total.py")).unwrap();
    let host = support::host(Options { max_instances: 4, ..Options::default() });
    let module = support::load(&host, &wasm).await.unwrap();
    let dir = std::env::temp_dir().join(format!("plexspaces-durable-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = Arc::new(SqliteJournal::open(&dir.join("journal")).unwrap());

    println!("durable tells, acknowledged once durable, {} s each:", RUN.as_secs());
    for actors in [1, 16, 256] {
        let raw = raw_group_commit(&dir, actors).await;
        report(&format!("raw group commit (write + fdatasync), {actors} writers"), &raw);
        let alone = journal_alone(&journal, actors).await;
        report(&format!("the journal alone (append + durable), {actors} writers"), &alone);
        let ours = durable_tells(&host, &module, &journal, actors).await;
        report(&format!("durable tell to durable_total.py, {actors} actors"), &ours);
        println!(
            "{:58} throughput {:.0} % of the limit, p99 {:.2}x its p99",
            "",
            100.0 * ours.per_second / raw.per_second,
            ours.p99.as_secs_f64() / raw.p99.as_secs_f64()
        );
    }

    // 100,000 additions: 100,000 journal entries (a message that replied after no host call
    // has no `Done`).
    let messages = 100_000;
    fill(&host, &module, &journal, "long-plain", messages, u64::MAX).await;
    fill(&host, &module, &journal, "long-checkpointed", messages, 1000).await;
    let (plain, reply) = recover(&host, &module, &journal, "long-plain", u64::MAX, 3).await;
    println!("recovery of an actor with 100,000 journal entries ({reply}):");
    println!(
        "{:58} p50 {:>9.2} ms  max {:>9.2} ms  ({:.0} entries/s replayed)",
        "  without checkpoints",
        plain[plain.len() / 2].as_secs_f64() * 1e3,
        plain.last().unwrap().as_secs_f64() * 1e3,
        100_000.0 / plain[plain.len() / 2].as_secs_f64()
    );
    let (checkpointed, _) = recover(&host, &module, &journal, "long-checkpointed", 1000, 50).await;
    println!(
        "{:58} p50 {:>9.2} ms  p99 {:>9.2} ms",
        "  with a checkpoint every 1,000 entries",
        percentile(&checkpointed, 0.5).as_secs_f64() * 1e3,
        percentile(&checkpointed, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "{:58} {:.1} % less time",
        "",
        100.0
            * (1.0
                - percentile(&checkpointed, 0.5).as_secs_f64()
                    / plain[plain.len() / 2].as_secs_f64())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
