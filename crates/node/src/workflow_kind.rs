//! A native workflow type (`#[workflow_actor]` state `S`): virtual `WorkflowActor<S>`s. `run`
//! starts the run (an ask gets its result when it ends, within the ask's timeout; a tell
//! starts it and is answered at once), a query name reads the committed state, any other
//! action is a signal. Without the `durability` facet a run lives in the node's memory, and a
//! restart loses it; with it, the actors are `DurableWorkflow<S>`s, whose runs are journaled
//! and survive restarts (`crate::durable_workflow`).

use std::{marker::PhantomData, sync::Arc, time::Duration};

use plexspaces_core::{ActorRef, FacetRegistry, System};
use plexspaces_durable::Durability;
use plexspaces_sdk::{Message, WorkflowActor, WorkflowHandlers};
use plexspaces_storage::journal::Origin;
use plexspaces_types::ActorId;
use plexspaces_wasm::TimerService;
use serde_json::Value;

use crate::{
    Result,
    durable_native::{Delivery, reply_bytes},
    durable_workflow::DurableWorkflow,
    registry::{
        ActorKind, BoxFuture, Envelope, ask_retrying, json_only, tell_retrying, virtual_actor,
    },
};

/// A native workflow type.
pub(crate) struct NativeWorkflow<S> {
    facet_registry: FacetRegistry,
    /// The `virtual_actor` facet and its idle timeout, and the type's own.
    facets: Vec<(String, Value)>,
    idle_timeout: Duration,
    /// Set when the facets include `durability`, with the timers that wake its runs.
    durability: Option<(Arc<Durability>, Arc<dyn TimerService>)>,
    state: PhantomData<fn() -> S>,
}

impl<S: WorkflowHandlers> NativeWorkflow<S> {
    pub(crate) fn new(
        facet_registry: FacetRegistry,
        idle_timeout: Duration,
        extra_facets: &[(String, Value)],
        durable: &crate::deploy::DurableDefaults,
    ) -> Result<Self> {
        let (facets, durability) = crate::registry::checked_facets::<S>(
            &facet_registry,
            idle_timeout,
            extra_facets,
            durable,
        )?;
        let durability = durability.map(|durability| (durability, Arc::clone(&durable.timers)));
        Ok(Self { facet_registry, facets, idle_timeout, durability, state: PhantomData })
    }

    fn actor(&self, system: &System, id: &ActorId) -> Result<ActorRef<WorkflowActor<S>>> {
        let registry = (&self.facet_registry, self.facets.as_slice());
        virtual_actor(system, id, self.idle_timeout, registry, |_| WorkflowActor::<S>::default())
    }

    fn durable_actor(
        &self,
        system: &System,
        id: &ActorId,
        (durability, timers): &(Arc<Durability>, Arc<dyn TimerService>),
    ) -> Result<ActorRef<DurableWorkflow<S>>> {
        let (durability, timers) = (Arc::clone(durability), Arc::clone(timers));
        let registry = (&self.facet_registry, self.facets.as_slice());
        virtual_actor(system, id, self.idle_timeout, registry, move |_| {
            DurableWorkflow::<S>::new(Arc::clone(&durability), Arc::clone(&timers))
        })
    }
}

impl<S: WorkflowHandlers> ActorKind for NativeWorkflow<S> {
    fn behavior(&self) -> &str {
        "workflow"
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
            let Some(durability) = &self.durability else {
                return reply_bytes(
                    ask_retrying(&id, msg, timeout, || self.actor(system, &id)).await?,
                );
            };
            json_only(&msg)?;
            let delivery = Delivery::asked(msg, origin);
            let find = || self.durable_actor(system, &id, durability);
            ask_retrying(&id, delivery, timeout, find).await?
        })
    }
}
