//! Hostile guests: a loop, a memory bomb, unbounded recursion and a table grown by 10^8. Each
//! is stopped within its limit, and a well-behaved Python actor on the same host keeps
//! serving meanwhile.

use std::time::{Duration, Instant};

use plexspaces_core::System;
use plexspaces_types::ErrorCode;
use plexspaces_wasm::Options;

use crate::support::{ask, host, load, spawn};

/// A core module that implements the guest interface by hand: `describe` answers one class,
/// and `handle` misbehaves by the first letter of the action (loop, memory, recurse, table).
const HOSTILE_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (table $table 1 funcref)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    ;; align up to the requested alignment
    (local.set $at (i32.and
      (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get 2))))
    (global.set $bump (i32.add (local.get $at) (local.get 3)))
    (local.get $at))
  (data (i32.const 16) "\20\00\00\00DESCRIBE_LEN\00\00\00")
  (data (i32.const 32) "DESCRIBE_JSON")
  (func (export "plexspaces:actor/guest@0.1.0#describe") (result i32) (i32.const 16))
  (func $recurse (param i32) (result i32)
    (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "plexspaces:actor/guest@0.1.0#handle")
    (param $class i32) (param $key i32) (param $key_len i32)
    (param $state i32) (param $state_ptr i32) (param $state_len i32)
    (param $action i32) (param $action_len i32)
    (param $payload i32) (param $payload_len i32)
    (param $evict i32) (param $evict_len i32)
    (result i32)
    (local $what i32)
    (local.set $what (i32.load8_u (local.get $action)))
    ;; l: loop forever
    (if (i32.eq (local.get $what) (i32.const 108)) (then (loop $spin (br $spin))))
    ;; m: grow memory until refused, then abort as an allocator would
    (if (i32.eq (local.get $what) (i32.const 109)) (then
      (loop $grow
        (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      unreachable))
    ;; r: recurse without bound
    (if (i32.eq (local.get $what) (i32.const 114)) (then
      (drop (call $recurse (i32.const 0)))))
    ;; t: grow the table by 10^8 elements; a refused growth returns -1
    (if (i32.eq (local.get $what) (i32.const 116)) (then
      (if (i32.eq (table.grow $table (ref.null func) (i32.const 100000000)) (i32.const -1))
        (then unreachable))
      (loop $spin (br $spin))))
    unreachable)
)
"#;

const DESCRIPTION: &str = r#"{"world":"0.1.0","sdk":"wat","classes":[{"name":"Hostile","behavior":"gen_server","facets":[],"handlers":[{"name":"loop","kind":"handler"}]}]}"#;

/// The hostile core module, its description filled in.
fn hostile_wat() -> String {
    HOSTILE_WAT
        .replace("DESCRIBE_LEN", &format!("\\{:02x}", DESCRIPTION.len()))
        .replace("DESCRIBE_JSON", &DESCRIPTION.replace('"', "\\\""))
}

/// The hostile module as a component of our world.
pub(crate) fn hostile_component() -> Vec<u8> {
    component_of(&hostile_wat())
}

/// Wraps a core module (WAT) implementing the world's exports into a component.
pub(crate) fn component_of(wat: &str) -> Vec<u8> {
    let wit =
        std::fs::read_to_string(crate::guests::workspace().join("wit/plexspaces.wit")).unwrap();
    component_with_wit(wat, &wit)
}

/// Wraps a core module into a component of the world `wit` describes.
pub(crate) fn component_with_wit(wat: &str, wit: &str) -> Vec<u8> {
    let mut core = wat::parse_str(wat).expect("the WAT parses");
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("plexspaces.wit", wit).expect("the WIT parses");
    let world = resolve.select_world(&[package], Some("actor-module")).expect("the world exists");
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("the metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&core)
        .expect("the module is accepted")
        .validate(true)
        .encode()
        .expect("the component encodes")
}

async fn counter_keeps_serving(host: &plexspaces_wasm::Host, system: &System) {
    let counter_wasm =
        std::fs::read(crate::guests::python_module("examples/python/counter_actor.py")).unwrap();
    let counter = load(host, &counter_wasm).await.unwrap();
    let actor = spawn(host, system, &counter, 0, "after");
    for _ in 0..5 {
        ask(&actor, "increment", r#"{"amount":1}"#).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_are_stopped_within_their_limits_and_neighbours_keep_serving() {
    let deadline = Duration::from_millis(200);
    let host = host(Options { deadline_ms: 200, memory_limit_mib: 64, ..Options::default() });
    let system = System::new().unwrap();
    let hostile = load(&host, &hostile_component()).await.unwrap();
    let counter_wasm =
        std::fs::read(crate::guests::python_module("examples/python/counter_actor.py")).unwrap();
    let counter = load(&host, &counter_wasm).await.unwrap();
    let steady = spawn(&host, &system, &counter, 0, "steady");
    for (action, says) in [
        ("loop", "deadline"),
        ("memory", "unreachable"),
        ("recurse", "stack"),
        ("table", "unreachable"),
    ] {
        let actor = spawn(&host, &system, &hostile, 0, action);
        let started = Instant::now();
        let calls = {
            let actor = actor.clone();
            tokio::spawn(async move { ask(&actor, action, "{}").await })
        };
        // Meanwhile a Python counter on the same host answers.
        let mut answered = 0;
        while !calls.is_finished() {
            ask(&steady, "increment", r#"{"amount":1}"#).await.unwrap();
            answered += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let error = calls.await.unwrap().unwrap_err();
        let took = started.elapsed();
        assert_eq!(error.code, ErrorCode::GuestTrapped, "{action}: {error}");
        assert!(error.message.contains(says), "{action}: {}", error.message);
        // Wide margin (5×): the figures themselves go in BENCHMARKS.md.
        assert!(took < deadline * 5 + Duration::from_secs(1), "{action} took {took:?}");
        assert!(
            answered > 0 || took < Duration::from_millis(20),
            "{action}: the counter was starved"
        );
        // The trapped instance is gone; the actor's next message gets a fresh one.
        let again = ask(&actor, action, "{}").await.unwrap_err();
        assert_eq!(again.code, ErrorCode::GuestTrapped);
    }
    assert!(hostile.pool_stats().discarded >= 8);
    counter_keeps_serving(&host, &system).await;
    let reply = ask(&steady, "get", "{}").await.unwrap();
    assert!(reply.starts_with(r#"{"count":"#), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_of_another_world_version_or_with_unknown_imports_are_refused() {
    let host = host(Options::default());
    let ours =
        std::fs::read_to_string(crate::guests::workspace().join("wit/plexspaces.wit")).unwrap();
    let wat = hostile_wat();

    // Built against a later world: refused with both versions named.
    let later =
        component_with_wit(&wat.replace("@0.1.0", "@0.2.0"), &ours.replace("@0.1.0", "@0.2.0"));
    let error = load(&host, &later).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidModule);
    assert!(
        error.message.contains("built for world version 0.2.0; this node serves 0.1.0"),
        "{}",
        error.message
    );

    // Importing a host function this node does not have (a service from a later issue).
    let with_secrets = ours
        .replace("world actor-module {\n  import host;", "interface secrets {\n  get: func(key: string) -> option<string>;\n}\n\nworld actor-module {\n  import secrets;\n  import host;");
    let importing = wat.replacen(
        "(module",
        "(module\n  (import \"plexspaces:actor/secrets@0.1.0\" \"get\" (func (param i32 i32 i32)))",
        1,
    );
    let unknown = component_with_wit(&importing, &with_secrets);
    let error = load(&host, &unknown).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidModule);
    assert!(error.message.contains("imports what this node does not provide"), "{}", error.message);
    assert!(error.message.contains("secrets"), "{}", error.message);

    // Not a component at all.
    for (bytes, says) in [
        (b"hello".to_vec(), "not WebAssembly"),
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
    ] {
        let error = load(&host, &bytes).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidModule);
        assert!(error.message.contains(says), "{}", error.message);
    }
}
