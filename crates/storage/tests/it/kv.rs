//! The KV store on each backend through one suite, SQLite across reopening and across a kill
//! -9 of a process writing to it: every acknowledged write is there afterwards.

use std::time::Duration;

use plexspaces_storage::kv::{Kv, MAX_VALUE};
use plexspaces_types::ErrorCode;

use crate::{SCOPE, acknowledged_before_a_kill, temp_dir};

fn backends(name: &str) -> Vec<Kv> {
    let dir = temp_dir(&format!("kv-{name}"));
    vec![Kv::in_memory(), Kv::open_sqlite(&dir.join("kv.sqlite")).unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_put_delete_and_scopes() {
    for kv in backends("basics") {
        let name = kv.backend_name();
        assert_eq!(kv.get(SCOPE, "a").await.unwrap(), None, "{name}");
        kv.put(SCOPE, "a", "1".into(), None).await.unwrap();
        kv.put(SCOPE, "a", "2".into(), None).await.unwrap();
        let entry = kv.get(SCOPE, "a").await.unwrap().unwrap();
        assert_eq!(
            (entry.key.as_str(), entry.value.as_str(), entry.expires_at_ms),
            ("a", "2", None)
        );
        assert_eq!(kv.get(("acme", "other"), "a").await.unwrap(), None, "{name}: namespaces");
        assert_eq!(kv.get(("globex", "default"), "a").await.unwrap(), None, "{name}: tenants");
        assert!(kv.delete(SCOPE, "a").await.unwrap(), "{name}");
        assert!(!kv.delete(SCOPE, "a").await.unwrap(), "{name}: a second delete finds nothing");
        assert_eq!(kv.get(SCOPE, "a").await.unwrap(), None, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_by_prefix_in_pages() {
    for kv in backends("list") {
        let name = kv.backend_name();
        for key in ["user:3", "user:1", "user:2", "users", "order:1", "user;", "user:10"] {
            kv.put(SCOPE, key, format!("v-{key}"), None).await.unwrap();
        }
        kv.put(("acme", "other"), "user:0", "elsewhere".into(), None).await.unwrap();
        let keys = |page: &plexspaces_storage::kv::Page| -> Vec<String> {
            page.entries.iter().map(|entry| entry.key.clone()).collect()
        };
        let first = kv.list(SCOPE, "user:", None, 2).await.unwrap();
        assert_eq!(keys(&first), ["user:1", "user:10"], "{name}");
        assert_eq!(first.next_after.as_deref(), Some("user:10"), "{name}");
        let second = kv.list(SCOPE, "user:", first.next_after.as_deref(), 2).await.unwrap();
        assert_eq!(keys(&second), ["user:2", "user:3"], "{name}");
        assert_eq!(second.next_after, None, "{name}: the last page says so");
        let past = kv.list(SCOPE, "user:", Some("user:3"), 2).await.unwrap();
        assert!(past.entries.is_empty() && past.next_after.is_none(), "{name}: {past:?}");
        let all = kv.list(SCOPE, "", None, 100).await.unwrap();
        assert_eq!(all.entries.len(), 7, "{name}");
        assert_eq!(all.entries[0].value, "v-order:1", "{name}");
        assert_eq!(all.next_after, None, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_their_time_to_live() {
    for kv in backends("ttl") {
        let name = kv.backend_name();
        kv.put(SCOPE, "short", "x".into(), Some(Duration::from_millis(50))).await.unwrap();
        kv.put(SCOPE, "long", "y".into(), Some(Duration::from_secs(3600))).await.unwrap();
        let entry = kv.get(SCOPE, "short").await.unwrap().unwrap();
        assert!(entry.expires_at_ms.is_some(), "{name}");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(kv.get(SCOPE, "short").await.unwrap(), None, "{name}: expired");
        assert!(!kv.delete(SCOPE, "short").await.unwrap(), "{name}: nothing live to delete");
        let listed = kv.list(SCOPE, "", None, 10).await.unwrap();
        assert_eq!(listed.entries.len(), 1, "{name}: {listed:?}");
        assert!(
            kv.compare_and_swap(SCOPE, "short", None, Some("z".into()), None).await.unwrap(),
            "{name}: an expired key is absent for compare-and-swap"
        );
        // A put without a time to live keeps the value for good.
        kv.put(SCOPE, "long", "kept".into(), None).await.unwrap();
        assert_eq!(kv.get(SCOPE, "long").await.unwrap().unwrap().expires_at_ms, None, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_loses_no_update_between_concurrent_writers() {
    for kv in backends("cas") {
        let name = kv.backend_name();
        assert!(!kv.compare_and_swap(SCOPE, "n", Some("0"), Some("1".into()), None).await.unwrap());
        assert!(kv.compare_and_swap(SCOPE, "n", None, Some("0".into()), None).await.unwrap());
        assert!(!kv.compare_and_swap(SCOPE, "n", None, Some("0".into()), None).await.unwrap());
        let mut writers = Vec::new();
        for _ in 0..8 {
            let kv = kv.clone();
            writers.push(tokio::spawn(async move {
                let mut retries = 0_u32;
                for _ in 0..50 {
                    loop {
                        let current = kv.get(SCOPE, "n").await.unwrap().unwrap().value;
                        let next = (current.parse::<u64>().unwrap() + 1).to_string();
                        let swapped = kv
                            .compare_and_swap(SCOPE, "n", Some(&current), Some(next), None)
                            .await
                            .unwrap();
                        if swapped {
                            break;
                        }
                        retries += 1;
                    }
                }
                retries
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(kv.get(SCOPE, "n").await.unwrap().unwrap().value, "400", "{name}");
        assert!(kv.compare_and_swap(SCOPE, "n", Some("400"), None, None).await.unwrap(), "{name}");
        assert_eq!(kv.get(SCOPE, "n").await.unwrap(), None, "{name}: swapped for nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_their_reason() {
    for kv in backends("bad") {
        let refused = [
            kv.put(SCOPE, "", "v".into(), None).await.unwrap_err(),
            kv.put(SCOPE, &"k".repeat(2000), "v".into(), None).await.unwrap_err(),
            kv.put(SCOPE, "k", "v".repeat(MAX_VALUE + 1), None).await.unwrap_err(),
            kv.put(SCOPE, "k", "v".into(), Some(Duration::ZERO)).await.unwrap_err(),
            kv.list(SCOPE, "", None, 0).await.unwrap_err(),
            kv.get(SCOPE, "").await.unwrap_err(),
        ];
        for error in refused {
            assert_eq!(error.code, ErrorCode::InvalidArguments, "{error}");
        }
        assert_eq!(kv.list(SCOPE, "", None, 10).await.unwrap().entries, []);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_entries_across_reopening() {
    let path = temp_dir("kv-reopen").join("kv.sqlite");
    {
        let kv = Kv::open_sqlite(&path).unwrap();
        kv.put(SCOPE, "kept", "1".into(), None).await.unwrap();
        kv.put(SCOPE, "brief", "2".into(), Some(Duration::from_millis(30))).await.unwrap();
        kv.put(SCOPE, "gone", "3".into(), None).await.unwrap();
        kv.delete(SCOPE, "gone").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let kv = Kv::open_sqlite(&path).unwrap();
    assert_eq!(kv.get(SCOPE, "kept").await.unwrap().unwrap().value, "1");
    assert_eq!(kv.get(SCOPE, "brief").await.unwrap(), None);
    assert_eq!(kv.get(SCOPE, "gone").await.unwrap(), None);
}

/// Run by `acknowledged_writes_survive_a_kill_9`, in a process of its own: writes keys from
/// 16 tasks and prints each key once its put returned, until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of acknowledged_writes_survive_a_kill_9"]
async fn crash_child() {
    let path = std::env::var("PLEXSPACES_KV_CRASH_FILE").expect("run by the crash test");
    let round = std::env::var("PLEXSPACES_KV_CRASH_ROUND").expect("run by the crash test");
    let kv = Kv::open_sqlite(std::path::Path::new(&path)).unwrap();
    let (acked, mut printed) = tokio::sync::mpsc::unbounded_channel::<String>();
    for task in 0..16 {
        let kv = kv.clone();
        let acked = acked.clone();
        let round = round.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let key = format!("k-{round}-{task}-{n}");
                kv.put(SCOPE, &key, n.to_string(), None).await.unwrap();
                if acked.send(key).is_err() {
                    return;
                }
            }
        });
    }
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    while let Some(key) = printed.recv().await {
        writeln!(stdout, "ACK {key}").unwrap();
        stdout.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_9() {
    let dir = temp_dir("kv-crash");
    let path = dir.join("kv.sqlite");
    let mut acknowledged = Vec::new();
    for round in 0..3_u64 {
        let keys = acknowledged_before_a_kill(
            "kv::crash_child",
            &[("PLEXSPACES_KV_CRASH_FILE", &path)],
            "PLEXSPACES_KV_CRASH_ROUND",
            round,
        );
        acknowledged.extend(keys);
    }
    let kv = Kv::open_sqlite(&path).unwrap();
    let mut lost = Vec::new();
    for key in &acknowledged {
        if kv.get(SCOPE, key).await.unwrap().is_none() {
            lost.push(key.clone());
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}
