//! The built-in facets: `metrics`, `logging`, and the markers `timer` and `virtual_actor`.

use std::{
    collections::HashMap,
    mem,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Instant,
};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Facet, FacetError, FacetRegistry, InterceptResult, MethodOutcome};

/// How often the `metrics` facet times a message: each attached facet times its first
/// message and then one in this many. Reading the clock costs about as much as a small
/// handler, so timing every message would double the cost of a fast actor; the mean over
/// the timed messages is `handler_nanos / timed_messages`.
pub const METRICS_TIMING_SAMPLE: u64 = 16;

/// Counters the built-in `metrics` facet keeps, shared by every actor it is attached to.
///
/// Each attached facet writes counters of its own, so a message costs no atomic
/// read-modify-write and no cache line shared between threads; reading sums the live
/// facets' counters and the totals of those already dropped, so the figures are exact.
#[derive(Debug, Clone, Default)]
pub struct FacetMetrics {
    inner: Arc<Mutex<MetricsRegistry>>,
}

#[derive(Debug, Default)]
struct MetricsRegistry {
    live: HashMap<u64, Arc<Counters>>,
    next_id: u64,
    /// What dropped facets counted.
    retired: Totals,
}

/// One facet's counters. Only that facet writes them.
#[derive(Debug, Default)]
struct Counters {
    messages: AtomicU64,
    failures: AtomicU64,
    rejections: AtomicU64,
    timed: AtomicU64,
    handler_nanos: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    messages: u64,
    failures: u64,
    rejections: u64,
    timed: u64,
    handler_nanos: u64,
}

impl Counters {
    fn totals(&self) -> Totals {
        Totals {
            messages: self.messages.load(Relaxed),
            failures: self.failures.load(Relaxed),
            rejections: self.rejections.load(Relaxed),
            timed: self.timed.load(Relaxed),
            handler_nanos: self.handler_nanos.load(Relaxed),
        }
    }
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.messages += other.messages;
        self.failures += other.failures;
        self.rejections += other.rejections;
        self.timed += other.timed;
        self.handler_nanos = self.handler_nanos.saturating_add(other.handler_nanos);
    }
}

/// Adds to a counter that has a single writer: a plain load and store, no locked instruction.
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).saturating_add(by), Relaxed);
}

impl FacetMetrics {
    fn totals(&self) -> Totals {
        let registry = self.inner.lock();
        let mut totals = registry.retired;
        for counters in registry.live.values() {
            totals.add(counters.totals());
        }
        totals
    }

    /// Messages that reached the handler.
    pub fn messages(&self) -> u64 {
        self.totals().messages
    }
    /// Messages whose handler returned an error.
    pub fn failures(&self) -> u64 {
        self.totals().failures
    }
    /// Messages a facet further in stopped.
    pub fn rejections(&self) -> u64 {
        self.totals().rejections
    }
    /// Messages whose handler was timed (see [`METRICS_TIMING_SAMPLE`]).
    pub fn timed_messages(&self) -> u64 {
        self.totals().timed
    }
    /// Total time inside the chain further in and the handler over the timed messages, in
    /// nanoseconds.
    pub fn handler_nanos(&self) -> u64 {
        self.totals().handler_nanos
    }

    fn attach(&self) -> (u64, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let mut registry = self.inner.lock();
        let id = registry.next_id;
        registry.next_id += 1;
        registry.live.insert(id, Arc::clone(&counters));
        (id, counters)
    }

    fn detach(&self, id: u64) {
        let mut registry = self.inner.lock();
        if let Some(counters) = registry.live.remove(&id) {
            let totals = counters.totals();
            registry.retired.add(totals);
        }
    }
}

/// The built-in `metrics` facet: counts messages, failures and rejections and times a sample
/// of handlers. Priority 10: it wraps every other facet.
#[derive(Debug)]
pub struct MetricsFacet {
    metrics: FacetMetrics,
    id: u64,
    counters: Arc<Counters>,
    /// Messages seen, for the timing sample.
    seen: u64,
    /// A message passed `before` and has not reached `after`.
    in_flight: bool,
    started: Option<Instant>,
}

impl MetricsFacet {
    /// A facet that records into `metrics`.
    pub fn new(metrics: FacetMetrics) -> Self {
        let (id, counters) = metrics.attach();
        Self { metrics, id, counters, seen: 0, in_flight: false, started: None }
    }
}

impl Drop for MetricsFacet {
    fn drop(&mut self) {
        self.metrics.detach(self.id);
    }
}

#[async_trait]
impl Facet for MetricsFacet {
    fn name(&self) -> &str {
        "metrics"
    }
    fn priority(&self) -> u32 {
        10
    }
    fn is_synchronous(&self) -> bool {
        true
    }
    fn before_method_now(&mut self, _: &str, _: &[u8]) -> Result<InterceptResult, FacetError> {
        self.in_flight = true;
        if self.seen.is_multiple_of(METRICS_TIMING_SAMPLE) {
            self.started = Some(Instant::now());
        }
        self.seen = self.seen.wrapping_add(1);
        Ok(InterceptResult::Continue)
    }
    fn after_method_now(&mut self, _: &str, _: &[u8], outcome: MethodOutcome<'_>) {
        self.in_flight = false;
        let counters = &*self.counters;
        bump(&counters.messages, 1);
        if let MethodOutcome::Failed(_) = outcome {
            bump(&counters.failures, 1);
        }
        if let Some(started) = self.started.take() {
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            bump(&counters.handler_nanos, nanos);
            bump(&counters.timed, 1);
        }
    }
    fn on_error_now(&mut self, _: &str, _: &str) {
        // `after_method` ends the message when the handler ran; a message still in flight
        // here was refused by a facet further in.
        if mem::take(&mut self.in_flight) {
            self.started = None;
            bump(&self.counters.rejections, 1);
        }
    }
}

/// The built-in `logging` facet: one `tracing` event per message with its method, outcome and
/// duration. Priority 20.
#[derive(Debug, Default)]
pub struct LoggingFacet {
    started: Option<Instant>,
}

#[async_trait]
impl Facet for LoggingFacet {
    fn name(&self) -> &str {
        "logging"
    }
    fn priority(&self) -> u32 {
        20
    }
    fn is_synchronous(&self) -> bool {
        true
    }
    fn before_method_now(&mut self, _: &str, _: &[u8]) -> Result<InterceptResult, FacetError> {
        // Read the clock only when an event can be emitted (failures log at INFO).
        if tracing::enabled!(tracing::Level::INFO) {
            self.started = Some(Instant::now());
        }
        Ok(InterceptResult::Continue)
    }
    fn after_method_now(&mut self, method: &str, _: &[u8], outcome: MethodOutcome<'_>) {
        let micros = self.started.take().map_or(0, |started| started.elapsed().as_micros());
        match outcome {
            MethodOutcome::Replied => tracing::debug!(method, micros, "message handled"),
            MethodOutcome::Failed(error) => tracing::info!(method, micros, error, "message failed"),
        }
    }
}

/// The name of the built-in timer facet.
pub const TIMER: &str = "timer";

/// The built-in `timer` facet: attaching it gives the actor transient timers (a message to
/// itself after a delay, cancelled when it deactivates or stops). The SDK reads it when it
/// builds the actor's context; around messages the facet does nothing.
#[derive(Debug)]
pub struct TimerFacet;

#[async_trait]
impl Facet for TimerFacet {
    fn name(&self) -> &str {
        TIMER
    }
}

/// The name of the built-in virtual-actor facet.
pub const VIRTUAL_ACTOR: &str = "virtual_actor";

/// The built-in `virtual_actor` facet. Attaching it makes the actor virtual (Orleans-style:
/// built on its first message, deactivated after `idle_timeout_ms` without messages, 300,000 by
/// default, and reactivated by the next one with its state); the spawn reads that from the
/// config, so around messages the facet does nothing.
#[derive(Debug)]
pub struct VirtualActorFacet;

#[async_trait]
impl Facet for VirtualActorFacet {
    fn name(&self) -> &str {
        VIRTUAL_ACTOR
    }
}

/// The idle timeout the `virtual_actor` facet's config asks for.
pub fn virtual_idle_timeout(config: &serde_json::Value) -> Result<std::time::Duration, FacetError> {
    match config.get("idle_timeout_ms") {
        None | Some(serde_json::Value::Null) => Ok(std::time::Duration::from_secs(300)),
        Some(value) => {
            value.as_u64().filter(|ms| *ms > 0).map(std::time::Duration::from_millis).ok_or_else(
                || FacetError::InvalidConfig {
                    name: VIRTUAL_ACTOR.to_owned(),
                    reason: format!("idle_timeout_ms must be a positive integer, not {value}"),
                },
            )
        }
    }
}

impl FacetRegistry {
    /// A registry with the built-in facets: `metrics` (recording into `metrics`), `logging`,
    /// `timer` and `virtual_actor`.
    pub fn with_builtins(metrics: FacetMetrics) -> Self {
        let mut registry = Self::new();
        registry.register("metrics", move |_| Ok(Box::new(MetricsFacet::new(metrics.clone()))));
        registry.register("logging", |_| Ok(Box::new(LoggingFacet::default())));
        registry.register(TIMER, |_| Ok(Box::new(TimerFacet)));
        registry.register(VIRTUAL_ACTOR, |config| {
            virtual_idle_timeout(config)?;
            Ok(Box::new(VirtualActorFacet))
        });
        registry
    }
}
