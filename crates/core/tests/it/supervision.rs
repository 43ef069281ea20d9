//! Supervision trees: strategies, restart types, intensity and escalation.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use plexspaces_core::{
    Actor, Context, Error, ExitReason, System,
    supervisor::{ChildSpec, Restart, Strategy, SupervisorRef, SupervisorSpec},
};
use plexspaces_types::ActorId;

use crate::common::{Tally, id, system};

/// A child that counts its starts and records its stops in a shared log.
#[derive(Debug)]
pub struct Worker {
    name: String,
    stops: Arc<Mutex<Vec<String>>>,
}

#[derive(Debug)]
pub enum WorkerMsg {
    Ping,
    Exit(ExitReason),
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, msg: WorkerMsg, ctx: &mut Context<Self>) {
        if let WorkerMsg::Exit(reason) = msg {
            ctx.stop(reason);
        }
    }

    async fn deactivate(&mut self, _: &mut Context<Self>) -> Option<()> {
        self.stops.lock().push(self.name.clone());
        None
    }
}

/// Starts of each child, by name, and the order of graceful stops.
#[derive(Debug, Default, Clone)]
pub struct Book {
    pub starts: Arc<Mutex<std::collections::BTreeMap<String, Tally>>>,
    pub stops: Arc<Mutex<Vec<String>>>,
}

impl Book {
    pub fn child(&self, name: &str, restart: Restart) -> ChildSpec {
        let tally = self.starts.lock().entry(name.to_owned()).or_default().clone();
        let stops = Arc::clone(&self.stops);
        let name_owned = name.to_owned();
        ChildSpec::worker(id("worker", name), restart, move || {
            tally.bump();
            Worker { name: name_owned.clone(), stops: Arc::clone(&stops) }
        })
    }

    pub fn starts(&self, name: &str) -> usize {
        self.starts.lock().get(name).map_or(0, Tally::get)
    }
}

/// Makes child `name` exit with `reason`, then waits until its supervisor has handled it.
pub async fn exit_child(
    system: &System,
    supervisor: &SupervisorRef,
    name: &str,
    reason: ExitReason,
) {
    let child = system.lookup::<Worker>(&id("worker", name)).unwrap();
    // Activate it first so its deactivation hook (the stop log) runs.
    child.ask(WorkerMsg::Ping).await.unwrap();
    child.tell(WorkerMsg::Exit(reason)).unwrap();
    child.stopped().await;
    // The exit notice is queued before this ask, so the answer comes after the restart.
    let _supervisor_may_have_given_up = supervisor.which_children().await;
}

fn alive(system: &System, name: &str) -> bool {
    system.lookup_any(&id("worker", name)).is_some()
}

async fn supervise(system: &System, spec: SupervisorSpec) -> SupervisorRef {
    system.spawn_supervisor(id("supervisor", "root"), spec).await.unwrap()
}

fn three(book: &Book, strategy: Strategy) -> SupervisorSpec {
    SupervisorSpec::new(strategy)
        .intensity(10, Duration::from_secs(5))
        .child(book.child("a", Restart::Permanent))
        .child(book.child("b", Restart::Permanent))
        .child(book.child("c", Restart::Permanent))
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let (system, book) = (system(), Book::default());
    let supervisor = supervise(&system, three(&book, Strategy::OneForOne)).await;
    let before = system.lookup_any(&id("worker", "b")).unwrap().pid();
    exit_child(&system, &supervisor, "b", ExitReason::error("crash")).await;
    assert_eq!([book.starts("a"), book.starts("b"), book.starts("c")], [1, 2, 1]);
    let after = system.lookup_any(&id("worker", "b")).unwrap().pid();
    assert_ne!(before, after, "a restart is a new incarnation");
    let children = supervisor.which_children().await.unwrap();
    assert_eq!(children.len(), 3);
    assert!(children.iter().all(|child| child.actor.is_some()));
}

#[tokio::test]
async fn one_for_all_restarts_every_child_stopping_in_reverse_order() {
    let (system, book) = (system(), Book::default());
    let supervisor = supervise(&system, three(&book, Strategy::OneForAll)).await;
    for name in ["a", "c"] {
        system.lookup::<Worker>(&id("worker", name)).unwrap().ask(WorkerMsg::Ping).await.unwrap();
    }
    exit_child(&system, &supervisor, "b", ExitReason::error("crash")).await;
    assert_eq!([book.starts("a"), book.starts("b"), book.starts("c")], [2, 2, 2]);
    // b stopped itself first; then the supervisor stopped c before a.
    assert_eq!(*book.stops.lock(), ["b", "c", "a"]);
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let (system, book) = (system(), Book::default());
    let supervisor = supervise(&system, three(&book, Strategy::RestForOne)).await;
    exit_child(&system, &supervisor, "b", ExitReason::error("crash")).await;
    assert_eq!([book.starts("a"), book.starts("b"), book.starts("c")], [1, 2, 2]);
}

#[tokio::test]
async fn restart_types_decide_what_comes_back() {
    let (system, book) = (system(), Book::default());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(5))
        .child(book.child("permanent", Restart::Permanent))
        .child(book.child("transient", Restart::Transient))
        .child(book.child("temporary", Restart::Temporary));
    let supervisor = supervise(&system, spec).await;

    exit_child(&system, &supervisor, "permanent", ExitReason::Normal).await;
    assert_eq!(book.starts("permanent"), 2, "permanent children restart even after a normal exit");

    exit_child(&system, &supervisor, "transient", ExitReason::error("crash")).await;
    assert_eq!(book.starts("transient"), 2, "transient children restart after a failure");
    exit_child(&system, &supervisor, "transient", ExitReason::Normal).await;
    assert_eq!(book.starts("transient"), 2, "but not after a normal exit");
    assert!(!alive(&system, "transient"));

    exit_child(&system, &supervisor, "temporary", ExitReason::error("crash")).await;
    assert_eq!(book.starts("temporary"), 1, "temporary children never restart");
    let children = supervisor.which_children().await.unwrap();
    let names: Vec<_> = children.iter().map(|c| c.id.key.to_string()).collect();
    assert_eq!(names, ["permanent", "transient"], "a stopped temporary child is removed");
    assert!(children[1].actor.is_none(), "a normally exited transient child keeps its spec");
}

#[tokio::test(start_paused = true)]
async fn too_many_restarts_stop_the_supervisor_and_its_children() {
    let (system, book) = (system(), Book::default());
    let spec = three(&book, Strategy::OneForOne).intensity(2, Duration::from_secs(5));
    let supervisor = supervise(&system, spec).await;
    exit_child(&system, &supervisor, "a", ExitReason::error("1")).await;
    tokio::time::advance(Duration::from_secs(6)).await;
    // Restarts older than the period no longer count.
    exit_child(&system, &supervisor, "a", ExitReason::error("2")).await;
    exit_child(&system, &supervisor, "b", ExitReason::error("3")).await;
    assert_eq!(book.starts("a"), 3);
    assert!(!supervisor.actor().lifecycle().is_final());
    exit_child(&system, &supervisor, "c", ExitReason::error("4")).await;
    assert_eq!(supervisor.stopped().await, ExitReason::RestartIntensity);
    assert_eq!(book.starts("c"), 1);
    for name in ["a", "b", "c"] {
        assert!(!alive(&system, name), "{name} must be stopped with its supervisor");
    }
}

#[tokio::test]
async fn a_supervisor_that_gives_up_is_restarted_by_its_parent() {
    let (system, book) = (system(), Book::default());
    let inner = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(5))
        .child(book.child("leaf", Restart::Permanent));
    let root = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(5))
        .child(ChildSpec::supervisor(id("supervisor", "inner"), Restart::Permanent, inner))
        .child(book.child("sibling", Restart::Permanent));
    let root = supervise(&system, root).await;
    let inner_before = system.lookup_any(&id("supervisor", "inner")).unwrap();

    let leaf = system.lookup::<Worker>(&id("worker", "leaf")).unwrap();
    leaf.tell(WorkerMsg::Exit(ExitReason::error("crash"))).unwrap();
    assert_eq!(inner_before.stopped().await, ExitReason::RestartIntensity);
    root.which_children().await.unwrap();

    let inner_after = system.lookup_any(&id("supervisor", "inner")).unwrap();
    assert_ne!(inner_before.pid(), inner_after.pid());
    assert_eq!(book.starts("leaf"), 2, "the restarted inner supervisor started its child again");
    assert_eq!(book.starts("sibling"), 1);
}

#[tokio::test]
async fn children_can_be_added_stopped_restarted_and_deleted() {
    let (system, book) = (system(), Book::default());
    let supervisor = supervise(&system, SupervisorSpec::new(Strategy::OneForOne)).await;
    supervisor.start_child(book.child("x", Restart::Permanent)).await.unwrap();
    let twice = supervisor.start_child(book.child("x", Restart::Permanent)).await;
    assert_eq!(twice.unwrap_err(), Error::AlreadyExists(id("worker", "x")));
    supervisor.terminate_child(id("worker", "x")).await.unwrap();
    assert!(!alive(&system, "x"));
    assert_eq!(book.starts("x"), 1, "a terminated child is not restarted");
    supervisor.restart_child(id("worker", "x")).await.unwrap();
    assert_eq!(book.starts("x"), 2);
    let running = supervisor.delete_child(id("worker", "x")).await;
    assert_eq!(running.unwrap_err(), Error::AlreadyExists(id("worker", "x")));
    supervisor.terminate_child(id("worker", "x")).await.unwrap();
    supervisor.delete_child(id("worker", "x")).await.unwrap();
    assert!(supervisor.which_children().await.unwrap().is_empty());
    let missing: ActorId = id("worker", "nope");
    assert_eq!(supervisor.terminate_child(missing.clone()).await, Err(Error::NotFound(missing)));
}

#[tokio::test]
async fn stopping_a_supervisor_stops_its_children_in_reverse_order() {
    let (system, book) = (system(), Book::default());
    let supervisor = supervise(&system, three(&book, Strategy::OneForOne)).await;
    for name in ["a", "b", "c"] {
        system.lookup::<Worker>(&id("worker", name)).unwrap().ask(WorkerMsg::Ping).await.unwrap();
    }
    supervisor.actor().stop(ExitReason::Shutdown);
    assert_eq!(supervisor.stopped().await, ExitReason::Shutdown);
    assert_eq!(*book.stops.lock(), ["c", "b", "a"]);
    assert_eq!(system.actor_count(), 0);
}

#[tokio::test]
async fn a_child_that_cannot_start_fails_the_supervisor_start() {
    let (system, book) = (system(), Book::default());
    // The id is taken, so the child's spawn fails.
    system.spawn(id("worker", "b"), crate::common::Counter::default()).unwrap();
    let spec = three(&book, Strategy::OneForOne);
    let error = system.spawn_supervisor(id("supervisor", "root"), spec).await.unwrap_err();
    assert!(matches!(error, Error::Failed { .. }), "{error:?}");
    assert!(!alive(&system, "a"), "children started before the failure are stopped");
}
