//! Property tests: supervision against a model of OTP's rules, and per-sender ordering.

use std::collections::VecDeque;
use std::time::Duration;

use plexspaces_core::{
    Actor, Context, ExitReason,
    supervisor::{Restart, Strategy, SupervisorSpec},
};
use proptest::prelude::*;

use crate::common::{id, system};
use crate::supervision::{Book, exit_child};

/// OTP's supervisor rules, written plainly, over child indices.
#[derive(Debug)]
struct Model {
    strategy: Strategy,
    max_restarts: usize,
    period_ms: u64,
    /// (name, restart type, running) in start order.
    children: Vec<(String, Restart, bool)>,
    restarts: VecDeque<u64>,
    starts: std::collections::BTreeMap<String, usize>,
    alive: bool,
}

impl Model {
    fn new(strategy: Strategy, max_restarts: usize, period_ms: u64, types: &[Restart]) -> Self {
        let children: Vec<_> =
            types.iter().enumerate().map(|(i, r)| (format!("w{i}"), *r, true)).collect();
        let starts = children.iter().map(|(name, _, _)| (name.clone(), 1)).collect();
        Self {
            strategy,
            max_restarts,
            period_ms,
            children,
            restarts: VecDeque::new(),
            starts,
            alive: true,
        }
    }

    fn start(&mut self, index: usize) {
        self.children[index].2 = true;
        *self.starts.entry(self.children[index].0.clone()).or_default() += 1;
    }

    /// Stops children `from..` (reverse order), dropping temporary ones, then starts the rest.
    fn restart_from(&mut self, from: usize) {
        for index in (from..self.children.len()).rev() {
            self.children[index].2 = false;
            if self.children[index].1 == Restart::Temporary {
                self.children.remove(index);
            }
        }
        for index in from..self.children.len() {
            self.start(index);
        }
    }

    fn child_exited(&mut self, name: &str, normal: bool, now_ms: u64) {
        let index = self.children.iter().position(|c| c.0 == name).unwrap();
        self.children[index].2 = false;
        let restart = match self.children[index].1 {
            Restart::Permanent => true,
            Restart::Transient => !normal,
            Restart::Temporary => false,
        };
        if !restart {
            if self.children[index].1 == Restart::Temporary {
                self.children.remove(index);
            }
            return;
        }
        while self.restarts.front().is_some_and(|at| now_ms - at > self.period_ms) {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now_ms);
        if self.restarts.len() > self.max_restarts {
            self.alive = false;
            self.children.iter_mut().for_each(|c| c.2 = false);
            return;
        }
        match self.strategy {
            Strategy::OneForOne => self.start(index),
            Strategy::OneForAll => self.restart_from(0),
            Strategy::RestForOne => self.restart_from(index),
        }
    }

    fn running(&self) -> Vec<String> {
        self.children.iter().filter(|c| c.2).map(|c| c.0.clone()).collect()
    }
}

fn restart_type() -> impl proptest::strategy::Strategy<Value = Restart> {
    prop_oneof![Just(Restart::Permanent), Just(Restart::Transient), Just(Restart::Temporary)]
}

fn strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
    prop_oneof![Just(Strategy::OneForOne), Just(Strategy::OneForAll), Just(Strategy::RestForOne)]
}

/// One failure: which child (modulo the running ones), normal or not, and the time before it.
type Event = (usize, bool, u64);

fn check_supervision(
    strategy: Strategy,
    max_restarts: usize,
    types: Vec<Restart>,
    events: Vec<Event>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let period = Duration::from_millis(5000);
        let system = system();
        let book = Book::default();
        let mut spec = SupervisorSpec::new(strategy).intensity(max_restarts as u32, period);
        for (i, restart) in types.iter().enumerate() {
            spec = spec.child(book.child(&format!("w{i}"), *restart));
        }
        let supervisor = system.spawn_supervisor(id("supervisor", "root"), spec).await.unwrap();
        let mut model = Model::new(strategy, max_restarts, 5000, &types);
        let started = tokio::time::Instant::now();
        for (pick, normal, pause_ms) in events {
            let running = model.running();
            if !model.alive || running.is_empty() {
                break;
            }
            tokio::time::advance(Duration::from_millis(pause_ms)).await;
            let name = &running[pick % running.len()];
            let reason = if normal { ExitReason::Normal } else { ExitReason::error("crash") };
            exit_child(&system, &supervisor, name, reason).await;
            let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap();
            model.child_exited(name, normal, now_ms);

            assert_eq!(!supervisor.actor().lifecycle().is_final(), model.alive, "{model:?}");
            for (name, expected) in &model.starts {
                assert_eq!(book.starts(name), *expected, "starts of {name}: {model:?}");
            }
            for (name, _, running) in &model.children {
                let found = system.lookup_any(&id("worker", name)).is_some();
                assert_eq!(found, *running, "{name} running: {model:?}");
            }
        }
        if !model.alive {
            assert_eq!(supervisor.stopped().await, ExitReason::RestartIntensity);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn supervision_restarts_as_otp_would(
        strategy in strategy(),
        max_restarts in 0usize..4,
        types in proptest::collection::vec(restart_type(), 1..5),
        events in proptest::collection::vec((0usize..8, any::<bool>(), 0u64..4000), 1..12),
    ) {
        check_supervision(strategy, max_restarts, types, events);
    }
}

/// Checks that each sender's sequence numbers arrive in order and counts them.
#[derive(Debug, Default)]
struct Sequencer {
    last: std::collections::HashMap<usize, u64>,
    received: u64,
    out_of_order: u64,
}

impl Actor for Sequencer {
    type Msg = Option<(usize, u64)>;
    type Reply = (u64, u64);
    type Snapshot = ();

    async fn handle(&mut self, msg: Self::Msg, _: &mut Context<Self>) -> (u64, u64) {
        if let Some((sender, seq)) = msg {
            let last = self.last.insert(sender, seq);
            if last.is_some_and(|last| last + 1 != seq) || (last.is_none() && seq != 0) {
                self.out_of_order += 1;
            }
            self.received += 1;
            if seq % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        (self.received, self.out_of_order)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn each_senders_order_is_kept_under_concurrency(
        senders in 1usize..12,
        per_sender in 1u64..400,
        ask_every in 1u64..50,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (received, out_of_order) = runtime.block_on(async move {
            let system = system();
            let sequencer = system.spawn(id("sequencer", "s"), Sequencer::default()).unwrap();
            let tasks: Vec<_> = (0..senders)
                .map(|sender| {
                    let sequencer = sequencer.clone();
                    tokio::spawn(async move {
                        for seq in 0..per_sender {
                            if seq % ask_every == 0 {
                                sequencer.ask(Some((sender, seq))).await.unwrap();
                            } else {
                                sequencer.tell(Some((sender, seq))).unwrap();
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            sequencer.ask(None).await.unwrap()
        });
        prop_assert_eq!(out_of_order, 0);
        prop_assert_eq!(received, senders as u64 * per_sender);
    }
}
