//! GenServer: request-reply actors built from a state struct and its handlers.

use std::sync::Arc;

use plexspaces_core::{
    Actor, ActorRef, Context, ExitReason, FacetRegistry, System,
    facet::{FacetChain, MethodOutcome, TIMER, VIRTUAL_ACTOR, virtual_idle_timeout},
};
use plexspaces_types::ActorId;

use crate::{
    ActorContext, ActorState, BehaviorError, Handlers, Message, SpawnError,
    context::Timers,
    state::{fsm_state_named, transition},
};

/// The runtime actor that hosts an SDK actor's state `S` (a GenServer, or a GenFSM when `S`
/// was built with `#[gen_fsm_actor]`): spawn it with
/// `system.spawn(id, GenServer::<S>::default())` (or `GenServer::new(state)`, or
/// `GenServer::with_facets(state, chain)`), then tell or ask it [`Message`]s; an ask's reply is
/// the handler's `Result`. Attached facets run around every message (see
/// [`plexspaces_core::facet`]); a facet's refusal is [`BehaviorError::FacetRejected`].
#[derive(Debug)]
pub struct GenServer<S> {
    state: S,
    context: Option<ActorContext>,
    facets: FacetChain,
    /// A GenFSM's current state.
    fsm_state: Option<&'static str>,
}

/// A GenFSM is hosted like a GenServer; the state type decides the behavior.
pub type GenFsm<S> = GenServer<S>;

/// A GenEvent is hosted like a GenServer; the state type decides the behavior.
pub type GenEvent<S> = GenServer<S>;

impl<S: ActorState> Default for GenServer<S> {
    fn default() -> Self {
        Self::new(S::default())
    }
}

impl<S: ActorState> GenServer<S> {
    /// Hosts `state`, with no facets.
    pub fn new(state: S) -> Self {
        Self::with_facets(state, FacetChain::default())
    }

    /// Hosts `state` with the facets of `chain` (built by a `FacetRegistry`).
    pub fn with_facets(state: S, facets: FacetChain) -> Self {
        Self { state, context: None, facets, fsm_state: S::INITIAL_STATE }
    }
}

impl<S> GenServer<S> {
    /// A GenFSM's current state (`None` for a GenServer).
    pub fn fsm_state(&self) -> Option<&'static str> {
        self.fsm_state
    }

    /// The state.
    pub fn state(&self) -> &S {
        &self.state
    }
}

impl<S: Handlers + ActorState> Actor for GenServer<S> {
    type Msg = Message;
    type Reply = Result<serde_json::Value, BehaviorError>;
    /// A virtual actor's state (and GenFSM state) while it is deactivated, kept in memory.
    type Snapshot = (S, Option<&'static str>);

    async fn activate(
        &mut self,
        snapshot: Option<Self::Snapshot>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ExitReason> {
        if let Some((state, fsm_state)) = snapshot {
            self.state = state;
            self.fsm_state = fsm_state;
        }
        self.context = Some(new_context(&self.facets, ctx));
        Ok(())
    }

    async fn deactivate(&mut self, _: &mut Context<Self>) -> Option<Self::Snapshot> {
        if let Some(context) = &self.context {
            context.cancel_timers();
        }
        Some((std::mem::take(&mut self.state), self.fsm_state))
    }

    fn inspect(&self) -> Option<serde_json::Value> {
        self.state.state_json()
    }

    async fn handle(&mut self, msg: Message, ctx: &mut Context<Self>) -> Self::Reply {
        let mut context = match self.context.take() {
            Some(context) => context,
            None => new_context(&self.facets, ctx),
        };
        let reply = self.handle_hosted(&msg, &mut context, true).await;
        self.context = Some(context);
        reply
    }
}

impl<S: Handlers + ActorState> GenServer<S> {
    /// Handles `msg` as the runtime's own actor does, for a host that wraps the GenServer in
    /// an actor of its own (the node's durable actors): a GenFSM message must be valid in the
    /// current state, and a success moves the state. `facets: false` skips the attached facets
    /// (a durable actor replaying its journal).
    pub async fn handle_hosted(
        &mut self,
        msg: &Message,
        context: &mut ActorContext,
        facets: bool,
    ) -> Result<serde_json::Value, BehaviorError> {
        let transition = transition::<S>(self.fsm_state, msg.action())?;
        context.fsm_state = self.fsm_state;
        let reply = if facets {
            dispatch_with_facets(&mut self.state, &mut self.facets, context, msg).await
        } else {
            self.state.dispatch(context, msg).await
        };
        if reply.is_ok()
            && let Some(to) = transition.and_then(|transition| transition.to)
        {
            self.fsm_state = Some(to);
        }
        reply
    }

    /// The state (and a GenFSM's state name) as checkpoint bytes: JSON, `None` when the state
    /// has no serde.
    pub fn checkpoint(&self) -> Option<Vec<u8>> {
        let state = self.state.state_json()?;
        serde_json::to_vec(&serde_json::json!({ "state": state, "fsm_state": self.fsm_state })).ok()
    }

    /// Restores what [`GenServer::checkpoint`] gave.
    pub fn restore(&mut self, checkpoint: &[u8]) -> Result<(), String> {
        let mut json: serde_json::Value =
            serde_json::from_slice(checkpoint).map_err(|error| error.to_string())?;
        let fsm_state = match json.get("fsm_state") {
            None | Some(serde_json::Value::Null) => None,
            Some(name) => {
                let name = name.as_str().ok_or("fsm_state is not a string")?;
                Some(fsm_state_named::<S>(name).ok_or_else(|| {
                    format!("the checkpoint's state {name:?} is not one of this GenFSM's")
                })?)
            }
        };
        self.state = S::from_state_json(json["state"].take())?;
        self.fsm_state = fsm_state.or(S::INITIAL_STATE);
        Ok(())
    }

    /// Takes the state (and a GenFSM's state name) out, leaving the default behind: what a
    /// deactivating host keeps.
    pub fn take_state(&mut self) -> (S, Option<&'static str>) {
        (std::mem::take(&mut self.state), std::mem::replace(&mut self.fsm_state, S::INITIAL_STATE))
    }

    /// Puts back what [`GenServer::take_state`] took.
    pub fn put_state(&mut self, (state, fsm_state): (S, Option<&'static str>)) {
        self.state = state;
        self.fsm_state = fsm_state;
    }
}

/// The handlers' context: the actor's id, and timers when the `timer` facet is attached.
fn new_context<S: Handlers + ActorState>(
    facets: &FacetChain,
    ctx: &Context<GenServer<S>>,
) -> ActorContext {
    let timers = facets.contains(TIMER).then(|| {
        let myself = ctx.myself();
        Timers::new(Arc::new(move |msg: Message| myself.tell(msg).is_ok()))
    });
    ActorContext::new(ctx.id().clone(), timers)
}

/// Runs the facet chain around the handler.
async fn dispatch_with_facets<S: Handlers>(
    state: &mut S,
    facets: &mut FacetChain,
    context: &ActorContext,
    msg: &Message,
) -> Result<serde_json::Value, BehaviorError> {
    if facets.is_empty() {
        return state.dispatch(context, msg).await;
    }
    if let Err(rejection) = facets.before(msg.action(), &msg.payload).await {
        return Err(BehaviorError::FacetRejected {
            facet: rejection.facet,
            reason: rejection.reason.to_string(),
        });
    }
    let reply = state.dispatch(context, msg).await;
    match &reply {
        Ok(_) => facets.after(msg.action(), &msg.payload, MethodOutcome::Replied).await,
        Err(error) => {
            let error = error.to_string();
            facets.after(msg.action(), &msg.payload, MethodOutcome::Failed(&error)).await;
        }
    }
    reply
}

/// The facet name that asks for durability (the facet itself comes with durable execution).
const DURABILITY: &str = "durability";

/// Spawns an SDK actor of state `S` with the named facets attached (each with its config),
/// built from `registry`. Unknown facet names and refused configs fail here, before the actor
/// exists, and so does `durability` on a state that cannot be checkpointed
/// (`state_not_serializable`). With `virtual_actor` attached the actor is virtual: built on its first message,
/// deactivated after its idle timeout, reactivated with its state and fresh facet instances.
pub fn spawn_actor<S: Handlers + ActorState>(
    system: &System,
    id: ActorId,
    registry: &FacetRegistry,
    facets: &[(&str, serde_json::Value)],
) -> Result<ActorRef<GenServer<S>>, SpawnError> {
    if facets.iter().any(|(name, _)| *name == DURABILITY) && !S::checkpointable() {
        return Err(SpawnError::StateNotSerializable { state: std::any::type_name::<S>() });
    }
    let chain = registry.build(facets)?;
    let Some((_, config)) = facets.iter().find(|(name, _)| *name == VIRTUAL_ACTOR) else {
        return Ok(system.spawn(id, GenServer::with_facets(S::default(), chain))?);
    };
    let idle_timeout = virtual_idle_timeout(config)?;
    let registry = registry.clone();
    let attached: Vec<(String, serde_json::Value)> =
        facets.iter().map(|(name, config)| ((*name).to_owned(), config.clone())).collect();
    let factory = move || {
        let chain =
            registry.build(&attached).map_err(|error| ExitReason::error(error.to_string()))?;
        Ok(GenServer::with_facets(S::default(), chain))
    };
    Ok(system.spawn_virtual_with(id, idle_timeout, factory)?)
}
