//! Workflow actors: a long `run` handler that owns a working copy of the state, signals that
//! reach it while it runs, and queries answered from the last committed state meanwhile.
//!
//! Action `run` starts the run handler on a copy of the state, in a task of its own, and the
//! asker gets the run's result when it finishes; a second `run` while one is in progress is
//! `workflow_running`. A query name routes to its `#[query_handler]`, which reads the last
//! committed state (also while the run is in progress). Any other action is a signal: it is
//! handed to its `#[signal_handler]` on the run's state at the run's next context call
//! ([`WorkflowContext::wait_signal`], [`WorkflowContext::sleep`], [`WorkflowContext::commit`]),
//! and `wait_signal` returns it whole, even if it arrived before the call. Without a run in
//! progress a signal's handler runs on the committed state at once (the next run starts from
//! that state and does not handle it again), and the signal waits, up to 1,024 of them, for
//! the next run's `wait_signal`. The state is committed (made visible to queries) at each of
//! those calls and when the run ends. A run outlives its actor's deactivation: the snapshot
//! ([`WorkflowKept`]) hands it to the next activation. A native run is not journaled: a durable
//! workflow is, for now, a guest component with the `durability` facet.

use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use plexspaces_core::{Actor, Context, ExitReason};
use tokio::sync::mpsc;

use crate::{ActorContext, BehaviorError, Message, WorkflowHandlers};

/// What a run handler calls to wait for signals, sleep and commit its state.
pub struct WorkflowContext<S> {
    actor: ActorContext,
    committed: Arc<Mutex<S>>,
    inbox: tokio::sync::Mutex<Inbox>,
}

struct Inbox {
    incoming: mpsc::UnboundedReceiver<Message>,
    /// Signals handed to their handlers and not yet returned by `wait_signal`.
    delivered: VecDeque<Message>,
}

impl<S> fmt::Debug for WorkflowContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowContext").field("actor", &self.actor.actor_id()).finish()
    }
}

impl<S: WorkflowHandlers> WorkflowContext<S> {
    /// The actor's context (its id).
    pub fn actor(&self) -> &ActorContext {
        &self.actor
    }

    /// Makes `state` the committed state that queries read.
    pub fn commit(&self, state: &S) {
        *self.committed.lock() = state.clone();
    }

    /// Hands every signal that has arrived to its handler on `state`, then commits.
    async fn deliver(&self, state: &mut S, inbox: &mut Inbox) -> Result<(), BehaviorError> {
        while let Ok(signal) = inbox.incoming.try_recv() {
            state.signal(&self.actor, &signal).await?;
            inbox.delivered.push_back(signal);
        }
        self.commit(state);
        Ok(())
    }

    /// Waits up to `timeout` for the signal `name` and returns its payload (action included),
    /// also when it arrived before this call; `None` at the timeout. Signals that arrive
    /// meanwhile are handed to their handlers on `state`, which is committed.
    pub async fn wait_signal(
        &self,
        state: &mut S,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<serde_json::Value>, BehaviorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut inbox = self.inbox.lock().await;
        loop {
            self.deliver(state, &mut inbox).await?;
            if let Some(position) = inbox.delivered.iter().position(|s| s.action() == name) {
                let signal = inbox.delivered.remove(position);
                let payload = signal.map(|signal| serde_json::from_slice(&signal.payload));
                return Ok(Some(payload.transpose()?.unwrap_or(serde_json::Value::Null)));
            }
            match tokio::time::timeout_at(deadline, inbox.incoming.recv()).await {
                Ok(Some(signal)) => {
                    state.signal(&self.actor, &signal).await?;
                    inbox.delivered.push_back(signal);
                }
                // The actor has stopped, or the time is up.
                Ok(None) | Err(_) => {
                    self.commit(state);
                    return Ok(None);
                }
            }
        }
    }

    /// Runs the step `name`: `f` and its result. The same call as in a guest, where a durable
    /// run journals the result and a replay returns it without running `f` again; natively the
    /// run is not journaled (a native workflow is not durable yet), so `f` runs each time.
    pub async fn step<T, F, Fut>(&self, name: &str, f: F) -> Result<T, BehaviorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, BehaviorError>>,
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        if name.is_empty() {
            return Err(BehaviorError::ProcessingError("a step needs a name".to_owned()));
        }
        f().await
    }

    /// Commits `state`, sleeps, and hands the signals that arrived meanwhile to their
    /// handlers.
    pub async fn sleep(&self, state: &mut S, duration: Duration) -> Result<(), BehaviorError> {
        let mut inbox = self.inbox.lock().await;
        self.deliver(state, &mut inbox).await?;
        tokio::time::sleep(duration).await;
        self.deliver(state, &mut inbox).await
    }
}

/// Signals kept for the next run's `wait_signal` while no run is in progress; past this the
/// oldest is dropped (its handler has already run on the committed state).
const MAX_WAITING_SIGNALS: usize = 1024;

/// A run in progress: where its signals go, and whether it has ended.
struct Run {
    signals: mpsc::UnboundedSender<Message>,
    ended: Arc<AtomicBool>,
}

/// The runtime actor that hosts a workflow state `S`.
pub struct WorkflowActor<S> {
    committed: Arc<Mutex<S>>,
    run: Option<Run>,
    /// Signals received while no run was in progress, for the next run.
    waiting_signals: VecDeque<Message>,
    context: Option<ActorContext>,
}

impl<S> fmt::Debug for WorkflowActor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowActor").field("running", &self.run.is_some()).finish()
    }
}

impl<S: WorkflowHandlers> Default for WorkflowActor<S> {
    fn default() -> Self {
        Self::new(S::default())
    }
}

impl<S: WorkflowHandlers> WorkflowActor<S> {
    /// Hosts `state`.
    pub fn new(state: S) -> Self {
        Self {
            committed: Arc::new(Mutex::new(state)),
            run: None,
            waiting_signals: VecDeque::new(),
            context: None,
        }
    }

    fn running(&self) -> bool {
        self.run.as_ref().is_some_and(|run| !run.ended.load(Ordering::Acquire))
    }

    /// Starts the run in a task of its own; the asker (if any) gets its result at the end.
    fn start_run(&mut self, msg: Message, ctx: &mut Context<Self>) -> Result<(), BehaviorError> {
        if self.running() {
            return Err(BehaviorError::WorkflowRunning);
        }
        let (signals, incoming) = mpsc::unbounded_channel();
        // Signals that came before the run have been handled on the committed state the run
        // starts from; the run only needs them for `wait_signal`.
        let delivered = std::mem::take(&mut self.waiting_signals);
        let ended = Arc::new(AtomicBool::new(false));
        self.run = Some(Run { signals, ended: Arc::clone(&ended) });
        let reply = ctx.defer_reply();
        let actor = self.context.get_or_insert_with(|| ActorContext::new(ctx.id().clone(), None));
        let workflow = WorkflowContext {
            actor: actor.clone(),
            committed: Arc::clone(&self.committed),
            inbox: tokio::sync::Mutex::new(Inbox { incoming, delivered }),
        };
        let mut state = self.committed.lock().clone();
        tokio::spawn(async move {
            let result = state.run(&workflow, &msg).await;
            // Signals that came while the run was returning still reach their handlers; once
            // the inbox is closed, the actor handles later signals itself.
            let mut inbox = workflow.inbox.lock().await;
            inbox.incoming.close();
            if let Err(error) = workflow.deliver(&mut state, &mut inbox).await {
                tracing::warn!(actor = %workflow.actor.actor_id(), %error, "signal failed after the run");
            }
            workflow.commit(&state);
            ended.store(true, Ordering::Release);
            if let Some(reply) = reply {
                reply.send(result);
            }
        });
        Ok(())
    }
}

/// What a workflow actor hands its next activation: the committed state and the run in
/// progress, which goes on while the actor is deactivated (a virtual actor idle past its
/// timeout) and is found again by the next activation.
pub struct WorkflowKept<S> {
    committed: Arc<Mutex<S>>,
    run: Option<Run>,
    waiting_signals: VecDeque<Message>,
}

impl<S> fmt::Debug for WorkflowKept<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowKept").field("running", &self.run.is_some()).finish()
    }
}

impl<S: WorkflowHandlers> Actor for WorkflowActor<S> {
    type Msg = Message;
    type Reply = Result<serde_json::Value, BehaviorError>;
    type Snapshot = WorkflowKept<S>;

    async fn activate(
        &mut self,
        kept: Option<WorkflowKept<S>>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ExitReason> {
        if let Some(kept) = kept {
            self.committed = kept.committed;
            self.run = kept.run;
            self.waiting_signals = kept.waiting_signals;
        }
        self.context = Some(ActorContext::new(ctx.id().clone(), None));
        Ok(())
    }

    async fn deactivate(&mut self, _: &mut Context<Self>) -> Option<WorkflowKept<S>> {
        Some(WorkflowKept {
            committed: Arc::clone(&self.committed),
            run: self.run.take(),
            waiting_signals: std::mem::take(&mut self.waiting_signals),
        })
    }

    async fn handle(&mut self, msg: Message, ctx: &mut Context<Self>) -> Self::Reply {
        if msg.action() == "run" {
            self.start_run(msg, ctx)?;
            // The run's result goes to the asker when the run ends.
            return Ok(serde_json::Value::Null);
        }
        let running = self.running();
        let actor = self.context.get_or_insert_with(|| ActorContext::new(ctx.id().clone(), None));
        if S::QUERIES.contains(&msg.action()) {
            let snapshot = self.committed.lock().clone();
            return snapshot.query(actor, &msg).await;
        }
        // A signal.
        let msg = match &self.run {
            Some(run) if running => match run.signals.send(msg) {
                Ok(()) => return Ok(serde_json::Value::Null),
                Err(refused) => {
                    // The run is returning: let it commit its last state first.
                    while !run.ended.load(Ordering::Acquire) {
                        tokio::task::yield_now().await;
                    }
                    refused.0
                }
            },
            _ => msg,
        };
        let mut state = self.committed.lock().clone();
        state.signal(actor, &msg).await?;
        *self.committed.lock() = state;
        if self.waiting_signals.len() == MAX_WAITING_SIGNALS {
            let dropped = self.waiting_signals.pop_front();
            tracing::warn!(actor = %actor.actor_id(), signal = dropped.as_ref().map_or("", Message::action), "too many signals waiting for a run; the oldest is dropped");
        }
        self.waiting_signals.push_back(msg);
        Ok(serde_json::Value::Null)
    }
}
