//! Links and monitors.

use std::time::Duration;

use parking_lot::Mutex;
use plexspaces_core::{Actor, AnyRef, Context, Down, ExitReason, LinkExit};
use std::sync::Arc;

use crate::common::{Counter, CounterMsg, id, system};

/// Records the notices it receives; can link or monitor on request.
#[derive(Debug, Default)]
struct Watcher {
    trap: bool,
    downs: Arc<Mutex<Vec<Down>>>,
    exits: Arc<Mutex<Vec<LinkExit>>>,
}

enum WatcherMsg {
    Link(AnyRef),
    Monitor(AnyRef),
    MonitorThenDemonitor(AnyRef),
}

impl Actor for Watcher {
    type Msg = WatcherMsg;
    type Reply = ();
    type Snapshot = ();

    async fn handle(&mut self, msg: WatcherMsg, ctx: &mut Context<Self>) {
        ctx.trap_exit(self.trap);
        match msg {
            WatcherMsg::Link(other) => ctx.link(&other),
            WatcherMsg::Monitor(other) => {
                ctx.monitor(&other);
            }
            WatcherMsg::MonitorThenDemonitor(other) => {
                let monitor = ctx.monitor(&other);
                ctx.demonitor(&other, monitor);
            }
        }
    }

    async fn on_down(&mut self, down: Down, _: &mut Context<Self>) {
        self.downs.lock().push(down);
    }

    async fn on_link_exit(&mut self, exit: LinkExit, _: &mut Context<Self>) {
        self.exits.lock().push(exit);
    }
}

#[tokio::test]
async fn an_abnormal_exit_kills_linked_actors() {
    let system = system();
    let watcher = system.spawn(id("watcher", "w"), Watcher::default()).unwrap();
    let counter = system.spawn(id("counter", "c"), Counter::default()).unwrap();
    watcher.ask(WatcherMsg::Link(counter.as_any())).await.unwrap();
    counter.tell(CounterMsg::Panic).unwrap();
    let reason = watcher.stopped().await;
    assert_eq!(reason, ExitReason::Panic("counter asked to panic".into()));
}

#[tokio::test]
async fn a_normal_exit_leaves_linked_actors_running() {
    let system = system();
    let watcher = system.spawn(id("watcher", "w"), Watcher::default()).unwrap();
    let counter = system.spawn(id("counter", "c"), Counter::default()).unwrap();
    watcher.ask(WatcherMsg::Link(counter.as_any())).await.unwrap();
    counter.tell(CounterMsg::Stop(ExitReason::Normal)).unwrap();
    counter.stopped().await;
    watcher.ask(WatcherMsg::Link(counter.as_any())).await.unwrap();
    assert!(!watcher.lifecycle().is_final());
}

#[tokio::test]
async fn links_are_both_ways() {
    let system = system();
    let watcher = system.spawn(id("watcher", "w"), Watcher::default()).unwrap();
    let counter = system.spawn(id("counter", "c"), Counter::default()).unwrap();
    watcher.ask(WatcherMsg::Link(counter.as_any())).await.unwrap();
    watcher.as_any().stop(ExitReason::error("boom"));
    assert_eq!(counter.stopped().await, ExitReason::error("boom"));
}

#[tokio::test]
async fn a_trapping_actor_receives_exits_as_notices() {
    let system = system();
    let exits = Arc::new(Mutex::new(Vec::new()));
    let watcher = Watcher { trap: true, exits: Arc::clone(&exits), ..Watcher::default() };
    let watcher = system.spawn(id("watcher", "w"), watcher).unwrap();
    let counter = system.spawn(id("counter", "c"), Counter::default()).unwrap();
    let pid = counter.pid();
    watcher.ask(WatcherMsg::Link(counter.as_any())).await.unwrap();
    counter.tell(CounterMsg::Panic).unwrap();
    counter.stopped().await;
    // A message sent after the exit is handled after the notice.
    watcher.ask(WatcherMsg::Monitor(watcher.as_any())).await.unwrap();
    let exits = exits.lock().clone();
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].pid, pid);
    assert_eq!(exits[0].id, id("counter", "c"));
    assert!(matches!(exits[0].reason, ExitReason::Panic(_)));
    assert!(!watcher.lifecycle().is_final());
}

#[tokio::test]
async fn a_monitor_receives_a_down_notice_with_the_reason() {
    let system = system();
    let downs = Arc::new(Mutex::new(Vec::new()));
    let watcher = Watcher { downs: Arc::clone(&downs), ..Watcher::default() };
    let watcher = system.spawn(id("watcher", "w"), watcher).unwrap();
    let counter = system.spawn(id("counter", "c"), Counter::default()).unwrap();
    let other = system.spawn(id("counter", "d"), Counter::default()).unwrap();
    watcher.ask(WatcherMsg::Monitor(counter.as_any())).await.unwrap();
    watcher.ask(WatcherMsg::MonitorThenDemonitor(other.as_any())).await.unwrap();
    counter.tell(CounterMsg::Stop(ExitReason::error("done badly"))).unwrap();
    other.tell(CounterMsg::Stop(ExitReason::Normal)).unwrap();
    counter.stopped().await;
    other.stopped().await;
    // Monitoring an actor that has already stopped gives a notice at once.
    watcher.ask(WatcherMsg::Monitor(counter.as_any())).await.unwrap();
    watcher.ask(WatcherMsg::Link(watcher.as_any())).await.unwrap();
    let downs = downs.lock().clone();
    assert_eq!(downs.len(), 2, "{downs:?}");
    for down in &downs {
        assert_eq!(down.id, id("counter", "c"));
        assert_eq!(down.reason, ExitReason::error("done badly"));
    }
    assert_ne!(downs[0].monitor, downs[1].monitor);
    // The monitoring actor is unaffected by the monitored one's failure.
    assert!(!watcher.lifecycle().is_final());
}

#[tokio::test(start_paused = true)]
async fn a_killed_actor_notifies_at_once() {
    let system = system();
    let watcher = system.spawn(id("watcher", "w"), Watcher::default()).unwrap();
    let counter = system.spawn(id("counter", "c"), Counter::default()).unwrap();
    watcher.ask(WatcherMsg::Link(counter.as_any())).await.unwrap();
    counter.tell(CounterMsg::Sleep(Duration::from_secs(3600))).unwrap();
    tokio::task::yield_now().await;
    counter.as_any().kill();
    assert_eq!(watcher.stopped().await, ExitReason::Killed);
}
