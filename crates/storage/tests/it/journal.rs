//! The journal of durable actors on SQLite: entries in order, group commit, checkpoints and
//! truncation, removal, a kill -9 of a writing process, and damage of every kind found.

use std::{collections::BTreeMap, path::Path, time::Duration};

use plexspaces_storage::{
    SqliteJournal,
    journal::{Checkpoint, Entry, JournalBackend, MessageRecord, Outcome, Recovered},
};
use plexspaces_types::ErrorCode;

use crate::{acknowledged_before_a_kill, temp_dir};

fn message(n: u64) -> Entry {
    Entry::Message(MessageRecord {
        action: "deposit".to_owned(),
        payload: format!("{{\"amount\":{n}}}").into_bytes(),
        message_id: format!("m-{n}"),
        idempotency_key: Some(format!("k-{n}")),
        origin: None,
        admitted_ms: n,
        ask: false,
    })
}

fn call(n: u64) -> Entry {
    Entry::Call { kind: 1, result: n.to_le_bytes().to_vec() }
}

fn done() -> Entry {
    Entry::Done(Outcome::Replied { reply: None })
}

/// Appends messages `from..=to` of `actor`, each with one call and its end.
fn append_messages(journal: &SqliteJournal, actor: &str, from: u64, to: u64) -> u64 {
    let mut ticket = 0;
    for seq in from..=to {
        journal.append(actor, seq, 0, &message(seq)).unwrap();
        journal.append(actor, seq, 1, &call(seq)).unwrap();
        ticket = journal.append(actor, seq, 2, &done()).unwrap();
    }
    ticket
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn entries_come_back_in_order_and_a_checkpoint_truncates_behind_it() {
    let dir = temp_dir("journal-order");
    runtime().block_on(async {
        let journal = SqliteJournal::open(&dir).unwrap();
        assert_eq!(journal.recover("a").await.unwrap(), Recovered::default());
        let ticket = append_messages(&journal, "a", 1, 10);
        append_messages(&journal, "b", 1, 2);
        journal.durable(ticket).await.unwrap();
        let recovered = journal.recover("a").await.unwrap();
        assert_eq!(recovered.entries.len(), 30);
        assert_eq!(recovered.last_seq(), 10);
        assert_eq!(recovered.entries[3], (2, 0, message(2)));
        let checkpoint = Checkpoint {
            seq: 7,
            state: Some(b"{\"balance\":7}".to_vec()),
            ..Checkpoint::default()
        };
        journal.checkpoint("a", &checkpoint).await.unwrap();
        let recovered = journal.recover("a").await.unwrap();
        assert_eq!(recovered.checkpoint.as_ref(), Some(&checkpoint));
        // Messages 8 to 10 follow the checkpoint; message 7 stays behind it, as its marker.
        assert_eq!(recovered.entries.first().map(|entry| entry.0), Some(8));
        assert_eq!(recovered.entries.len(), 9);
        journal.remove("a").await.unwrap();
        assert_eq!(journal.recover("a").await.unwrap(), Recovered::default());
        assert_eq!(journal.recover("b").await.unwrap().last_seq(), 2);
        journal.close();
        // Reopened: what was there is there.
        let journal = SqliteJournal::open(&dir).unwrap();
        assert_eq!(journal.recover("b").await.unwrap().last_seq(), 2);
    });
}

#[test]
fn many_writers_share_commits() {
    let dir = temp_dir("journal-group");
    runtime().block_on(async {
        let journal = std::sync::Arc::new(SqliteJournal::open(&dir).unwrap());
        let mut tasks = Vec::new();
        for writer in 0..64 {
            let journal = std::sync::Arc::clone(&journal);
            tasks.push(tokio::spawn(async move {
                let actor = format!("actor-{writer}");
                for seq in 1..=20 {
                    let ticket = journal.append(&actor, seq, 0, &message(seq)).unwrap();
                    journal.durable(ticket).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        for writer in 0..64 {
            let recovered = journal.recover(&format!("actor-{writer}")).await.unwrap();
            assert_eq!(recovered.last_seq(), 20);
        }
    });
}

/// The child of the kill test: appends messages to 16 actors, printing each once durable.
#[test]
#[ignore = "run by durable_appends_survive_kill_9 as a process of its own"]
fn journal_kill_child() {
    let Some(dir) = std::env::var_os("PLEXSPACES_JOURNAL_DIR") else { return };
    runtime().block_on(async {
        let journal = std::sync::Arc::new(SqliteJournal::open(Path::new(&dir)).unwrap());
        let round: u64 = std::env::var("PLEXSPACES_JOURNAL_ROUND").unwrap().parse().unwrap();
        let mut tasks = Vec::new();
        for writer in 0..16 {
            let journal = std::sync::Arc::clone(&journal);
            tasks.push(tokio::spawn(async move {
                let actor = format!("actor-{writer}");
                let mut seq = journal.recover(&actor).await.unwrap().last_seq();
                loop {
                    seq += 1;
                    let ticket = append_messages(&journal, &actor, seq, seq);
                    journal.durable(ticket).await.unwrap();
                    if seq % 50 == 0 {
                        let checkpoint = Checkpoint { seq, ..Checkpoint::default() };
                        journal.checkpoint(&actor, &checkpoint).await.unwrap();
                    }
                    #[allow(clippy::print_stdout)]
                    {
                        println!("ACK {actor} {seq} {round}");
                    }
                }
            }));
        }
        // The writers never end: the parent kills this process.
        futures_never_end(tasks).await;
    });
}

async fn futures_never_end(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

#[test]
fn durable_appends_survive_kill_9() {
    let dir = temp_dir("journal-kill");
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..3 {
        let lines = acknowledged_before_a_kill(
            "journal::journal_kill_child",
            &[("PLEXSPACES_JOURNAL_DIR", &dir)],
            "PLEXSPACES_JOURNAL_ROUND",
            round,
        );
        for line in lines {
            let mut parts = line.split(' ');
            let (actor, seq) = (parts.next().unwrap(), parts.next().unwrap().parse().unwrap());
            let last = acknowledged.entry(actor.to_owned()).or_default();
            *last = (*last).max(seq);
        }
    }
    runtime().block_on(async {
        let journal = SqliteJournal::open(&dir).unwrap();
        for (actor, acked) in &acknowledged {
            let recovered = journal.recover(actor).await.unwrap();
            assert!(
                recovered.last_seq() >= *acked,
                "{actor}: {acked} acknowledged, {} recovered",
                recovered.last_seq()
            );
        }
    });
}

/// A small generator with a printed seed, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// Random bit flips and truncations of the journal and checkpoint files: each actor's
/// recovery either gives exactly what was written or refuses; never anything else.
#[test]
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn damaged_files_are_detected_never_served() {
    let seed = std::env::var("PLEXSPACES_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64
                | 1
        });
    println!("PLEXSPACES_SEED={seed}");
    let pristine = temp_dir("journal-pristine");
    let actors: Vec<String> = (0..12).map(|actor| format!("tenant/ns/account/{actor}")).collect();
    let runtime = runtime();
    let expected: Vec<Recovered> = runtime.block_on(async {
        let journal = SqliteJournal::open(&pristine).unwrap();
        for (index, actor) in actors.iter().enumerate() {
            let last = 20 + index as u64 * 5;
            let ticket = append_messages(&journal, actor, 1, last);
            journal.durable(ticket).await.unwrap();
            if index % 2 == 0 {
                let state = Some(format!("{{\"balance\":{index}}}").into_bytes());
                let checkpoint = Checkpoint { seq: last - 5, state, ..Checkpoint::default() };
                journal.checkpoint(actor, &checkpoint).await.unwrap();
            }
        }
        let mut expected = Vec::new();
        for actor in &actors {
            expected.push(journal.recover(actor).await.unwrap());
        }
        journal.close();
        expected
    });
    let files = ["journal.sqlite", "checkpoints.sqlite"];
    let mut rng = Rng(seed);
    let (mut detected, mut intact, mut served_wrong) = (0, 0, 0);
    let trials = 120;
    for trial in 0..trials {
        let dir = temp_dir("journal-damaged");
        for file in files {
            std::fs::copy(pristine.join(file), dir.join(file)).unwrap();
        }
        let file = dir.join(files[rng.below(2) as usize]);
        let mut bytes = std::fs::read(&file).unwrap();
        let damage = if rng.below(4) == 0 {
            let keep = rng.below(bytes.len() as u64) as usize;
            bytes.truncate(keep);
            format!("truncated {} to {keep} bytes", file.display())
        } else {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let bit = rng.below(bytes.len() as u64 * 8) as usize;
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            format!("{flips} bits flipped in {}", file.display())
        };
        std::fs::write(&file, &bytes).unwrap();
        runtime.block_on(async {
            let journal = match SqliteJournal::open(&dir) {
                Ok(journal) => journal,
                Err(_) => {
                    detected += actors.len();
                    return;
                }
            };
            for (actor, expected) in actors.iter().zip(&expected) {
                match tokio::time::timeout(Duration::from_secs(30), journal.recover(actor)).await {
                    Ok(Ok(recovered)) if &recovered == expected => intact += 1,
                    Ok(Ok(recovered)) => {
                        served_wrong += 1;
                        eprintln!(
                            "trial {trial} ({damage}): {actor} served {} entries, last {}, \
                             where {} entries, last {} were written",
                            recovered.entries.len(),
                            recovered.last_seq(),
                            expected.entries.len(),
                            expected.last_seq()
                        );
                    }
                    Ok(Err(error)) => {
                        assert!(
                            matches!(error.code, ErrorCode::JournalDamaged | ErrorCode::Internal),
                            "{error}"
                        );
                        detected += 1;
                    }
                    Err(_) => panic!("trial {trial} ({damage}): recovery hung"),
                }
            }
        });
    }
    println!(
        "{trials} damaged copies: {detected} recoveries refused, {intact} intact, {served_wrong} wrong"
    );
    assert_eq!(served_wrong, 0, "seed {seed}");
    assert!(detected > 0, "no damage was ever found: the test cannot fail");
}
