//! Figures for BENCHMARKS.md: one counter as a Python component, as TypeScript components on
//! QuickJS and on SpiderMonkey, as Rust components (written against the world with wit-bindgen;
//! and with the Rust SDK's macros, with a serde state and without, whose actors each pin an
//! instance) and as a native Rust actor, in one run.
//!
//! `cargo run -p plexspaces-wasm --example wasm_actors -- [ACTORS]` (default 100,000 actors of
//! each component). Needs `PLEXSPACES_PYTHON` to name a Python with the SDK's build
//! dependencies and the TypeScript SDK's tools (`make tools` makes both), and the wasm32-wasip2
//! target, to build the components once.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "common/timing.rs"]
#[allow(dead_code)]
mod timing;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use plexspaces_core::{ActorRef, System};
use plexspaces_sdk::prelude::*;
use plexspaces_types::ActorId;
use plexspaces_wasm::{Binding, Component, Host, Module, Options, Served, WasmActor};

use support::message as invocation;
use timing::{report, timed_asks};

#[gen_server_actor]
struct Counter {
    count: i64,
}

#[plexspaces_handlers]
impl Counter {
    #[handler("increment")]
    async fn increment(
        &mut self,
        _ctx: &ActorContext,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        self.count += payload["amount"].as_i64().unwrap_or(1);
        Ok(json!({ "count": self.count }))
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let actors: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move { tokio::spawn(run(actors)).await.unwrap() });
}

/// Spawns the virtual actor `key` of a module's first class; every actor of the module shares
/// one binding, as the actors of a deployed type do.
fn spawner(system: &System, served: &Arc<Served>, key: &str) -> ActorRef<WasmActor> {
    let served = Arc::clone(served);
    let id = ActorId::parse(&format!("bench/default/counter/{key}")).unwrap();
    system
        .spawn_virtual(id, Duration::from_secs(3600), move || {
            WasmActor::new(Arc::clone(&served), Default::default())
        })
        .unwrap()
}

/// Times one uncached build of a component from its source, with the SDK's own command.
fn timed_build(label: &str, mut command: std::process::Command) {
    let started = Instant::now();
    let output = command.output().expect("the build command runs");
    assert!(output.status.success(), "{label}: {}", String::from_utf8_lossy(&output.stderr));
    println!("{label}: build from source: {:.2?}", started.elapsed());
}

fn builds() {
    let root = guests::workspace();
    let out = std::env::temp_dir().join(format!("plexspaces-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    for engine in [guests::Engine::QuickJs, guests::Engine::SpiderMonkey] {
        let mut command = std::process::Command::new("node");
        command
            .arg(root.join("sdks/typescript/bin/plexspaces-ts.mjs"))
            .args(["build", "-q", "--engine", engine.name()])
            .arg(root.join("examples/typescript/counter.ts"))
            .arg("-o")
            .arg(out.join(format!("counter-{}.wasm", engine.name())));
        timed_build(&format!("typescript {}", engine.name()), command);
    }
    let mut command = std::process::Command::new(guests::python());
    command
        .args(["-m", "plexspaces.build", "build", "-q"])
        .arg(root.join("examples/python/counter_actor.py"))
        .arg("-o")
        .arg(out.join("counter.wasm"))
        .env("PYTHONPATH", root.join("sdks/python/src"));
    timed_build("python", command);
    // The Rust SDK's counter example: from nothing (its dependencies too), then after an edit.
    let manifest = root.join("examples/rust/counter-wasm/Cargo.toml");
    for label in ["rust sdk (dependencies included)", "rust sdk (after an edit)"] {
        let mut command = std::process::Command::new("cargo");
        command
            .args(["build", "--release", "--locked", "--quiet", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(out.join("rust-target"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        // An edit: the crate's own source is newer than its last build.
        let source = root.join("examples/rust/counter-wasm/src/lib.rs");
        let text = std::fs::read(&source).unwrap();
        std::fs::write(&source, text).unwrap();
        timed_build(label, command);
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Resident memory per live instance: `n` more instances of one component, kept alive.
async fn instance_memory(host: &Host, label: &str, component: &Component, n: usize) {
    let before = rss_kib();
    let mut live = Vec::with_capacity(n);
    for _ in 0..n {
        live.push(host.instantiate(component, label).await.unwrap());
    }
    let after = rss_kib();
    println!(
        "{label}: {:.2} MiB resident per live instance ({n} instances)",
        (after.saturating_sub(before)) as f64 / 1024.0 / n as f64
    );
}

/// Compiles (timed, cold, then loaded from the artifact) and instantiates a component; then
/// measures the memory of 16 more instances of it.
async fn compiled(host: &Host, label: &str, wasm: Vec<u8>) -> Module {
    println!("{label} component: {:.1} KB", wasm.len() as f64 / 1e3);
    let compiling = host.clone();
    let started = Instant::now();
    let artifact =
        tokio::task::spawn_blocking(move || compiling.compile(&wasm)).await.unwrap().unwrap();
    println!("{label}: deploy compile, cold: {:.2?}", started.elapsed());
    let started = Instant::now();
    let component = host.load_artifact(&artifact).unwrap();
    println!("{label}: deploy compile, cached (load the artifact): {:.2?}", started.elapsed());
    let started = Instant::now();
    let module = host.instantiate(&component, label).await.unwrap();
    println!("{label}: first instance + describe: {:.2?}", started.elapsed());
    instance_memory(host, label, &component, 16).await;
    module
}

/// Warm calls on one actor, then `actors` new actors each activated by its first increment
/// and left active: latency, rate and resident memory.
async fn counters(host: &Host, system: &System, label: &str, module: &Module, actors: usize) {
    let served = Served::new(Binding { module: module.clone(), class: 0 }, host.logs().clone());
    let warm = spawner(system, &served, &format!("{label}-warm"));
    timed_asks(&warm, "increment", r#"{"amount":1}"#, 1_000).await;
    report(
        &format!("{label} counter, warm call"),
        timed_asks(&warm, "increment", r#"{"amount":1}"#, 20_000).await,
    );
    let rss_before = rss_kib();
    let started = Instant::now();
    let workers = 16;
    let per_worker = actors.div_ceil(workers);
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let refs: Vec<ActorRef<WasmActor>> = (0..per_worker)
            .map(|at| worker * per_worker + at)
            .filter(|n| *n < actors)
            .map(|n| spawner(system, &served, &format!("{label}-{n}")))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(refs.len());
            for actor in &refs {
                let started = Instant::now();
                actor.ask(invocation("increment", r#"{"amount":1}"#)).await.unwrap().unwrap();
                samples.push(started.elapsed());
            }
            (samples, refs)
        }));
    }
    let mut samples = Vec::new();
    let mut keep = Vec::new();
    for task in tasks {
        let (part, refs) = task.await.unwrap();
        samples.extend(part);
        keep.extend(refs);
    }
    let took = started.elapsed();
    println!(
        "{label}: activated {actors} actors in {took:.2?}: {:.0} activations/s",
        actors as f64 / took.as_secs_f64()
    );
    report(&format!("{label} activation (first message of a new actor)"), samples);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after = rss_kib();
    println!(
        "{label}: resident {:.0} MiB before activation, {:.0} MiB with {actors} more active actors \
         ({:.0} B per active idle actor; {} pooled and {} pinned instances)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / actors as f64,
        module.pool_stats().live,
        module.pool_stats().pinned
    );
    println!("{label}: (kept {} references while measuring)", keep.len());
}

async fn run(actors: usize) {
    println!(
        "machine: {} cores; tokio multi-thread, 2 workers",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let python_wasm =
        std::fs::read(guests::python_module("examples/python/counter_actor.py")).unwrap();
    let rust_wasm = std::fs::read(guests::rust_module("crates/wasm/guests/rust-counter")).unwrap();
    let sdk_wasm =
        std::fs::read(guests::rust_module("crates/wasm/guests/rust-sdk-actors")).unwrap();
    let pinned_wasm = std::fs::read(guests::rust_module("examples/rust/counter-wasm")).unwrap();
    let state_wasm =
        std::fs::read(guests::python_module("examples/python/misbehaving.py")).unwrap();
    let typescript: Vec<(String, Vec<u8>, Vec<u8>)> =
        [guests::Engine::QuickJs, guests::Engine::SpiderMonkey]
            .into_iter()
            .map(|engine| {
                let counter = guests::typescript_module("examples/typescript/counter.ts", engine);
                let state = guests::typescript_module("examples/typescript/misbehaving.ts", engine);
                (
                    format!("typescript {}", engine.name()),
                    std::fs::read(counter).unwrap(),
                    std::fs::read(state).unwrap(),
                )
            })
            .collect();
    builds();
    let rss_start = rss_kib();
    let host = support::host(Options { max_instances: 8, ..Options::default() });
    let system = System::new().unwrap();

    // The same counter as a native Rust actor, same runtime, same run.
    let native = system
        .spawn(ActorId::parse("bench/default/native/n").unwrap(), GenServer::<Counter>::default())
        .unwrap();
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..21_000 {
        let started = Instant::now();
        native
            .ask(Message::json(&json!({"action": "increment", "amount": 1})))
            .await
            .unwrap()
            .unwrap();
        samples.push(started.elapsed());
    }
    report("native rust counter (GenServer), warm call", samples.split_off(1_000));

    let rust = compiled(&host, "rust", rust_wasm).await;
    let sdk = compiled(&host, "rust sdk", sdk_wasm).await;
    let pinned = compiled(&host, "rust sdk, no serde", pinned_wasm).await;
    let python = compiled(&host, "python", python_wasm).await;
    let mut typescript_counters = Vec::new();
    let mut states = vec![("python".to_owned(), compiled(&host, "python state", state_wasm).await)];
    for (label, counter, state) in typescript {
        typescript_counters.push((label.clone(), compiled(&host, &label, counter).await));
        states.push((label.clone(), compiled(&host, &format!("{label} state"), state).await));
    }

    // State round trips: the guest returns the state after every call.
    for (label, module) in states {
        let served = Served::new(Binding { module, class: 0 }, host.logs().clone());
        for kib in [1, 100] {
            let actor = spawner(&system, &served, &format!("{label}-s{kib}"));
            let payload = format!(r#"{{"kib":{kib}}}"#);
            timed_asks(&actor, "grow", &payload, 100).await;
            report(
                &format!("{label} call returning a {kib} KiB state"),
                timed_asks(&actor, "grow", &payload, 2_000).await,
            );
        }
    }

    println!("resident at start: {:.0} MiB", rss_start as f64 / 1024.0);
    counters(&host, &system, "rust", &rust, actors).await;
    counters(&host, &system, "rust sdk", &sdk, actors).await;
    // An instance per active actor: as many as the default max_pinned_instances allows.
    counters(&host, &system, "rust sdk, no serde", &pinned, actors.min(1_000)).await;
    counters(&host, &system, "python", &python, actors).await;
    for (label, module) in &typescript_counters {
        counters(&host, &system, label, module, actors).await;
    }
}
