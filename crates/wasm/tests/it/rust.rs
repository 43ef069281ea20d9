//! A Rust component written against the world with wit-bindgen: any language that builds a
//! component of the world is served the same way.

use plexspaces_core::System;
use plexspaces_types::ErrorCode;
use plexspaces_wasm::Options;

use crate::{
    guests::rust_module,
    support::{ask, host, load, spawn},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_counter_serves_many_actors_with_the_state_in_the_host() {
    let host = host(Options { max_instances: 2, ..Options::default() });
    let system = System::new().unwrap();
    let wasm = std::fs::read(rust_module("crates/wasm/guests/rust-counter")).unwrap();
    let module = load(&host, &wasm).await.unwrap();
    let description = module.description();
    assert_eq!(description.sdk, "rust wit-bindgen");
    assert_eq!(description.classes[0].name, "Counter");
    let actors: Vec<_> =
        (0..50).map(|n| spawn(&host, &system, &module, 0, &format!("r{n}"))).collect();
    let mut calls = Vec::new();
    for (n, actor) in actors.iter().enumerate() {
        for _ in 0..3 {
            let actor = actor.clone();
            calls.push(tokio::spawn(async move {
                ask(&actor, "increment", &format!(r#"{{"amount":{n}}}"#)).await
            }));
        }
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    for (n, actor) in actors.iter().enumerate() {
        assert_eq!(ask(actor, "get", "{}").await.unwrap(), format!(r#"{{"count":{}}}"#, 3 * n));
    }
    assert_eq!(
        actors[7].as_any().inspect(std::time::Duration::from_secs(5)).await.unwrap(),
        Some(serde_json::json!({"count": 21}))
    );
    let unknown = ask(&actors[1], "nope", "{}").await.unwrap_err();
    assert_eq!(unknown.code, ErrorCode::UnknownAction, "{unknown:?}");
    let bad = ask(&actors[1], "increment", r#"{"amount":"lots"}"#).await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidArguments, "{bad:?}");
    // A failure keeps the committed state.
    assert_eq!(ask(&actors[1], "get", "{}").await.unwrap(), r#"{"count":3}"#);
}

/// The Rust SDK's macros as a guest: `crates/wasm/guests/rust-sdk-actors` (a GenServer and a
/// GenFSM with serde states, `export_actors!`), the same actor code as natively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_actors_run_as_a_component() {
    let host = host(Options { max_instances: 2, ..Options::default() });
    let system = System::new().unwrap();
    let wasm = std::fs::read(rust_module("crates/wasm/guests/rust-sdk-actors")).unwrap();
    let module = load(&host, &wasm).await.unwrap();
    let description = module.description();
    assert_eq!(description.sdk, "rust 0.1.0");
    let classes: Vec<(&str, &str)> = description
        .classes
        .iter()
        .map(|class| (class.name.as_str(), class.behavior.as_str()))
        .collect();
    assert_eq!(
        classes,
        [
            ("Counter", "gen_server"),
            ("Door", "gen_fsm"),
            ("Tally", "gen_server"),
            ("OrderFulfillment", "workflow")
        ]
    );
    let guest_held: Vec<bool> =
        description.classes.iter().map(|class| class.guest_state()).collect();
    assert_eq!(guest_held, [false, false, true, false], "only Tally's state has no serde");

    let counters: Vec<_> =
        (0..20).map(|n| spawn(&host, &system, &module, 0, &format!("c{n}"))).collect();
    for (n, actor) in counters.iter().enumerate() {
        for _ in 0..3 {
            ask(actor, "increment", &format!(r#"{{"amount":{n}}}"#)).await.unwrap();
        }
    }
    for (n, actor) in counters.iter().enumerate() {
        let got: serde_json::Value =
            serde_json::from_str(&ask(actor, "get", "{}").await.unwrap()).unwrap();
        assert_eq!(got, serde_json::json!({"count": 3 * n, "key": format!("c{n}")}));
    }
    // The state is the host's: its serde JSON.
    assert_eq!(
        counters[5].as_any().inspect(std::time::Duration::from_secs(5)).await.unwrap(),
        Some(serde_json::json!({"count": 15}))
    );
    let failed = ask(&counters[2], "fail", "{}").await.unwrap_err();
    assert_eq!(failed.code, ErrorCode::ActorError, "{failed:?}");
    assert!(failed.message.contains("the counter refuses"), "{failed:?}");
    let unknown = ask(&counters[2], "nope", "{}").await.unwrap_err();
    assert_eq!(unknown.code, ErrorCode::UnknownAction, "{unknown:?}");
    let bad = ask(&counters[2], "increment", "{not json").await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidJson, "{bad:?}");
    // A failure keeps the committed state.
    let got = ask(&counters[2], "get", "{}").await.unwrap();
    assert!(got.starts_with(r#"{"count":6"#), "{got}");

    let door = spawn(&host, &system, &module, 1, "front");
    assert_eq!(ask(&door, "peek", "{}").await.unwrap(), r#"{"opened":0,"state":"locked"}"#);
    let refused = ask(&door, "open", "{}").await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidState, "{refused:?}");
    ask(&door, "unlock", "{}").await.unwrap();
    assert_eq!(ask(&door, "open", "{}").await.unwrap(), r#"{"opened":1}"#);
    assert_eq!(ask(&door, "peek", "{}").await.unwrap(), r#"{"opened":1,"state":"open"}"#);

    // The registry and blob calls of the Rust SDK's `host`.
    let directory: serde_json::Value =
        serde_json::from_str(&ask(&counters[0], "directory", "{}").await.unwrap()).unwrap();
    let me = "default/t/c0";
    assert_eq!(
        directory,
        serde_json::json!({
            "me": me, "renewed": true, "found": [me], "services": 1, "size": 9,
            "read": "from rust", "listed": ["rust/note.txt"], "content_type": "text/plain",
            "deleted": true, "bad": "invalid_arguments", "deregistered": true,
        })
    );
    // Its channel calls.
    let queue: serde_json::Value =
        serde_json::from_str(&ask(&counters[0], "queue", "{}").await.unwrap()).unwrap();
    assert_eq!(
        queue,
        serde_json::json!({
            "created": true, "sent": 2, "first": [r#"{"n":1}"#, r#"{"n":2}"#], "acked": true,
            "nacked": true, "again": [[r#"{"n":2}"#, 2]], "closed": true,
            "refused": "invalid_state", "subscribed": true, "fanned": 1,
            "from_topic": r#""hello""#, "unsubscribed": true,
        })
    );
}

/// A state without serde lives in the guest: the host pins an instance to each such actor
/// while it is active, and the state lives as long as that instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_without_serde_lives_in_an_instance_pinned_to_its_actor() {
    let options = Options {
        max_instances: 2,
        max_pinned_instances: 4,
        deadline_ms: 500,
        ..Options::default()
    };
    let host = host(options);
    let system = System::new().unwrap();
    let wasm = std::fs::read(rust_module("crates/wasm/guests/rust-sdk-actors")).unwrap();
    let module = load(&host, &wasm).await.unwrap();
    let classes = &module.description().classes;
    assert!(classes[2].guest_state() && !classes[0].guest_state(), "{classes:?}");

    let tallies: Vec<_> =
        (0..4).map(|n| spawn(&host, &system, &module, 2, &format!("t{n}"))).collect();
    for round in 0..3 {
        for (n, tally) in tallies.iter().enumerate() {
            ask(tally, "add", &format!(r#"{{"text":"{n}-{round}"}}"#)).await.unwrap();
        }
    }
    for (n, tally) in tallies.iter().enumerate() {
        let seen: serde_json::Value =
            serde_json::from_str(&ask(tally, "add", r#"{"text":"end"}"#).await.unwrap()).unwrap();
        let expected = [format!("{n}-0"), format!("{n}-1"), format!("{n}-2"), "end".to_owned()];
        assert_eq!(seen, serde_json::json!({ "seen": expected }));
    }
    assert_eq!(module.pool_stats().pinned, 4);
    // The host never sees such a state.
    let inspected = tallies[0].as_any().inspect(std::time::Duration::from_secs(5)).await.unwrap();
    assert_eq!(inspected, Some(serde_json::Value::Null));

    // Every pinned instance is taken: a fifth active actor is refused, and told what to do.
    let fifth = spawn(&host, &system, &module, 2, "t4");
    let refused = ask(&fifth, "add", r#"{"text":"x"}"#).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::PoolExhausted, "{refused:?}");
    assert!(refused.message.contains("max_pinned_instances"), "{refused:?}");

    // A failed handler leaves the state as it left it, as natively.
    let failed = ask(&tallies[0], "fail", "{}").await.unwrap_err();
    assert_eq!(failed.code, ErrorCode::ActorError, "{failed:?}");
    let seen = ask(&tallies[0], "add", r#"{"text":"after"}"#).await.unwrap();
    assert!(seen.ends_with(r#""end","failed","after"]}"#), "{seen}");

    // A trap takes the state with its instance: the next message starts from the default.
    let trapped = ask(&tallies[1], "spin", "{}").await.unwrap_err();
    assert_eq!(trapped.code, ErrorCode::GuestTrapped, "{trapped:?}");
    assert!(trapped.message.contains("starts from the default state"), "{trapped:?}");
    assert_eq!(module.pool_stats().pinned, 3);
    assert_eq!(
        ask(&tallies[1], "add", r#"{"text":"anew"}"#).await.unwrap(),
        r#"{"seen":["anew"]}"#
    );

    // An actor that stops gives its instance back: the fifth gets one.
    tallies[3].stop(plexspaces_core::ExitReason::Normal);
    tallies[3].stopped().await;
    assert_eq!(module.pool_stats().pinned, 3);
    assert_eq!(ask(&fifth, "add", r#"{"text":"in"}"#).await.unwrap(), r#"{"seen":["in"]}"#);
    // The others kept theirs throughout; the shared pool served none of them.
    let seen = ask(&tallies[2], "add", r#"{"text":"last"}"#).await.unwrap();
    assert!(seen.starts_with(r#"{"seen":["2-0","2-1","2-2","end","last"]"#), "{seen}");
}

/// `examples/rust/counter.rs` as written (no serde), built as a component by
/// `examples/rust/counter-wasm`: the same replies as the native actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_example_runs_as_a_component() {
    let host = host(Options::default());
    let system = System::new().unwrap();
    let wasm = std::fs::read(rust_module("examples/rust/counter-wasm")).unwrap();
    let module = load(&host, &wasm).await.unwrap();
    assert!(module.description().classes[0].guest_state());
    let counters: Vec<_> =
        (0..10).map(|n| spawn(&host, &system, &module, 0, &format!("c{n}"))).collect();
    for (n, counter) in counters.iter().enumerate() {
        assert_eq!(
            ask(counter, "increment", &format!(r#"{{"amount":{n}}}"#)).await.unwrap(),
            format!(r#"{{"count":{n}}}"#)
        );
    }
    for (n, counter) in counters.iter().enumerate() {
        let reply = ask(counter, "increment", r#"{"amount":5}"#).await.unwrap();
        assert_eq!(reply, format!(r#"{{"count":{}}}"#, n + 5));
    }
    // Bad input is the handler's error; the count stays.
    let bad = ask(&counters[3], "increment", "{not json").await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidJson, "{bad:?}");
    assert_eq!(ask(&counters[3], "increment", "{}").await.unwrap(), r#"{"count":9}"#);
}
