//! The actor system: options, spawning, the directory of running actors, lifecycle gauges,
//! the idle reaper that deactivates virtual actors, and shutdown.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    fmt,
    future::Future,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use plexspaces_types::ActorId;

use crate::{
    Actor, ActorRef, AnyRef, Error, ExitReason, Lifecycle, Pid, Result,
    cell::{AnyCell, Cell, Virtual},
    directory::Directory,
    lifecycle::Gauges,
};

/// Called on every lifecycle transition (tests and metrics watch actors through it).
pub type LifecycleObserver = Arc<dyn Fn(&ActorId, Pid, Lifecycle) + Send + Sync>;

/// How the actor system behaves.
#[derive(Clone)]
pub struct Options {
    /// How long [`ActorRef::ask`] waits for a reply.
    pub ask_timeout: Duration,
    /// How long one turn runs an actor's messages before it yields its worker thread to
    /// other tasks (checked every few messages, so a turn also ends the message it is in).
    pub turn_slice: Duration,
    /// How often the idle reaper looks for virtual actors past their idle timeout.
    pub reaper_interval: Duration,
    /// Sees every lifecycle transition.
    pub observer: Option<LifecycleObserver>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ask_timeout: Duration::from_secs(30),
            turn_slice: Duration::from_micros(500),
            reaper_interval: Duration::from_millis(250),
            observer: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("ask_timeout", &self.ask_timeout)
            .field("turn_slice", &self.turn_slice)
            .field("reaper_interval", &self.reaper_interval)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Options {
    /// Builds the system on the tokio runtime this is called from.
    pub fn build(self) -> Result<System> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let system = System {
            inner: Arc::new(Inner {
                runtime,
                options: self,
                directory: Directory::new(),
                gauges: Gauges::default(),
                next_id: AtomicU64::new(1),
                epoch: tokio::time::Instant::now(),
                reaper: Mutex::new(Reaper::default()),
                shutting_down: AtomicBool::new(false),
            }),
        };
        // The reaper runs from the start: besides deactivating idle virtual actors, its tick
        // keeps a near timer in tokio's wheel, so arming an ask's (later) timeout never has
        // to wake a parked worker. See docs/adr/001-actor-scheduling.md.
        let weak = Arc::downgrade(&system.inner);
        let interval = system.inner.options.reaper_interval;
        drop(system.inner.runtime.spawn(run_reaper(weak, interval)));
        Ok(system)
    }
}

/// The actor system. Cheap to clone; every clone is the same system.
#[derive(Clone)]
pub struct System {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: tokio::runtime::Handle,
    options: Options,
    directory: Directory,
    gauges: Gauges,
    next_id: AtomicU64,
    epoch: tokio::time::Instant,
    reaper: Mutex<Reaper>,
    shutting_down: AtomicBool,
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System")
            .field("actors", &self.inner.directory.len())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl System {
    /// A system with default options, on the current tokio runtime.
    pub fn new() -> Result<System> {
        Options::default().build()
    }

    /// Spawns an actor named `id`. It does nothing until its first message, which activates
    /// it. Fails if an actor with this id is running.
    pub fn spawn<A: Actor>(&self, id: ActorId, actor: A) -> Result<ActorRef<A>> {
        self.spawn_cell(id, Some(actor), None)
    }

    /// Spawns a virtual actor: built by `factory` on its first message, deactivated after
    /// `idle_timeout` without messages (its [`Actor::deactivate`] snapshot is kept), and
    /// reactivated by the next message with that snapshot.
    pub fn spawn_virtual<A: Actor>(
        &self,
        id: ActorId,
        idle_timeout: Duration,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> Result<ActorRef<A>> {
        self.spawn_virtual_with(id, idle_timeout, move || Ok(factory()))
    }

    /// Like [`System::spawn_virtual`], with a factory that may fail: its error fails that
    /// activation (the actor stops as failed with that reason).
    pub fn spawn_virtual_with<A: Actor>(
        &self,
        id: ActorId,
        idle_timeout: Duration,
        factory: impl Fn() -> Result<A, ExitReason> + Send + Sync + 'static,
    ) -> Result<ActorRef<A>> {
        let virtual_ =
            Virtual { factory: Box::new(factory), idle_timeout, last_active_ms: AtomicU64::new(0) };
        self.spawn_cell(id, None, Some(Box::new(virtual_)))
    }

    fn spawn_cell<A: Actor>(
        &self,
        id: ActorId,
        fresh: Option<A>,
        virtual_: Option<Box<Virtual<A>>>,
    ) -> Result<ActorRef<A>> {
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        let pid = Pid(self.next_id());
        let spawned = self.inner.directory.insert_with(id, |id| {
            let cell = Arc::new(Cell::new(self.clone(), id, pid, fresh, virtual_));
            (Arc::clone(&cell) as Arc<dyn AnyCell>, cell)
        });
        match spawned {
            Ok(cell) => Ok(ActorRef { cell }),
            Err(id) => Err(Error::AlreadyExists(id)),
        }
    }

    /// The running actor named `id`, as an `A`.
    pub fn lookup<A: Actor>(&self, id: &ActorId) -> Result<ActorRef<A>> {
        let found = self.lookup_any(id).ok_or_else(|| Error::NotFound(id.clone()))?;
        found.downcast().ok_or_else(|| Error::WrongType(id.clone()))
    }

    /// The running actor named `id`, of any type.
    pub fn lookup_any(&self, id: &ActorId) -> Option<AnyRef> {
        self.inner.directory.get(id).map(|cell| AnyRef { cell })
    }

    /// Every running actor.
    pub fn actors(&self) -> Vec<AnyRef> {
        self.inner.directory.all().into_iter().map(|cell| AnyRef { cell }).collect()
    }

    /// How many actors are running (spawned and not yet stopped).
    pub fn actor_count(&self) -> usize {
        self.inner.directory.len()
    }

    /// How many actors are in `state` now; for the final states, how many ever ended there.
    pub fn actors_in(&self, state: Lifecycle) -> i64 {
        self.inner.gauges.get(state)
    }

    /// Stops every actor with [`ExitReason::Shutdown`] and waits up to `grace` for each,
    /// killing those that take longer. No new actor starts once this is called, and
    /// supervisors stop restarting.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let actors = self.actors();
        // Ask every actor first, then wait for each in turn against one deadline: stops
        // proceed in parallel and the wait stays linear in the number of actors.
        let exits: Vec<_> = actors
            .iter()
            .map(|actor| {
                let exit = actor.exit_receiver();
                actor.stop(ExitReason::Shutdown);
                exit
            })
            .collect();
        let deadline = tokio::time::Instant::now() + grace;
        for (actor, exit) in actors.iter().zip(exits) {
            if tokio::time::timeout_at(deadline, exit).await.is_err() {
                actor.kill();
            }
        }
        self.inner.reaper.lock().entries.clear();
    }

    /// Whether [`System::shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// The options the system was built with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn gauges(&self) -> &Gauges {
        &self.inner.gauges
    }

    pub(crate) fn observe(&self, id: &ActorId, pid: Pid, state: Lifecycle) {
        if let Some(observer) = &self.inner.options.observer {
            observer(id, pid, state);
        }
    }

    pub(crate) fn spawn_turn(&self, turn: impl Future<Output = ()> + Send + 'static) {
        drop(self.inner.runtime.spawn(turn));
    }

    pub(crate) fn unregister(&self, id: &ActorId, pid: Pid) {
        self.inner.directory.remove(id, pid);
    }

    /// Milliseconds since the system started, on tokio's clock (tests can pause it).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Has the reaper look at `cell` at `due_ms`.
    pub(crate) fn watch_idle(&self, cell: Weak<dyn AnyCell>, pid: Pid, due_ms: u64) {
        self.inner.reaper.lock().entries.push(Reverse(ReapEntry { due_ms, pid, cell }));
    }
}

/// Virtual actors to look at, earliest due first.
#[derive(Default)]
struct Reaper {
    entries: BinaryHeap<Reverse<ReapEntry>>,
}

struct ReapEntry {
    due_ms: u64,
    pid: Pid,
    cell: Weak<dyn AnyCell>,
}

impl PartialEq for ReapEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.due_ms, self.pid) == (other.due_ms, other.pid)
    }
}
impl Eq for ReapEntry {}
impl PartialOrd for ReapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ReapEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due_ms, self.pid).cmp(&(other.due_ms, other.pid))
    }
}

/// Every `interval`, deactivates the virtual actors that have been idle past their timeout.
/// Each active virtual actor has one entry; an entry that comes due early (the actor was busy
/// since) is pushed back to its new due time. Ends when the system is dropped.
async fn run_reaper(system: Weak<Inner>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = system.upgrade() else { return };
        let system = System { inner };
        let now_ms = system.now_ms();
        let due: Vec<ReapEntry> = {
            let mut reaper = system.inner.reaper.lock();
            let mut due = Vec::new();
            while reaper.entries.peek().is_some_and(|Reverse(entry)| entry.due_ms <= now_ms) {
                if let Some(Reverse(entry)) = reaper.entries.pop() {
                    due.push(entry);
                }
            }
            due
        };
        let mut again = Vec::new();
        for entry in due {
            let Some(cell) = entry.cell.upgrade() else { continue };
            if let Some(next_due) = cell.reap(now_ms) {
                again.push(Reverse(ReapEntry { due_ms: next_due, ..entry }));
            }
        }
        system.inner.reaper.lock().entries.extend(again);
    }
}
