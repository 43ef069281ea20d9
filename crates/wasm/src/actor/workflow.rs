//! Durable workflows: a run that outlives its messages. `run` starts it, journaled like any
//! message; each time it waits (`host.sleep`, `host.wait_signal`) its guest call ends and the
//! instance goes back to the pool. The run resumes in the call of a later message (its
//! wake-up, or the signal it waits for): the guest runs `run` again from its starting state,
//! every host call answered from the calls recorded so far, and carries on live. Signals are
//! journaled and kept until the run takes them; queries are answered from the state the run
//! committed last, without touching the journal.

use std::sync::Arc;

use plexspaces_core::Context;
use plexspaces_storage::journal::{Entry, MessageRecord, Outcome as JournalOutcome};
use plexspaces_types::ErrorCode;
use serde::{Deserialize, Serialize};

use super::{Admission, Admitted, Durability, Invocation, Journaled, Memory, WasmActor, now_ms};
use crate::{
    Error, Result,
    durable::{CallJournal, CallKind},
    services::WAKE,
    workflow_host::{RunCalls, Signal, Wake},
};

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
        let mut admit = |answer: Result<Admitted>| {
            if let Some(admission) = admission.take() {
                let _sender_gone = admission.send(answer);
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
        let (seq, record) = match self.admit_durable(&msg, &mut memory, durability, ctx) {
            Ok(Some(admitted)) => {
                admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: None }));
                admitted
            }
            Ok(None) => {
                admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: msg.message_id.clone() }));
                return (Ok(b"null".to_vec()), memory);
            }
            Err(error) => {
                admit(Err(error.clone()));
                return (Err(error), memory);
            }
        };
        let actor = ctx.id().to_string();
        if action == "run" {
            memory.workflow.run = Some(RunRecord {
                seq,
                payload: record.payload.clone(),
                start_state: self.state.clone(),
                recorded: Vec::new(),
                wake: None,
            });
            // The run is in progress: a restart of the node resumes it.
            let timers = Arc::clone(&self.served.current().module.services().timers);
            if let Err(error) = timers.set_wake(ctx.id(), now_ms()).await {
                tracing::warn!(actor, error = %error, "the run's wake-up was not stored");
            }
        } else if action != WAKE {
            memory.workflow.pending.push(Signal {
                seq,
                action: action.clone(),
                payload: record.payload.clone(),
            });
            let waits_for_it = matches!(
                memory.workflow.run.as_ref().and_then(|run| run.wake.as_ref()),
                Some(Wake::Signal { name, .. }) if *name == action
            );
            if !waits_for_it {
                let outcome = self.end(&actor, seq, 1, JournalOutcome::Buffered, &mut memory);
                return (outcome.map(|()| b"null".to_vec()), memory);
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

    /// Journals a durable message unless its origin or idempotency key was seen: its sequence
    /// and record, or `None` for a duplicate.
    fn admit_durable(
        &self,
        msg: &Invocation,
        memory: &mut Memory,
        durability: &Durability,
        ctx: &Context<Self>,
    ) -> Result<Option<(u64, MessageRecord)>> {
        if let Some(origin) = &msg.origin
            && let Some(mark) = memory.senders.get(&origin.sender)
            && !origin.is_after(mark)
        {
            return Ok(None);
        }
        if let Some(key) = &msg.idempotency_key
            && memory.keys.contains_key(key)
        {
            return Ok(None);
        }
        let record = MessageRecord {
            action: msg.action.clone(),
            payload: msg.payload.clone(),
            message_id: msg.message_id.clone().unwrap_or_default(),
            idempotency_key: msg.idempotency_key.clone(),
            origin: msg.origin.clone(),
            admitted_ms: now_ms(),
            ask: msg.message_id.is_none(),
        };
        let seq = memory.seq + 1;
        let entry = Entry::Message(record.clone());
        let ticket = durability
            .journal
            .append(&ctx.id().to_string(), seq, 0, &entry)
            .map_err(|error| Error::new(error.code, error.message))?;
        memory.seq = seq;
        memory.ticket = ticket;
        memory.note(&record, durability);
        Ok(Some((seq, record)))
    }

    /// Journals the end of message `seq` at `index`.
    fn end(
        &self,
        actor: &str,
        seq: u64,
        index: u32,
        outcome: JournalOutcome,
        memory: &mut Memory,
    ) -> Result<()> {
        let Some((durability, _)) = &self.durable else { return Ok(()) };
        match durability.journal.append(actor, seq, index, &Entry::Done(outcome)) {
            Ok(ticket) => {
                memory.ticket = ticket;
                memory.since_checkpoint += u64::from(index) + 1;
                Ok(())
            }
            Err(error) => {
                let error = Error::new(error.code, error.message);
                memory.damage = Some(error.clone());
                Err(error)
            }
        }
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
            let error = Error::new(error.code, error.message);
            memory.damage = Some(error.clone());
            return Err(error);
        }
        if let Err(error) = &outcome
            && error.code == ErrorCode::ReplayDiverged
        {
            self.state = saved;
            memory.damage = Some(error.clone());
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
                self.end(&actor, seq, index, JournalOutcome::Suspended { due_ms, signal }, memory)?;
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
                self.end(&actor, seq, index, done, memory)?;
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
            memory.damage = Some(error);
        }
    }
}
