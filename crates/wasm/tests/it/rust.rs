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
    assert_eq!(classes, [("Counter", "gen_server"), ("Door", "gen_fsm")]);

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
}
