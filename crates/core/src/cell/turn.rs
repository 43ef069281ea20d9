//! The turn: what runs an actor's messages, from activation to parking or termination.

use std::{
    any::Any,
    collections::VecDeque,
    mem,
    panic::AssertUnwindSafe,
    sync::{Arc, atomic::Ordering},
    task::Poll,
    time::Instant,
};

use futures_util::FutureExt as _;

use super::{AnyCell, Cell, Envelope, Slot};
use crate::{Actor, Context, Error, ExitReason, Lifecycle};

/// How many messages a turn handles between two looks at the clock for its time slice.
const SLICE_CHECK_EVERY: usize = 8;

/// The largest buffer (in messages) a lingering turn keeps in its batch and its mailbox.
const LINGER_BUFFER: usize = 64;

/// What the turn does next.
enum Next {
    Handle,
    Deactivate,
    Stop(ExitReason),
    /// Wait for mail with the task kept (the given lingering period).
    Linger(u64),
    Park,
    /// Killed while the turn ran: drop the actor object and end.
    Gone,
}

/// The text of a caught panic.
fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(text) = payload.downcast_ref::<&str>() {
        Arc::from(*text)
    } else if let Some(text) = payload.downcast_ref::<String>() {
        Arc::from(text.as_str())
    } else {
        Arc::from("non-string panic payload")
    }
}

/// Bounds the turns that linger, per worker thread: an actor that just handled a message
/// keeps its turn task parked on a waker, so its next message costs a wake instead of a
/// spawn; past `LINGERING_PER_THREAD` the oldest lingering turn on the thread is released and
/// ends. At most that many recently active actors per thread hold a task; every other idle
/// actor holds none.
mod linger {
    use std::{
        cell::RefCell,
        collections::VecDeque,
        sync::{Arc, Weak},
    };

    use super::{AnyCell, Cell};
    use crate::Actor;

    pub(super) const LINGERING_PER_THREAD: usize = 256;

    thread_local! {
        static LINGERING: RefCell<VecDeque<(Weak<dyn AnyCell>, u64)>> =
            const { RefCell::new(VecDeque::new()) };
    }

    pub(super) fn register<A: Actor>(cell: &Arc<Cell<A>>, episode: u64) {
        let weak = Arc::downgrade(cell) as Weak<dyn AnyCell>;
        let evicted = LINGERING.with_borrow_mut(|lingering| {
            lingering.push_back((weak, episode));
            if lingering.len() > LINGERING_PER_THREAD { lingering.pop_front() } else { None }
        });
        if let Some((oldest, episode)) = evicted
            && let Some(oldest) = oldest.upgrade()
        {
            oldest.release_linger(episode);
        }
    }
}

/// One turn: handles queued messages until the queue is empty, lingers a while, then parks
/// the actor.
pub(crate) async fn run_turn<A: Actor>(cell: Arc<Cell<A>>) {
    let mut ctx = Context::new(Arc::clone(&cell));
    // The activated actor object, owned by the turn while it runs.
    let mut actor: Option<A> = None;
    // Spawned but never activated: the instance given at spawn.
    let mut fresh: Option<A> = None;
    let mut batch: VecDeque<Envelope<A>> = VecDeque::new();
    let slice = cell.system.options().turn_slice;
    let mut handled: usize = 0;
    // When the current slice began: the first clock check of a slice starts it, so a turn of
    // a few messages never reads the clock.
    let mut slice_started: Option<Instant> = None;
    {
        let mut shared = cell.shared.lock();
        match mem::replace(&mut shared.slot, Slot::Vacant) {
            Slot::Vacant => {}
            Slot::Fresh(instance) => fresh = Some(instance),
            Slot::Parked(instance) => actor = Some(instance),
        }
    }
    loop {
        let next = {
            let mut shared = cell.shared.lock();
            if shared.closed {
                shared.running = false;
                Next::Gone
            } else if let Some(reason) = shared.stop.take() {
                Next::Stop(reason)
            } else if !shared.queue.is_empty() {
                mem::swap(&mut shared.queue, &mut batch);
                Next::Handle
            } else if mem::take(&mut shared.deactivate) {
                Next::Deactivate
            } else if actor.is_some() && !mem::take(&mut shared.release) {
                shared.linger_episode += 1;
                // A lingering turn keeps small buffers for the next messages, not a burst's.
                if shared.queue.capacity() > LINGER_BUFFER {
                    shared.queue = VecDeque::new();
                }
                Next::Linger(shared.linger_episode)
            } else {
                shared.running = false;
                if let Some(instance) = actor.take() {
                    shared.slot = Slot::Parked(instance);
                } else if let Some(instance) = fresh.take() {
                    shared.slot = Slot::Fresh(instance);
                }
                // Leave nothing allocated behind an idle actor.
                if shared.queue.capacity() > 0 {
                    shared.queue = VecDeque::new();
                }
                Next::Park
            }
        };
        match next {
            Next::Gone => return,
            Next::Park => {
                cell.stamp_idle();
                return;
            }
            Next::Linger(episode) => {
                if batch.capacity() > LINGER_BUFFER {
                    batch = VecDeque::new();
                }
                cell.stamp_idle();
                slice_started = None;
                linger::register(&cell, episode);
                std::future::poll_fn(|cx| cell.poll_mail(cx)).await;
            }
            Next::Stop(reason) => return terminate(&cell, &mut ctx, actor, reason).await,
            Next::Deactivate => {
                if let Some(mut instance) = actor.take() {
                    cell.set_lifecycle(Lifecycle::Deactivating);
                    match AssertUnwindSafe(instance.deactivate(&mut ctx)).catch_unwind().await {
                        Ok(snapshot) => {
                            cell.shared.lock().snapshot = snapshot;
                            drop(instance);
                            cell.set_lifecycle(Lifecycle::Inactive);
                        }
                        Err(panic) => {
                            let reason = ExitReason::Panic(panic_message(&*panic));
                            return terminate(&cell, &mut ctx, None, reason).await;
                        }
                    }
                }
            }
            Next::Handle => {
                let mut instance = match actor.take() {
                    Some(instance) => instance,
                    None => match activate(&cell, &mut ctx, fresh.take()).await {
                        Ok(instance) => instance,
                        Err(reason) => return terminate(&cell, &mut ctx, None, reason).await,
                    },
                };
                while let Some(envelope) = batch.pop_front() {
                    if let Err(reason) = handle(&mut instance, envelope, &mut ctx).await {
                        return terminate(&cell, &mut ctx, None, reason).await;
                    }
                    if let Some(reason) = ctx.stop.take() {
                        return terminate(&cell, &mut ctx, Some(instance), reason).await;
                    }
                    if cell.stop_requested.load(Ordering::Acquire) {
                        // The stop is taken at the top of the loop; drop the rest of the batch.
                        batch.clear();
                        break;
                    }
                    handled += 1;
                    if handled.is_multiple_of(SLICE_CHECK_EVERY) {
                        let started = *slice_started.get_or_insert_with(Instant::now);
                        if started.elapsed() >= slice {
                            // Let other actors on this worker run.
                            tokio::task::yield_now().await;
                            slice_started = None;
                        }
                    }
                }
                actor = Some(instance);
            }
        }
    }
}

impl<A: Actor> Cell<A> {
    /// Records when a virtual actor went idle, for the reaper.
    fn stamp_idle(&self) {
        if let Some(virtual_) = &self.virtual_ {
            virtual_.last_active_ms.store(self.system.now_ms(), Ordering::Relaxed);
        }
    }

    /// Ready when a lingering turn has something to do; else keeps the turn's waker.
    fn poll_mail(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut shared = self.shared.lock();
        let work = !shared.queue.is_empty()
            || shared.closed
            || shared.stop.is_some()
            || shared.deactivate
            || shared.release;
        if work {
            shared.waker = None;
            return Poll::Ready(());
        }
        match &shared.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => shared.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Builds (for virtual actors) and activates the actor object.
async fn activate<A: Actor>(
    cell: &Arc<Cell<A>>,
    ctx: &mut Context<A>,
    fresh: Option<A>,
) -> Result<A, ExitReason> {
    let instance = match (fresh, &cell.virtual_) {
        (Some(instance), _) => Some(instance),
        (None, Some(virtual_)) => {
            let factory = AssertUnwindSafe(|| (virtual_.factory)());
            match std::panic::catch_unwind(factory) {
                Ok(Ok(instance)) => Some(instance),
                Ok(Err(reason)) => return Err(reason),
                Err(panic) => return Err(ExitReason::Panic(panic_message(&*panic))),
            }
        }
        (None, None) => None,
    };
    let Some(mut instance) = instance else {
        debug_assert!(false, "a non-virtual actor lost its instance");
        return Err(ExitReason::error("actor instance missing"));
    };
    cell.set_lifecycle(Lifecycle::Activating);
    let snapshot = cell.shared.lock().snapshot.take();
    match AssertUnwindSafe(instance.activate(snapshot, ctx)).catch_unwind().await {
        Ok(Ok(())) => {
            cell.set_lifecycle(Lifecycle::Active);
            if let Some(virtual_) = &cell.virtual_ {
                let timeout_ms =
                    u64::try_from(virtual_.idle_timeout.as_millis()).unwrap_or(u64::MAX);
                let due_ms = cell.system.now_ms().saturating_add(timeout_ms);
                let weak = Arc::downgrade(cell) as std::sync::Weak<dyn AnyCell>;
                cell.system.watch_idle(weak, cell.pid, due_ms);
            }
            Ok(instance)
        }
        Ok(Err(reason)) => Err(reason),
        Err(panic) => Err(ExitReason::Panic(panic_message(&*panic))),
    }
}

/// Handles one envelope; an `Err` means the actor panicked and must stop.
async fn handle<A: Actor>(
    actor: &mut A,
    envelope: Envelope<A>,
    ctx: &mut Context<A>,
) -> Result<(), ExitReason> {
    match envelope {
        Envelope::Tell(msg) => {
            let outcome = AssertUnwindSafe(actor.handle(msg, ctx)).catch_unwind().await;
            outcome.map(drop).map_err(|panic| ExitReason::Panic(panic_message(&*panic)))
        }
        Envelope::Ask(msg, reply_to) => {
            // The handler may take the reply sender (`Context::defer_reply`) and answer later.
            ctx.reply_to = Some(reply_to);
            let outcome = AssertUnwindSafe(actor.handle(msg, ctx)).catch_unwind().await;
            let reply_to = ctx.reply_to.take();
            match outcome {
                Ok(reply) => {
                    if let Some(reply_to) = reply_to {
                        let _asker_gone = reply_to.send(Ok(reply));
                    }
                    Ok(())
                }
                Err(panic) => {
                    let reason = ExitReason::Panic(panic_message(&*panic));
                    if let Some(reply_to) = reply_to {
                        let id = ctx.cell.id.clone();
                        let _asker_gone =
                            reply_to.send(Err(Error::Failed { id, reason: reason.clone() }));
                    }
                    Err(reason)
                }
            }
        }
        Envelope::Down(down) => AssertUnwindSafe(actor.on_down(*down, ctx))
            .catch_unwind()
            .await
            .map_err(|panic| ExitReason::Panic(panic_message(&*panic))),
        Envelope::LinkExit(exit) => AssertUnwindSafe(actor.on_link_exit(*exit, ctx))
            .catch_unwind()
            .await
            .map_err(|panic| ExitReason::Panic(panic_message(&*panic))),
        Envelope::Inspect(reply_to) => {
            let state = std::panic::catch_unwind(AssertUnwindSafe(|| actor.inspect()))
                .map_err(|panic| ExitReason::Panic(panic_message(&*panic)))?;
            let _asker_gone = reply_to.send(state);
            Ok(())
        }
    }
}

/// Stops the actor: runs its deactivation hook when it stops cleanly, then finishes it.
async fn terminate<A: Actor>(
    cell: &Arc<Cell<A>>,
    ctx: &mut Context<A>,
    actor: Option<A>,
    reason: ExitReason,
) {
    let mut reason = reason;
    if let Some(mut instance) = actor {
        cell.set_lifecycle(Lifecycle::Deactivating);
        if let Err(panic) = AssertUnwindSafe(instance.deactivate(ctx)).catch_unwind().await {
            reason = ExitReason::Panic(panic_message(&*panic));
        }
    }
    cell.finish(reason);
}
