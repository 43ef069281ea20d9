//! References to actors: the typed [`ActorRef`] that sends messages, and the type-erased
//! [`AnyRef`] used for links, monitors, supervision and the directory.

use std::{fmt, sync::Arc, time::Duration};

use plexspaces_types::ActorId;
use tokio::sync::oneshot;

use crate::{
    Actor, Error, ExitReason, Lifecycle, Pid, Result,
    cell::{AnyCell, Cell, Envelope, Watcher},
};

/// A handle to one actor incarnation. Cheap to clone; sending never blocks.
pub struct ActorRef<A: Actor> {
    pub(crate) cell: Arc<Cell<A>>,
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        Self { cell: Arc::clone(&self.cell) }
    }
}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef").field("id", &self.cell.id).field("pid", &self.cell.pid).finish()
    }
}

impl<A: Actor> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl<A: Actor> Eq for ActorRef<A> {}

impl<A: Actor> ActorRef<A> {
    /// The actor's id.
    pub fn id(&self) -> &ActorId {
        &self.cell.id
    }

    /// The incarnation this reference points at.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// The actor's lifecycle state now.
    pub fn lifecycle(&self) -> Lifecycle {
        Cell::lifecycle(&self.cell)
    }

    /// Messages queued and not yet taken by a turn.
    pub fn mailbox_len(&self) -> usize {
        Cell::queued(&self.cell)
    }

    /// Sends a message and does not wait for it to be handled.
    pub fn tell(&self, msg: A::Msg) -> Result<()> {
        Cell::push(&self.cell, Envelope::Tell(msg))
            .map_err(|_| Error::Stopped(self.cell.id.clone()))
    }

    /// Sends a message and waits for the reply, up to the system's default ask timeout.
    pub async fn ask(&self, msg: A::Msg) -> Result<A::Reply> {
        self.ask_timeout(msg, self.cell.system.options().ask_timeout).await
    }

    /// Sends a message and waits for the reply, up to `timeout`. A timeout, an actor that has
    /// stopped, or one that stops before replying is an error, never a hang.
    pub async fn ask_timeout(&self, msg: A::Msg, timeout: Duration) -> Result<A::Reply> {
        match self.try_ask(msg, timeout) {
            Ok(reply) => reply.await,
            Err(_returned) => Err(Error::Stopped(self.cell.id.clone())),
        }
    }

    /// Sends a message and does not wait for it to be handled; an actor that has stopped
    /// hands the message back, so the caller can send it elsewhere (a new incarnation).
    pub fn try_tell(&self, msg: A::Msg) -> std::result::Result<(), A::Msg> {
        Cell::push_with(&self.cell, msg, Envelope::Tell)
    }

    /// Sends a message for a reply and returns the wait for it (up to `timeout`); an actor
    /// that has stopped hands the message back instead, so it was certainly not handled.
    pub fn try_ask(
        &self,
        msg: A::Msg,
        timeout: Duration,
    ) -> std::result::Result<impl Future<Output = Result<A::Reply>> + Send + 'static + use<A>, A::Msg>
    {
        let (reply_to, reply) = oneshot::channel();
        Cell::push_with(&self.cell, msg, |msg| Envelope::Ask(msg, reply_to))?;
        let id = self.cell.id.clone();
        Ok(async move {
            match tokio::time::timeout(timeout, reply).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_dropped)) => Err(Error::Stopped(id)),
                Err(_elapsed) => Err(Error::Timeout { id, after: timeout }),
            }
        })
    }

    /// Asks the actor to stop after its current message.
    pub fn stop(&self, reason: ExitReason) {
        Cell::request_stop(&self.cell, reason);
    }

    /// Waits until the actor has stopped and returns why.
    pub async fn stopped(&self) -> ExitReason {
        self.as_any().stopped().await
    }

    /// The type-erased reference.
    pub fn as_any(&self) -> AnyRef {
        AnyRef { cell: Arc::clone(&self.cell) as Arc<dyn AnyCell> }
    }
}

/// A reference to an actor of any type: enough to link, monitor, stop and inspect it.
#[derive(Clone)]
pub struct AnyRef {
    pub(crate) cell: Arc<dyn AnyCell>,
}

impl fmt::Debug for AnyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyRef").field("id", self.cell.id()).field("pid", &self.cell.pid()).finish()
    }
}

impl PartialEq for AnyRef {
    fn eq(&self, other: &Self) -> bool {
        self.pid() == other.pid()
    }
}

impl Eq for AnyRef {}

impl<A: Actor> From<ActorRef<A>> for AnyRef {
    fn from(typed: ActorRef<A>) -> Self {
        AnyRef { cell: typed.cell }
    }
}

impl AnyRef {
    pub(crate) fn from_cell<A: Actor>(cell: Arc<Cell<A>>) -> Self {
        AnyRef { cell }
    }

    /// The actor's id.
    pub fn id(&self) -> &ActorId {
        self.cell.id()
    }

    /// The incarnation this reference points at.
    pub fn pid(&self) -> Pid {
        self.cell.pid()
    }

    /// The actor's lifecycle state now.
    pub fn lifecycle(&self) -> Lifecycle {
        self.cell.lifecycle()
    }

    /// Messages queued and not yet taken by a turn.
    pub fn mailbox_len(&self) -> usize {
        self.cell.queued()
    }

    /// The actor's state as JSON ([`crate::Actor::inspect`]), asked between its messages and
    /// waited for up to `timeout`; `Ok(None)` when the actor cannot show its state. An
    /// inactive virtual actor is activated to answer.
    pub async fn inspect(&self, timeout: Duration) -> Result<Option<serde_json::Value>> {
        let stopped = || Error::Stopped(self.id().clone());
        let receiver = Arc::clone(&self.cell).inspect().ok_or_else(stopped)?;
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(_dropped)) => Err(stopped()),
            Err(_elapsed) => Err(Error::Timeout { id: self.id().clone(), after: timeout }),
        }
    }

    /// The typed reference, if the actor is an `A`.
    pub fn downcast<A: Actor>(&self) -> Option<ActorRef<A>> {
        let cell = Arc::clone(&self.cell).as_any().downcast::<Cell<A>>().ok()?;
        Some(ActorRef { cell })
    }

    /// Asks the actor to stop after its current message.
    pub fn stop(&self, reason: ExitReason) {
        Arc::clone(&self.cell).request_stop(reason);
    }

    /// Stops the actor at once, without its hooks.
    pub fn kill(&self) {
        Arc::clone(&self.cell).kill();
    }

    /// Links two actors: when either stops, the other gets the exit signal (see
    /// [`crate::Actor::on_link_exit`]).
    pub fn link(&self, other: &AnyRef) {
        if self.pid() == other.pid() {
            return;
        }
        other.cell.add_watcher(Watcher::Link(self.clone()));
        self.cell.add_watcher(Watcher::Link(other.clone()));
    }

    /// Gets the actor's exit reason when it stops (at once if it has).
    pub(crate) fn exit_receiver(&self) -> oneshot::Receiver<ExitReason> {
        let (sender, receiver) = oneshot::channel();
        self.cell.add_watcher(Watcher::Waiter(sender));
        receiver
    }

    /// Waits until the actor has stopped and returns why.
    pub async fn stopped(&self) -> ExitReason {
        // A waiter is only dropped unfired if the cell is dropped alive, which cannot happen
        // while `self` holds it; treat it as killed all the same.
        self.exit_receiver().await.unwrap_or(ExitReason::Killed)
    }

    /// Asks the actor to stop and waits up to `grace` for it; kills it past that.
    pub async fn shutdown(&self, reason: ExitReason, grace: Duration) -> ExitReason {
        let exit = self.exit_receiver();
        self.stop(reason);
        match tokio::time::timeout(grace, exit).await {
            Ok(exit) => exit.unwrap_or(ExitReason::Killed),
            Err(_elapsed) => {
                self.kill();
                ExitReason::Killed
            }
        }
    }
}
