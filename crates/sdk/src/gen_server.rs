//! GenServer: request-reply actors built from a state struct and its handlers.

use std::future::Future;

use plexspaces_core::{
    Actor, Context, ExitReason,
    facet::{FacetChain, MethodOutcome},
};

use crate::{ActorContext, BehaviorError, Message};

/// Implemented by `#[gen_server_actor]`: the type is the state of a GenServer actor.
pub trait GenServerState: Default + Send + 'static {}

/// Implemented by `#[plexspaces_handlers]`: routes a message to its handler by action.
pub trait Handlers: Send + 'static {
    /// The actions with a handler of their own.
    const ACTIONS: &'static [&'static str];
    /// Whether a `#[handler("*")]` takes every other action.
    const WILDCARD: bool;

    /// Runs the handler for `msg.action()`.
    fn dispatch<'a>(
        &'a mut self,
        ctx: &'a ActorContext,
        msg: &'a Message,
    ) -> impl Future<Output = Result<serde_json::Value, BehaviorError>> + Send + 'a;
}

/// The runtime actor that hosts a GenServer state `S`: spawn it with
/// `system.spawn(id, GenServer::<S>::default())` (or `GenServer::new(state)`, or
/// `GenServer::with_facets(state, chain)`), then tell or ask it [`Message`]s; an ask's reply is
/// the handler's `Result`. Attached facets run around every message (see
/// [`plexspaces_core::facet`]); a facet's refusal is [`BehaviorError::FacetRejected`].
#[derive(Debug, Default)]
pub struct GenServer<S> {
    state: S,
    context: Option<ActorContext>,
    facets: FacetChain,
}

impl<S> GenServer<S> {
    /// Hosts `state`, with no facets.
    pub fn new(state: S) -> Self {
        Self { state, context: None, facets: FacetChain::default() }
    }

    /// Hosts `state` with the facets of `chain` (built by a `FacetRegistry`).
    pub fn with_facets(state: S, facets: FacetChain) -> Self {
        Self { state, context: None, facets }
    }

    /// The state.
    pub fn state(&self) -> &S {
        &self.state
    }
}

impl<S: Handlers> Actor for GenServer<S> {
    type Msg = Message;
    type Reply = Result<serde_json::Value, BehaviorError>;
    type Snapshot = ();

    async fn activate(&mut self, _: Option<()>, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        self.context = Some(ActorContext::new(ctx.id().clone()));
        Ok(())
    }

    async fn handle(&mut self, msg: Message, ctx: &mut Context<Self>) -> Self::Reply {
        let context = self.context.get_or_insert_with(|| ActorContext::new(ctx.id().clone()));
        if self.facets.is_empty() {
            return self.state.dispatch(context, &msg).await;
        }
        if let Err(rejection) = self.facets.before(msg.action(), &msg.payload).await {
            return Err(BehaviorError::FacetRejected {
                facet: rejection.facet,
                reason: rejection.reason.to_string(),
            });
        }
        let reply = self.state.dispatch(context, &msg).await;
        match &reply {
            Ok(_) => self.facets.after(msg.action(), &msg.payload, MethodOutcome::Replied).await,
            Err(error) => {
                let error = error.to_string();
                let outcome = MethodOutcome::Failed(&error);
                self.facets.after(msg.action(), &msg.payload, outcome).await;
            }
        }
        reply
    }
}
