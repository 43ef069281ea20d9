//! A native workflow type (`#[workflow_actor]` state `S`): virtual `WorkflowActor<S>`s. `run`
//! starts the run (an ask gets its result when it ends, within the ask's timeout; a tell
//! starts it and is answered at once), a query name reads the committed state, any other
//! action is a signal. Not durable: a native run lives in the node's memory, and a restart
//! loses it (a workflow deployed as a component with the `durability` facet survives one).

use std::{marker::PhantomData, time::Duration};

use plexspaces_core::{ActorRef, FacetRegistry, System};
use plexspaces_sdk::{Message, WorkflowActor, WorkflowHandlers};
use plexspaces_storage::journal::Origin;
use plexspaces_types::ActorId;
use serde_json::Value;

use crate::{
    Result,
    durable_native::reply_bytes,
    registry::{ActorKind, BoxFuture, Envelope, ask_retrying, tell_retrying, virtual_actor},
};

/// A native workflow type.
pub(crate) struct NativeWorkflow<S> {
    facet_registry: FacetRegistry,
    /// The `virtual_actor` facet and its idle timeout.
    facets: Vec<(String, Value)>,
    idle_timeout: Duration,
    state: PhantomData<fn() -> S>,
}

impl<S: WorkflowHandlers> NativeWorkflow<S> {
    pub(crate) fn new(facet_registry: FacetRegistry, idle_timeout: Duration) -> Self {
        let facets = crate::registry::attached_facets(idle_timeout, &[]);
        Self { facet_registry, facets, idle_timeout, state: PhantomData }
    }

    fn actor(&self, system: &System, id: &ActorId) -> Result<ActorRef<WorkflowActor<S>>> {
        let registry = (&self.facet_registry, self.facets.as_slice());
        virtual_actor(system, id, self.idle_timeout, registry, |_| WorkflowActor::<S>::default())
    }
}

impl<S: WorkflowHandlers> ActorKind for NativeWorkflow<S> {
    fn behavior(&self) -> &str {
        "workflow"
    }

    fn facets(&self) -> Vec<String> {
        self.facets.iter().map(|(name, _)| name.clone()).collect()
    }

    fn tell(&self, system: &System, id: ActorId, msg: Message, _: Envelope) -> Result<()> {
        tell_retrying(&id, msg, || self.actor(system, &id))
    }

    fn call<'a>(
        &'a self,
        system: &'a System,
        id: ActorId,
        msg: Message,
        timeout: Duration,
        _: Option<Origin>,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            reply_bytes(ask_retrying(&id, msg, timeout, || self.actor(system, &id)).await?)
        })
    }
}
