//! Durable actors end to end, by killing the real node: state rebuilt from the journal after a
//! kill -9, host calls (clocks, randomness, WASI's too) replayed with their recorded results,
//! and a crash loop in which no acknowledged deposit is lost or applied twice, to Python
//! (wasm) and native Rust accounts alike.

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

/// Sends a keyed tell again and again until the node acknowledges it; `address` is `None`
/// while the node is down.
fn tell_until_acked(address: &Mutex<Option<SocketAddr>>, actor: &str, body: &str, key: &str) {
    loop {
        let target = *address.lock().unwrap();
        if let Some(target) = target
            && tell_keyed(target, actor, body, key).is_some()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many kills a crash loop makes (`PLEXSPACES_CRASH_CYCLES`, 50 by default) and the seed
/// of their random times (`PLEXSPACES_SEED` repeats a run).
#[allow(clippy::print_stderr)]
fn crash_settings() -> (u64, u64) {
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
    (cycles, seed)
}

/// Kills the node (SIGKILL) `cycles` times, each after a random 50–1500 ms, and starts it
/// again on `dir`; `address` is `None` while it is down, and `kills` counts. The node
/// running at the end, and how long each restart took, sorted.
fn kill_loop(
    node: NodeProcess,
    dir: &std::path::Path,
    (cycles, seed): (u64, u64),
    address: &Mutex<Option<SocketAddr>>,
    kills: &std::sync::atomic::AtomicU64,
) -> (NodeProcess, Vec<Duration>) {
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
        kills.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        node = wasm::start(dir);
        restarts.push(started.elapsed());
        *address.lock().unwrap() = Some(node.invoke);
    }
    restarts.sort();
    (node, restarts)
}

/// An acknowledged deposit: (actor type, account, amount).
type Deposit = (&'static str, u64, u64);

#[test]
#[allow(clippy::print_stderr)]
fn a_crash_loop_loses_no_acknowledged_deposit_and_doubles_none() {
    const ACCOUNTS: u64 = 6;
    const CLIENTS: u64 = 4;
    let settings = crash_settings();
    let (cycles, seed) = settings;
    let module = guests::python_module("examples/python/bank_account.py");
    let dir = data_dir("durable-crash-loop");
    let node = wasm::start(&dir);
    wasm::deploy(&node, "bank", &module);
    let address = Arc::new(Mutex::new(Some(node.invoke)));
    let stop = Arc::new(AtomicBool::new(false));
    // Each client's deposits, once acknowledged: (type, account, amount). They alternate
    // between the Python accounts (`bank`, wasm) and the native Rust ones (`ledger`).
    let acknowledged: Arc<Mutex<Vec<Deposit>>> = Arc::default();
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
                    let kind = if n.is_multiple_of(2) { "bank" } else { "ledger" };
                    tell_until_acked(&address, &format!("{kind}/acct-{account}"), &body, &key);
                    acknowledged.lock().unwrap().push((kind, account, amount));
                    n += 1;
                }
            })
        })
        .collect();
    let kills = std::sync::atomic::AtomicU64::new(0);
    let (node, restarts) = kill_loop(node, &dir, settings, &address, &kills);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let mut expected: BTreeMap<(&str, u64), (u64, usize)> = BTreeMap::new();
    for (kind, account, amount) in acknowledged.lock().unwrap().iter() {
        let entry = expected.entry((kind, *account)).or_default();
        entry.0 += amount;
        entry.1 += 1;
    }
    let total: usize = expected.values().map(|(_, count)| count).sum();
    assert!(total > 0, "no deposit was acknowledged");
    assert!(expected.keys().any(|(kind, _)| *kind == "ledger"), "no native deposit acknowledged");
    for ((kind, account), (balance, count)) in &expected {
        let actor = format!("{kind}/acct-{account}");
        let (found, what) = if *kind == "bank" {
            let replay = ask(&node, &actor, r#"{"action":"replay"}"#);
            assert_eq!(replay["consistent"], json!(true), "{actor}: {replay}");
            let found = (replay["current_balance"].as_u64(), replay["replayed"].as_u64());
            (found, replay)
        } else {
            let ledger = ask(&node, &actor, r#"{"action":"balance"}"#);
            ((ledger["balance"].as_u64(), ledger["deposits"].as_u64()), ledger)
        };
        assert_eq!(
            found,
            (Some(*balance), Some(*count as u64)),
            "{actor} after {cycles} kills (seed {seed}): {what}"
        );
    }
    eprintln!(
        "{cycles} kills, {total} deposits acknowledged, none lost or doubled; restart p50 {:?}, max {:?}",
        restarts[restarts.len() / 2],
        restarts.last().unwrap()
    );
    assert!(node.terminate().success());
}

/// The status of the workflow `actor` once it says `wanted`; fails after 60 s with the last
/// status it gave.
fn settled(node: &NodeProcess, actor: &str, wanted: &str, seed: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status_of(node, actor);
        if status["status"] == wanted {
            return status;
        }
        if Instant::now() > deadline {
            let kind = actor.split('/').next().unwrap_or_default();
            let logs = http::get(node.admin, &format!("/api/v1/deployments/{kind}/logs"));
            panic!(
                "{actor} is not {wanted} after 60 s (seed {seed}): {status}\n{}",
                String::from_utf8_lossy(&logs.body)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[allow(clippy::print_stderr, clippy::too_many_lines)]
fn a_crash_loop_runs_no_journaled_step_twice_and_delivers_every_signal_once() {
    const ORDERS: usize = 6;
    const COUNTERS: usize = 3;
    const STEPS: usize = 6;
    let settings = crash_settings();
    let (cycles, seed) = settings;
    let modules = [
        ("payments", guests::python_module("tests/fixtures/python/payments.py")),
        ("shipping", guests::python_module("tests/fixtures/python/shipping.py")),
        ("fulfillment", guests::python_module("examples/python/order_workflow_steps.py")),
        ("steps", guests::python_module("tests/fixtures/python/step_counter.py")),
    ];
    let dir = data_dir("durable-steps-crash-loop");
    let node = wasm::start(&dir);
    for (name, module) in &modules {
        wasm::deploy(&node, name, module);
    }
    let address = Arc::new(Mutex::new(Some(node.invoke)));
    let kills = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // The pings acknowledged, per counter workflow.
    let pings: Arc<Mutex<BTreeMap<usize, Vec<u64>>>> = Arc::default();
    let driver = {
        let (address, kills, stop, pings) =
            (Arc::clone(&address), Arc::clone(&kills), Arc::clone(&stop), Arc::clone(&pings));
        std::thread::spawn(move || {
            for order in 0..ORDERS {
                let body =
                    format!(r#"{{"action":"run","order_id":"o-{order}","amount":{}}}"#, 10 + order);
                tell_until_acked(
                    &address,
                    &format!("fulfillment/o-{order}"),
                    &body,
                    &format!("run-o-{order}"),
                );
            }
            for counter in 0..COUNTERS {
                let body = format!(
                    r#"{{"action":"run","id":"c-{counter}","steps":{STEPS},"sleep_ms":150}}"#
                );
                tell_until_acked(
                    &address,
                    &format!("steps/c-{counter}"),
                    &body,
                    &format!("run-c-{counter}"),
                );
            }
            // Pings all through the crashes; the orders' decisions once half the kills are done
            // (a third of the orders is cancelled first, then approved: it refunds).
            let mut decided = false;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let counter = (n as usize) % COUNTERS;
                let body = format!(r#"{{"action":"ping","n":{n}}}"#);
                tell_until_acked(
                    &address,
                    &format!("steps/c-{counter}"),
                    &body,
                    &format!("ping-{n}"),
                );
                pings.lock().unwrap().entry(counter).or_default().push(n);
                n += 1;
                if !decided && kills.load(Ordering::Relaxed) >= cycles / 2 {
                    for order in 0..ORDERS {
                        let actor = format!("fulfillment/o-{order}");
                        if order.is_multiple_of(3) {
                            let cancel = r#"{"action":"cancel"}"#;
                            tell_until_acked(
                                &address,
                                &actor,
                                cancel,
                                &format!("cancel-o-{order}"),
                            );
                        }
                        let approve = r#"{"action":"approve","by":"ops"}"#;
                        tell_until_acked(&address, &actor, approve, &format!("approve-o-{order}"));
                    }
                    decided = true;
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            assert!(decided, "the loop ended before the decisions were sent");
        })
    };
    let (node, restarts) = kill_loop(node, &dir, settings, &address, &kills);
    stop.store(true, Ordering::Relaxed);
    driver.join().unwrap();

    let address = Mutex::new(Some(node.invoke));
    for counter in 0..COUNTERS {
        tell_until_acked(
            &address,
            &format!("steps/c-{counter}"),
            r#"{"action":"finish"}"#,
            &format!("finish-c-{counter}"),
        );
    }
    let mut reruns = 0;
    for counter in 0..COUNTERS {
        let actor = format!("steps/c-{counter}");
        let status = settled(&node, &actor, "done", seed);
        let query = format!(r#"{{"action":"executions","id":"c-{counter}","steps":{STEPS}}}"#);
        let counted = ask(&node, &actor, &query);
        let executions = &counted["executions"];
        // The result each step wrote when it was first journaled is the count of its
        // executions: none ran again once its result was journaled (one a crash interrupted
        // ran again, and its new result is the one written).
        assert_eq!(&counted["written"], executions, "{actor} (seed {seed}): {counted}");
        assert_eq!(&status["recorded"], executions, "{actor} (seed {seed}): {status}");
        for step in 0..STEPS {
            let count = executions[format!("s{step}")].as_u64().unwrap();
            assert!(count >= 1, "{actor} s{step} never ran: {executions}");
            reruns += count - 1;
        }
        let mut seen: Vec<u64> =
            status["pings"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        seen.sort_unstable();
        let sent = pings.lock().unwrap().get(&counter).cloned().unwrap_or_default();
        assert_eq!(seen, sent, "{actor}: every ping acknowledged is seen once (seed {seed})");
    }
    let mut approved = Vec::new();
    for order in 0..ORDERS {
        let actor = format!("fulfillment/o-{order}");
        let (status, steps) = if order.is_multiple_of(3) {
            ("cancelled", json!(["payment"]))
        } else {
            approved.push(format!("o-{order}"));
            ("completed", json!(["payment", "shipment"]))
        };
        let ended = settled(&node, &actor, status, seed);
        assert_eq!(ended["steps"], steps, "{actor} (seed {seed})");
    }
    // Each order charged once, each cancelled one refunded once: the payments service handled
    // exactly that many calls. Each approved order shipped once.
    let payments = ask(&node, "payments", r#"{"action":"summary"}"#);
    for order in 0..ORDERS {
        let charges = payments["charges"][format!("o-{order}")].as_array().map(Vec::len);
        assert_eq!(charges, Some(1), "o-{order} (seed {seed}): {payments}");
    }
    let cancelled = ORDERS.div_ceil(3);
    assert_eq!(payments["calls"], json!(ORDERS + cancelled), "(seed {seed}): {payments}");
    wasm::eventually("every shipment", || {
        let shipped = ask(&node, "shipping", r#"{"action":"summary"}"#)["shipped"].clone();
        let mut shipped: Vec<String> = serde_json::from_value(shipped).unwrap_or_default();
        shipped.sort();
        shipped == approved
    });
    let pinged: usize = pings.lock().unwrap().values().map(Vec::len).sum();
    eprintln!(
        "{cycles} kills: {ORDERS} orders and {COUNTERS} step counters ended, {pinged} pings each \
         seen once, {reruns} step re-runs of interrupted steps; restart p50 {:?}, max {:?}",
        restarts[restarts.len() / 2],
        restarts.last().unwrap()
    );
    assert!(node.terminate().success());
}

fn status_of(node: &NodeProcess, actor: &str) -> Value {
    ask(node, actor, r#"{"action":"status"}"#)
}

#[test]
fn workflows_run_wait_take_signals_and_survive_a_kill_in_the_middle() {
    let modules = [
        ("payments", guests::python_module("tests/fixtures/python/payments.py")),
        ("shipping", guests::python_module("tests/fixtures/python/shipping.py")),
        ("orders-wf", guests::python_module("examples/python/order_workflow.py")),
        ("fulfillment", guests::python_module("examples/python/order_workflow_steps.py")),
    ];
    let dir = data_dir("durable-workflows");
    let node = wasm::start(&dir);
    for (name, module) in &modules {
        wasm::deploy(&node, name, module);
    }
    // order_workflow.py: a run without waits answers the asker with its result.
    let done = ask(&node, "orders-wf/o-1", r#"{"action":"run","order_id":"o-1"}"#);
    assert_eq!(done, json!({"status": "completed", "order_id": "o-1"}));
    let status = status_of(&node, "orders-wf/o-1");
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["steps"], json!(["validation", "payment", "shipment"]));

    // order_workflow_steps.py: charged, then a durable sleep of 2 s, then a wait for approval.
    let started = http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/fulfillment/o-2",
        r#"{"action":"run","order_id":"o-2","amount":30}"#,
    );
    assert_eq!(started.status, 202, "{started:?}");
    wasm::eventually("the charge step", || {
        status_of(&node, "fulfillment/o-2")["status"] == "charged"
    });
    // A second run while one is in progress is refused.
    let again =
        wasm::call(&node, "fulfillment/o-2", r#"{"action":"run","order_id":"o-2","amount":1}"#);
    assert_eq!((again.status, again.code().as_str()), (409, "workflow_running"), "{again:?}");
    drop(node); // SIGKILL, in the middle of the sleep.

    let node = wasm::start(&dir);
    // Recovered from the journal: the committed state answers queries at once.
    let status = status_of(&node, "fulfillment/o-2");
    assert_eq!(
        (status["status"].as_str(), status["steps"].clone()),
        (Some("charged"), json!(["payment"]))
    );
    // The approval arrives while the run sleeps or waits: it is kept until the run takes it.
    let approved = http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/fulfillment/o-2",
        r#"{"action":"approve","by":"ops"}"#,
    );
    assert_eq!(approved.status, 202, "{approved:?}");
    wasm::eventually("the run to complete", || {
        status_of(&node, "fulfillment/o-2")["status"] == "completed"
    });
    let status = status_of(&node, "fulfillment/o-2");
    assert_eq!(status["steps"], json!(["payment", "shipment"]));
    // The charge step ran once: replayed after the kill, its recorded result stood for it.
    let payments = ask(&node, "payments", r#"{"action":"summary"}"#);
    assert_eq!(payments["charges"]["o-2"].as_array().map(Vec::len), Some(1), "{payments}");
    wasm::eventually("the shipment", || {
        ask(&node, "shipping", r#"{"action":"summary"}"#)["shipped"] == json!(["o-2"])
    });

    // A run told to wait for approval that never comes gives up at its timeout... here, a
    // cancel signal arrives first and the workflow refunds.
    let started = http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/fulfillment/o-3",
        r#"{"action":"run","order_id":"o-3","amount":5}"#,
    );
    assert_eq!(started.status, 202);
    http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/fulfillment/o-3",
        r#"{"action":"cancel"}"#,
    );
    http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/fulfillment/o-3",
        r#"{"action":"approve"}"#,
    );
    wasm::eventually("the cancelled run to end", || {
        let status = status_of(&node, "fulfillment/o-3");
        status["status"] == "cancelled" && status["steps"] == json!(["payment"])
    });
    assert!(node.terminate().success());

    // After a restart the ended runs stay ended: their ends are journaled, so a new run starts.
    let node = wasm::start(&dir);
    assert_eq!(status_of(&node, "fulfillment/o-2")["status"], "completed");
    let again = ask(&node, "orders-wf/o-1", r#"{"action":"run","order_id":"o-1"}"#);
    assert_eq!(again, json!({"status": "completed", "order_id": "o-1"}));
    assert!(node.terminate().success());
}

#[test]
fn a_reminder_survives_a_kill_and_fires_once_a_transient_timer_does_not() {
    let module = guests::python_module("tests/fixtures/python/reminders.py");
    let dir = data_dir("durable-reminders");
    let node = wasm::start(&dir);
    wasm::deploy(&node, "reminders", &module);
    // Without a crash both fire, once each.
    let armed = ask(&node, "reminders/calm", r#"{"action":"arm","delay_ms":100}"#);
    assert_ne!(armed["durable"], armed["transient"]);
    wasm::eventually("both timers", || {
        ask(&node, "reminders/calm", r#"{"action":"fired"}"#).as_array().map(Vec::len) == Some(2)
    });
    ask(&node, "reminders/stormy", r#"{"action":"arm","delay_ms":1500}"#);
    drop(node); // SIGKILL before either fires.

    let node = wasm::start(&dir);
    wasm::eventually("the reminder", || {
        ask(&node, "reminders/stormy", r#"{"action":"fired"}"#) == json!(["durable"])
    });
    // Past the transient timer's time too: it went with the node, and the reminder fired once.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ask(&node, "reminders/stormy", r#"{"action":"fired"}"#), json!(["durable"]));
    let mut calm = ask(&node, "reminders/calm", r#"{"action":"fired"}"#);
    calm.as_array_mut().unwrap().sort_by_key(|kind| kind.as_str().map(str::to_owned));
    assert_eq!(calm, json!(["durable", "transient"]));
    assert!(node.terminate().success());
}

/// POSTs `body` to each of `keys` of `actor_type` from 16 threads; every answer must be 202.
fn tell_all(node: &NodeProcess, actor_type: &str, keys: std::ops::Range<usize>, body: &str) {
    let keys: Vec<usize> = keys.collect();
    let address = node.invoke;
    std::thread::scope(|scope| {
        for chunk in keys.chunks(keys.len().div_ceil(16)) {
            scope.spawn(move || {
                for key in chunk {
                    let path = format!("/api/v1/actors/default/default/{actor_type}/w-{key}");
                    let told =
                        http::post_json(address, &path, &body.replace("{n}", &key.to_string()));
                    assert_eq!(told.status, 202, "{path}: {told:?}");
                }
            });
        }
    });
}

#[test]
#[allow(clippy::print_stderr)]
fn ten_thousand_workflows_wait_at_once_at_the_default_pool_cap_and_all_complete() {
    const WORKFLOWS: usize = 10_000;
    let module = guests::python_module("tests/fixtures/python/waiter.py");
    let dir = data_dir("durable-ten-thousand");
    let node = wasm::start(&dir);
    wasm::deploy(&node, "waiter", &module);
    let started = Instant::now();
    tell_all(&node, "waiter", 0..WORKFLOWS, r#"{"action":"run"}"#);
    // Runs in progress refuse another run; waiting, they hold no instance (the pool's cap is
    // the default, far below 10,000).
    for key in (0..WORKFLOWS).step_by(100) {
        let again = wasm::call(&node, &format!("waiter/w-{key}"), r#"{"action":"run"}"#);
        assert_eq!((again.status, again.code().as_str()), (409, "workflow_running"), "w-{key}");
    }
    let waiting = started.elapsed();
    let signalled = Instant::now();
    tell_all(&node, "waiter", 0..WORKFLOWS, r#"{"action":"go","n":{n}}"#);
    let address = node.invoke;
    std::thread::scope(|scope| {
        for thread in 0..16 {
            scope.spawn(move || {
                for key in (thread..WORKFLOWS).step_by(16) {
                    let path =
                        format!("/api/v1/actors/default/default/waiter/w-{key}?invocation=call");
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        let got = http::post_json(address, &path, r#"{"action":"got"}"#).json();
                        if got == json!({"got": key}) {
                            break;
                        }
                        assert!(Instant::now() < deadline, "w-{key} did not complete: {got}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            });
        }
    });
    eprintln!(
        "{WORKFLOWS} workflows started and waiting in {waiting:?}; signalled and all completed in {:?}",
        signalled.elapsed()
    );
    assert!(node.terminate().success());
}

#[test]
fn payment_processor_refunds_under_a_lock_and_replays_without_taking_it_again() {
    let module = guests::python_module("examples/python/payment_processor.py");
    let dir = data_dir("durable-payments");
    let node = wasm::start(&dir);
    wasm::deploy(&node, "refunds", &module);
    let refunded =
        ask(&node, "refunds", r#"{"action":"process_refund","tx_id":"tx-1","amount":40}"#);
    assert_eq!(refunded, json!({"status": "refunded", "amount": 40}));
    let kv = |node: &NodeProcess, key: &str| {
        let stored = http::get(node.invoke, &format!("/api/v1/kv/default/default/{key}"));
        assert_eq!(stored.status, 200, "{key}: {stored:?}");
        serde_json::from_str::<Value>(stored.json()["value"].as_str().unwrap()).unwrap()
    };
    assert_eq!(kv(&node, "refund:tx-1"), json!({"amount": 40, "status": "processed"}));
    drop(node); // SIGKILL

    let node = wasm::start(&dir);
    // The refund's message is replayed when the actor activates: its lock and KV calls answer
    // from the journal, so the lock is not taken again and stays free.
    let again = ask(&node, "refunds", r#"{"action":"process_refund","tx_id":"tx-2","amount":7}"#);
    assert_eq!(again, json!({"status": "refunded", "amount": 7}));
    for tx in ["tx-1", "tx-2"] {
        let lock = http::get(node.invoke, &format!("/api/v1/locks/default/default/refund:{tx}"));
        assert_eq!((lock.status, lock.json()["grant"].clone()), (200, Value::Null), "refund:{tx}");
    }
    assert_eq!(kv(&node, "refund:tx-1"), json!({"amount": 40, "status": "processed"}));
    assert_eq!(kv(&node, "refund:tx-2"), json!({"amount": 7, "status": "processed"}));
    assert!(node.terminate().success());
}

/// `examples/rust/order_workflow.rs`, the stock binary's native durable workflow, under kill -9:
/// charged (a step whose result is a fresh id), a durable sleep of 2 s, a wait for approval.
#[test]
fn a_native_rust_workflow_survives_a_kill_and_runs_no_step_twice() {
    let dir = data_dir("native-workflow");
    let node = wasm::start(&dir);
    let run = |node: &NodeProcess, order: &str| {
        let body = json!({"action": "run", "order_id": order, "amount": 30}).to_string();
        http::post_json(
            node.invoke,
            &format!("/api/v1/actors/default/default/order_workflow/{order}"),
            &body,
        )
    };
    let started = run(&node, "n-1");
    assert_eq!(started.status, 202, "{started:?}");
    wasm::eventually("the charge step", || {
        status_of(&node, "order_workflow/n-1")["status"] == "charged"
    });
    let charged = status_of(&node, "order_workflow/n-1");
    let charge_id = charged["charge_id"].as_str().unwrap_or_default().to_owned();
    assert!(charge_id.starts_with("ch30-"), "{charged}");
    let again = wasm::call(&node, "order_workflow/n-1", r#"{"action":"run","order_id":"x"}"#);
    assert_eq!((again.status, again.code().as_str()), (409, "workflow_running"), "{again:?}");
    drop(node); // SIGKILL, in the middle of the sleep.

    let node = wasm::start(&dir);
    // Recovered from the journal: the committed state answers queries at once.
    let status = status_of(&node, "order_workflow/n-1");
    assert_eq!(
        (status["status"].as_str(), status["steps"].clone(), status["charge_id"].as_str()),
        (Some("charged"), json!(["payment"]), Some(charge_id.as_str())),
        "{status}"
    );
    let approved = http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/order_workflow/n-1",
        r#"{"action":"approve","by":"ops"}"#,
    );
    assert_eq!(approved.status, 202, "{approved:?}");
    wasm::eventually("the run to complete", || {
        status_of(&node, "order_workflow/n-1")["status"] == "completed"
    });
    // The charge ran once: its recorded id stood for it in every replay.
    let status = status_of(&node, "order_workflow/n-1");
    assert_eq!(
        (status["steps"].clone(), status["charge_id"].as_str()),
        (json!(["payment", "shipment"]), Some(charge_id.as_str())),
        "{status}"
    );

    // A cancel before the approval: the run refunds, and an ask of `run` gets its result.
    let asked = std::thread::spawn({
        let invoke = node.invoke;
        move || {
            http::post_json(
                invoke,
                "/api/v1/actors/default/default/order_workflow/n-2?invocation=call",
                r#"{"action":"run","order_id":"n-2","amount":5}"#,
            )
        }
    });
    wasm::eventually("the second run's charge", || {
        status_of(&node, "order_workflow/n-2")["status"] == "charged"
    });
    let signal = |body: &str| {
        let told =
            http::post_json(node.invoke, "/api/v1/actors/default/default/order_workflow/n-2", body);
        assert_eq!(told.status, 202, "{told:?}");
    };
    signal(r#"{"action":"cancel"}"#);
    signal(r#"{"action":"approve"}"#);
    let reply = asked.join().expect("the asking thread");
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = reply.json();
    assert_eq!(
        (reply["status"].as_str(), reply["order_id"].as_str()),
        (Some("cancelled"), Some("n-2"))
    );
    assert!(
        reply["refund"].as_str().is_some_and(|refund| refund.starts_with("re-ch5-")),
        "{reply}"
    );
    assert!(node.terminate().success());

    // After a restart the ended runs stay ended, and a new run may start.
    let node = wasm::start(&dir);
    assert_eq!(status_of(&node, "order_workflow/n-1")["status"], "completed");
    assert_eq!(status_of(&node, "order_workflow/n-2")["status"], "cancelled");
    assert_eq!(run(&node, "n-1").status, 202);
    assert!(node.terminate().success());
}
