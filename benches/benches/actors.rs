//! Runs every actor workload on PlexSpaces, actix, ractor, kameo and bare tokio in one
//! process run and prints Markdown tables for BENCHMARKS.md.
//!
//! `cargo bench -p plexspaces-benches --bench actors` runs the full sizes; add `-- --quick`
//! for a smoke run, and a word (`-- Counting`) to run only the workloads whose name has it.
//! Resident memory is measured in a fresh child process per framework.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use plexspaces_benches::{
    Framework, Outcome, Workload,
    actix_peer::Actix,
    kameo_peer::Kameo,
    ours::{Flavour, Ours},
    ours_sdk::{OursLargeMessage, OursSdk},
    ractor_peer::Ractor,
    tokio_limit::TokioLimit,
};

fn frameworks() -> Vec<Box<dyn Framework>> {
    vec![
        Box::new(Ours(Flavour::MultiThread)),
        Box::new(Ours(Flavour::CurrentThread)),
        Box::new(OursLargeMessage),
        Box::new(OursSdk { metrics_facet: false }),
        Box::new(OursSdk { metrics_facet: true }),
        Box::new(Actix),
        Box::new(Ractor),
        Box::new(Kameo),
        Box::new(TokioLimit),
    ]
}

fn workloads(quick: bool) -> Vec<Workload> {
    let scale = if quick { 20 } else { 1 };
    vec![
        Workload::PingPong { n: 40_000 / scale },
        Workload::Counting { n: 1_000_000 / scale },
        Workload::ThreadRing { actors: 100, passes: 100_000 / scale },
        Workload::Big { actors: 120, pings: 20_000 / scale },
        Workload::FjCreate { n: 40_000 / scale },
        Workload::Ask { samples: 100_000 / scale },
        Workload::Spawn { n: 1_000_000 / scale },
        Workload::IdleMemory { n: 100_000 / scale },
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|arg| arg == "--memory-child") {
        return memory_child(&args[at + 1], args[at + 2].parse().unwrap());
    }
    let quick = args.iter().any(|arg| arg == "--quick");
    let filter = args.iter().find(|arg| !arg.starts_with("--")).cloned();
    let repeats = if quick { 1 } else { 5 };

    println!("machine: {} cores; repeats per row: {repeats} (median shown)\n", cores());
    for workload in workloads(quick) {
        let name = workload.name();
        if filter.as_ref().is_some_and(|word| !name.contains(word.as_str())) {
            continue;
        }
        println!("### {name}\n");
        match workload {
            Workload::Ask { .. } => ask_table(workload, repeats),
            Workload::IdleMemory { n } => memory_table(n),
            _ => rate_table(workload, repeats),
        }
        println!();
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn rate_table(workload: Workload, repeats: usize) {
    println!("| framework | runtime | median time | rate (M/s) | plexspaces is |");
    println!("|---|---|---|---|---|");
    let mut ours_rate = None;
    for framework in frameworks() {
        let runs: Option<Vec<Duration>> =
            (0..repeats).map(|_| framework.run(workload).map(|outcome| outcome.elapsed)).collect();
        // A framework that cannot express the workload has no row.
        let Some(runs) = runs else { continue };
        let time = median(runs);
        let rate = workload.units() as f64 / time.as_secs_f64() / 1e6;
        let ours = *ours_rate.get_or_insert(rate);
        println!(
            "| {} | {} | {:.2} ms | {:.2} | {:.2}x |",
            framework.name(),
            framework.flavour(),
            time.as_secs_f64() * 1e3,
            rate,
            ours / rate
        );
    }
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn ask_table(workload: Workload, repeats: usize) {
    println!("| framework | runtime | p50 | p99 | max | plexspaces p50 is |");
    println!("|---|---|---|---|---|---|");
    let mut ours_p50 = None;
    for framework in frameworks() {
        let mut latencies = Vec::new();
        for _ in 0..repeats {
            let Some(Outcome { latencies_ns, .. }) = framework.run(workload) else { break };
            latencies.extend(latencies_ns);
        }
        if latencies.is_empty() {
            continue;
        }
        latencies.sort_unstable();
        let p50 = percentile(&latencies, 0.50);
        let ours = *ours_p50.get_or_insert(p50);
        println!(
            "| {} | {} | {} ns | {} ns | {} ns | {:.2}x |",
            framework.name(),
            framework.flavour(),
            p50,
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
            ours as f64 / p50 as f64
        );
    }
}

/// Runs one framework's IdleMemory in this (fresh) process and prints the figure.
fn memory_child(name: &str, n: u64) {
    let framework = frameworks().into_iter().find(|f| f.name() == name).unwrap();
    match framework.run(Workload::IdleMemory { n }).and_then(|outcome| outcome.bytes_per_actor) {
        Some(bytes) => println!("BYTES {bytes}"),
        None => println!("BYTES none"),
    }
}

fn memory_table(n: u64) {
    println!("| framework | runtime | resident bytes per idle actor | plexspaces is |");
    println!("|---|---|---|---|");
    let exe = std::env::current_exe().unwrap();
    let mut ours_bytes = None;
    for framework in frameworks() {
        let output = Command::new(&exe)
            .args(["--memory-child", framework.name(), &n.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let bytes = stdout.lines().find_map(|line| line.strip_prefix("BYTES ")).map(str::trim);
        if bytes == Some("none") {
            continue;
        }
        match bytes.and_then(|text| text.parse::<f64>().ok()) {
            Some(bytes) => {
                let ours = *ours_bytes.get_or_insert(bytes);
                println!(
                    "| {} | {} | {:.0} B | {:.2}x |",
                    framework.name(),
                    framework.flavour(),
                    bytes,
                    ours / bytes
                );
            }
            None => println!(
                "| {} | {} | failed: {} | |",
                framework.name(),
                framework.flavour(),
                String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
            ),
        }
    }
}
