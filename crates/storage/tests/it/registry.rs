//! The service registry on each backend through one suite, on a clock the test moves: names,
//! re-registration, heartbeats, expiry, listing in pages, scopes; SQLite across reopening.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use plexspaces_storage::registry::{Registry, ServiceSummary};
use plexspaces_types::ErrorCode;
use serde_json::{Map, Value, json};

use crate::{SCOPE, temp_dir};

/// A registry on each backend and the clock they judge expiry by (starting now, so SQLite's
/// own sweeps, which read the real clock, never remove what the test clock holds live).
fn backends(name: &str) -> Vec<(Registry, Arc<AtomicU64>)> {
    let dir = temp_dir(&format!("registry-{name}"));
    let memory = Registry::in_memory();
    let sqlite = Registry::open_sqlite(&dir.join("registry.sqlite")).unwrap();
    [memory, sqlite]
        .into_iter()
        .map(|registry| {
            let clock = Arc::new(AtomicU64::new(plexspaces_storage::now_ms()));
            let reading = Arc::clone(&clock);
            (registry.with_clock(Arc::new(move || reading.load(Ordering::SeqCst))), clock)
        })
        .collect()
}

fn metadata(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_register_heartbeat_and_vanish_when_they_stop() {
    for (registry, clock) in backends("expiry") {
        let name = registry.backend_name();
        let start = clock.load(Ordering::SeqCst);
        let first = registry
            .register(SCOPE, "orders", "10.0.0.1:80", metadata(json!({"zone": "a"})), 1_000)
            .await
            .unwrap();
        assert_eq!(
            (first.registered_at_ms, first.expires_at_ms, first.ttl_ms),
            (start, start + 1_000, 1_000),
            "{name}"
        );
        registry.register(SCOPE, "orders", "10.0.0.2:80", Map::new(), 0).await.unwrap();
        clock.fetch_add(600, Ordering::SeqCst);
        // Registering a live instance again replaces its metadata and keeps its start.
        let again = registry
            .register(SCOPE, "orders", "10.0.0.1:80", metadata(json!({"zone": "b"})), 1_000)
            .await
            .unwrap();
        assert_eq!((again.registered_at_ms, again.expires_at_ms), (start, start + 1_600), "{name}");
        assert_eq!(again.metadata["zone"], "b", "{name}");
        let found = registry.lookup(SCOPE, "orders").await.unwrap();
        let instances: Vec<(&str, u64)> =
            found.iter().map(|found| (found.instance.as_str(), found.ttl_ms)).collect();
        assert_eq!(instances, [("10.0.0.1:80", 1_000), ("10.0.0.2:80", 30_000)], "{name}");
        // A heartbeat renews for the instance's own time to live, or a new one.
        clock.fetch_add(900, Ordering::SeqCst);
        let renewed = registry.heartbeat(SCOPE, "orders", "10.0.0.1:80", 0).await.unwrap();
        assert_eq!(renewed.expires_at_ms, start + 2_500, "{name}");
        assert_eq!(renewed.metadata["zone"], "b", "{name}: a heartbeat keeps the metadata");
        // Past its time to live an instance is gone for every call at once.
        clock.fetch_add(1_001, Ordering::SeqCst);
        let found = registry.lookup(SCOPE, "orders").await.unwrap();
        let instances: Vec<&str> = found.iter().map(|found| found.instance.as_str()).collect();
        assert_eq!(instances, ["10.0.0.2:80"], "{name}");
        let gone = registry.heartbeat(SCOPE, "orders", "10.0.0.1:80", 0).await.unwrap_err();
        assert_eq!(gone.code, ErrorCode::NotFound, "{name}");
        assert!(gone.message.contains("register it again"), "{name}: {}", gone.message);
        assert!(!registry.deregister(SCOPE, "orders", "10.0.0.1:80").await.unwrap(), "{name}");
        // It registers again as new.
        let back =
            registry.register(SCOPE, "orders", "10.0.0.1:80", Map::new(), 1_000).await.unwrap();
        assert_eq!(back.registered_at_ms, clock.load(Ordering::SeqCst), "{name}");
        let renewed = registry.heartbeat(SCOPE, "orders", "10.0.0.1:80", 5_000).await.unwrap();
        assert_eq!(renewed.ttl_ms, 5_000, "{name}: a heartbeat may change the time to live");
        assert!(registry.deregister(SCOPE, "orders", "10.0.0.1:80").await.unwrap(), "{name}");
        clock.fetch_add(30_000, Ordering::SeqCst);
        assert!(registry.lookup(SCOPE, "orders").await.unwrap().is_empty(), "{name}");
        assert!(registry.list(SCOPE, "", None, 0).await.unwrap().services.is_empty(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_list_in_name_order_in_pages() {
    for (registry, clock) in backends("list") {
        let name = registry.backend_name();
        for (service, instances) in
            [("b", 1), ("a", 2), ("a-x", 1), ("a.one", 3), ("a:z", 1), ("c", 1)]
        {
            for instance in 0..instances {
                let instance = format!("ns/worker/{instance}");
                registry.register(SCOPE, service, &instance, Map::new(), 1_000).await.unwrap();
            }
        }
        registry.register(("acme", "other"), "a", "elsewhere", Map::new(), 0).await.unwrap();
        registry.register(("globex", "default"), "zz", "x", Map::new(), 0).await.unwrap();
        let summary =
            |service: &str, instances| ServiceSummary { service: service.into(), instances };
        let all = registry.list(SCOPE, "", None, 0).await.unwrap();
        assert_eq!(
            all.services,
            [
                summary("a", 2),
                summary("a-x", 1),
                summary("a.one", 3),
                summary("a:z", 1),
                summary("b", 1),
                summary("c", 1)
            ],
            "{name}"
        );
        assert_eq!(all.next_after, None, "{name}");
        let first = registry.list(SCOPE, "a", None, 2).await.unwrap();
        assert_eq!(first.services, [summary("a", 2), summary("a-x", 1)], "{name}");
        assert_eq!(first.next_after.as_deref(), Some("a-x"), "{name}");
        let second = registry.list(SCOPE, "a", first.next_after.as_deref(), 2).await.unwrap();
        assert_eq!(second.services, [summary("a.one", 3), summary("a:z", 1)], "{name}");
        assert_eq!(second.next_after, None, "{name}: the last page says so");
        let past = registry.list(SCOPE, "a", Some("a:z"), 2).await.unwrap();
        assert!(past.services.is_empty() && past.next_after.is_none(), "{name}: {past:?}");
        let after_a = registry.list(SCOPE, "", Some("a"), 1).await.unwrap();
        assert_eq!(after_a.services, [summary("a-x", 1)], "{name}");
        // Expired instances are not counted, and a service with none is not listed.
        clock.fetch_add(1_001, Ordering::SeqCst);
        registry.register(SCOPE, "a.one", "late", Map::new(), 1_000).await.unwrap();
        let live = registry.list(SCOPE, "", None, 0).await.unwrap();
        assert_eq!(live.services, [summary("a.one", 1)], "{name}");
        assert_eq!(registry.lookup(SCOPE, "zz").await.unwrap(), [], "{name}: tenants apart");
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, plexspaces_storage::Error>) -> ErrorCode {
    result.unwrap_err().code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_their_code() {
    for (registry, _) in backends("bad") {
        let name = registry.backend_name();
        let invalid = ErrorCode::InvalidArguments;
        assert_eq!(code(registry.register(SCOPE, "", "i", Map::new(), 0).await), invalid, "{name}");
        assert_eq!(code(registry.register(SCOPE, "a/b", "i", Map::new(), 0).await), invalid);
        assert_eq!(code(registry.register(SCOPE, "-a", "i", Map::new(), 0).await), invalid);
        assert_eq!(code(registry.register(SCOPE, "a", "", Map::new(), 0).await), invalid);
        assert_eq!(code(registry.register(SCOPE, "a", "x\ny", Map::new(), 0).await), invalid);
        let long = "i".repeat(191);
        assert_eq!(code(registry.register(SCOPE, "a", &long, Map::new(), 0).await), invalid);
        let too_long = 24 * 3600 * 1000 + 1;
        assert_eq!(code(registry.register(SCOPE, "a", "i", Map::new(), too_long).await), invalid);
        assert_eq!(code(registry.heartbeat(SCOPE, "a", "i", too_long).await), invalid);
        assert_eq!(code(registry.heartbeat(SCOPE, "a", "i", 0).await), ErrorCode::NotFound);
        assert_eq!(code(registry.lookup(SCOPE, "a b").await), invalid);
        assert_eq!(code(registry.list(SCOPE, "a/", None, 0).await), invalid);
        assert_eq!(code(registry.list(SCOPE, "", None, 1_001).await), invalid);
        assert_eq!(registry.lookup(SCOPE, "a").await.unwrap(), [], "{name}: nothing was stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_heartbeats_all_land() {
    for (registry, _) in backends("concurrent") {
        let name = registry.backend_name();
        registry.register(SCOPE, "svc", "one", Map::new(), 60_000).await.unwrap();
        let mut tasks = Vec::new();
        for round in 0..32_u64 {
            let registry = registry.clone();
            tasks.push(tokio::spawn(async move {
                if round % 2 == 0 {
                    registry.heartbeat(SCOPE, "svc", "one", 60_000 + round).await.map(|_| ())
                } else {
                    let metadata = metadata(json!({"round": round}));
                    registry.register(SCOPE, "svc", "one", metadata, 60_000).await.map(|_| ())
                }
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let found = registry.lookup(SCOPE, "svc").await.unwrap();
        assert_eq!(found.len(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_registrations_outlive_the_process_until_they_expire() {
    let dir = temp_dir("registry-reopen");
    let path = dir.join("registry.sqlite");
    {
        let registry = Registry::open_sqlite(&path).unwrap();
        registry
            .register(SCOPE, "orders", "kept", metadata(json!({"port": 1})), 60_000)
            .await
            .unwrap();
        registry.register(SCOPE, "orders", "brief", Map::new(), 50).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let registry = Registry::open_sqlite(&path).unwrap();
    let found = registry.lookup(SCOPE, "orders").await.unwrap();
    let instances: Vec<&str> = found.iter().map(|found| found.instance.as_str()).collect();
    assert_eq!(instances, ["kept"]);
    assert_eq!(found[0].metadata["port"], 1);
}
