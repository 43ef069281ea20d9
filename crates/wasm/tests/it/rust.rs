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
