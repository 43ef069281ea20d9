//! The coordination services guests call, each an interface of the world of its own: the
//! tuple space and locks here, KV in `kv_host`, process groups in `groups_host`, channels in
//! `channels_host`. Every call
//! works inside the calling actor's tenant (and, unless it names another, its namespace).

use std::{sync::Arc, time::Duration};

use plexspaces_storage::{
    blobs::Blobs,
    channels::Channels,
    groups::{GroupBackend, Groups},
    kv::Kv,
    locks::{Grant, LockBackend, Locks},
    presign::Presigner,
    registry::Registry,
};
use plexspaces_tuplespace::{Pattern, Space, TupleSpace, tuple_from_json};
use plexspaces_types::{ActorId, ErrorCode, Refusal};
use serde_json::Value;

use crate::{
    bindings::{HostError, plexspaces::actor},
    channels_host::{ChannelConsumers, NoConsumers},
    ctx::{BoxFuture, Ctx},
    durable::{CallKind, journaled},
};

/// The largest tuple or pattern a guest may pass, as JSON text.
pub const MAX_TUPLE_BYTES: usize = 1 << 20;

/// The most tuples one `scan` returns.
pub const MAX_SCAN: u32 = 10_000;

/// The node's services, shared by every instance; each behind the trait its backends share
/// (the default is every embedded backend, in memory).
#[derive(Debug, Clone)]
pub struct Services {
    /// The tuple spaces, by tenant and namespace.
    pub tuples: Arc<TupleSpace>,
    /// The locks.
    pub locks: Arc<dyn LockBackend>,
    /// The key-value store.
    pub kv: Kv,
    /// The process groups.
    pub groups: Arc<dyn GroupBackend>,
    /// Asynchronous takes not yet served, by the actor that asked.
    pub pending_takes: Arc<PendingTakes>,
    /// Timers: messages to an actor later (the node's; none without one).
    pub timers: Arc<dyn TimerService>,
    /// The queues and topics.
    pub channels: Channels,
    /// The consumers of channels (the node's; none without one).
    pub consumers: Arc<dyn ChannelConsumers>,
    /// The service registry.
    pub registry: Registry,
    /// The blob store.
    pub blobs: Blobs,
    /// Signs presigned blob URLs (the node's; none without one).
    pub presigner: Option<Arc<Presigner>>,
}

/// Timers for actors: a message to the actor after a delay. Durable ones (reminders, and the
/// wake-ups of waiting workflows) are kept in the journal and fire after a restart too.
pub trait TimerService: Send + Sync + std::fmt::Debug + 'static {
    /// Sends `{"action": action, ...payload}` to `actor` after `delay`; returns the timer's
    /// id. A durable timer is stored before this returns.
    fn schedule<'a>(
        &'a self,
        actor: &'a ActorId,
        action: &'a str,
        payload: Value,
        delay: Duration,
        durable: bool,
    ) -> BoxFuture<'a, Result<String, Refusal>>;

    /// Cancels the timer `id` of `actor`; false when it had fired or never existed.
    fn cancel<'a>(
        &'a self,
        actor: &'a ActorId,
        id: &'a str,
    ) -> BoxFuture<'a, Result<bool, Refusal>>;

    /// Keeps `actor`'s workflow run awake: it is woken (action `__wake`) at `due_ms`, and after
    /// every restart of the node until [`TimerService::clear_wake`].
    fn set_wake<'a>(
        &'a self,
        actor: &'a ActorId,
        due_ms: u64,
    ) -> BoxFuture<'a, Result<(), Refusal>>;

    /// The run has ended: no more wake-ups.
    fn clear_wake<'a>(&'a self, actor: &'a ActorId) -> BoxFuture<'a, Result<(), Refusal>>;
}

/// The action a workflow's wake-up carries.
pub const WAKE: &str = "__wake";

/// No timers: a host without a node (tests, benchmarks) refuses them.
#[derive(Debug, Default)]
pub struct NoTimers;

fn no_timers() -> Refusal {
    Refusal::new(ErrorCode::Unavailable, "timers need a node: this host has none")
}

impl TimerService for NoTimers {
    fn schedule<'a>(
        &'a self,
        _: &'a ActorId,
        _: &'a str,
        _: Value,
        _: Duration,
        _: bool,
    ) -> BoxFuture<'a, Result<String, Refusal>> {
        Box::pin(async { Err(no_timers()) })
    }

    fn cancel<'a>(&'a self, _: &'a ActorId, _: &'a str) -> BoxFuture<'a, Result<bool, Refusal>> {
        Box::pin(async { Err(no_timers()) })
    }

    fn set_wake<'a>(&'a self, _: &'a ActorId, _: u64) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async { Err(no_timers()) })
    }

    fn clear_wake<'a>(&'a self, _: &'a ActorId) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async { Err(no_timers()) })
    }
}

impl Default for Services {
    fn default() -> Self {
        Self {
            tuples: Arc::default(),
            locks: Arc::new(Locks::in_memory()),
            kv: Kv::in_memory(),
            groups: Arc::new(Groups::default()),
            pending_takes: Arc::default(),
            timers: Arc::new(NoTimers),
            channels: Channels::in_memory(),
            consumers: Arc::new(NoConsumers),
            registry: Registry::in_memory(),
            blobs: Blobs::in_memory(),
            presigner: None,
        }
    }
}

/// One asynchronous take waiting: its space, its arity and its id there.
type PendingTake = (Arc<Space>, usize, u64);

/// Asynchronous takes waiting in a space, by the actor (`tenant/namespace/type/key`) that
/// made them, so that deleting the actor withdraws them.
#[derive(Debug, Default)]
pub struct PendingTakes {
    by_actor: parking_lot::Mutex<std::collections::HashMap<String, Vec<PendingTake>>>,
}

impl PendingTakes {
    fn add(&self, actor: &ActorId, space: Arc<Space>, arity: usize, id: u64) {
        let mut by_actor = self.by_actor.lock();
        let takes = by_actor.entry(actor.to_string()).or_default();
        // Served takes are forgotten here, now and then, so the list stays short.
        if takes.len() >= 64 {
            takes.retain(|(space, arity, id)| space.is_waiting(*arity, *id));
        }
        takes.push((space, arity, id));
    }

    /// Withdraws the unserved asynchronous takes of `actor`; how many there were.
    pub fn cancel(&self, actor: &ActorId) -> usize {
        let takes = self.by_actor.lock().remove(&actor.to_string()).unwrap_or_default();
        takes.into_iter().filter(|(space, arity, id)| space.cancel(*arity, *id)).count()
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> HostError {
    HostError {
        code: ErrorCode::InvalidArguments.as_str().to_owned(),
        message: message.into(),
        error_type: None,
    }
}

impl From<plexspaces_types::Refusal> for HostError {
    fn from(error: plexspaces_types::Refusal) -> Self {
        HostError { code: error.code.as_str().to_owned(), message: error.message, error_type: None }
    }
}

pub(crate) fn json(text: &str, what: &str) -> Result<Value, HostError> {
    if text.len() > MAX_TUPLE_BYTES {
        return Err(invalid(format!(
            "the {what} is {} bytes of JSON; at most {MAX_TUPLE_BYTES}",
            text.len()
        )));
    }
    serde_json::from_str(text).map_err(|error| invalid(format!("the {what} is not JSON: {error}")))
}

fn pattern(text: &str) -> Result<Pattern, HostError> {
    Ok(Pattern::from_json(&json(text, "pattern")?)?)
}

fn text(tuple: &[Value]) -> String {
    serde_json::to_string(tuple).unwrap_or_default()
}

fn grant(grant: Grant) -> actor::locks::Grant {
    actor::locks::Grant {
        version: grant.version,
        holder: grant.holder,
        metadata: grant.metadata,
        expires_at_ms: grant.expires_at_ms,
    }
}

impl Ctx {
    /// The tenant, the namespace (`namespace`, or the caller's when empty) and the holder
    /// (`holder`, or the caller when empty) of a lock call.
    fn lock_scope(
        &self,
        namespace: &str,
        holder: &str,
    ) -> Result<(String, String, String), HostError> {
        let me = self.serving()?;
        let namespace = if namespace.is_empty() {
            me.namespace.as_str().to_owned()
        } else {
            namespace
                .parse::<plexspaces_types::Namespace>()
                .map_err(|error| invalid(format!("namespace: {error}")))?
                .as_str()
                .to_owned()
        };
        let holder = if holder.is_empty() {
            format!("{}/{}/{}", me.namespace, me.actor_type, me.key)
        } else {
            holder.to_owned()
        };
        Ok((me.tenant.as_str().to_owned(), namespace, holder))
    }

    fn space(&self) -> Result<(ActorId, Arc<Space>), HostError> {
        let me = self.serving()?.clone();
        let space = self.services.tuples.space(me.tenant.as_str(), me.namespace.as_str());
        Ok((me, space))
    }

    async fn find(
        &mut self,
        pattern_text: String,
        timeout_ms: u32,
        take: bool,
    ) -> Result<Option<String>, HostError> {
        let pattern = pattern(&pattern_text)?;
        let (_, space) = self.space()?;
        let found = if timeout_ms == 0 {
            if take { space.take(&pattern) } else { space.read(&pattern) }
        } else {
            // Waiting is not guest time: the epoch deadline does not run out meanwhile.
            let timeout = Duration::from_millis(u64::from(timeout_ms));
            if take {
                space.take_within(pattern, timeout).await
            } else {
                space.read_within(pattern, timeout).await
            }
        };
        if take && found.is_some() {
            self.durable().await?;
        }
        Ok(found.as_deref().map(text))
    }

    /// Waits until the tuple spaces' journal holds what this call changed (at once when the
    /// spaces are not journaled).
    async fn durable(&mut self) -> Result<(), HostError> {
        Ok(self.services.tuples.flush().await?)
    }
}

impl actor::tuplespace::Host for Ctx {
    async fn write(&mut self, tuple: String, lease_ms: u64) -> Result<(), HostError> {
        journaled!(self, CallKind::TsWrite, effect = true, |this| {
            let tuple = tuple_from_json(json(&tuple, "tuple")?)?;
            let (_, space) = this.space()?;
            let lease = (lease_ms > 0).then(|| Duration::from_millis(lease_ms));
            space.write(tuple, lease)?;
            this.durable().await
        })
    }

    async fn read(
        &mut self,
        pattern: String,
        timeout_ms: u32,
    ) -> Result<Option<String>, HostError> {
        journaled!(self, CallKind::TsRead, effect = false, |this| {
            this.find(pattern, timeout_ms, false).await
        })
    }

    async fn take(
        &mut self,
        pattern: String,
        timeout_ms: u32,
    ) -> Result<Option<String>, HostError> {
        journaled!(self, CallKind::TsTake, effect = true, |this| {
            this.find(pattern, timeout_ms, true).await
        })
    }

    async fn count(&mut self, pattern_text: String) -> Result<u64, HostError> {
        journaled!(self, CallKind::TsCount, effect = false, |this| {
            let pattern = pattern(&pattern_text)?;
            let (_, space) = this.space()?;
            Ok(space.count(&pattern) as u64)
        })
    }

    async fn scan(&mut self, pattern_text: String, limit: u32) -> Result<Vec<String>, HostError> {
        journaled!(self, CallKind::TsScan, effect = false, |this| {
            let pattern = pattern(&pattern_text)?;
            let (_, space) = this.space()?;
            let limit = if limit == 0 { MAX_SCAN } else { limit.min(MAX_SCAN) };
            Ok(space.scan(&pattern, limit as usize).iter().map(|tuple| text(tuple)).collect())
        })
    }

    async fn take_later(&mut self, pattern_text: String, action: String) -> Result<(), HostError> {
        journaled!(self, CallKind::TsTakeLater, effect = true, |this| {
            let pattern = pattern(&pattern_text)?;
            if action.is_empty() {
                return Err(invalid("take-later needs the action its message will carry"));
            }
            let (me, space) = this.space()?;
            let outbound = Arc::clone(&this.outbound);
            let target = me.local_name();
            let asker = me.clone();
            let arity = pattern.arity();
            let waiting = space.take_later(
                pattern,
                Box::new(move |tuple| {
                    let payload = format!("{{\"tuple\":{}}}", text(&tuple));
                    // An actor that cannot be told (its type undeployed) leaves the tuple to the
                    // next taker.
                    outbound
                        .tell(&me, &target, &action, payload.as_bytes(), None)
                        .map_err(|_| tuple)
                }),
            );
            match waiting {
                Some(id) => this.services.pending_takes.add(&asker, space, arity, id),
                // Taken at once: durable before the call returns.
                None => this.durable().await?,
            }
            Ok(())
        })
    }
}

fn lease(lease_ms: u64) -> Duration {
    Duration::from_millis(lease_ms)
}

impl actor::locks::Host for Ctx {
    async fn acquire(
        &mut self,
        namespace: String,
        name: String,
        holder: String,
        metadata: String,
        lease_ms: u64,
        timeout_ms: u32,
    ) -> Result<Option<actor::locks::Grant>, HostError> {
        journaled!(self, CallKind::LockAcquire, effect = true, |this| {
            let (tenant, namespace, holder) = this.lock_scope(&namespace, &holder)?;
            let locks = Arc::clone(&this.services.locks);
            let scope = (tenant.as_str(), namespace.as_str());
            let granted = if timeout_ms == 0 {
                locks.try_acquire(scope, &name, &holder, &metadata, lease(lease_ms))?
            } else {
                let timeout = Duration::from_millis(u64::from(timeout_ms));
                locks.acquire(scope, &name, &holder, &metadata, lease(lease_ms), timeout).await?
            };
            Ok(granted.map(grant))
        })
    }

    async fn renew(
        &mut self,
        namespace: String,
        name: String,
        holder: String,
        version: u64,
        lease_ms: u64,
    ) -> Result<actor::locks::Grant, HostError> {
        journaled!(self, CallKind::LockRenew, effect = true, |this| {
            let (tenant, namespace, holder) = this.lock_scope(&namespace, &holder)?;
            let scope = (tenant.as_str(), namespace.as_str());
            Ok(grant(this.services.locks.renew(scope, &name, &holder, version, lease(lease_ms))?))
        })
    }

    async fn release(
        &mut self,
        namespace: String,
        name: String,
        version: u64,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::LockRelease, effect = true, |this| {
            let (tenant, namespace, _) = this.lock_scope(&namespace, "")?;
            Ok(this.services.locks.release((tenant.as_str(), namespace.as_str()), &name, version))
        })
    }
}
