//! Locks through their public API: renewal and release rules, waits, fencing tokens across
//! restarts, and a checked history of many clients against a resource that checks tokens,
//! beside a control run without fencing that the checker must fail.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use plexspaces_storage::locks::Locks;
use plexspaces_types::ErrorCode;

use crate::{SCOPE, temp_dir};

#[test]
fn holding_renewing_and_releasing() {
    let locks = Locks::in_memory();
    let lease = Duration::from_secs(30);
    let a = locks.try_acquire(SCOPE, "job", "a", "first", lease).unwrap().unwrap();
    assert_eq!(locks.try_acquire(SCOPE, "job", "b", "", lease).unwrap(), None);
    // The holder acquiring again renews, with the same version.
    let again = locks.try_acquire(SCOPE, "job", "a", "first", lease).unwrap().unwrap();
    assert_eq!(again.version, a.version);
    let renewed = locks.renew(SCOPE, "job", "a", a.version, lease).unwrap();
    assert_eq!(renewed.version, a.version);
    let wrong = locks.renew(SCOPE, "job", "a", a.version + 1, lease).unwrap_err();
    assert_eq!(wrong.code, ErrorCode::InvalidState, "{wrong}");
    // Another tenant's or namespace's lock of the same name is another lock.
    assert!(locks.try_acquire(("other", "default"), "job", "b", "", lease).unwrap().is_some());
    assert!(locks.try_acquire(("acme", "orders"), "job", "b", "", lease).unwrap().is_some());
    // Release is safe to repeat.
    assert!(locks.release(SCOPE, "job", a.version));
    assert!(!locks.release(SCOPE, "job", a.version));
    let b = locks.try_acquire(SCOPE, "job", "b", "", lease).unwrap().unwrap();
    assert!(b.version > a.version);
    // A stale version releases nothing.
    assert!(!locks.release(SCOPE, "job", a.version));
    assert_eq!(locks.holder(SCOPE, "job").unwrap().holder, "b");
    for (name, holder, lease, says) in [
        ("", "a", lease, "lock name"),
        ("x", "", lease, "holder"),
        ("x", "a", Duration::ZERO, "lease"),
    ] {
        let error = locks.try_acquire(SCOPE, name, holder, "", lease).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidArguments);
        assert!(error.message.contains(says), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_acquire_is_woken_by_the_release_or_the_end_of_the_lease() {
    let locks = Arc::new(Locks::in_memory());
    let held = locks.try_acquire(SCOPE, "w", "a", "", Duration::from_secs(30)).unwrap().unwrap();
    let waiting = {
        let locks = Arc::clone(&locks);
        tokio::spawn(async move {
            let started = Instant::now();
            let grant = locks
                .acquire(SCOPE, "w", "b", "", Duration::from_millis(100), Duration::from_secs(20))
                .await
                .unwrap();
            (grant, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(locks.release(SCOPE, "w", held.version));
    let (grant, waited) = waiting.await.unwrap();
    let grant = grant.unwrap();
    assert!(grant.version > held.version);
    assert!(waited < Duration::from_secs(5), "woken by the release: {waited:?}");
    // b's lease of 100 ms ends; a waiting c gets it then, without a release.
    let started = Instant::now();
    let c = locks
        .acquire(SCOPE, "w", "c", "", Duration::from_secs(30), Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    assert!(c.version > grant.version);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // A timeout ends in None.
    let none = locks
        .acquire(SCOPE, "w", "d", "", Duration::from_secs(1), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(none, None);
}

#[test]
fn tokens_keep_increasing_across_100_restarts() {
    let dir = temp_dir("restarts");
    let file = dir.join("locks.epoch");
    let mut last = 0;
    for restart in 0..100 {
        let locks = Locks::open(&file).unwrap();
        assert_eq!(locks.epoch(), restart + 1);
        for n in 0..3 {
            let grant = locks
                .try_acquire(SCOPE, &format!("l{n}"), "a", "", Duration::from_secs(60))
                .unwrap()
                .unwrap();
            assert!(grant.version > last, "restart {restart}: {} after {last}", grant.version);
            last = grant.version;
        }
    }
    // One process at a time: a second opener would hand out the same tokens.
    let held = Locks::open(&file).unwrap();
    let refused = Locks::open(&file).unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unavailable, "{refused}");
    assert!(refused.message.contains("cannot share a data directory"), "{refused}");
    drop(held);
    std::fs::write(&file, "garbage").unwrap();
    let error = Locks::open(&file).unwrap_err();
    assert!(error.message.contains("no lock epoch"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A resource that stores one counter. With fencing it refuses any read or write with a token
/// smaller than the largest it has seen.
#[derive(Default)]
struct Resource {
    fenced: bool,
    max_token: u64,
    value: u64,
    /// Accepted writes: (the value read before, the value written).
    history: Vec<(u64, u64)>,
    refused: usize,
}

impl Resource {
    fn admit(&mut self, token: u64) -> bool {
        if self.fenced && token < self.max_token {
            self.refused += 1;
            return false;
        }
        self.max_token = self.max_token.max(token);
        true
    }

    fn read(&mut self, token: u64) -> Option<u64> {
        self.admit(token).then_some(self.value)
    }

    fn write(&mut self, token: u64, read: u64, value: u64) {
        if self.admit(token) {
            self.value = value;
            self.history.push((read, value));
        }
    }
}

/// The checker: under mutual exclusion every accepted write read the value the accepted write
/// before it wrote. Returns the writes that did not (lost updates).
fn violations(history: &[(u64, u64)]) -> usize {
    let mut current = 0;
    let mut bad = 0;
    for (read, written) in history {
        if *read != current {
            bad += 1;
        }
        current = *written;
    }
    bad
}

/// `clients` each do `ops` increments of the resource under the lock; a client pauses for
/// `pause` inside the section every `pause_every` ops (never, with 0).
async fn run_clients(
    fenced: bool,
    clients: usize,
    ops: usize,
    lease: Duration,
    pause_every: usize,
    pause: Duration,
) -> Resource {
    let locks = Arc::new(Locks::in_memory());
    let resource = Arc::new(Mutex::new(Resource { fenced, ..Resource::default() }));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (locks, resource) = (Arc::clone(&locks), Arc::clone(&resource));
        tasks.push(tokio::spawn(async move {
            let holder = format!("client-{client}");
            for op in 0..ops {
                let grant = locks
                    .acquire(SCOPE, "counter", &holder, "", lease, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .expect("the lock comes within a minute");
                let read = resource.lock().read(grant.version);
                if pause_every > 0 && (op + client) % pause_every == 0 {
                    tokio::time::sleep(pause).await;
                } else {
                    tokio::task::yield_now().await;
                }
                if let Some(read) = read {
                    resource.lock().write(grant.version, read, read + 1);
                }
                locks.release(SCOPE, "counter", grant.version);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(resource).ok().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_and_a_thousand_operations_keep_mutual_exclusion() {
    let resource = run_clients(true, 10, 100, Duration::from_secs(10), 0, Duration::ZERO).await;
    assert_eq!(violations(&resource.history), 0);
    assert_eq!(resource.history.len(), 1_000);
    assert_eq!(resource.value, 1_000);
    assert_eq!(resource.refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_paused_past_their_lease_lose_updates_without_fencing_and_are_refused_with_it() {
    // Leases of 20 ms; every third section pauses 60 ms, past its lease, so another client
    // takes the lock meanwhile.
    let lease = Duration::from_millis(20);
    let pause = Duration::from_millis(60);
    let control = run_clients(false, 10, 20, lease, 3, pause).await;
    assert!(
        violations(&control.history) > 0,
        "the checker must catch lost updates when nothing checks tokens"
    );
    let fenced = run_clients(true, 10, 20, lease, 3, pause).await;
    assert_eq!(violations(&fenced.history), 0);
    assert!(fenced.refused > 0, "the paused holders' stale tokens were refused");
}
