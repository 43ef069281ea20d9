//! The `Actor` trait, the context a handler runs with, and the reasons an actor stops.

use std::{fmt, future::Future, sync::Arc, sync::atomic::Ordering};

use tokio::sync::oneshot;

use plexspaces_types::ActorId;

use crate::{
    ActorRef, AnyRef, System,
    cell::{Cell, Watcher},
};

/// An actor: state plus handlers, run one message at a time.
///
/// The runtime guarantees that at most one of these methods runs at a time for one actor,
/// and that messages from one sender are handled in the order they were sent. A panic in any
/// method stops the actor with [`ExitReason::Panic`]; its supervisor, links and monitors learn
/// of it. Handler futures must be `Send`: actors move between worker threads between turns.
pub trait Actor: Send + Sized + 'static {
    /// The messages it handles.
    type Msg: Send + 'static;
    /// What a handler returns; an ask receives it, a tell drops it.
    type Reply: Send + 'static;
    /// What the actor hands over when it is deactivated, and gets back on its next
    /// activation (use `()` when there is nothing to keep).
    type Snapshot: Send + 'static;

    /// Handles one message.
    fn handle(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Self::Reply> + Send;

    /// Runs before the first message of each activation, with the snapshot the previous
    /// activation left (`None` the first time). An error stops the actor as failed.
    fn activate(
        &mut self,
        snapshot: Option<Self::Snapshot>,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), ExitReason>> + Send {
        let _ = (snapshot, ctx);
        async { Ok(()) }
    }

    /// Runs when the actor is deactivated after being idle, and when it stops gracefully.
    /// The snapshot it returns is handed to the next activation.
    fn deactivate(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Option<Self::Snapshot>> + Send {
        let _ = ctx;
        async { None }
    }

    /// A monitored actor stopped.
    fn on_down(&mut self, down: Down, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = (down, ctx);
        async {}
    }

    /// A linked actor stopped while this one traps exits (see [`Context::trap_exit`]).
    /// Without trapping, an abnormal exit of a linked actor stops this one with the same reason.
    fn on_link_exit(
        &mut self,
        exit: LinkExit,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (exit, ctx);
        async {}
    }

    /// The actor's state as JSON, for operators (Erlang's `sys:get_state`); `None` when the
    /// actor's state cannot be shown. Called between messages, through
    /// [`crate::AnyRef::inspect`].
    fn inspect(&self) -> Option<serde_json::Value> {
        None
    }
}

/// Why an actor stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// It finished its work.
    Normal,
    /// It was asked to stop (by its supervisor, the system, or a caller).
    Shutdown,
    /// It stopped itself with an error.
    Error(Arc<str>),
    /// A handler or hook panicked; the panic's message.
    Panic(Arc<str>),
    /// It was killed without running its hooks (a stop that took longer than allowed).
    Killed,
    /// Its supervisor gave up: more restarts than the restart intensity allows.
    RestartIntensity,
}

impl ExitReason {
    /// An error reason with the given message.
    pub fn error(message: impl Into<Arc<str>>) -> Self {
        ExitReason::Error(message.into())
    }

    /// `Normal` and `Shutdown` are normal; every other reason is a failure.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Error(message) => write!(f, "error: {message}"),
            ExitReason::Panic(message) => write!(f, "panic: {message}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::RestartIntensity => f.write_str("reached max restart intensity"),
        }
    }
}

/// The unique number of one actor incarnation. A restarted actor keeps its [`ActorId`] but
/// gets a new pid, so notices about an old incarnation can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(pub(crate) u64);

impl Pid {
    /// The pid's number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

/// Names one monitor, to remove it with [`Context::demonitor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonitorRef(pub(crate) u64);

/// The notice a monitoring actor receives when the monitored actor stops.
#[derive(Debug, Clone, PartialEq)]
pub struct Down {
    /// The monitor that fired.
    pub monitor: MonitorRef,
    /// The actor that stopped.
    pub id: ActorId,
    /// Its incarnation.
    pub pid: Pid,
    /// Why it stopped.
    pub reason: ExitReason,
}

/// The notice an exit-trapping actor receives when a linked actor stops.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkExit {
    /// The linked actor that stopped.
    pub id: ActorId,
    /// Its incarnation.
    pub pid: Pid,
    /// Why it stopped.
    pub reason: ExitReason,
}

/// What a handler can do besides changing its own state: learn who it is, stop, link,
/// monitor and reach the system.
pub struct Context<A: Actor> {
    pub(crate) cell: Arc<Cell<A>>,
    pub(crate) stop: Option<ExitReason>,
    /// The current ask's reply sender, while its handler runs.
    pub(crate) reply_to: Option<oneshot::Sender<Result<A::Reply, crate::Error>>>,
}

/// A reply promised to an asker, to be sent after the handler returns (see
/// [`Context::defer_reply`]). Dropping it unsent gives the asker `Error::Stopped`.
pub struct ReplyTo<R> {
    sender: oneshot::Sender<Result<R, crate::Error>>,
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo").field("asker_waiting", &!self.sender.is_closed()).finish()
    }
}

impl<R> ReplyTo<R> {
    /// Answers the asker; false if it stopped waiting (its timeout passed).
    pub fn send(self, reply: R) -> bool {
        self.sender.send(Ok(reply)).is_ok()
    }
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("id", &self.cell.id).field("pid", &self.cell.pid).finish()
    }
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(cell: Arc<Cell<A>>) -> Self {
        Self { cell, stop: None, reply_to: None }
    }

    /// Takes over the reply of the ask being handled: the handler's return value is then
    /// dropped, and the asker waits (up to its own timeout) for [`ReplyTo::send`]. `None` when
    /// the message is a tell, or the reply was already taken. Lets an actor answer a request
    /// after other messages, as Erlang's `{noreply, State}` with `gen_server:reply/2`.
    pub fn defer_reply(&mut self) -> Option<ReplyTo<A::Reply>> {
        self.reply_to.take().map(|sender| ReplyTo { sender })
    }

    /// The actor's id.
    pub fn id(&self) -> &ActorId {
        &self.cell.id
    }

    /// The actor's incarnation.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// A reference to this actor.
    pub fn myself(&self) -> ActorRef<A> {
        ActorRef { cell: Arc::clone(&self.cell) }
    }

    /// The system the actor runs in.
    pub fn system(&self) -> &System {
        &self.cell.system
    }

    /// Stops the actor once the current handler returns; messages still queued are dropped
    /// (their askers get [`crate::Error::Stopped`]).
    pub fn stop(&mut self, reason: ExitReason) {
        self.stop.get_or_insert(reason);
    }

    /// Whether exits of linked actors arrive as [`Actor::on_link_exit`] calls (true) or stop
    /// this actor when abnormal (false, the default).
    pub fn trap_exit(&self, trap: bool) {
        self.cell.trap_exit.store(trap, Ordering::Relaxed);
    }

    /// Links this actor with `other`: when either stops, the other gets the exit signal.
    /// Linking with an actor that has already stopped delivers its exit at once.
    pub fn link(&self, other: &AnyRef) {
        AnyRef::from_cell(self.cell.clone()).link(other);
    }

    /// Removes a link made with [`Context::link`].
    pub fn unlink(&self, other: &AnyRef) {
        self.cell.remove_link(other.pid());
        other.cell.remove_link(self.cell.pid);
    }

    /// Monitors `target`: when it stops, [`Actor::on_down`] receives a [`Down`] notice
    /// (at once if it has already stopped).
    pub fn monitor(&self, target: &AnyRef) -> MonitorRef {
        let monitor = MonitorRef(self.cell.system.next_id());
        let by = AnyRef::from_cell(self.cell.clone());
        target.cell.add_watcher(Watcher::Monitor { by, monitor });
        monitor
    }

    /// Removes a monitor; no notice arrives for it afterwards, unless already queued.
    pub fn demonitor(&self, target: &AnyRef, monitor: MonitorRef) {
        target.cell.remove_monitor(monitor);
    }
}
