//! Timing helpers the benchmark examples share (`#[path = "common/timing.rs"] mod timing;`).

use std::time::{Duration, Instant};

use plexspaces_core::ActorRef;
use plexspaces_wasm::{Invocation, WasmActor};

/// The sample at quantile `p` of sorted samples (benchmarks).
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// One row: p50, p99 and max of the samples.
pub(crate) fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    println!(
        "{what:44} p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  (n={})",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
        samples.len()
    );
}

/// `n` asks of `action` to `actor`, one after another, each timed.
pub(crate) async fn timed_asks(
    actor: &ActorRef<WasmActor>,
    action: &str,
    payload: &str,
    n: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        actor
            .ask(Invocation::new(action.to_owned(), payload.as_bytes().to_vec(), None))
            .await
            .unwrap()
            .unwrap();
        samples.push(started.elapsed());
    }
    samples
}
