//! What a handler knows about the actor it runs in, and what it can ask of it.

use std::{fmt, sync::Arc, time::Duration};

use parking_lot::Mutex;
use plexspaces_types::ActorId;

use crate::{BehaviorError, Message};

/// The handler's view of its actor.
#[derive(Debug, Clone)]
pub struct ActorContext {
    id: ActorId,
    pub(crate) fsm_state: Option<&'static str>,
    timers: Option<Timers>,
    replaying: bool,
}

impl ActorContext {
    pub(crate) fn new(id: ActorId, timers: Option<Timers>) -> Self {
        Self { id, fsm_state: None, timers, replaying: false }
    }

    /// The context a host gives the handlers of a GenServer it wraps (see
    /// [`crate::GenServer::handle_hosted`]): `send_to_self`, when set, delivers a timer's
    /// message to the actor (false once it has stopped).
    pub fn hosted(
        id: ActorId,
        send_to_self: Option<Arc<dyn Fn(Message) -> bool + Send + Sync>>,
    ) -> Self {
        Self::new(id, send_to_self.map(Timers::new))
    }

    /// Whether the handler is replaying a journaled message (a durable actor recovering):
    /// what it did the first time is not done again, so [`ActorContext::schedule`] sets no
    /// timer.
    pub fn replaying(&self) -> bool {
        self.replaying
    }

    /// Marks the messages handled from now on as replayed (or live again).
    pub fn set_replaying(&mut self, replaying: bool) {
        self.replaying = replaying;
    }

    /// A GenFSM actor's current state (before this message); `None` for other behaviors.
    pub fn fsm_state(&self) -> Option<&'static str> {
        self.fsm_state
    }

    /// The actor's id (tenant, namespace, type, key).
    pub fn actor_id(&self) -> &ActorId {
        &self.id
    }

    /// Sends `msg` to this actor after `delay`. Timers are transient: they are cancelled
    /// when the actor deactivates or stops, and nothing keeps them across a restart. Needs the
    /// `timer` facet. A durable actor replaying its journal sets none: the message that set it
    /// the first time is journaled if it fired.
    pub fn schedule(&self, msg: Message, delay: Duration) -> Result<(), BehaviorError> {
        let Some(timers) = &self.timers else {
            return Err(BehaviorError::ProcessingError(
                "timers need the timer facet: attach \"timer\" to this actor".to_owned(),
            ));
        };
        if !self.replaying {
            timers.schedule(msg, delay);
        }
        Ok(())
    }

    /// Cancels the pending timers (the actor deactivating).
    pub fn cancel_timers(&self) {
        if let Some(timers) = &self.timers {
            timers.cancel_all();
        }
    }
}

/// Sends a message to the actor itself; false once it has stopped.
pub(crate) type SendToSelf = Arc<dyn Fn(Message) -> bool + Send + Sync>;

/// One actor's pending transient timers.
#[derive(Clone)]
pub(crate) struct Timers {
    send: SendToSelf,
    pending: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl fmt::Debug for Timers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers").field("pending", &self.pending.lock().len()).finish()
    }
}

impl Timers {
    pub(crate) fn new(send: SendToSelf) -> Self {
        Self { send, pending: Arc::default() }
    }

    fn schedule(&self, msg: Message, delay: Duration) {
        let send = Arc::clone(&self.send);
        let timer = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A stopped actor takes no message; the timer simply lapses.
            let _delivered = send(msg);
        });
        let mut pending = self.pending.lock();
        pending.retain(|timer| !timer.is_finished());
        pending.push(timer.abort_handle());
    }

    fn cancel_all(&self) {
        for timer in self.pending.lock().drain(..) {
            timer.abort();
        }
    }
}
