//! A native workflow type with the `durability` facet: its runs survive restarts of the node,
//! as a guest workflow's do (`plexspaces_wasm`'s durable workflows, whose model this follows).
//!
//! Every message but a query is journaled before anything runs. `run` starts a run, which
//! goes on live in the call of that message until it waits: a sleep or a wait for a signal
//! that has not come to its end makes the SDK's context fail every call, so the run unwinds,
//! and a durable wake-up (the node's timers) is stored for when it is due. The run goes on in
//! the call of a later message (its wake-up, or the signal it waits for): it runs again from
//! the state it started from, every call it made before answered from what was journaled (a
//! step's result, without running the step again), then live. A call's record is journaled
//! under the message being handled, a step's durably before the run goes on. Signals are
//! journaled messages kept until the run takes them, and queries answer from the state the
//! run committed last. After a crash the actor recovers from its checkpoint and its journal;
//! a run that had ended is replayed whole for the state it ended with, one in progress goes on
//! at its wake-up (at most a second after a crash interrupted it in its first message).

use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc};

use parking_lot::Mutex;
use plexspaces_core::{Actor, Context, ExitReason, ReplyTo};
use plexspaces_durable::{
    ActorLog, Admit, Admitted, Durability, Journaled, answer, arrival, group, now_ms,
};
use plexspaces_sdk::{
    ActorContext, ActorState, BehaviorError, Message, RunJournal, WorkflowContext, WorkflowHandlers,
};
use plexspaces_storage::journal::{Entry, JournalBackend, Outcome, Ticket};
use plexspaces_types::{ErrorCode, Refusal};
use plexspaces_wasm::{TimerService, WAKE};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{Error, Result, durable_native::Delivery, durable_native::reply_bytes};

/// How long after its start a run interrupted by a crash is resumed, at the latest.
const RESUME_AFTER_MS: u64 = 1000;

/// The journal's call kinds of a run; the numbers are those of a guest's run
/// (`plexspaces_wasm`'s `CallKind`), and are stored: never reuse one. A native run records
/// the end of each of its waits (`WAIT_RESOLVED`) for sleeps too, since a signal with a handler
/// interrupts a sleep.
const STEP_BEGIN: u16 = 60;
const STEP_END: u16 = 61;
const SLEEP_DUE: u16 = 62;
const WAIT_DEADLINE: u16 = 63;
const WAIT_RESOLVED: u16 = 64;
const TAKE_SIGNALS: u16 = 65;
const COMMIT: u16 = 66;

/// What a run waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Wake {
    /// A sleep that ends at this time (ms since the Unix epoch).
    At(u64),
    /// A wait for the signal `name`, which gives up at `deadline`.
    Signal { name: String, deadline: u64 },
}

/// A signal journaled for the workflow and not yet taken by its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Signal {
    seq: u64,
    action: String,
    payload: Vec<u8>,
}

/// A run in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRecord {
    /// The `run` message's sequence and payload.
    seq: u64,
    payload: Vec<u8>,
    /// The state it started from (its JSON): every resumption starts from it.
    start_state: Value,
    /// Its calls' records so far, in order.
    recorded: Vec<(u16, Vec<u8>)>,
    /// What it waits for; `None` while it runs (or when a crash interrupted it).
    wake: Option<Wake>,
}

/// What a workflow keeps beside its state, in its checkpoints too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct WorkflowMemory {
    run: Option<RunRecord>,
    /// Signals not yet taken by a run.
    pending: Vec<Signal>,
    /// The state the run committed last (its JSON): queries read it while the run goes on.
    query_state: Option<Value>,
}

impl WorkflowMemory {
    /// Whether the run in progress can go on now: its time has come, the signal it waits for
    /// has, or a signal with a handler (in `handled`), which the run hands to it at once.
    fn ready(&self, now: u64, handled: &[&str]) -> bool {
        let signalled = |name: Option<&str>| {
            self.pending.iter().any(|signal| {
                Some(signal.action.as_str()) == name || handled.contains(&signal.action.as_str())
            })
        };
        match self.run.as_ref().map(|run| &run.wake) {
            None => false,
            Some(None) => true,
            Some(Some(Wake::At(due))) => now >= *due || signalled(None),
            Some(Some(Wake::Signal { name, deadline })) => {
                now >= *deadline || signalled(Some(name))
            }
        }
    }

    /// What one journaled message did to the run, when recovering.
    fn forget_taken(&mut self, calls: &VecDeque<(u16, Vec<u8>)>) {
        for (kind, record) in calls {
            if *kind == TAKE_SIGNALS
                && let Ok(taken) = serde_json::from_slice::<Vec<Signal>>(record)
            {
                self.pending.retain(|signal| !taken.iter().any(|t| t.seq == signal.seq));
            }
            if *kind == COMMIT
                && let Ok(state) = serde_json::from_slice::<Value>(record)
            {
                self.query_state = Some(state);
            }
        }
    }
}

/// A run's calls during the handling of one message: answered from `recorded` first, then
/// live, each live one journaled under that message.
struct Calls {
    journal: Arc<dyn JournalBackend>,
    actor: String,
    seq: u64,
    next_index: u32,
    recorded: VecDeque<(u16, Vec<u8>)>,
    /// The run ended before: every call it makes is recorded.
    complete: bool,
    /// The live calls' records, for the run's next resumption.
    captured: Vec<(u16, Vec<u8>)>,
    last_ticket: Ticket,
    durable_ticket: Ticket,
    diverged: Option<String>,
    failed: Option<Refusal>,
    pending: Vec<Signal>,
    /// The signals that have a handler: they let a waiting run go on.
    handled: &'static [&'static str],
    committed: Option<Value>,
    suspended: Option<Wake>,
}

impl Calls {
    /// Refuses a call once the run must wait or no longer agrees with its journal.
    fn check(&self) -> std::result::Result<(), BehaviorError> {
        if let Some(reason) = &self.diverged {
            return Err(BehaviorError::ProcessingError(reason.clone()));
        }
        if self.suspended.is_some() {
            return Err(waiting("its wake-up"));
        }
        Ok(())
    }

    fn diverge(&mut self, reason: String) -> BehaviorError {
        self.diverged = Some(reason.clone());
        BehaviorError::ProcessingError(reason)
    }

    /// The record of the next call, which must be of `kind`; `None` past the records.
    fn take<R: DeserializeOwned>(
        &mut self,
        kind: u16,
        what: &str,
    ) -> std::result::Result<Option<R>, BehaviorError> {
        self.check()?;
        match self.recorded.pop_front() {
            Some((recorded, bytes)) if recorded == kind => match serde_json::from_slice(&bytes) {
                Ok(value) => Ok(Some(value)),
                Err(error) => {
                    Err(self.diverge(format!("the record of {what} does not decode: {error}")))
                }
            },
            Some((recorded, _)) => Err(self.diverge(format!(
                "the run made {what} where the journal records call kind {recorded}: the run \
                 handler is not deterministic"
            ))),
            None if self.complete => Err(self.diverge(format!(
                "the run made {what} past the calls the journal records: the run handler is \
                 not deterministic"
            ))),
            None => Ok(None),
        }
    }

    fn append<R: Serialize>(&mut self, kind: u16, value: &R) {
        if self.failed.is_some() || self.diverged.is_some() || self.complete {
            return;
        }
        let record = match serde_json::to_vec(value) {
            Ok(record) => record,
            Err(error) => {
                let message = format!("a call of the run cannot be journaled: {error}");
                self.failed = Some(Refusal::new(ErrorCode::Internal, message));
                return;
            }
        };
        let entry = Entry::Call { kind, result: record.clone() };
        match self.journal.append(&self.actor, self.seq, self.next_index, &entry) {
            Ok(ticket) => self.last_ticket = ticket,
            Err(error) => self.failed = Some(error),
        }
        self.next_index += 1;
        self.captured.push((kind, record));
    }

    /// The recorded value of `kind`, or `live()`'s, journaled.
    fn value<R: Serialize + DeserializeOwned>(
        &mut self,
        kind: u16,
        what: &str,
        live: impl FnOnce() -> R,
    ) -> std::result::Result<R, BehaviorError> {
        if let Some(value) = self.take(kind, what)? {
            return Ok(value);
        }
        let value = live();
        self.append(kind, &value);
        Ok(value)
    }
}

fn waiting(what: &str) -> BehaviorError {
    BehaviorError::ProcessingError(format!("the run waits for {what}; it resumes by replay"))
}

/// The [`RunJournal`] the SDK's context calls.
struct RunHost(Mutex<Calls>);

impl RunJournal for RunHost {
    fn step_begin(&self, name: &str) -> std::result::Result<Option<String>, BehaviorError> {
        let mut calls = self.0.lock();
        let what = format!("step {name:?}");
        let Some(recorded) = calls.take::<String>(STEP_BEGIN, &what)? else {
            calls.append(STEP_BEGIN, &name);
            return Ok(None);
        };
        if recorded != name {
            return Err(calls.diverge(format!(
                "step {name:?} begins where the journal has step {recorded:?}: the run handler \
                 is not deterministic"
            )));
        }
        // The step's end, at the same depth: it ran, and its result stands for it.
        let mut depth = 0usize;
        let end = calls.recorded.iter().position(|(kind, _)| {
            if *kind == STEP_BEGIN {
                depth += 1;
            } else if *kind == STEP_END {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            false
        });
        let Some(end) = end else {
            // Interrupted inside the step: it runs again.
            return Ok(None);
        };
        let (_, record) = calls.recorded.drain(..=end).next_back().unwrap_or_default();
        match serde_json::from_slice::<(String, String)>(&record) {
            Ok((_, result)) => Ok(Some(result)),
            Err(error) => {
                Err(calls.diverge(format!("the record of step {name:?} does not decode: {error}")))
            }
        }
    }

    fn step_end<'a>(
        &'a self,
        name: &'a str,
        result: String,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), BehaviorError>> + Send + 'a>> {
        Box::pin(async move {
            let (journal, ticket) = {
                let mut calls = self.0.lock();
                let what = format!("the end of step {name:?}");
                if calls.take::<(String, String)>(STEP_END, &what)?.is_some() {
                    return Ok(());
                }
                calls.append(STEP_END, &(name, result));
                if let Some(error) = &calls.failed {
                    return Err(BehaviorError::ProcessingError(error.message.clone()));
                }
                if calls.last_ticket <= calls.durable_ticket {
                    return Ok(());
                }
                (Arc::clone(&calls.journal), calls.last_ticket)
            };
            // A journaled step never runs again: its record is durable before the run goes on.
            if let Err(error) = journal.durable(ticket).await {
                let mut calls = self.0.lock();
                calls.failed = Some(error.clone());
                return Err(BehaviorError::ProcessingError(error.message));
            }
            let mut calls = self.0.lock();
            calls.durable_ticket = calls.durable_ticket.max(ticket);
            Ok(())
        })
    }

    fn deadline(&self, ms: u64, signal: Option<&str>) -> std::result::Result<u64, BehaviorError> {
        let mut calls = self.0.lock();
        let (kind, what) = match signal {
            None => (SLEEP_DUE, "a sleep".to_owned()),
            Some(name) => (WAIT_DEADLINE, format!("a wait for {name:?}")),
        };
        calls.value(kind, &what, || now_ms().saturating_add(ms))
    }

    fn wait(
        &self,
        deadline: u64,
        signal: Option<&str>,
    ) -> std::result::Result<bool, BehaviorError> {
        let mut calls = self.0.lock();
        let what = match signal {
            None => "the end of a sleep".to_owned(),
            Some(name) => format!("the end of a wait for {name:?}"),
        };
        if let Some(resolved) = calls.take::<bool>(WAIT_RESOLVED, &what)? {
            return Ok(resolved);
        }
        let handled = calls.handled;
        let came = calls.pending.iter().any(|pending| {
            Some(pending.action.as_str()) == signal || handled.contains(&pending.action.as_str())
        });
        let resolved = if came {
            true
        } else if now_ms() >= deadline {
            false
        } else {
            calls.suspended = Some(match signal {
                None => Wake::At(deadline),
                Some(name) => Wake::Signal { name: name.to_owned(), deadline },
            });
            return Err(waiting(&what));
        };
        calls.append(WAIT_RESOLVED, &resolved);
        Ok(resolved)
    }

    fn take_signals(&self) -> std::result::Result<Vec<Message>, BehaviorError> {
        let mut calls = self.0.lock();
        let taken = match calls.take::<Vec<Signal>>(TAKE_SIGNALS, "a take of signals")? {
            Some(taken) => taken,
            None => {
                let taken = std::mem::take(&mut calls.pending);
                calls.append(TAKE_SIGNALS, &taken);
                taken
            }
        };
        Ok(taken.into_iter().map(|signal| Message::new(signal.action, signal.payload)).collect())
    }

    fn commit(&self, state: Value) -> std::result::Result<(), BehaviorError> {
        let mut calls = self.0.lock();
        let state = calls.value(COMMIT, "a commit", || state)?;
        calls.committed = Some(state);
        Ok(())
    }
}

/// What a deactivated workflow hands its next activation.
pub(crate) struct Kept<S> {
    state: S,
    memory: WorkflowMemory,
    log: ActorLog,
    asker: Option<ReplyTo<Result<Vec<u8>>>>,
}

/// The durable host of a native workflow state `S`.
pub(crate) struct DurableWorkflow<S> {
    durability: Arc<Durability>,
    timers: Arc<dyn TimerService>,
    log: ActorLog,
    /// The state runs start from: the one the last run (or signal outside a run) left.
    state: S,
    memory: WorkflowMemory,
    /// The asker of `run`, answered when the run ends.
    asker: Option<ReplyTo<Result<Vec<u8>>>>,
}

fn state_json<S: ActorState>(state: &S) -> Value {
    state.state_json().unwrap_or(Value::Null)
}

fn from_json<S: ActorState>(json: Value) -> std::result::Result<S, Refusal> {
    S::from_state_json(json).map_err(|error| {
        Refusal::new(
            ErrorCode::JournalDamaged,
            format!("the journaled state does not fit the type: {error}"),
        )
    })
}

impl<S: WorkflowHandlers> DurableWorkflow<S> {
    pub(crate) fn new(durability: Arc<Durability>, timers: Arc<dyn TimerService>) -> Self {
        Self {
            durability,
            timers,
            log: ActorLog::default(),
            state: S::default(),
            memory: WorkflowMemory::default(),
            asker: None,
        }
    }

    fn calls(
        &mut self,
        seq: u64,
        recorded: Vec<(u16, Vec<u8>)>,
        complete: bool,
        actor: &str,
    ) -> Calls {
        Calls {
            journal: Arc::clone(&self.durability.journal),
            actor: actor.to_owned(),
            seq,
            next_index: 1,
            recorded: recorded.into(),
            complete,
            captured: Vec::new(),
            last_ticket: self.log.ticket,
            durable_ticket: 0,
            diverged: None,
            failed: None,
            pending: std::mem::take(&mut self.memory.pending),
            handled: S::SIGNALS,
            committed: None,
            suspended: None,
        }
    }

    /// Runs `run` from its start state through `calls`: the state it ended with, its outcome,
    /// and its calls.
    async fn play(
        run: &RunRecord,
        calls: Calls,
        actor: &ActorContext,
    ) -> std::result::Result<(S, std::result::Result<Value, BehaviorError>, Calls), Refusal> {
        let mut state: S = from_json(run.start_state.clone())?;
        let host = Arc::new(RunHost(Mutex::new(calls)));
        let context = WorkflowContext::durable(actor.clone(), Arc::clone(&host) as _);
        let message = Message::new("run", run.payload.clone());
        let outcome = state.run(&context, &message).await;
        drop(context);
        let calls = match Arc::try_unwrap(host) {
            Ok(host) => host.0.into_inner(),
            Err(_) => unreachable!("the context, the only other owner, is dropped"),
        };
        Ok((state, outcome, calls))
    }

    fn refuse(&mut self, error: Refusal) -> Error {
        self.log.damage = Some(error.clone());
        error.into()
    }

    async fn set_wake(&self, id: &plexspaces_types::ActorId, due_ms: u64) {
        if let Err(error) = self.timers.set_wake(id, due_ms).await {
            tracing::warn!(actor = %id, error = %error, "the run's wake-up was not stored");
        }
    }

    /// A message: a query answered from the committed state, a wake-up, `run`, or a signal.
    async fn deliver(
        &mut self,
        mut delivery: Delivery,
        ctx: &mut Context<Self>,
    ) -> Result<Vec<u8>> {
        let mut admission = delivery.admission.take();
        let mut admit = |admitted: std::result::Result<Admitted, Refusal>| {
            answer(admission.take(), admitted);
        };
        if let Some(damage) = &self.log.damage {
            admit(Err(damage.clone()));
            return Err(damage.clone().into());
        }
        let Delivery { msg, message_id, origin, idempotency_key, .. } = delivery;
        let action = msg.action().to_owned();
        let actor_context = ActorContext::hosted(ctx.id().clone(), None);
        if S::QUERIES.contains(&action.as_str()) {
            admit(Ok(Admitted { ticket: self.log.ticket, duplicate_of: None }));
            let committed = match &self.memory.query_state {
                Some(json) => from_json::<S>(json.clone()).map_err(Error::from)?,
                None => self.state.clone(),
            };
            return reply_bytes(committed.query(&actor_context, &msg).await);
        }
        if action == WAKE && !self.memory.ready(now_ms(), S::SIGNALS) {
            admit(Ok(Admitted { ticket: self.log.ticket, duplicate_of: None }));
            return Ok(b"null".to_vec());
        }
        if action == "run" && self.memory.run.is_some() {
            let error = Refusal::new(
                ErrorCode::WorkflowRunning,
                format!("{} has a run in progress: signal it, or query it", ctx.id()),
            );
            admit(Err(error.clone()));
            return Err(error.into());
        }
        let actor = ctx.id().to_string();
        let record =
            arrival(action.clone(), msg.payload.clone(), message_id, idempotency_key, origin);
        let (seq, record) = match self.log.admit(record, &actor, &self.durability) {
            Ok(Admit::New(seq, record)) => (seq, record),
            Ok(Admit::Duplicate { first, reply }) => {
                admit(Ok(Admitted { ticket: self.log.ticket, duplicate_of: first }));
                return Ok(reply);
            }
            Err(error) => {
                admit(Err(error.clone()));
                return Err(error.into());
            }
        };
        if action == "run" {
            let Some(start_state) = self.state.state_json() else {
                let error = Refusal::new(
                    ErrorCode::StateNotSerializable,
                    format!("{} has no serde, so it cannot be durable", std::any::type_name::<S>()),
                );
                admit(Err(error.clone()));
                return Err(self.refuse(error));
            };
            self.memory.run = Some(RunRecord {
                seq,
                payload: record.payload.clone(),
                start_state,
                recorded: Vec::new(),
                wake: None,
            });
            // A restart of the node resumes it; due a little later, so that a run that ends or
            // waits in this message replaces it first.
            self.set_wake(ctx.id(), now_ms() + RESUME_AFTER_MS).await;
        } else if action != WAKE {
            // Kept for the run, which hands it to its handler when it takes it: at once when it
            // has one, or when the run waits for it (a signal sent before a run waits for the
            // next one).
            self.memory.pending.push(Signal {
                seq,
                action: action.clone(),
                payload: record.payload.clone(),
            });
        }
        admit(Ok(Admitted { ticket: self.log.ticket, duplicate_of: None }));
        if action != "run" && action != WAKE && !self.memory.ready(now_ms(), S::SIGNALS) {
            let journal = Arc::clone(&self.durability.journal);
            self.log.end(&journal, &actor, seq, 1, Outcome::Buffered)?;
            if record.ask {
                journal.durable(self.log.ticket).await?;
            }
            return Ok(b"null".to_vec());
        }
        let outcome = self.segment(seq, ctx, &actor_context).await;
        let waits = self.memory.run.as_ref().is_some_and(|run| run.wake.is_some());
        if action == "run" && waits && record.ask {
            // The asker hears when the run ends, in a later message.
            self.asker = ctx.defer_reply();
        }
        if record.ask {
            self.durability.journal.durable(self.log.ticket).await?;
        }
        if self.log.since_checkpoint >= self.durability.checkpoint_every {
            self.checkpoint(&actor).await;
        }
        outcome
    }

    /// Runs the run from its start in the call of message `seq`: its recorded calls replayed,
    /// then live until it waits again or ends.
    async fn segment(
        &mut self,
        seq: u64,
        ctx: &Context<Self>,
        actor_context: &ActorContext,
    ) -> Result<Vec<u8>> {
        let actor = ctx.id().to_string();
        let Some(run) = self.memory.run.clone() else { return Ok(b"null".to_vec()) };
        let calls = self.calls(seq, run.recorded.clone(), false, &actor);
        let (state, outcome, calls) = match Self::play(&run, calls, actor_context).await {
            Ok(played) => played,
            Err(error) => return Err(self.refuse(error)),
        };
        self.memory.pending = calls.pending;
        self.log.ticket = self.log.ticket.max(calls.last_ticket);
        if let Some(committed) = calls.committed {
            self.memory.query_state = Some(committed);
        }
        if let Some(error) = calls.failed {
            return Err(self.refuse(error));
        }
        if let Some(reason) = calls.diverged {
            return Err(self.refuse(Refusal::new(ErrorCode::ReplayDiverged, reason)));
        }
        let journal = Arc::clone(&self.durability.journal);
        if let Some(wake) = calls.suspended {
            let (due_ms, signal) = match &wake {
                Wake::At(due) => (*due, None),
                Wake::Signal { name, deadline } => (*deadline, Some(name.clone())),
            };
            if let Some(run) = self.memory.run.as_mut() {
                run.recorded.extend(calls.captured);
                run.wake = Some(wake);
            }
            let suspended = Outcome::Suspended { due_ms, signal };
            self.log.end(&journal, &actor, seq, calls.next_index, suspended)?;
            self.set_wake(ctx.id(), due_ms).await;
            return Ok(b"null".to_vec());
        }
        let done = match &outcome {
            Ok(_) => {
                self.state = state;
                Outcome::Replied { reply: None }
            }
            // A failed run leaves the state it started from.
            Err(_) => Outcome::Failed,
        };
        self.memory.run = None;
        self.memory.query_state = None;
        self.log.end(&journal, &actor, seq, calls.next_index, done)?;
        if let Err(error) = self.timers.clear_wake(ctx.id()).await {
            tracing::warn!(actor, error = %error, "the run's wake-up was not removed");
        }
        let reply = reply_bytes(outcome);
        if let Some(asker) = self.asker.take() {
            let _gone = asker.send(reply.clone());
        }
        reply
    }

    async fn checkpoint(&mut self, actor: &str) {
        let state = serde_json::to_vec(&state_json(&self.state)).ok();
        let extra = serde_json::to_vec(&self.memory).unwrap_or_default();
        self.log.checkpoint(state, extra, actor, &self.durability).await;
    }

    /// Rebuilds the state and the run from the checkpoint and the journal after it.
    async fn recover(&mut self, ctx: &Context<Self>) {
        let actor = ctx.id().to_string();
        let durability = Arc::clone(&self.durability);
        let recovered = match durability.journal.recover(&actor).await {
            Ok(recovered) => recovered,
            Err(error) => {
                tracing::error!(actor, error = %error, "durable workflow not recovered");
                self.log = ActorLog::damaged(error);
                return;
            }
        };
        let mut log = ActorLog::default();
        if let Some(checkpoint) = recovered.checkpoint {
            let (state, extra, from) = ActorLog::from_checkpoint(checkpoint);
            log = from;
            let restored = state
                .map(|bytes| {
                    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    from_json::<S>(json)
                })
                .transpose();
            match restored {
                Ok(state) => self.state = state.unwrap_or_default(),
                Err(error) => {
                    self.log = ActorLog::damaged(error);
                    return;
                }
            }
            self.memory = serde_json::from_slice(&extra).unwrap_or_default();
        }
        log.since_checkpoint = recovered.entries.len() as u64;
        self.log = log;
        let context = ActorContext::hosted(ctx.id().clone(), None);
        for message in group(recovered.entries) {
            self.log.seq = message.seq;
            self.log.note(&message.record, &durability);
            if let Err(error) = self.recover_message(message, &actor, &context).await {
                tracing::error!(actor, error = %error, "durable workflow not recovered");
                self.log.damage = Some(error);
                return;
            }
        }
    }

    /// What one journaled message did: a run started, a signal kept, calls recorded, a run
    /// that waited or ended (replayed whole for the state it ended with).
    async fn recover_message(
        &mut self,
        message: Journaled,
        actor: &str,
        context: &ActorContext,
    ) -> std::result::Result<(), Refusal> {
        let action = message.record.action.as_str();
        if action == "run" && self.memory.run.is_none() {
            self.memory.run = Some(RunRecord {
                seq: message.seq,
                payload: message.record.payload.clone(),
                start_state: state_json(&self.state),
                recorded: Vec::new(),
                wake: None,
            });
        } else if action != WAKE && action != "run" {
            self.memory.pending.push(Signal {
                seq: message.seq,
                action: action.to_owned(),
                payload: message.record.payload.clone(),
            });
        }
        if matches!(message.done, Some(Outcome::Buffered)) {
            return Ok(());
        }
        self.memory.forget_taken(&message.calls);
        let Some(run) = self.memory.run.as_mut() else { return Ok(()) };
        run.recorded.extend(message.calls);
        match message.done {
            Some(Outcome::Suspended { due_ms, signal }) => {
                run.wake = Some(match signal {
                    Some(name) => Wake::Signal { name, deadline: due_ms },
                    None => Wake::At(due_ms),
                });
            }
            None => run.wake = None,
            Some(Outcome::Replied { .. }) => {
                let Some(run) = self.memory.run.take() else { return Ok(()) };
                self.memory.query_state = None;
                let calls = self.calls(run.seq, run.recorded.clone(), true, actor);
                let (state, outcome, mut calls) = Self::play(&run, calls, context).await?;
                if calls.diverged.is_none() && !calls.recorded.is_empty() {
                    calls.diverged = Some(format!(
                        "the run made {} fewer calls than the journal records: the run handler \
                         is not deterministic",
                        calls.recorded.len()
                    ));
                }
                if let Some(reason) = calls.diverged {
                    return Err(Refusal::new(ErrorCode::ReplayDiverged, reason));
                }
                if outcome.is_ok() {
                    self.state = state;
                }
                self.memory.pending = calls.pending;
            }
            Some(_) => {
                self.memory.run = None;
                self.memory.query_state = None;
            }
        }
        Ok(())
    }
}

impl<S: WorkflowHandlers> Actor for DurableWorkflow<S> {
    type Msg = Delivery;
    type Reply = Result<Vec<u8>>;
    type Snapshot = Kept<S>;

    async fn handle(&mut self, delivery: Delivery, ctx: &mut Context<Self>) -> Result<Vec<u8>> {
        self.deliver(delivery, ctx).await
    }

    async fn activate(
        &mut self,
        kept: Option<Kept<S>>,
        ctx: &mut Context<Self>,
    ) -> std::result::Result<(), ExitReason> {
        match kept {
            Some(kept) => {
                self.state = kept.state;
                self.memory = kept.memory;
                self.log = kept.log;
                self.asker = kept.asker;
            }
            None => self.recover(ctx).await,
        }
        Ok(())
    }

    async fn deactivate(&mut self, ctx: &mut Context<Self>) -> Option<Kept<S>> {
        if self.log.since_checkpoint > 0 && self.log.damage.is_none() {
            self.checkpoint(&ctx.id().to_string()).await;
        }
        Some(Kept {
            state: std::mem::take(&mut self.state),
            memory: std::mem::take(&mut self.memory),
            log: std::mem::take(&mut self.log),
            asker: self.asker.take(),
        })
    }

    fn inspect(&self) -> Option<Value> {
        self.memory.query_state.clone().or_else(|| self.state.state_json())
    }
}
