//! What a handler knows about the actor it runs in.

use plexspaces_types::ActorId;

/// The handler's view of its actor.
#[derive(Debug, Clone)]
pub struct ActorContext {
    id: ActorId,
    pub(crate) fsm_state: Option<&'static str>,
}

impl ActorContext {
    pub(crate) fn new(id: ActorId) -> Self {
        Self { id, fsm_state: None }
    }

    /// A GenFSM actor's current state (before this message); `None` for other behaviors.
    pub fn fsm_state(&self) -> Option<&'static str> {
        self.fsm_state
    }

    /// The actor's id (tenant, namespace, type, key).
    pub fn actor_id(&self) -> &ActorId {
        &self.id
    }
}
