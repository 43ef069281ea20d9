//! The warm call of any built components, side by side: for each `.wasm` given, one actor asked
//! `increment` 20,000 times (after 1,000 to warm up), then, when the module has a `grow` handler
//! (the misbehaving examples), calls that return a 1 KiB and a 100 KiB state.
//!
//! `cargo run -p plexspaces-wasm --example guest_call -- A.wasm [B.wasm ...]`: a quick loop for
//! work on one SDK's call path; `wasm_actors` gives the full table.

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

use plexspaces_core::System;
use plexspaces_wasm::Options;
use timing::{report, timed_asks};

async fn run(files: Vec<String>) {
    let host = support::host(Options::default());
    let system = System::new().unwrap();
    for (at, file) in files.into_iter().enumerate() {
        let wasm = std::fs::read(&file).unwrap();
        let module = support::load(&host, &wasm).await.unwrap();
        let actor = support::spawn(&host, &system, &module, 0, &format!("warm-{at}"));
        timed_asks(&actor, "increment", r#"{"amount":1}"#, 1_000).await;
        report(
            &format!("{file}: warm call"),
            timed_asks(&actor, "increment", r#"{"amount":1}"#, 20_000).await,
        );
        if module.handles(0, "grow") {
            for kib in [1, 100] {
                let actor = support::spawn(&host, &system, &module, 0, &format!("s{kib}-{at}"));
                let payload = format!(r#"{{"kib":{kib}}}"#);
                timed_asks(&actor, "grow", &payload, 50).await;
                report(
                    &format!("{file}: call returning a {kib} KiB state"),
                    timed_asks(&actor, "grow", &payload, 1_000).await,
                );
            }
        }
    }
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    assert!(!files.is_empty(), "name the .wasm files to measure");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move { tokio::spawn(run(files)).await.unwrap() });
}
