//! Durable actors end to end, by killing the real node: state rebuilt from the journal after a
//! kill -9, host calls (clocks, randomness, WASI's too) replayed with their recorded results,
//! and a crash loop in which no acknowledged deposit is lost or applied twice.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{NodeProcess, data_dir, guests, http, wasm};

fn ask(node: &NodeProcess, actor: &str, body: &str) -> Value {
    let reply = wasm::call(node, actor, body);
    assert_eq!(reply.status, 200, "{actor} {body}: {reply:?}");
    reply.json()
}

#[test]
fn a_durable_actor_replays_its_clocks_and_randomness_after_a_kill() {
    let module = guests::python_module("tests/fixtures/python/durable_draws.py");
    let dir = data_dir("durable-draws");
    let node = wasm::start(&dir);
    wasm::deploy(&node, "draws", &module);
    let replies: Vec<Value> =
        (0..5).map(|_| ask(&node, "draws/d-1", r#"{"action":"draw"}"#)).collect();
    // Every draw differs from the last: the values are live, not constants.
    assert_ne!(replies[0]["uuid"], replies[1]["uuid"]);
    assert_ne!(replies[0]["random"], replies[1]["random"]);
    assert_eq!(ask(&node, "draws/d-1", r#"{"action":"list"}"#), Value::Array(replies.clone()));
    drop(node); // SIGKILL: no checkpoint, no clean close.

    let node = wasm::start(&dir);
    // Rebuilt by replaying the journal: the handler ran again with the recorded clocks and
    // random numbers, so it made exactly the same state.
    assert_eq!(ask(&node, "draws/d-1", r#"{"action":"list"}"#), Value::Array(replies.clone()));
    let next = ask(&node, "draws/d-1", r#"{"action":"draw"}"#);
    assert_ne!(next["uuid"], replies[4]["uuid"]);
    assert!(node.terminate().success());

    // A clean stop checkpoints on deactivation; the state comes back from the checkpoint.
    let node = wasm::start(&dir);
    let listed = ask(&node, "draws/d-1", r#"{"action":"list"}"#);
    assert_eq!(listed.as_array().map(Vec::len), Some(6), "{listed}");
    // Deleting the actor deletes its journal: it starts over.
    let deleted =
        http::request(node.admin, "DELETE", "/api/v1/actors/default/default/draws/d-1", &[], b"");
    assert_eq!(deleted.status, 204, "{deleted:?}");
    drop(node);
    let node = wasm::start(&dir);
    assert_eq!(ask(&node, "draws/d-1", r#"{"action":"list"}"#), json!([]));
}

/// A tell with an `Idempotency-Key`; `None` when the node could not be reached or did not
/// acknowledge (it was killed).
fn tell_keyed(address: SocketAddr, actor: &str, body: &str, key: &str) -> Option<Value> {
    let request = format!(
        "POST /api/v1/actors/default/default/{actor} HTTP/1.1\r\nHost: {address}\r\n\
         Connection: close\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = http::raw(address, request.as_bytes()).ok()?;
    (response.status == 202).then(|| response.json())
}

#[test]
#[allow(clippy::print_stderr)]
fn a_crash_loop_loses_no_acknowledged_deposit_and_doubles_none() {
    const ACCOUNTS: u64 = 6;
    const CLIENTS: u64 = 4;
    let cycles: u64 =
        std::env::var("PLEXSPACES_CRASH_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(50);
    let seed: u64 = std::env::var("PLEXSPACES_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64
                | 1
        });
    eprintln!("PLEXSPACES_SEED={seed} PLEXSPACES_CRASH_CYCLES={cycles}");
    let module = guests::python_module("examples/python/bank_account.py");
    let dir = data_dir("durable-crash-loop");
    let node = wasm::start(&dir);
    wasm::deploy(&node, "bank", &module);
    let address = Arc::new(Mutex::new(Some(node.invoke)));
    let stop = Arc::new(AtomicBool::new(false));
    // Each client's deposits, once acknowledged: (account, amount).
    let acknowledged: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (address, stop, acknowledged) =
                (Arc::clone(&address), Arc::clone(&stop), Arc::clone(&acknowledged));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let account = (client + n) % ACCOUNTS;
                    let amount = 1 + (client * 7 + n * 13) % 50;
                    let key = format!("c{client}-{n}");
                    let body = format!(r#"{{"action":"deposit","amount":{amount}}}"#);
                    // Retried with the same key until the node acknowledges it.
                    loop {
                        let target = *address.lock().unwrap();
                        if let Some(target) = target
                            && tell_keyed(target, &format!("bank/acct-{account}"), &body, &key)
                                .is_some()
                        {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    acknowledged.lock().unwrap().push((account, amount));
                    n += 1;
                }
            })
        })
        .collect();
    let mut rng = seed;
    let mut node = node;
    let mut restarts = Vec::new();
    for _ in 0..cycles {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(50 + rng % 1450));
        *address.lock().unwrap() = None;
        drop(node); // SIGKILL
        let started = Instant::now();
        node = wasm::start(&dir);
        restarts.push(started.elapsed());
        *address.lock().unwrap() = Some(node.invoke);
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let mut expected: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    for (account, amount) in acknowledged.lock().unwrap().iter() {
        let entry = expected.entry(*account).or_default();
        entry.0 += amount;
        entry.1 += 1;
    }
    let total: usize = expected.values().map(|(_, count)| count).sum();
    assert!(total > 0, "no deposit was acknowledged");
    for (account, (balance, count)) in &expected {
        let replay = ask(&node, &format!("bank/acct-{account}"), r#"{"action":"replay"}"#);
        assert_eq!(
            (replay["current_balance"].as_u64(), replay["replayed"].as_u64()),
            (Some(*balance), Some(*count as u64)),
            "account {account} after {cycles} kills (seed {seed}): {replay}"
        );
        assert_eq!(replay["consistent"], json!(true));
    }
    restarts.sort();
    eprintln!(
        "{cycles} kills, {total} deposits acknowledged, none lost or doubled; restart p50 {:?}, max {:?}",
        restarts[restarts.len() / 2],
        restarts.last().unwrap()
    );
    assert!(node.terminate().success());
}
