//! What the attribute macros implement: the same traits natively and in a wasm guest.

use std::future::Future;

use crate::{ActorContext, BehaviorError, Message, WorkflowContext};

/// Implemented by `#[gen_server_actor]` and `#[gen_fsm_actor]`: the type is an actor's state,
/// and the behavior it was built as.
pub trait ActorState: Default + Send + 'static {
    /// `Some(initial state)` for a GenFSM actor; `None` otherwise.
    const INITIAL_STATE: Option<&'static str> = None;
    /// Whether this is a GenEvent actor (one action may have several handlers).
    const EVENTS: bool = false;

    /// Whether the state can be checkpointed: it implements `Serialize` and
    /// `DeserializeOwned`. The attribute macros fill this in.
    fn checkpointable() -> bool {
        false
    }

    /// The state as JSON when it can be checkpointed (`None` otherwise): what operators see
    /// of the actor. The attribute macros fill this in.
    fn state_json(&self) -> Option<serde_json::Value> {
        None
    }

    /// The state [`ActorState::state_json`] gave, read back (an error when it cannot be
    /// checkpointed or the JSON does not fit). The attribute macros fill this in.
    fn from_state_json(json: serde_json::Value) -> Result<Self, String> {
        let _ = json;
        Err(format!("{} cannot be checkpointed", std::any::type_name::<Self>()))
    }
}

/// One handler's place in a GenFSM: the states it is valid in (empty: all) and the state it
/// leads to when it succeeds (`None`: it stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The action.
    pub action: &'static str,
    /// The states the action is valid in; empty means every state.
    pub from: &'static [&'static str],
    /// The state after a successful handler.
    pub to: Option<&'static str>,
}

/// Implemented by `#[plexspaces_handlers]`: routes a message to its handler by action.
pub trait Handlers: Send + 'static {
    /// The actions with a handler of their own.
    const ACTIONS: &'static [&'static str];
    /// Whether a `#[handler("*")]` takes every other action.
    const WILDCARD: bool;
    /// The handlers that declared `from` or `to` states (GenFSM actors).
    const TRANSITIONS: &'static [Transition] = &[];

    /// Runs the handler for `msg.action()`.
    fn dispatch<'a>(
        &'a mut self,
        ctx: &'a ActorContext,
        msg: &'a Message,
    ) -> impl Future<Output = Result<serde_json::Value, BehaviorError>> + Send + 'a;
}

/// Implemented by `#[plexspaces_handlers]` on a `#[workflow_actor]`'s handlers.
pub trait WorkflowHandlers: ActorState + Clone + Sync {
    /// The query names.
    const QUERIES: &'static [&'static str];
    /// The signal names that have a handler.
    const SIGNALS: &'static [&'static str];

    /// The run handler.
    fn run<'a>(
        &'a mut self,
        ctx: &'a WorkflowContext<Self>,
        msg: &'a Message,
    ) -> impl Future<Output = Result<serde_json::Value, BehaviorError>> + Send + 'a;

    /// The signal handler for `msg.action()`, if any.
    fn signal<'a>(
        &'a mut self,
        ctx: &'a ActorContext,
        msg: &'a Message,
    ) -> impl Future<Output = Result<(), BehaviorError>> + Send + 'a;

    /// The query handler for `msg.action()`.
    fn query<'a>(
        &'a self,
        ctx: &'a ActorContext,
        msg: &'a Message,
    ) -> impl Future<Output = Result<serde_json::Value, BehaviorError>> + Send + 'a;
}

/// The transition `action` takes in a GenFSM now in `current` (`None`: not a GenFSM), after
/// checking the action is valid there.
pub(crate) fn transition<S: Handlers>(
    current: Option<&'static str>,
    action: &str,
) -> Result<Option<&'static Transition>, BehaviorError> {
    let Some(current) = current else { return Ok(None) };
    let Some(transition) = S::TRANSITIONS.iter().find(|t| t.action == action) else {
        return Ok(None);
    };
    if transition.from.is_empty() || transition.from.contains(&current) {
        Ok(Some(transition))
    } else {
        Err(BehaviorError::InvalidState { action: action.to_owned(), state: current })
    }
}

/// The GenFSM state of `S` named `name`, as the `'static` name the behavior uses.
pub(crate) fn fsm_state_named<S: Handlers + ActorState>(name: &str) -> Option<&'static str> {
    let initial = S::INITIAL_STATE.into_iter();
    let named = S::TRANSITIONS
        .iter()
        .flat_map(|transition| transition.from.iter().copied().chain(transition.to));
    initial.chain(named).find(|state| *state == name)
}
