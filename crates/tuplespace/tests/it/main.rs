//! The tuple space through its public API: matching order, blocking waits woken by writes,
//! leases, asynchronous takes, and concurrent producers and consumers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use plexspaces_tuplespace::{Pattern, Space, Tuple, TupleSpace};
use serde_json::{Value, json};

fn tuple(value: Value) -> Tuple {
    value.as_array().cloned().unwrap()
}

fn pattern(value: Value) -> Pattern {
    Pattern::from_json(&value).unwrap()
}

#[test]
fn oldest_match_first_reads_leave_takes_remove() {
    let space = Space::default();
    space.write(tuple(json!(["order", 1, "pending"])), None).unwrap();
    space.write(tuple(json!(["order", 2, "pending"])), None).unwrap();
    space.write(tuple(json!(["order", 3, "done"])), None).unwrap();
    let pending = pattern(json!(["order", null, "pending"]));
    assert_eq!(space.read(&pending), Some(tuple(json!(["order", 1, "pending"]))));
    assert_eq!(space.count(&pending), 2);
    assert_eq!(space.take(&pending), Some(tuple(json!(["order", 1, "pending"]))));
    assert_eq!(space.take(&pending), Some(tuple(json!(["order", 2, "pending"]))));
    assert_eq!(space.take(&pending), None);
    assert_eq!(space.read(&pattern(json!([null, {"$type": "int"}, "done"]))).unwrap()[1], 3);
    // Another arity is another set of tuples.
    assert_eq!(space.take(&pattern(json!(["order", null]))), None);
    assert_eq!(space.stats().tuples, 1);
    assert_eq!(space.scan(&pattern(json!([null, null, null])), 10).len(), 1);
}

#[test]
fn an_exact_later_field_finds_its_tuple_among_many_alike() {
    let space = Space::default();
    for n in 0..10_000 {
        space.write(tuple(json!(["order", format!("id-{n}"), n])), None).unwrap();
    }
    let wanted = pattern(json!(["order", "id-7777", null]));
    assert_eq!(space.take(&wanted), Some(tuple(json!(["order", "id-7777", 7777]))));
    assert_eq!(space.take(&wanted), None);
    // Takes through one index leave stale entries in the others: they are skipped, and
    // compacted away, never returned.
    let any = pattern(json!(["order", null, null]));
    let mut seen = HashSet::new();
    while let Some(found) = space.take(&any) {
        assert!(seen.insert(found[2].as_i64().unwrap()));
    }
    assert_eq!(seen.len(), 9_999);
    assert!(!seen.contains(&7777));
    assert_eq!(space.stats().tuples, 0);
}

#[test]
fn leases_end_tuples() {
    let space = Space::default();
    space.write(tuple(json!(["lease", 1])), Some(Duration::from_millis(30))).unwrap();
    space.write(tuple(json!(["lease", 2])), None).unwrap();
    let any = pattern(json!(["lease", null]));
    assert_eq!(space.count(&any), 2);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(space.read(&any), Some(tuple(json!(["lease", 2]))));
    assert_eq!(space.count(&any), 1);
    assert_eq!(space.stats().tuples, 1);
}

#[test]
fn bad_tuples_are_refused() {
    let space = Space::default();
    let error = space.write(Vec::new(), None).unwrap_err();
    assert!(error.message.contains("at least one field"), "{error}");
    assert!(plexspaces_tuplespace::tuple_from_json(json!({"a": 1})).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_take_is_woken_by_the_write_and_gets_the_tuple_once() {
    let space = Arc::new(Space::default());
    let waiting = {
        let space = Arc::clone(&space);
        tokio::spawn(async move {
            space.take_within(pattern(json!(["job", null])), Duration::from_secs(30)).await
        })
    };
    let reading = {
        let space = Arc::clone(&space);
        tokio::spawn(async move {
            space.read_within(pattern(json!(["job", null])), Duration::from_secs(30)).await
        })
    };
    while space.stats().waiting < 2 {
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    space.write(tuple(json!(["job", 7])), None).unwrap();
    assert_eq!(waiting.await.unwrap(), Some(tuple(json!(["job", 7]))));
    assert_eq!(reading.await.unwrap(), Some(tuple(json!(["job", 7]))));
    // Woken by the write, not by a poll (5x margin over a scheduler hop on 2 busy cores).
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // The take had it; it never entered the space.
    assert_eq!(space.stats(), plexspaces_tuplespace::Stats { tuples: 0, waiting: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_times_out_leaves_nothing_behind() {
    let space = Arc::new(Space::default());
    let started = Instant::now();
    let none = space.take_within(pattern(json!(["never"])), Duration::from_millis(50)).await;
    assert_eq!(none, None);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(space.stats().waiting, 0);
    // A later write is stored, not sent to the wait that gave up.
    space.write(tuple(json!(["never"])), None).unwrap();
    assert_eq!(space.stats().tuples, 1);
}

#[test]
fn an_asynchronous_take_is_delivered_once_and_a_refusal_hands_the_tuple_on() {
    let space = Space::default();
    let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let id = space.take_later(
        pattern(json!(["evt", null])),
        Box::new(move |tuple| {
            sink.lock().push(tuple);
            Ok(())
        }),
    );
    assert!(id.is_some());
    // A receiver that is gone gives the tuple back.
    space.take_later(pattern(json!(["evt", null])), Box::new(Err)).unwrap();
    space.write(tuple(json!(["evt", 1])), None).unwrap();
    space.write(tuple(json!(["evt", 2])), None).unwrap();
    assert_eq!(*got.lock(), vec![tuple(json!(["evt", 1]))]);
    assert_eq!(space.take(&pattern(json!(["evt", null]))), Some(tuple(json!(["evt", 2]))));
    let cancelled = space.take_later(pattern(json!(["x"])), Box::new(|_| Ok(()))).unwrap();
    assert!(space.cancel(1, cancelled));
    assert!(!space.cancel(1, cancelled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_and_consumers_take_every_tuple_exactly_once() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 6;
    const EACH: usize = 5_000;
    let space = Arc::new(Space::default());
    let taken = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let (space, taken, done) = (Arc::clone(&space), Arc::clone(&taken), Arc::clone(&done));
        consumers.push(tokio::spawn(async move {
            let work = pattern(json!(["work", {"$type": "int"}, null]));
            loop {
                match space.take_within(work.clone(), Duration::from_millis(200)).await {
                    Some(found) => taken.lock().push(found[1].as_u64().unwrap()),
                    None if done.load(Ordering::SeqCst) == PRODUCERS => break,
                    None => {}
                }
            }
        }));
    }
    let mut producers = Vec::new();
    for producer in 0..PRODUCERS {
        let (space, done) = (Arc::clone(&space), Arc::clone(&done));
        producers.push(tokio::spawn(async move {
            for n in 0..EACH {
                let id = producer * EACH + n;
                space.write(tuple(json!(["work", id, format!("p{producer}")])), None).unwrap();
                if n % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    for task in producers.into_iter().chain(consumers) {
        task.await.unwrap();
    }
    let taken = taken.lock();
    let distinct: HashSet<u64> = taken.iter().copied().collect();
    assert_eq!(taken.len(), PRODUCERS * EACH, "each tuple taken once");
    assert_eq!(distinct.len(), PRODUCERS * EACH, "no tuple taken twice");
    assert_eq!(space.stats(), plexspaces_tuplespace::Stats { tuples: 0, waiting: 0 });
}

#[test]
fn each_namespace_has_its_own_space() {
    let spaces = TupleSpace::new();
    spaces.space("acme", "default").write(tuple(json!(["k", 1])), None).unwrap();
    assert_eq!(spaces.space("other", "default").read(&pattern(json!(["k", null]))), None);
    assert_eq!(spaces.space("acme", "orders").read(&pattern(json!(["k", null]))), None);
    assert!(spaces.space("acme", "default").read(&pattern(json!(["k", null]))).is_some());
    assert!(spaces.drop_space("acme", "default"));
    assert_eq!(spaces.space("acme", "default").stats().tuples, 0);
}
