//! Durable workflows: a run that outlives its messages. `run` starts it, journaled like any
//! message; each time it waits (`host.sleep`, `host.wait_signal`) its guest call ends and the
//! instance goes back to the pool. The run resumes in the call of a later message (its
//! wake-up, or the signal it waits for): the guest runs `run` again from its starting state,
//! every host call answered from the calls recorded so far, and carries on live. Signals are
//! journaled and kept until the run takes them; queries are answered from the state the run
//! committed last, without touching the journal.

use std::sync::Arc;

use plexspaces_core::Context;
use plexspaces_storage::journal::Outcome as JournalOutcome;
use plexspaces_types::ErrorCode;
use serde::{Deserialize, Serialize};

use plexspaces_durable::{Admission, Admit, Admitted, Durability, Journaled, now_ms};

use super::{Invocation, Memory, WasmActor};
use crate::{
    Error, Result,
    durable::{CallJournal, CallKind},
    services::WAKE,
    workflow_host::{RunCalls, Signal, Wake},
};

/// How long after its start a run interrupted by a crash is resumed, at the latest.
const RESUME_AFTER_MS: u64 = 1000;

/// A run in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RunRecord {
    /// The `run` message's sequence.
    seq: u64,
    /// Its payload.
    payload: Vec<u8>,
    /// The state the run started from: every resumption starts from it.
    start_state: Option<Vec<u8>>,
    /// The results of its host calls so far, in order.
    recorded: Vec<(u16, Vec<u8>)>,
    /// What it waits for; `None` while it runs (or when a crash interrupted it).
    wake: Option<Wake>,
}

/// What a workflow keeps beside its state, in its checkpoints too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct WorkflowMemory {
    run: Option<RunRecord>,
    /// Signals not yet taken by a run.
    pending: Vec<Signal>,
    /// The state the run committed last (queries answer from it while it is in progress).
    query_state: Option<Vec<u8>>,
}

impl WorkflowMemory {
    pub(super) fn decode(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            return Self::default();
        }
        postcard::from_bytes(bytes).unwrap_or_default()
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        if self.run.is_none() && self.pending.is_empty() {
            return Vec::new();
        }
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Whether a wake-up finds the run ready to go on.
    /// When a run in progress is due to go on: its sleep's end or its wait's deadline, or at
    /// once when a crash interrupted it; `None` without a run.
    pub(super) fn resume_due(&self, now: u64) -> Option<u64> {
        self.run.as_ref().map(|run| match &run.wake {
            None => now,
            Some(Wake::At(due)) => *due,
            Some(Wake::Signal { deadline, .. }) => *deadline,
        })
    }

    fn ready(&self, now: u64) -> bool {
        match self.run.as_ref().map(|run| &run.wake) {
            None => false,
            // Interrupted by a crash: it goes on at once.
            Some(None) => true,
            Some(Some(Wake::At(due))) => now >= *due,
            Some(Some(Wake::Signal { name, deadline })) => {
                now >= *deadline || self.pending.iter().any(|signal| &signal.action == name)
            }
        }
    }

    /// Forgets the signals a recorded take handed to the run.
    fn forget_taken(&mut self, calls: &[(u16, Vec<u8>)]) {
        for (kind, result) in calls {
            if *kind == CallKind::TakeSignals as u16
                && let Ok(taken) = postcard::from_bytes::<Vec<(u64, String)>>(result)
            {
                self.pending.retain(|signal| !taken.iter().any(|(seq, _)| *seq == signal.seq));
            }
            if *kind == CallKind::Commit as u16
                && let Ok(state) = postcard::from_bytes::<Vec<u8>>(result)
            {
                self.query_state = Some(state);
            }
        }
    }
}

impl WasmActor {
    /// The kind of the class's handler for `action` (`query`, `signal`, `run`), if it has one.
    fn handler_kind(&self, action: &str) -> Option<String> {
        let binding = self.served.current();
        let class = binding.module.description().classes.get(binding.class as usize)?;
        class.handlers.iter().find(|handler| handler.name == action).map(|h| h.kind.clone())
    }

    /// A message to a durable workflow: a query answered from the committed state, a wake-up,
    /// `run`, or a signal.
    pub(super) async fn handle_workflow(
        &mut self,
        msg: Invocation,
        admission: Option<Admission>,
        ctx: &mut Context<Self>,
        durability: &Arc<Durability>,
        mut memory: Memory,
    ) -> (Result<Vec<u8>>, Memory) {
        let mut admission = admission;
        // Told once: the first answer stands.
        let mut admit = |admitted: Result<Admitted>| {
            if let Some(admission) = admission.take() {
                let _sender_gone = admission.send(admitted.map_err(|error| (&error).into()));
            }
        };
        let action = msg.action.clone();
        if self.handler_kind(&action).as_deref() == Some("query") {
            admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: None }));
            // Never journaled: answered from the committed state on any instance.
            let committed = memory.workflow.query_state.clone().or_else(|| self.state.clone());
            let saved = std::mem::replace(&mut self.state, committed);
            self.holder = None;
            let (reply, _) = self.serve(&action, &msg.payload, ctx, None).await;
            self.state = saved;
            self.holder = None;
            return (reply, memory);
        }
        if action == WAKE {
            admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: None }));
            if !memory.workflow.ready(now_ms()) {
                return (Ok(b"null".to_vec()), memory);
            }
        }
        if action == "run" && memory.workflow.run.is_some() {
            let error = Error::new(
                ErrorCode::WorkflowRunning,
                format!("{} has a run in progress: signal it, or query it", ctx.id()),
            );
            admit(Err(error.clone()));
            return (Err(error), memory);
        }
        // Journaled, and dropped when seen before, as every durable message is.
        let actor = ctx.id().to_string();
        let (seq, record) = match memory.admit(&msg, &actor, durability) {
            Ok(Admit::New(seq, record)) => {
                // A run is acknowledged once its wake-up is stored too (below).
                if action != "run" {
                    admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: None }));
                }
                (seq, record)
            }
            Ok(Admit::Duplicate { first, reply }) => {
                admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: first }));
                return (Ok(reply), memory);
            }
            Err(error) => {
                admit(Err(error.clone()));
                return (Err(error), memory);
            }
        };
        if action == "run" {
            memory.workflow.run = Some(RunRecord {
                seq,
                payload: record.payload.clone(),
                start_state: self.state.clone(),
                recorded: Vec::new(),
                wake: None,
            });
            // The run is in progress: a restart of the node resumes it. Due a little later, so
            // that a run that ends or waits in this message replaces it before it fires.
            let timers = Arc::clone(&self.served.current().module.services().timers);
            if let Err(error) = timers.set_wake(ctx.id(), now_ms() + RESUME_AFTER_MS).await {
                tracing::warn!(actor, error = %error, "the run's wake-up was not stored");
            }
            admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: None }));
        } else if action != WAKE {
            memory.workflow.pending.push(Signal {
                seq,
                action: action.clone(),
                payload: record.payload.clone(),
            });
            // The run goes on in this message when this is the signal it waits for, when its
            // time came, or when a crash interrupted it; otherwise the signal waits.
            if !memory.workflow.ready(now_ms()) {
                let outcome =
                    memory.end(&durability.journal, &actor, seq, 1, JournalOutcome::Buffered);
                return (outcome.map(|()| b"null".to_vec()).map_err(Error::from), memory);
            }
        }
        let outcome = self.segment(seq, ctx, durability, &mut memory).await;
        let suspended = memory.workflow.run.as_ref().is_some_and(|run| run.wake.is_some());
        if action == "run" && suspended && record.ask {
            // The asker hears when the run ends, in a later message.
            memory.asker = ctx.defer_reply();
        }
        if record.ask
            && let Err(error) = durability.journal.durable(memory.ticket).await
        {
            return (Err(Error::new(error.code, error.message)), memory);
        }
        if memory.since_checkpoint >= durability.checkpoint_every {
            Self::checkpoint(self.state.clone(), &actor, &mut memory, durability).await;
        }
        (outcome, memory)
    }

    /// Runs the run from its start, in the call of message `seq`: its recorded calls replayed,
    /// then live until it waits again or ends.
    async fn segment(
        &mut self,
        seq: u64,
        ctx: &Context<Self>,
        durability: &Arc<Durability>,
        memory: &mut Memory,
    ) -> Result<Vec<u8>> {
        let actor = ctx.id().to_string();
        let Some(run) = memory.workflow.run.clone() else { return Ok(b"null".to_vec()) };
        let mut calls = CallJournal::replay(
            Arc::clone(&durability.journal),
            actor.clone(),
            seq,
            run.recorded.iter().cloned().collect(),
            false,
        );
        calls.next_index = 1;
        calls.last_ticket = memory.ticket;
        calls.workflow = Some(RunCalls {
            pending: std::mem::take(&mut memory.workflow.pending),
            run_seq: run.seq,
            ..RunCalls::default()
        });
        calls.captured = Some(Vec::new());
        let saved = std::mem::replace(&mut self.state, run.start_state.clone());
        self.holder = None;
        let (outcome, calls) = self.serve("run", &run.payload, ctx, Some(calls)).await;
        self.holder = None;
        let Some(mut calls) = calls else {
            self.state = saved;
            return outcome;
        };
        let run_calls = calls.workflow.take().unwrap_or_default();
        memory.workflow.pending = run_calls.pending;
        if let Some(committed) = run_calls.committed {
            memory.workflow.query_state = Some(committed);
        }
        if let Some(error) = calls.failed.take() {
            self.state = saved;
            memory.damage = Some(error.clone());
            return Err(error.into());
        }
        if let Err(error) = &outcome
            && error.code == ErrorCode::ReplayDiverged
        {
            self.state = saved;
            memory.refuse_all(error);
            return outcome;
        }
        let captured = calls.captured.take().unwrap_or_default();
        let timers = Arc::clone(&self.served.current().module.services().timers);
        let index = calls.next_index;
        match (outcome, run_calls.suspended) {
            (Err(_), Some(wake)) => {
                self.state = saved;
                let (due_ms, signal) = match &wake {
                    Wake::At(due) => (*due, None),
                    Wake::Signal { name, deadline } => (*deadline, Some(name.clone())),
                };
                if let Some(run) = memory.workflow.run.as_mut() {
                    run.recorded.extend(captured);
                    run.wake = Some(wake);
                }
                let suspended = JournalOutcome::Suspended { due_ms, signal };
                memory.end(&durability.journal, &actor, seq, index, suspended)?;
                if let Err(error) = timers.set_wake(ctx.id(), due_ms).await {
                    tracing::warn!(actor, error = %error, "the run's wake-up was not stored");
                }
                Ok(b"null".to_vec())
            }
            (outcome, _) => {
                let done = match &outcome {
                    Ok(_) => JournalOutcome::Replied { reply: None },
                    Err(_) => {
                        // A failed run leaves the state it started from.
                        self.state = saved;
                        JournalOutcome::Failed
                    }
                };
                memory.workflow.run = None;
                memory.workflow.query_state = None;
                memory.end(&durability.journal, &actor, seq, index, done)?;
                if let Err(error) = timers.clear_wake(ctx.id()).await {
                    tracing::warn!(actor, error = %error, "the run's wake-up was not removed");
                }
                if let Some(asker) = memory.asker.take() {
                    let _gone = asker.send(outcome.clone());
                }
                outcome
            }
        }
    }

    /// Rebuilds a workflow's run from one journaled message; the state changes only when a run
    /// ended, by replaying it whole.
    pub(super) async fn recover_workflow_message(
        &mut self,
        message: Journaled,
        ctx: &Context<Self>,
        durability: &Arc<Durability>,
        memory: &mut Memory,
    ) {
        let action = message.record.action.as_str();
        let calls: Vec<(u16, Vec<u8>)> = message.calls.into_iter().collect();
        if action == "run" && memory.workflow.run.is_none() {
            memory.workflow.run = Some(RunRecord {
                seq: message.seq,
                payload: message.record.payload.clone(),
                start_state: self.state.clone(),
                recorded: Vec::new(),
                wake: None,
            });
        } else if action != WAKE && action != "run" {
            memory.workflow.pending.push(Signal {
                seq: message.seq,
                action: action.to_owned(),
                payload: message.record.payload.clone(),
            });
        }
        if matches!(message.done, Some(JournalOutcome::Buffered)) {
            return;
        }
        memory.workflow.forget_taken(&calls);
        let Some(run) = memory.workflow.run.as_mut() else { return };
        run.recorded.extend(calls);
        match message.done {
            Some(JournalOutcome::Suspended { due_ms, signal }) => {
                run.wake = Some(match signal {
                    Some(name) => Wake::Signal { name, deadline: due_ms },
                    None => Wake::At(due_ms),
                });
            }
            None => run.wake = None,
            Some(JournalOutcome::Replied { .. }) => {
                // The run ended: replayed whole, it makes the state it ended with.
                let run = memory.workflow.run.take();
                memory.workflow.query_state = None;
                if let Some(run) = run {
                    self.replay_run(run, ctx, durability, memory).await;
                }
            }
            Some(_) => {
                memory.workflow.run = None;
                memory.workflow.query_state = None;
            }
        }
    }

    async fn replay_run(
        &mut self,
        run: RunRecord,
        ctx: &Context<Self>,
        durability: &Arc<Durability>,
        memory: &mut Memory,
    ) {
        let mut calls = CallJournal::replay(
            Arc::clone(&durability.journal),
            ctx.id().to_string(),
            run.seq,
            run.recorded.into_iter().collect(),
            true,
        );
        calls.workflow = Some(RunCalls { run_seq: run.seq, ..RunCalls::default() });
        self.state = run.start_state;
        self.holder = None;
        let (outcome, _) = self.serve("run", &run.payload, ctx, Some(calls)).await;
        self.holder = None;
        if let Err(error) = outcome
            && error.code == ErrorCode::ReplayDiverged
        {
            memory.refuse_all(&error);
        }
    }
}
