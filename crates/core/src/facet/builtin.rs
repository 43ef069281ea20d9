//! The built-in facets: `metrics`, `logging`, and the markers `timer` and `virtual_actor`.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Facet, FacetError, FacetRegistry, InterceptResult, MethodOutcome};

/// Counters the built-in `metrics` facet keeps, shared by every actor it is attached to.
#[derive(Debug, Clone, Default)]
pub struct FacetMetrics {
    inner: Arc<MetricsInner>,
}

#[derive(Debug, Default)]
struct MetricsInner {
    messages: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
    rejections: std::sync::atomic::AtomicU64,
    handler_nanos: std::sync::atomic::AtomicU64,
}

impl FacetMetrics {
    /// Messages that reached the handler.
    pub fn messages(&self) -> u64 {
        self.inner.messages.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Messages whose handler returned an error.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Messages a facet further in stopped.
    pub fn rejections(&self) -> u64 {
        self.inner.rejections.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Total time inside the chain further in and the handler, in nanoseconds.
    pub fn handler_nanos(&self) -> u64 {
        self.inner.handler_nanos.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The built-in `metrics` facet: counts messages, failures and rejections and times the
/// handler. Priority 10: it wraps every other facet.
#[derive(Debug)]
pub struct MetricsFacet {
    metrics: FacetMetrics,
    started: Option<std::time::Instant>,
}

impl MetricsFacet {
    /// A facet that records into `metrics`.
    pub fn new(metrics: FacetMetrics) -> Self {
        Self { metrics, started: None }
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
        self.started = Some(std::time::Instant::now());
        Ok(InterceptResult::Continue)
    }
    fn after_method_now(&mut self, _: &str, _: &[u8], outcome: MethodOutcome<'_>) {
        use std::sync::atomic::Ordering::Relaxed;
        let inner = &self.metrics.inner;
        inner.messages.fetch_add(1, Relaxed);
        if let MethodOutcome::Failed(_) = outcome {
            inner.failures.fetch_add(1, Relaxed);
        }
        if let Some(started) = self.started.take() {
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            inner.handler_nanos.fetch_add(nanos, Relaxed);
        }
    }
    fn on_error_now(&mut self, _: &str, _: &str) {
        // `after_method` has taken the start time when the handler ran; a start time still
        // here means a facet further in refused the message.
        if self.started.take().is_some() {
            self.metrics.inner.rejections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The built-in `logging` facet: one `tracing` event per message with its method, outcome and
/// duration. Priority 20.
#[derive(Debug, Default)]
pub struct LoggingFacet {
    started: Option<std::time::Instant>,
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
            self.started = Some(std::time::Instant::now());
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
