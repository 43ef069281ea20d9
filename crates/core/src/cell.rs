//! The actor cell: mailbox, state slot, lifecycle and watchers of one actor incarnation, and
//! the turn that runs its messages.
//!
//! An idle actor is a cell and nothing else: no task, no channel. Sending a message to an
//! idle actor pushes it on the cell's queue and spawns one *turn*, a tokio task that takes
//! the whole queue at once, handles the messages one by one, takes the next batch, and, when
//! the queue is empty, lingers on a waker for a while before it puts the actor back in its slot
//! and ends (`turn.rs`). The `running` flag, read and written under the same lock as the
//! queue, guarantees at most one turn per actor, so an actor handles one message at a time,
//! and a single FIFO keeps each sender's order. docs/adr/001-actor-scheduling.md records why,
//! with the measurements.

use std::{
    any::Any,
    collections::VecDeque,
    mem,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    task::Waker,
    time::Duration,
};

use parking_lot::Mutex;
use plexspaces_types::ActorId;
use tokio::sync::oneshot;

use crate::{Actor, AnyRef, Down, Error, ExitReason, Lifecycle, LinkExit, MonitorRef, Pid, System};

/// A message on its way to an actor.
pub(crate) enum Envelope<A: Actor> {
    Tell(A::Msg),
    Ask(A::Msg, oneshot::Sender<Result<A::Reply, Error>>),
    // Boxed: notices are rare and large; the envelope stays small for every queue slot.
    Down(Box<Down>),
    LinkExit(Box<LinkExit>),
    /// An operator's request for the state (`Actor::inspect`).
    Inspect(oneshot::Sender<Option<serde_json::Value>>),
}

/// Someone to tell when the actor stops.
pub(crate) enum Watcher {
    /// A linked actor: it gets the exit signal.
    Link(AnyRef),
    /// A monitoring actor: it gets a `Down` notice.
    Monitor { by: AnyRef, monitor: MonitorRef },
    /// A future waiting for the exit (supervisors stopping a child, `ActorRef::stopped`).
    Waiter(oneshot::Sender<ExitReason>),
}

/// Where the actor object lives between turns.
enum Slot<A> {
    /// Inactive (or running a turn, which holds the object).
    Vacant,
    /// Spawned with an instance that has not been activated yet.
    Fresh(A),
    /// Active and idle: parked until the next turn.
    Parked(A),
}

/// Everything behind the cell's one lock.
struct Shared<A: Actor> {
    queue: VecDeque<Envelope<A>>,
    /// A turn is scheduled or running.
    running: bool,
    /// The actor has stopped; nothing more is accepted.
    closed: bool,
    slot: Slot<A>,
    /// A lingering turn's waker: the turn keeps its task for a while after the queue
    /// empties, so the next message wakes it instead of spawning a task.
    waker: Option<Waker>,
    /// The lingering turn should end (its thread has too many lingering turns).
    release: bool,
    /// Counts lingering periods, so a stale release request is ignored.
    linger_episode: u64,
    /// What the last deactivation handed over, for the next activation.
    snapshot: Option<A::Snapshot>,
    /// A requested stop, taken by the turn.
    stop: Option<ExitReason>,
    /// The idle reaper asked for deactivation.
    deactivate: bool,
    /// Why the actor stopped, once it has.
    exit: Option<ExitReason>,
    watchers: Vec<Watcher>,
}

/// How a virtual actor is rebuilt after deactivation, and when it is deactivated.
pub(crate) struct Virtual<A> {
    pub(crate) factory: Box<dyn Fn() -> Result<A, ExitReason> + Send + Sync>,
    pub(crate) idle_timeout: Duration,
    /// When its last turn ended, in the system clock's milliseconds.
    pub(crate) last_active_ms: AtomicU64,
}

mod turn;

pub(crate) use turn::run_turn;

/// One actor incarnation.
pub(crate) struct Cell<A: Actor> {
    pub(crate) id: ActorId,
    pub(crate) pid: Pid,
    pub(crate) system: System,
    lifecycle: AtomicU8,
    /// Set with `Shared::stop`, read between messages without the lock.
    stop_requested: AtomicBool,
    pub(crate) trap_exit: AtomicBool,
    pub(crate) virtual_: Option<Box<Virtual<A>>>,
    shared: Mutex<Shared<A>>,
}

impl<A: Actor> Cell<A> {
    pub(crate) fn new(
        system: System,
        id: ActorId,
        pid: Pid,
        fresh: Option<A>,
        virtual_: Option<Box<Virtual<A>>>,
    ) -> Self {
        system.gauges().enter(Lifecycle::Created);
        let slot = fresh.map_or(Slot::Vacant, Slot::Fresh);
        Self {
            id,
            pid,
            system,
            lifecycle: AtomicU8::new(Lifecycle::Created as u8),
            stop_requested: AtomicBool::new(false),
            trap_exit: AtomicBool::new(false),
            virtual_,
            shared: Mutex::new(Shared {
                queue: VecDeque::new(),
                running: false,
                closed: false,
                slot,
                waker: None,
                release: false,
                linger_episode: 0,
                snapshot: None,
                stop: None,
                deactivate: false,
                exit: None,
                watchers: Vec::new(),
            }),
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        Lifecycle::from_u8(self.lifecycle.load(Ordering::Acquire))
    }

    fn set_lifecycle(&self, state: Lifecycle) {
        let previous = Lifecycle::from_u8(self.lifecycle.swap(state as u8, Ordering::AcqRel));
        if previous != state {
            let gauges = self.system.gauges();
            gauges.leave(previous);
            gauges.enter(state);
            self.system.observe(&self.id, self.pid, state);
        }
    }

    /// Queues `envelope`; starts a turn if none is running. Gives the envelope back when the
    /// actor has stopped.
    pub(crate) fn push(self: &Arc<Self>, envelope: Envelope<A>) -> Result<(), Envelope<A>> {
        self.push_with(envelope, |envelope| envelope)
    }

    /// Queues `wrap(value)`; gives `value` back, unwrapped, when the actor has stopped.
    pub(crate) fn push_with<T>(
        self: &Arc<Self>,
        value: T,
        wrap: impl FnOnce(T) -> Envelope<A>,
    ) -> Result<(), T> {
        let wake = {
            let mut shared = self.shared.lock();
            if shared.closed {
                return Err(value);
            }
            shared.queue.push_back(wrap(value));
            Self::wake_turn(&mut shared)
        };
        self.start_or_wake(wake);
        Ok(())
    }

    /// Marks a turn as needed: `None` if one is running (a lingering one is woken through
    /// the returned waker), else asks the caller to spawn one.
    fn wake_turn(shared: &mut Shared<A>) -> Option<Option<Waker>> {
        if mem::replace(&mut shared.running, true) { Some(shared.waker.take()) } else { None }
    }

    fn start_or_wake(self: &Arc<Self>, wake: Option<Option<Waker>>) {
        match wake {
            None => self.system.spawn_turn(run_turn(Arc::clone(self))),
            Some(Some(waker)) => waker.wake(),
            Some(None) => {}
        }
    }

    /// Asks the actor to stop after its current message. The first reason asked for wins.
    pub(crate) fn request_stop(self: &Arc<Self>, reason: ExitReason) {
        let start_turn = {
            let mut shared = self.shared.lock();
            if shared.closed || shared.stop.is_some() {
                return;
            }
            shared.stop = Some(reason);
            self.stop_requested.store(true, Ordering::Release);
            Self::wake_turn(&mut shared)
        };
        self.start_or_wake(start_turn);
    }

    /// Stops the actor at once without its hooks. A handler that is running finishes in the
    /// background and its result is dropped.
    pub(crate) fn kill(self: &Arc<Self>) {
        self.finish(ExitReason::Killed);
    }

    /// Deactivates the actor if it is still active, idle and past its idle timeout.
    pub(crate) fn request_deactivation(self: &Arc<Self>) {
        let wake = {
            let mut shared = self.shared.lock();
            let parked = matches!(shared.slot, Slot::Parked(_));
            let lingering = shared.waker.is_some();
            if shared.closed || !shared.queue.is_empty() || !(parked || lingering) {
                return;
            }
            if shared.running && !lingering {
                // Busy: the reaper looks again later.
                return;
            }
            shared.deactivate = true;
            Self::wake_turn(&mut shared)
        };
        self.start_or_wake(wake);
    }

    /// Ends a lingering turn if it is still in the same lingering period.
    pub(crate) fn release_linger(&self, episode: u64) {
        let waker = {
            let mut shared = self.shared.lock();
            if shared.linger_episode != episode || shared.waker.is_none() {
                return;
            }
            shared.release = true;
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Registers `watcher`, or fires it at once if the actor has already stopped.
    pub(crate) fn add_watcher(&self, watcher: Watcher) {
        let exited = {
            let mut shared = self.shared.lock();
            match &shared.exit {
                Some(reason) => reason.clone(),
                None => {
                    push_watcher(&mut shared.watchers, watcher);
                    return;
                }
            }
        };
        notify(&self.id, self.pid, &exited, watcher);
    }

    /// Removes the link to `other` (a scan: explicit unlinks are rare; links to actors that
    /// stopped are swept lazily by `push_watcher`).
    pub(crate) fn remove_link(&self, other: Pid) {
        self.shared.lock().watchers.retain(|w| !matches!(w, Watcher::Link(r) if r.pid() == other));
    }

    pub(crate) fn remove_monitor(&self, monitor: MonitorRef) {
        self.shared
            .lock()
            .watchers
            .retain(|w| !matches!(w, Watcher::Monitor { monitor: m, .. } if *m == monitor));
    }

    /// A linked actor stopped: a trapping actor gets a message, any other stops with the same
    /// reason when the reason is abnormal.
    pub(crate) fn link_exit(self: &Arc<Self>, exit: LinkExit) {
        if self.trap_exit.load(Ordering::Relaxed) {
            let _stopped = self.push(Envelope::LinkExit(Box::new(exit)));
        } else if !exit.reason.is_normal() {
            self.request_stop(exit.reason);
        }
    }

    pub(crate) fn down(self: &Arc<Self>, down: Down) {
        let _stopped = self.push(Envelope::Down(Box::new(down)));
    }

    /// Messages waiting, not counting a batch a turn has already taken.
    pub(crate) fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Records the exit, refuses further messages and tells everyone who watches. Returns
    /// false if the actor had already stopped.
    fn finish(&self, reason: ExitReason) -> bool {
        let (queue, watchers, lingering) = {
            let mut shared = self.shared.lock();
            if shared.exit.is_some() {
                return false;
            }
            shared.closed = true;
            // Closed and out of the directory in one step: whoever finds the cell after this
            // finds none, so a new incarnation can be spawned at once.
            self.system.unregister(&self.id, self.pid);
            shared.exit = Some(reason.clone());
            shared.slot = Slot::Vacant;
            shared.snapshot = None;
            (mem::take(&mut shared.queue), mem::take(&mut shared.watchers), shared.waker.take())
        };
        // A lingering turn (a kill) sees `closed` and ends, dropping the actor object.
        if let Some(waker) = lingering {
            waker.wake();
        }
        self.set_lifecycle(if reason.is_normal() {
            Lifecycle::Terminated
        } else {
            Lifecycle::Failed
        });
        if reason.is_normal() {
            tracing::debug!(actor = %self.id, pid = %self.pid, %reason, "actor stopped");
        } else {
            tracing::warn!(actor = %self.id, pid = %self.pid, %reason, "actor failed");
        }
        // Dropping the queued envelopes drops their reply senders: askers get `Stopped`.
        drop(queue);
        for watcher in watchers {
            notify(&self.id, self.pid, &reason, watcher);
        }
        true
    }
}

/// Adds a watcher. Entries whose other side has gone (linked or monitoring actors that
/// stopped, waiters that gave up) are swept when the list would grow, so a long-lived actor
/// that links to many short-lived ones (a supervisor) keeps at most twice its live entries,
/// at amortised constant cost, and an actor with one watcher holds one slot.
fn push_watcher(watchers: &mut Vec<Watcher>, watcher: Watcher) {
    if watchers.capacity() == 0 {
        watchers.reserve_exact(1);
    } else if watchers.len() == watchers.capacity() {
        watchers.retain(Watcher::is_live);
    }
    watchers.push(watcher);
}

impl Watcher {
    fn is_live(&self) -> bool {
        match self {
            Watcher::Link(other) => !other.lifecycle().is_final(),
            Watcher::Monitor { by, .. } => !by.lifecycle().is_final(),
            Watcher::Waiter(sender) => !sender.is_closed(),
        }
    }
}

fn notify(id: &ActorId, pid: Pid, reason: &ExitReason, watcher: Watcher) {
    match watcher {
        Watcher::Link(other) => {
            other.cell.link_exit(LinkExit { id: id.clone(), pid, reason: reason.clone() });
        }
        Watcher::Monitor { by, monitor } => {
            by.cell.down(Down { monitor, id: id.clone(), pid, reason: reason.clone() });
        }
        Watcher::Waiter(sender) => {
            let _receiver_gone = sender.send(reason.clone());
        }
    }
}

/// The type-erased face of a cell, for links, monitors, supervisors and the directory.
pub(crate) trait AnyCell: Send + Sync + 'static {
    fn id(&self) -> &ActorId;
    fn pid(&self) -> Pid;
    fn lifecycle(&self) -> Lifecycle;
    fn queued(&self) -> usize;
    fn add_watcher(&self, watcher: Watcher);
    fn remove_link(&self, other: Pid);
    fn remove_monitor(&self, monitor: MonitorRef);
    fn link_exit(self: Arc<Self>, exit: LinkExit);
    fn down(self: Arc<Self>, down: Down);
    fn request_stop(self: Arc<Self>, reason: ExitReason);
    fn kill(self: Arc<Self>);
    fn release_linger(&self, episode: u64);
    /// Queues an inspection of the actor's state; `None` when the actor has stopped.
    fn inspect(self: Arc<Self>) -> Option<oneshot::Receiver<Option<serde_json::Value>>>;
    /// Deactivates the actor if it is virtual and has been idle past its timeout; returns
    /// when to look again (`None`: never, it is not active any more).
    fn reap(self: Arc<Self>, now_ms: u64) -> Option<u64>;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<A: Actor> AnyCell for Cell<A> {
    fn id(&self) -> &ActorId {
        &self.id
    }
    fn pid(&self) -> Pid {
        self.pid
    }
    fn lifecycle(&self) -> Lifecycle {
        Cell::lifecycle(self)
    }
    fn queued(&self) -> usize {
        Cell::queued(self)
    }
    fn add_watcher(&self, watcher: Watcher) {
        Cell::add_watcher(self, watcher);
    }
    fn remove_link(&self, other: Pid) {
        Cell::remove_link(self, other);
    }
    fn remove_monitor(&self, monitor: MonitorRef) {
        Cell::remove_monitor(self, monitor);
    }
    fn link_exit(self: Arc<Self>, exit: LinkExit) {
        Cell::link_exit(&self, exit);
    }
    fn down(self: Arc<Self>, down: Down) {
        Cell::down(&self, down);
    }
    fn request_stop(self: Arc<Self>, reason: ExitReason) {
        Cell::request_stop(&self, reason);
    }
    fn kill(self: Arc<Self>) {
        Cell::kill(&self);
    }
    fn inspect(self: Arc<Self>) -> Option<oneshot::Receiver<Option<serde_json::Value>>> {
        let (sender, receiver) = oneshot::channel();
        self.push(Envelope::Inspect(sender)).ok()?;
        Some(receiver)
    }
    fn release_linger(&self, episode: u64) {
        Cell::release_linger(self, episode);
    }
    fn reap(self: Arc<Self>, now_ms: u64) -> Option<u64> {
        let virtual_ = self.virtual_.as_ref()?;
        if Cell::lifecycle(&self) != Lifecycle::Active {
            return None;
        }
        let timeout_ms = u64::try_from(virtual_.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let due = virtual_.last_active_ms.load(Ordering::Relaxed).saturating_add(timeout_ms);
        if due > now_ms {
            return Some(due);
        }
        self.request_deactivation();
        // Busy actors refuse; look again one timeout later.
        Some(now_ms.saturating_add(timeout_ms))
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;

    struct Unit;
    impl Actor for Unit {
        type Msg = ();
        type Reply = ();
        type Snapshot = ();
        async fn handle(&mut self, _: (), _: &mut Context<Self>) {}
    }

    #[test]
    fn an_idle_cell_stays_small() {
        // The per-actor budget is 1 KB with directory and supervisor entries (BENCHMARKS.md);
        // the cell itself must stay a fraction of it.
        let size = size_of::<Cell<Unit>>();
        assert!(size <= 256, "Cell<Unit> grew to {size} bytes");
    }
}
