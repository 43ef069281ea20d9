//! A deployed module: its description and its pool of instances. One instance serves many
//! actors, one message at a time; a message borrows an instance for its call and hands it
//! back. A trapped instance is discarded, never entered again.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use plexspaces_types::{ActorId, ErrorCode};
use wasmtime::{Store, UpdateDeadline};

use crate::{
    Error, Host, Result,
    bindings::{ActorModule, ActorModulePre, Failure, Reply, StateIn},
    ctx::Ctx,
    describe::Description,
    durable::CallJournal,
    host::TICK,
};

/// A module ready to serve: cheap to clone.
#[derive(Clone)]
pub struct Module {
    inner: Arc<Inner>,
}

struct Inner {
    host: Host,
    pre: ActorModulePre<Ctx>,
    description: Description,
    serial: u64,
    label: String,
    pool: Mutex<PoolState>,
    freed: tokio::sync::Notify,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Instance>,
    /// The instances that exist: idle or lent.
    live: HashSet<u64>,
    next_id: u64,
    /// Per instance: actors whose copies it may drop at its next call.
    evictions: HashMap<u64, Vec<(u32, String)>>,
    /// Instances discarded after a trap, for metrics and tests.
    discarded: u64,
    /// Instances pinned to one actor each (its state lives in the guest).
    pinned: usize,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("label", &self.inner.label)
            .field("serial", &self.inner.serial)
            .finish_non_exhaustive()
    }
}

/// An instance that serves one actor only, which keeps its state in the guest (a Rust state
/// without serde): the state lives as long as the instance. Dropping it frees its place.
pub(crate) struct Pinned {
    pub(crate) instance: Instance,
    module: Module,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned").field("instance", &self.instance.id).finish()
    }
}

impl Pinned {
    /// The module it belongs to.
    pub(crate) fn module(&self) -> &Module {
        &self.module
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.module.inner.pool.lock().pinned -= 1;
    }
}

/// One live instance, lent to one call at a time.
pub(crate) struct Instance {
    pub(crate) id: u64,
    store: Store<Ctx>,
    bindings: ActorModule,
}

/// Why a deadline trap happened: the guest ran past its time.
#[derive(Debug, thiserror::Error)]
#[error("the guest ran past its {0} ms deadline")]
struct DeadlineExceeded(u64);

/// How a call ended.
pub(crate) enum Outcome {
    /// The handler succeeded.
    Replied(Reply),
    /// The handler failed; the instance is fine.
    Failed(Failure),
    /// The instance trapped and was discarded.
    Trapped(Error),
}

/// What the guest answered, or why its instance trapped.
type Called = std::result::Result<std::result::Result<Reply, Failure>, String>;

/// Pool figures of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Instances that exist.
    pub live: usize,
    /// Of those, not lent.
    pub idle: usize,
    /// Instances discarded after a trap.
    pub discarded: u64,
    /// Instances pinned to one actor each.
    pub pinned: usize,
}

impl Module {
    pub(crate) async fn start(
        host: Host,
        pre: ActorModulePre<Ctx>,
        serial: u64,
        label: String,
    ) -> Result<Self> {
        let mut first = instantiate(&host, &pre, 0, &label).await?;
        let call = first.bindings.plexspaces_actor_guest().call_describe(&mut first.store).await;
        let json = call.map_err(|error| {
            Error::invalid_module(format!("describe failed: {}", trap_message(&error)))
        })?;
        let description = Description::parse(&json)?;
        let pool = PoolState {
            idle: vec![first],
            live: HashSet::from([0]),
            next_id: 1,
            ..PoolState::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                host,
                pre,
                description,
                serial,
                label,
                pool: Mutex::new(pool),
                freed: tokio::sync::Notify::new(),
            }),
        })
    }

    /// What the module says it serves.
    pub fn description(&self) -> &Description {
        &self.inner.description
    }

    /// The coordination services its instances call.
    pub fn services(&self) -> &crate::Services {
        &self.inner.host.inner.services
    }

    /// Whether class number `class` has a handler for `action`.
    pub fn handles(&self, class: u32, action: &str) -> bool {
        self.inner
            .description
            .classes
            .get(class as usize)
            .is_some_and(|class| class.handlers.iter().any(|handler| handler.name == action))
    }

    /// Tells this module apart from every other module the host loaded.
    pub fn serial(&self) -> u64 {
        self.inner.serial
    }

    /// The pool's figures.
    pub fn pool_stats(&self) -> PoolStats {
        let pool = self.inner.pool.lock();
        PoolStats {
            live: pool.live.len(),
            idle: pool.idle.len(),
            discarded: pool.discarded,
            pinned: pool.pinned,
        }
    }

    /// Borrows an instance: an idle one, a new one while under the cap, or the next one handed
    /// back within the pool wait; then `pool_exhausted`.
    pub(crate) async fn acquire(&self) -> Result<Instance> {
        let options = self.inner.host.options();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(options.pool_wait_ms);
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let id = {
                let mut pool = self.inner.pool.lock();
                if let Some(instance) = pool.idle.pop() {
                    return Ok(instance);
                }
                if pool.live.len() < options.max_instances {
                    let id = pool.next_id;
                    pool.next_id += 1;
                    pool.live.insert(id);
                    Some(id)
                } else {
                    None
                }
            };
            if let Some(id) = id {
                let made =
                    instantiate(&self.inner.host, &self.inner.pre, id, &self.inner.label).await;
                if made.is_err() {
                    self.inner.pool.lock().live.remove(&id);
                    self.inner.freed.notify_one();
                }
                return made;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Error::new(
                    ErrorCode::PoolExhausted,
                    format!(
                        "all {} instances of {} are busy (waiting actors keep theirs); retry, or \
                         raise wasm.max_instances",
                        options.max_instances, self.inner.label
                    ),
                ));
            }
        }
    }

    /// A new instance for one actor alone, while fewer than `max_pinned_instances` are
    /// pinned; then `pool_exhausted`.
    pub(crate) async fn pin(&self) -> Result<Pinned> {
        let options = self.inner.host.options();
        let id = {
            let mut pool = self.inner.pool.lock();
            if pool.pinned >= options.max_pinned_instances {
                return Err(Error::new(
                    ErrorCode::PoolExhausted,
                    format!(
                        "{} active actors of {} keep their state in an instance of their own (the \
                         state has no serde), the most wasm.max_pinned_instances allows: derive \
                         Serialize and Deserialize for the state, or raise the limit",
                        options.max_pinned_instances, self.inner.label
                    ),
                ));
            }
            pool.pinned += 1;
            let id = pool.next_id;
            pool.next_id += 1;
            id
        };
        let module = self.clone();
        match instantiate(&self.inner.host, &self.inner.pre, id, &self.inner.label).await {
            Ok(instance) => Ok(Pinned { instance, module }),
            Err(error) => {
                self.inner.pool.lock().pinned -= 1;
                Err(error)
            }
        }
    }

    /// Hands an instance back, or retires it when its memory has grown past the recycle mark.
    pub(crate) fn release(&self, instance: Instance) {
        let recycle = self.inner.host.options().recycle_memory_mib * 1024 * 1024;
        let memory = instance.store.data().limits.memory as u64;
        let mut pool = self.inner.pool.lock();
        if memory > recycle {
            pool.live.remove(&instance.id);
            pool.evictions.remove(&instance.id);
            tracing::debug!(module = %self.inner.label, memory, "instance retired: memory grew past the recycle mark");
        } else {
            pool.idle.push(instance);
        }
        drop(pool);
        self.inner.freed.notify_one();
    }

    /// Drops an instance that trapped.
    fn discard(&self, instance: Instance) {
        let mut pool = self.inner.pool.lock();
        pool.live.remove(&instance.id);
        pool.discarded += 1;
        pool.evictions.remove(&instance.id);
        drop(pool);
        drop(instance);
        self.inner.freed.notify_one();
    }

    /// Lets instance `holder` drop its copy of an actor at its next call.
    pub(crate) fn evict(&self, holder: u64, class: u32, key: &str) {
        let mut pool = self.inner.pool.lock();
        // Only instances that still exist keep copies.
        if pool.live.contains(&holder) {
            pool.evictions.entry(holder).or_default().push((class, key.to_owned()));
        }
    }

    /// Calls `handle` on `instance` for `actor`, with the journal of a durable actor's message
    /// (handed back after the call). A trap discards the instance; otherwise it goes back to
    /// the pool.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call(
        &self,
        mut instance: Instance,
        actor: &ActorId,
        class: u32,
        state: &StateIn,
        action: &str,
        payload: &[u8],
        journal: Option<CallJournal>,
    ) -> (Outcome, Option<CallJournal>) {
        let called = self.call_on(&mut instance, actor, class, state, action, payload, journal);
        let (called, journal) = called.await;
        let outcome = match called {
            Ok(Ok(reply)) => {
                self.release(instance);
                Outcome::Replied(reply)
            }
            Ok(Err(failure)) => {
                self.release(instance);
                Outcome::Failed(failure)
            }
            Err(message) => {
                self.discard(instance);
                Outcome::Trapped(Error::new(
                    ErrorCode::GuestTrapped,
                    format!(
                        "{message}; the instance was discarded and the actor keeps its last committed state"
                    ),
                ))
            }
        };
        (outcome, journal)
    }

    /// Calls `handle` on the instance pinned to `actor`. After a trap the caller drops it, and
    /// the state that lived in it.
    pub(crate) async fn call_pinned(
        &self,
        pinned: &mut Pinned,
        actor: &ActorId,
        class: u32,
        state: &StateIn,
        action: &str,
        payload: &[u8],
    ) -> Outcome {
        let instance = &mut pinned.instance;
        match self.call_on(instance, actor, class, state, action, payload, None).await.0 {
            Ok(Ok(reply)) => Outcome::Replied(reply),
            Ok(Err(failure)) => Outcome::Failed(failure),
            Err(message) => {
                self.inner.pool.lock().discarded += 1;
                Outcome::Trapped(Error::new(
                    ErrorCode::GuestTrapped,
                    format!(
                        "{message}; the instance was discarded, and with it the actor's state, which \
                         lived in it (the state has no serde): the next message starts from the \
                         default state"
                    ),
                ))
            }
        }
    }

    /// One call of `handle`: the guest's answer, or why the instance trapped.
    #[allow(clippy::too_many_arguments)]
    async fn call_on(
        &self,
        instance: &mut Instance,
        actor: &ActorId,
        class: u32,
        state: &StateIn,
        action: &str,
        payload: &[u8],
        journal: Option<CallJournal>,
    ) -> (Called, Option<CallJournal>) {
        let evict = self.inner.pool.lock().evictions.remove(&instance.id).unwrap_or_default();
        let key = actor.key.as_str();
        let store = &mut instance.store;
        {
            let data = store.data_mut();
            data.serving = Some(actor.clone());
            data.ticks = 0;
            *data.journal.lock() = journal;
        }
        store.set_epoch_deadline(1);
        let called = instance
            .bindings
            .plexspaces_actor_guest()
            .call_handle(&mut *store, class, key, state, action, payload, &evict)
            .await;
        let data = store.data_mut();
        data.serving = None;
        let mut journal = data.journal.lock().take();
        if let Some(journal) = &mut journal {
            journal.finish_replay();
        }
        // A message replayed whole printed its output when it ran.
        if journal.as_ref().is_some_and(|journal| journal.complete) {
            let _replayed = (data.stdout.take(), data.stderr.take());
        } else {
            data.flush_output(actor);
        }
        (called.map_err(|error| trap_message(&error)), journal)
    }
}

/// A trap or host error, said briefly: the deadline, the stack, the kind of trap.
fn trap_message(error: &wasmtime::Error) -> String {
    if let Some(deadline) = error.downcast_ref::<DeadlineExceeded>() {
        return deadline.to_string();
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::StackOverflow => "the guest overflowed its stack".to_owned(),
            other => format!("the guest trapped: {other}"),
        };
    }
    format!("the guest failed: {error:#}")
}

async fn instantiate(
    host: &Host,
    pre: &ActorModulePre<Ctx>,
    id: u64,
    label: &str,
) -> Result<Instance> {
    let inner = &host.inner;
    let options = &inner.options;
    let deadline_ticks =
        u64::try_from(options.deadline().as_micros() / TICK.as_micros().max(1)).unwrap_or(u64::MAX);
    let ctx = Ctx::new(
        Arc::clone(&inner.outbound),
        inner.services.clone(),
        inner.logs.clone(),
        usize::try_from(options.memory_limit_mib * 1024 * 1024).unwrap_or(usize::MAX),
        options.table_elements,
        deadline_ticks.max(1),
    );
    let mut store = Store::new(&inner.engine, ctx);
    store.limiter(|ctx| &mut ctx.limits);
    let deadline_ms = options.deadline_ms;
    store.epoch_deadline_callback(move |mut context| {
        let data = context.data_mut();
        data.ticks += 1;
        if data.ticks >= data.deadline_ticks {
            return Err(wasmtime::Error::new(DeadlineExceeded(deadline_ms)));
        }
        // Yield to other tasks every tick: a busy guest shares its thread.
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    let bindings = pre.instantiate_async(&mut store).await.map_err(|error| {
        Error::invalid_module(format!("{label} does not start: {}", trap_message(&error)))
    })?;
    Ok(Instance { id, store, bindings })
}
