//! What a handler knows about the actor it runs in.

use plexspaces_types::ActorId;

/// The handler's view of its actor.
#[derive(Debug, Clone)]
pub struct ActorContext {
    id: ActorId,
}

impl ActorContext {
    pub(crate) fn new(id: ActorId) -> Self {
        Self { id }
    }

    /// The actor's id (tenant, namespace, type, key).
    pub fn actor_id(&self) -> &ActorId {
        &self.id
    }
}
