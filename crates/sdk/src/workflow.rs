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
//! ([`WorkflowKept`]) hands it to the next activation.
//!
//! A durable run (a type with the `durability` facet, hosted by the node) makes the same calls
//! through a [`RunJournal`] its host supplies: a step's result is journaled and a replay returns
//! it without running the step again, a sleep or a wait that has not come to its end makes the
//! run unwind (the host resumes it later by running it again from its start, every call
//! answered from the journal), and signals are journaled messages that the run takes.

use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    pin::Pin,
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

/// The journal a durable run's calls go through, supplied by the host that runs it (the node's
/// durable workflow types). Each call answers from the journal when the run is replayed and
/// journals its answer when it runs live; `sleep` and `wait_signal` fail when the run must wait,
/// and every call after that fails too, so the run unwinds whatever it does with the error.
pub trait RunJournal: Send + Sync {
    /// Begins the step `name`: its recorded result (JSON) when it ran before, `None` when it
    /// must run now.
    fn step_begin(&self, name: &str) -> Result<Option<String>, BehaviorError>;
    /// Journals the result (JSON) of the step `name`; resolves once that is durable, so that
    /// the step never runs again.
    fn step_end<'a>(
        &'a self,
        name: &'a str,
        result: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), BehaviorError>> + Send + 'a>>;
    /// The end of a sleep (`signal` `None`) or of a wait for `signal`, `ms` from the first
    /// time the run got here (ms since the Unix epoch).
    fn deadline(&self, ms: u64, signal: Option<&str>) -> Result<u64, BehaviorError>;
    /// Until `deadline`, or for `signal`: `true` once a signal the run must take has come (the
    /// one it waits for, or one with a handler), `false` once the deadline has passed, an
    /// error (the run waits) before either.
    fn wait(&self, deadline: u64, signal: Option<&str>) -> Result<bool, BehaviorError>;
    /// The signals that came since the run last took them, in order.
    fn take_signals(&self) -> Result<Vec<Message>, BehaviorError>;
    /// Makes `state` (the state's JSON) what queries read.
    fn commit(&self, state: serde_json::Value) -> Result<(), BehaviorError>;
}

/// What a run handler calls to wait for signals, sleep and commit its state.
pub struct WorkflowContext<S> {
    actor: ActorContext,
    mode: Mode<S>,
}

enum Mode<S> {
    /// A run in a task of its own, in memory.
    Live { committed: Arc<Mutex<S>>, inbox: tokio::sync::Mutex<Inbox> },
    /// A durable run: every call through its host's journal.
    Durable {
        journal: Arc<dyn RunJournal>,
        /// Signals handed to their handlers and not yet returned by `wait_signal`.
        delivered: Mutex<VecDeque<Message>>,
    },
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

    /// A durable run's context: its calls go through `journal`. For hosts.
    #[doc(hidden)]
    pub fn durable(actor: ActorContext, journal: Arc<dyn RunJournal>) -> Self {
        Self { actor, mode: Mode::Durable { journal, delivered: Mutex::new(VecDeque::new()) } }
    }

    /// Makes `state` the committed state that queries read (in a durable run, also what a
    /// restart of the node recovers for them).
    pub fn commit(&self, state: &S) {
        // A durable run that must wait fails here too, and unwinds at its next call.
        let _waiting = self.try_commit(state);
    }

    fn try_commit(&self, state: &S) -> Result<(), BehaviorError> {
        match &self.mode {
            Mode::Live { committed, .. } => {
                *committed.lock() = state.clone();
                Ok(())
            }
            Mode::Durable { journal, .. } => {
                let json = state.state_json().ok_or_else(|| {
                    BehaviorError::ProcessingError(format!(
                        "{} has no serde, so a durable run cannot commit it",
                        std::any::type_name::<S>()
                    ))
                })?;
                journal.commit(json)
            }
        }
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

    /// A durable run's [`WorkflowContext::deliver`]: the signals its journal hands over.
    async fn deliver_durable(
        &self,
        state: &mut S,
        journal: &dyn RunJournal,
        delivered: &Mutex<VecDeque<Message>>,
    ) -> Result<(), BehaviorError> {
        for signal in journal.take_signals()? {
            state.signal(&self.actor, &signal).await?;
            delivered.lock().push_back(signal);
        }
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
        let (committed, inbox) = match &self.mode {
            Mode::Live { committed, inbox } => (committed, inbox),
            Mode::Durable { journal, delivered } => {
                return self.wait_durable(state, name, timeout, &**journal, delivered).await;
            }
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut inbox = inbox.lock().await;
        loop {
            self.deliver(state, &mut inbox).await?;
            if let Some(position) = inbox.delivered.iter().position(|s| s.action() == name) {
                let signal = inbox.delivered.remove(position);
                return Ok(Some(
                    signal.as_ref().map(signal_payload).transpose()?.unwrap_or_default(),
                ));
            }
            match tokio::time::timeout_at(deadline, inbox.incoming.recv()).await {
                Ok(Some(signal)) => {
                    state.signal(&self.actor, &signal).await?;
                    inbox.delivered.push_back(signal);
                }
                // The actor has stopped, or the time is up.
                Ok(None) | Err(_) => {
                    *committed.lock() = state.clone();
                    return Ok(None);
                }
            }
        }
    }

    /// A durable run's [`WorkflowContext::wait_signal`].
    async fn wait_durable(
        &self,
        state: &mut S,
        name: &str,
        timeout: Duration,
        journal: &dyn RunJournal,
        delivered: &Mutex<VecDeque<Message>>,
    ) -> Result<Option<serde_json::Value>, BehaviorError> {
        let mut deadline = None;
        loop {
            self.deliver_durable(state, journal, delivered).await?;
            let found = {
                let mut delivered = delivered.lock();
                let at = delivered.iter().position(|signal| signal.action() == name);
                at.and_then(|at| delivered.remove(at))
            };
            self.try_commit(state)?;
            if let Some(signal) = found {
                return Ok(Some(signal_payload(&signal)?));
            }
            let due = match deadline {
                Some(due) => due,
                None => *deadline.insert(journal.deadline(millis(timeout), Some(name))?),
            };
            if !journal.wait(due, Some(name))? {
                return Ok(None);
            }
        }
    }

    /// Runs the step `name`: `f` and its result. In a durable run the result is journaled
    /// (durably, before the run goes on) and a replay returns it without running `f` again;
    /// outside one, `f` runs each time.
    pub async fn step<T, F, Fut>(&self, name: &str, f: F) -> Result<T, BehaviorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, BehaviorError>>,
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        if name.is_empty() {
            return Err(BehaviorError::ProcessingError("a step needs a name".to_owned()));
        }
        let Mode::Durable { journal, .. } = &self.mode else { return f().await };
        if let Some(recorded) = journal.step_begin(name)? {
            return serde_json::from_str(&recorded).map_err(|error| {
                BehaviorError::ProcessingError(format!(
                    "the recorded result of step {name:?} does not fit its type: {error}"
                ))
            });
        }
        let value = f().await?;
        let text = serde_json::to_string(&value).map_err(|error| {
            BehaviorError::ProcessingError(format!(
                "the result of step {name:?} does not serialize: {error}"
            ))
        })?;
        journal.step_end(name, text).await?;
        Ok(value)
    }

    /// Commits `state`, sleeps, and hands the signals that arrived meanwhile to their
    /// handlers. In a durable run the sleep survives a restart of the node.
    pub async fn sleep(&self, state: &mut S, duration: Duration) -> Result<(), BehaviorError> {
        match &self.mode {
            Mode::Live { inbox, .. } => {
                let mut inbox = inbox.lock().await;
                self.deliver(state, &mut inbox).await?;
                tokio::time::sleep(duration).await;
                self.deliver(state, &mut inbox).await
            }
            Mode::Durable { journal, delivered } => {
                self.deliver_durable(state, &**journal, delivered).await?;
                self.try_commit(state)?;
                let due = journal.deadline(millis(duration), None)?;
                // Signals with a handler that come meanwhile are handed to it at once.
                while journal.wait(due, None)? {
                    self.deliver_durable(state, &**journal, delivered).await?;
                    self.try_commit(state)?;
                }
                self.deliver_durable(state, &**journal, delivered).await
            }
        }
    }
}

/// A signal's payload as JSON (`null` when it has none).
fn signal_payload(signal: &Message) -> Result<serde_json::Value, BehaviorError> {
    if signal.payload.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_slice(&signal.payload)?)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
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
        let inbox = tokio::sync::Mutex::new(Inbox { incoming, delivered });
        let workflow = WorkflowContext {
            actor: actor.clone(),
            mode: Mode::Live { committed: Arc::clone(&self.committed), inbox },
        };
        let mut state = self.committed.lock().clone();
        tokio::spawn(async move {
            let result = state.run(&workflow, &msg).await;
            // Signals that came while the run was returning still reach their handlers; once
            // the inbox is closed, the actor handles later signals itself.
            let Mode::Live { inbox, .. } = &workflow.mode else { unreachable!("a live run") };
            let mut inbox = inbox.lock().await;
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
