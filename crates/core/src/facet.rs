//! Facets: behaviour attached to an actor at run time, by name, around every message.
//!
//! A [`Facet`] sees each message's method (the action) and payload before the handler runs,
//! and the outcome after it. Facets run in ascending [`Facet::priority`] before the handler
//! (lower numbers first: security at 100 runs before a domain check at 200) and in the reverse
//! order after it, like layers of an onion. A facet stops a message by returning an error
//! from [`Facet::before_method`]; the handler does not run, the facets already passed see
//! [`Facet::on_error`], and the caller gets the facet's name and reason.
//!
//! A [`FacetRegistry`] holds facet *factories* by name: register a facet once, then attach it
//! to any number of actors; each actor gets its own instance, built from that actor's config.
//! Attaching a name nobody registered is an error when the actor is built.

use std::{collections::BTreeMap, fmt, sync::Arc};

use async_trait::async_trait;

mod builtin;

pub use builtin::{
    FacetMetrics, LoggingFacet, METRICS_TIMING_SAMPLE, MetricsFacet, TIMER, TimerFacet,
    VIRTUAL_ACTOR, VirtualActorFacet, virtual_idle_timeout,
};

/// What a facet decides before the handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterceptResult {
    /// Go on with the next facet, then the handler.
    Continue,
}

/// A facet's failure, or its refusal of a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FacetError {
    /// A reason of the facet's own (for example `fraud_detected`).
    #[error("{0}")]
    Custom(String),
    /// No facet of this name is registered.
    #[error("unknown facet {name:?}; registered facets: {registered}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that are registered, comma-separated.
        registered: String,
    },
    /// The facet's config is not what it expects.
    #[error("invalid config for facet {name:?}: {reason}")]
    InvalidConfig {
        /// The facet.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// How the handler ended, as facets see it after the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodOutcome<'a> {
    /// The handler replied.
    Replied,
    /// The handler returned an error with this message.
    Failed(&'a str),
}

/// Behaviour around an actor's messages. Implement it with `#[async_trait]`.
#[async_trait]
pub trait Facet: Send + 'static {
    /// The facet's name (the one it is registered and attached under).
    fn name(&self) -> &str;

    /// Where it runs in the chain: lower numbers run first before the handler, last after.
    fn priority(&self) -> u32 {
        500
    }

    /// Runs before the handler. An error stops the message.
    async fn before_method(
        &mut self,
        method: &str,
        payload: &[u8],
    ) -> Result<InterceptResult, FacetError> {
        let _ = (method, payload);
        Ok(InterceptResult::Continue)
    }

    /// Runs after the handler, whatever it returned.
    async fn after_method(&mut self, method: &str, payload: &[u8], outcome: MethodOutcome<'_>) {
        let _ = (method, payload, outcome);
    }

    /// Runs when a facet further in stopped the message or the handler failed.
    async fn on_error(&mut self, method: &str, error: &str) {
        let _ = (method, error);
    }

    /// Whether the facet's hooks never wait. The chain then calls the `*_now` hooks below
    /// instead of the async ones, which saves a boxed future per hook per message; a facet
    /// that says so implements those (the async ones are not called).
    fn is_synchronous(&self) -> bool {
        false
    }

    /// [`Facet::before_method`] for a synchronous facet.
    fn before_method_now(
        &mut self,
        method: &str,
        payload: &[u8],
    ) -> Result<InterceptResult, FacetError> {
        let _ = (method, payload);
        Ok(InterceptResult::Continue)
    }

    /// [`Facet::after_method`] for a synchronous facet.
    fn after_method_now(&mut self, method: &str, payload: &[u8], outcome: MethodOutcome<'_>) {
        let _ = (method, payload, outcome);
    }

    /// [`Facet::on_error`] for a synchronous facet.
    fn on_error_now(&mut self, method: &str, error: &str) {
        let _ = (method, error);
    }
}

/// Calls one facet's hooks, synchronously when it says it can.
async fn before(
    facet: &mut dyn Facet,
    method: &str,
    payload: &[u8],
) -> Result<InterceptResult, FacetError> {
    if facet.is_synchronous() {
        facet.before_method_now(method, payload)
    } else {
        facet.before_method(method, payload).await
    }
}

async fn after(facet: &mut dyn Facet, method: &str, payload: &[u8], outcome: MethodOutcome<'_>) {
    if facet.is_synchronous() {
        facet.after_method_now(method, payload, outcome);
    } else {
        facet.after_method(method, payload, outcome).await;
    }
}

async fn on_error(facet: &mut dyn Facet, method: &str, error: &str) {
    if facet.is_synchronous() {
        facet.on_error_now(method, error);
    } else {
        facet.on_error(method, error).await;
    }
}

/// Builds a facet instance from an actor's config for it.
pub type FacetFactory =
    Arc<dyn Fn(&serde_json::Value) -> Result<Box<dyn Facet>, FacetError> + Send + Sync>;

/// Facet factories by name. Cheap to clone; clones share nothing once made.
#[derive(Clone, Default)]
pub struct FacetRegistry {
    factories: BTreeMap<String, FacetFactory>,
}

impl fmt::Debug for FacetRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

impl FacetRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under `name`, replacing any earlier one.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn(&serde_json::Value) -> Result<Box<dyn Facet>, FacetError>
        + Send
        + Sync
        + 'static,
    ) -> &mut Self {
        self.factories.insert(name.into(), Arc::new(factory));
        self
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds one actor's chain from `(name, config)` pairs; fails on the first unknown name
    /// or refused config.
    pub fn build<N: AsRef<str>>(
        &self,
        attached: &[(N, serde_json::Value)],
    ) -> Result<FacetChain, FacetError> {
        let mut facets = Vec::with_capacity(attached.len());
        for (name, config) in attached {
            let name = name.as_ref();
            let Some(factory) = self.factories.get(name) else {
                let registered = self.names().collect::<Vec<_>>().join(", ");
                return Err(FacetError::Unknown { name: name.to_owned(), registered });
            };
            facets.push(factory(config)?);
        }
        // Stable: facets of equal priority keep the order they were attached in.
        facets.sort_by_key(|facet| facet.priority());
        Ok(FacetChain { facets })
    }
}

/// One actor's facets, in priority order.
#[derive(Default)]
pub struct FacetChain {
    facets: Vec<Box<dyn Facet>>,
}

impl fmt::Debug for FacetChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.facets.iter().map(|facet| facet.name())).finish()
    }
}

/// A facet stopped a message: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("facet {facet} rejected the message: {reason}")]
pub struct Rejection {
    /// The facet's name.
    pub facet: String,
    /// Its reason.
    pub reason: FacetError,
}

impl FacetChain {
    /// Whether no facet is attached (the chain then costs nothing).
    pub fn is_empty(&self) -> bool {
        self.facets.is_empty()
    }

    /// Whether a facet of this name is attached.
    pub fn contains(&self, name: &str) -> bool {
        self.facets.iter().any(|facet| facet.name() == name)
    }

    /// The attached facets' names, in the order they run before the handler.
    pub fn names(&self) -> Vec<&str> {
        self.facets.iter().map(|facet| facet.name()).collect()
    }

    /// Runs every facet's `before_method` in order. On a refusal, the facets that already
    /// passed get `on_error` (innermost first) and the refusal is returned.
    pub async fn before(&mut self, method: &str, payload: &[u8]) -> Result<(), Rejection> {
        for index in 0..self.facets.len() {
            if let Err(reason) = before(self.facets[index].as_mut(), method, payload).await {
                let facet = self.facets[index].name().to_owned();
                let message = reason.to_string();
                for passed in self.facets[..index].iter_mut().rev() {
                    on_error(passed.as_mut(), method, &message).await;
                }
                return Err(Rejection { facet, reason });
            }
        }
        Ok(())
    }

    /// Runs every facet's `after_method` (then `on_error` when the handler failed), in
    /// reverse order.
    pub async fn after(&mut self, method: &str, payload: &[u8], outcome: MethodOutcome<'_>) {
        for facet in self.facets.iter_mut().rev() {
            after(facet.as_mut(), method, payload, outcome).await;
            if let MethodOutcome::Failed(error) = outcome {
                on_error(facet.as_mut(), method, error).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Records every hook it sees into a shared log; refuses methods named "forbidden".
    struct Recorder {
        name: &'static str,
        priority: u32,
        log: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl Facet for Recorder {
        fn name(&self) -> &str {
            self.name
        }
        fn priority(&self) -> u32 {
            self.priority
        }
        async fn before_method(
            &mut self,
            method: &str,
            _: &[u8],
        ) -> Result<InterceptResult, FacetError> {
            self.log.lock().push(format!("{} before", self.name));
            if method == "forbidden" && self.name == "guard" {
                return Err(FacetError::Custom("not allowed".into()));
            }
            Ok(InterceptResult::Continue)
        }
        async fn after_method(&mut self, _: &str, _: &[u8], _: MethodOutcome<'_>) {
            self.log.lock().push(format!("{} after", self.name));
        }
        async fn on_error(&mut self, _: &str, error: &str) {
            self.log.lock().push(format!("{} error: {error}", self.name));
        }
    }

    fn registry(log: &Arc<Mutex<Vec<String>>>) -> FacetRegistry {
        let mut registry = FacetRegistry::with_builtins(FacetMetrics::default());
        for (name, priority) in [("guard", 100), ("audit", 300), ("outer", 50)] {
            let log = Arc::clone(log);
            registry.register(name, move |_| {
                Ok(Box::new(Recorder { name, priority, log: Arc::clone(&log) }))
            });
        }
        registry
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn facets_run_by_priority_before_and_in_reverse_after() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let attached = [
            ("audit", serde_json::Value::Null),
            ("guard", serde_json::Value::Null),
            ("outer", serde_json::Value::Null),
        ];
        let mut chain = registry(&log).build(&attached).unwrap();
        assert_eq!(chain.names(), ["outer", "guard", "audit"]);
        runtime().block_on(async {
            chain.before("get", b"{}").await.unwrap();
            chain.after("get", b"{}", MethodOutcome::Replied).await;
        });
        assert_eq!(
            *log.lock(),
            [
                "outer before",
                "guard before",
                "audit before",
                "audit after",
                "guard after",
                "outer after"
            ]
        );
    }

    #[test]
    fn a_facet_stops_a_message_and_the_outer_ones_hear_of_it() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let attached = [
            ("guard", serde_json::Value::Null),
            ("audit", serde_json::Value::Null),
            ("outer", serde_json::Value::Null),
        ];
        let mut chain = registry(&log).build(&attached).unwrap();
        let rejection = runtime().block_on(chain.before("forbidden", b"{}")).unwrap_err();
        assert_eq!(rejection.facet, "guard");
        assert_eq!(rejection.reason, FacetError::Custom("not allowed".into()));
        assert_eq!(rejection.to_string(), "facet guard rejected the message: not allowed");
        assert_eq!(*log.lock(), ["outer before", "guard before", "outer error: not allowed"]);
    }

    #[test]
    fn an_unknown_facet_name_is_refused_with_the_registered_names() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let error = registry(&log).build(&[("durability", serde_json::Value::Null)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"unknown facet "durability"; registered facets: audit, guard, logging, metrics, outer, timer, virtual_actor"#
        );
    }

    #[test]
    fn the_metrics_facet_counts_messages_failures_and_rejections() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let metrics = FacetMetrics::default();
        let mut registry = registry(&log);
        let recording = metrics.clone();
        registry.register("metrics", move |_| Ok(Box::new(MetricsFacet::new(recording.clone()))));
        let attached = [("metrics", serde_json::Value::Null), ("guard", serde_json::Value::Null)];
        let mut chain = registry.build(&attached).unwrap();
        runtime().block_on(async {
            chain.before("get", b"").await.unwrap();
            chain.after("get", b"", MethodOutcome::Replied).await;
            chain.before("get", b"").await.unwrap();
            chain.after("get", b"", MethodOutcome::Failed("boom")).await;
            assert!(chain.before("forbidden", b"").await.is_err());
        });
        assert_eq!((metrics.messages(), metrics.failures(), metrics.rejections()), (2, 1, 1));
        assert_eq!(metrics.timed_messages(), 1, "the first message is timed, then one in 16");
        drop(chain);
        assert_eq!(
            (metrics.messages(), metrics.failures(), metrics.rejections()),
            (2, 1, 1),
            "a dropped facet's counts stay"
        );
        let mut second = registry.build(&attached[..1]).unwrap();
        runtime().block_on(async {
            for _ in 0..=METRICS_TIMING_SAMPLE {
                second.before("get", b"").await.unwrap();
                second.after("get", b"", MethodOutcome::Replied).await;
            }
        });
        assert_eq!(metrics.messages(), 2 + METRICS_TIMING_SAMPLE + 1);
        assert_eq!(metrics.timed_messages(), 1 + 2);
    }
}
