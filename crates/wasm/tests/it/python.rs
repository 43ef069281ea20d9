//! Python modules built by the SDK: state held by the host, failures, traps, output.

use plexspaces_core::System;
use plexspaces_types::ErrorCode;
use plexspaces_wasm::{Options, Stream};

use crate::{
    guests::python_module,
    support::{ask, host, load, message, spawn},
};

async fn module(host: &plexspaces_wasm::Host, source: &str) -> plexspaces_wasm::Module {
    let wasm = std::fs::read(python_module(source)).unwrap();
    load(host, &wasm).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_keeps_its_state_in_the_host_across_instances() {
    let host = host(Options::default());
    let system = System::new().unwrap();
    let counter = module(&host, "examples/python/counter_actor.py").await;
    let description = counter.description();
    assert_eq!(description.classes[0].name, "CounterActor");
    assert_eq!(description.classes[0].behavior, "gen_server");
    let a = spawn(&host, &system, &counter, 0, "a");
    let b = spawn(&host, &system, &counter, 0, "b");
    assert_eq!(
        ask(&a, "increment", r#"{"action":"increment","amount":5}"#).await.unwrap(),
        r#"{"count":5}"#
    );
    assert_eq!(ask(&b, "increment", "{}").await.unwrap(), r#"{"count":1}"#);
    // Many actors at once on a few instances: each keeps its own count.
    let mut calls = Vec::new();
    for round in 0..20 {
        for actor in [&a, &b] {
            let actor = actor.clone();
            calls.push(tokio::spawn(async move {
                ask(&actor, "increment", &format!(r#"{{"amount":{}}}"#, round % 2)).await
            }));
        }
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(ask(&a, "get", "{}").await.unwrap(), r#"{"count":15}"#);
    assert_eq!(ask(&b, "get", "{}").await.unwrap(), r#"{"count":11}"#);
    assert_eq!(
        a.as_any().inspect(std::time::Duration::from_secs(5)).await.unwrap(),
        Some(serde_json::json!({"count": 15}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_leave_the_committed_state_and_name_the_exception() {
    let host = host(Options { deadline_ms: 300, ..Options::default() });
    let system = System::new().unwrap();
    let module = module(&host, "examples/python/misbehaving.py").await;
    let actor = spawn(&host, &system, &module, 0, "m");
    assert_eq!(ask(&actor, "increment", r#"{"amount":2}"#).await.unwrap(), r#"{"count":2}"#);
    for (action, code, says) in [
        ("fail_after_change", ErrorCode::ActorError, "the order is not valid"),
        ("bad_state", ErrorCode::StateNotSerializable, "cannot be stored as JSON"),
        ("cyclic_state", ErrorCode::StateNotSerializable, "cannot be stored as JSON"),
        ("bad_reply", ErrorCode::ActorError, "cannot be sent as JSON"),
        ("nope", ErrorCode::UnknownAction, "no handler for action 'nope'"),
        ("spin", ErrorCode::GuestTrapped, "deadline"),
        ("hog", ErrorCode::ActorError, "MemoryError"),
        // Python-to-Python calls live on CPython's heap, not the wasm stack: unbounded
        // recursion ends in RecursionError, MemoryError or the deadline, never in a crash.
        ("recurse", ErrorCode::ActorError, ""),
    ] {
        let error = ask(&actor, action, "{}").await.unwrap_err();
        let expected = if action == "recurse" {
            [ErrorCode::ActorError, ErrorCode::GuestTrapped].contains(&error.code)
        } else {
            error.code == code
        };
        assert!(expected, "{action}: {error}");
        let text = format!("{} {}", error.error_type.clone().unwrap_or_default(), error.message);
        assert!(text.contains(says), "{action}: {text}");
        // The state is what the last successful handler left.
        assert_eq!(
            ask(&actor, "increment", r#"{"amount":0}"#).await.unwrap(),
            r#"{"count":2}"#,
            "after {action}"
        );
    }
    let error = ask(&actor, "fail_after_change", "{}").await.unwrap_err();
    assert_eq!(error.error_type.as_deref(), Some("ValueError"));
    let error = ask(&actor, "increment", r#"{"amount":"many"}"#).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidArguments);
    let error = ask(&actor, "increment", "not json").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidJson);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_clocks_and_random_come_from_the_host() {
    let host = host(Options::default());
    let system = System::new().unwrap();
    let module = module(&host, "examples/python/misbehaving.py").await;
    let actor = spawn(&host, &system, &module, 0, "loud");
    let reply = ask(&actor, "noisy", "{}").await.unwrap();
    assert_eq!(reply, r#"{"now":true,"random":true}"#);
    let lines = host.logs().read(&("acme".into(), "default".into(), "t".into()), Some("loud"));
    let streams: Vec<(Stream, &str)> =
        lines.iter().map(|line| (line.stream, line.message.as_str())).collect();
    assert!(streams.contains(&(Stream::Stdout, "to stdout 0")), "{streams:?}");
    assert!(streams.contains(&(Stream::Stderr, "to stderr")), "{streams:?}");
    // A tell that fails is logged with its message id.
    let mut tell = message("nope", "{}");
    tell.message_id = Some("m-42".into());
    actor.tell(tell).unwrap();
    let _ = ask(&actor, "increment", "{}").await;
    let lines = host.logs().read(&("acme".into(), "default".into(), "t".into()), Some("loud"));
    assert!(
        lines.iter().any(|line| line.stream == Stream::Host
            && line.message.contains("tell m-42 (nope) failed: unknown_action")),
        "{lines:?}"
    );
}
