//! The actor types a node serves, by name: each knows how to find or activate an actor of its
//! type and hand it a message.

use std::{
    collections::BTreeMap, future::Future, marker::PhantomData, pin::Pin, sync::Arc, time::Duration,
};

use plexspaces_core::{Actor, ActorRef, FacetRegistry, System};
use plexspaces_durable::{Admission, Durability};
use plexspaces_sdk::{ActorState, GenServer, Handlers, Message, spawn_actor};
use plexspaces_storage::journal::Origin;
use plexspaces_types::{ActorId, ErrorCode};
use serde_json::Value;

use crate::{
    Error, Result,
    durable_native::{Delivery, DurableNative, reply_bytes},
};

/// A boxed future borrowed for `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One registered actor type, type-erased.
pub(crate) trait ActorKind: Send + Sync + 'static {
    /// gen_server, gen_fsm, gen_event or workflow.
    fn behavior(&self) -> &str;
    /// The facets each actor of the type gets.
    fn facets(&self) -> Vec<String>;
    /// The deployed version (empty for native types).
    fn version(&self) -> &str {
        ""
    }
    /// Whether its actors journal their messages (the `durability` facet).
    fn durable(&self) -> bool {
        false
    }
    /// Queues `msg` for the actor `id`, activating it first when needed; the envelope names
    /// the tell in logs and carries what a durable actor keeps with it.
    fn tell(&self, system: &System, id: ActorId, msg: Message, envelope: Envelope) -> Result<()>;
    /// Sends `msg` to the actor `id` and waits up to `timeout` for its reply (JSON); `origin`
    /// is the id of a durable sender's call.
    fn call<'a>(
        &'a self,
        system: &'a System,
        id: ActorId,
        msg: Message,
        timeout: Duration,
        origin: Option<Origin>,
    ) -> BoxFuture<'a, Result<Vec<u8>>>;
}

/// What travels with a tell beside the message.
#[derive(Debug, Default)]
pub(crate) struct Envelope {
    /// Names the tell in logs and replies.
    pub(crate) message_id: String,
    /// The deterministic id of a durable sender's call.
    pub(crate) origin: Option<Origin>,
    /// The client's `Idempotency-Key`.
    pub(crate) idempotency_key: Option<String>,
    /// Told when a durable actor has journaled the message.
    pub(crate) admission: Option<Admission>,
}

impl Envelope {
    /// A tell named `message_id`, nothing more.
    pub(crate) fn named(message_id: String) -> Self {
        Self { message_id, ..Self::default() }
    }
}

/// The facets every native actor gets: it is virtual (activated by its first message,
/// deactivated after `idle_timeout`).
pub(crate) fn attached_facets(
    idle_timeout: Duration,
    extra: &[(String, Value)],
) -> Vec<(String, Value)> {
    let idle_ms = u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut facets =
        vec![("virtual_actor".to_owned(), serde_json::json!({ "idle_timeout_ms": idle_ms }))];
    facets.extend(extra.iter().filter(|(name, _)| name != "virtual_actor").cloned());
    facets
}

/// A native SDK actor type (`#[gen_server_actor]`, `#[gen_fsm_actor]` or
/// `#[gen_event_actor]` state `S`).
pub(crate) struct Native<S> {
    facet_registry: FacetRegistry,
    facets: Vec<(String, Value)>,
    idle_timeout: Duration,
    /// Set when the facets include `durability`.
    durability: Option<Arc<Durability>>,
    state: PhantomData<fn() -> S>,
}

impl<S: Handlers + ActorState> Native<S> {
    pub(crate) fn new(
        facet_registry: FacetRegistry,
        idle_timeout: Duration,
        extra_facets: &[(String, Value)],
        durable: &crate::deploy::DurableDefaults,
    ) -> Result<Self> {
        let (facets, durability) =
            checked_facets::<S>(&facet_registry, idle_timeout, extra_facets, durable)?;
        Ok(Self { facet_registry, facets, idle_timeout, durability, state: PhantomData })
    }

    /// The durable actor `id`: the running one, or a new one.
    fn durable_actor(
        &self,
        system: &System,
        id: &ActorId,
        durability: &Arc<Durability>,
    ) -> Result<ActorRef<DurableNative<S>>> {
        let durability = Arc::clone(durability);
        let timers = self.facets.iter().any(|(name, _)| name == plexspaces_core::facet::TIMER);
        let registry = (&self.facet_registry, self.facets.as_slice());
        virtual_actor(system, id, self.idle_timeout, registry, move |chain| {
            let server = GenServer::with_facets(S::default(), chain);
            DurableNative::new(server, Arc::clone(&durability), timers)
        })
    }

    /// The actor `id`: the running one, or a new one.
    fn actor(&self, system: &System, id: &ActorId) -> Result<ActorRef<GenServer<S>>> {
        running_or_spawned(system, id, || {
            let named: Vec<(&str, Value)> =
                self.facets.iter().map(|(name, config)| (name.as_str(), config.clone())).collect();
            match spawn_actor::<S>(system, id.clone(), &self.facet_registry, &named) {
                Ok(actor) => Ok(Some(actor)),
                Err(plexspaces_sdk::SpawnError::Runtime(
                    plexspaces_core::Error::AlreadyExists(_),
                )) => Ok(None),
                Err(error) => Err(error.into()),
            }
        })
    }
}

/// Facets by name, with their configs.
pub(crate) type Facets = Vec<(String, Value)>;

/// The facets every actor of a native type `S` gets, and what its actors share when they
/// include `durability`. Unknown facets, bad configs and a durable state without serde are
/// refused when the type is registered, not at the first message.
pub(crate) fn checked_facets<S: ActorState>(
    facet_registry: &FacetRegistry,
    idle_timeout: Duration,
    extra_facets: &[(String, Value)],
    durable: &crate::deploy::DurableDefaults,
) -> Result<(Facets, Option<Arc<Durability>>)> {
    let durability = durable.for_facets(extra_facets);
    if durability.is_some() && !S::checkpointable() {
        return Err(Error::new(
            ErrorCode::StateNotSerializable,
            format!(
                "the durability facet journals and checkpoints the state, and {} has no serde: \
                 derive Serialize and Deserialize for it",
                std::any::type_name::<S>()
            ),
        ));
    }
    let facets = attached_facets(idle_timeout, extra_facets);
    let named: Vec<(&str, Value)> =
        facets.iter().map(|(name, config)| (name.as_str(), config.clone())).collect();
    facet_registry
        .build(&named)
        .map_err(|error| Error::new(ErrorCode::InvalidArguments, error.to_string()))?;
    Ok((facets, durability))
}

/// The actor `id`: the running one, or the one `spawn` activates. `spawn` answers `None`
/// when another request activated the actor first; then that one is used.
pub(crate) fn running_or_spawned<A: Actor>(
    system: &System,
    id: &ActorId,
    spawn: impl Fn() -> Result<Option<ActorRef<A>>>,
) -> Result<ActorRef<A>> {
    loop {
        match system.lookup::<A>(id) {
            Ok(actor) => return Ok(actor),
            Err(plexspaces_core::Error::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        if let Some(actor) = spawn()? {
            return Ok(actor);
        }
    }
}

/// The actor `id`: the running one, or a virtual one that `build` makes around fresh instances
/// of `facets` at each activation.
pub(crate) fn virtual_actor<A: Actor>(
    system: &System,
    id: &ActorId,
    idle_timeout: Duration,
    (registry, facets): (&FacetRegistry, &[(String, Value)]),
    build: impl Fn(plexspaces_core::facet::FacetChain) -> A + Clone + Send + Sync + 'static,
) -> Result<ActorRef<A>> {
    running_or_spawned(system, id, || {
        let (registry, facets, build) = (registry.clone(), facets.to_vec(), build.clone());
        let spawned = system.spawn_virtual_with(id.clone(), idle_timeout, move || {
            let chain = registry
                .build(&facets)
                .map_err(|error| plexspaces_core::ExitReason::error(format!("facets: {error}")))?;
            Ok(build(chain))
        });
        match spawned {
            Ok(actor) => Ok(Some(actor)),
            Err(plexspaces_core::Error::AlreadyExists(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    })
}

/// Tells the actor `find` returns. An actor that stopped since the lookup (deleted, say)
/// hands the message back, and the next incarnation gets it.
pub(crate) fn tell_retrying<A: Actor>(
    id: &ActorId,
    mut msg: A::Msg,
    find: impl Fn() -> Result<ActorRef<A>>,
) -> Result<()> {
    for _ in 0..STOPPED_RETRIES {
        match find()?.try_tell(msg) {
            Ok(()) => return Ok(()),
            Err(returned) => msg = returned,
        }
    }
    Err(stopped(id))
}

/// Asks the actor `find` returns, retrying on a new incarnation as [`tell_retrying`] does.
pub(crate) async fn ask_retrying<A: Actor>(
    id: &ActorId,
    mut msg: A::Msg,
    timeout: Duration,
    find: impl Fn() -> Result<ActorRef<A>>,
) -> Result<A::Reply> {
    for _ in 0..STOPPED_RETRIES {
        match find()?.try_ask(msg, timeout) {
            Ok(reply) => return Ok(reply.await?),
            Err(returned) => msg = returned,
        }
    }
    Err(stopped(id))
}

impl<S: Handlers + ActorState> ActorKind for Native<S> {
    fn behavior(&self) -> &str {
        if S::INITIAL_STATE.is_some() {
            "gen_fsm"
        } else if S::EVENTS {
            "gen_event"
        } else {
            "gen_server"
        }
    }

    fn facets(&self) -> Vec<String> {
        self.facets.iter().map(|(name, _)| name.clone()).collect()
    }

    fn durable(&self) -> bool {
        self.durability.is_some()
    }

    fn tell(&self, system: &System, id: ActorId, msg: Message, envelope: Envelope) -> Result<()> {
        let Some(durability) = &self.durability else {
            return tell_retrying(&id, msg, || self.actor(system, &id));
        };
        json_only(&msg)?;
        let delivery = Delivery::told(msg, envelope);
        tell_retrying(&id, delivery, || self.durable_actor(system, &id, durability))
    }

    fn call<'a>(
        &'a self,
        system: &'a System,
        id: ActorId,
        msg: Message,
        timeout: Duration,
        origin: Option<Origin>,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            if let Some(durability) = &self.durability {
                json_only(&msg)?;
                let delivery = Delivery::asked(msg, origin);
                let find = || self.durable_actor(system, &id, durability);
                return ask_retrying(&id, delivery, timeout, find).await?;
            }
            reply_bytes(ask_retrying(&id, msg, timeout, || self.actor(system, &id)).await?)
        })
    }
}

/// A durable native actor journals JSON payloads only (its replay rebuilds them as JSON).
pub(crate) fn json_only(msg: &Message) -> Result<()> {
    if crate::payload::is_json(&msg.content_type) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::UnsupportedMediaType,
        format!("durable actors take JSON payloads, not {:?}", &*msg.content_type),
    ))
}

/// How many incarnations a message tries before it gives up on an actor that keeps stopping.
pub(crate) const STOPPED_RETRIES: usize = 3;

pub(crate) fn stopped(id: &ActorId) -> Error {
    Error::new(
        ErrorCode::ActorStopped,
        format!("actor {id} stopped while the message was sent; retry"),
    )
}

/// The registered types by name.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    kinds: Arc<BTreeMap<String, Arc<dyn ActorKind>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Registry {
    pub(crate) fn new(kinds: BTreeMap<String, Arc<dyn ActorKind>>) -> Self {
        Self { kinds: Arc::new(kinds) }
    }

    /// The native type registered under `name`, if there is one.
    pub(crate) fn find(&self, name: &str) -> Option<&Arc<dyn ActorKind>> {
        self.kinds.get(name)
    }

    /// The type registered under `name`.
    pub(crate) fn get(&self, name: &str) -> Result<&Arc<dyn ActorKind>> {
        self.kinds.get(name).ok_or_else(|| {
            let registered: Vec<&str> = self.kinds.keys().map(String::as_str).collect();
            Error::new(
                ErrorCode::NotFound,
                format!(
                    "actor type {name:?} is not registered on this node; registered types: {}",
                    if registered.is_empty() { "none".to_owned() } else { registered.join(", ") }
                ),
            )
        })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Arc<dyn ActorKind>)> {
        self.kinds.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.kinds.len()
    }
}
