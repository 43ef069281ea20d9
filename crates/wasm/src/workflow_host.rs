//! The `workflow` and `timers` interfaces of the world: durable steps, sleeps and signal waits
//! of a workflow's run, and timers for every actor.
//!
//! A run does not keep its instance while it waits: `sleep` and `wait-signal` answer
//! `suspended` when the time or signal has not come, the SDK lets that unwind the run, and the
//! host resumes the run later by calling it again from the start, every host call answered
//! from the journal until the run reaches the point it waited at.

use std::time::Duration;

use plexspaces_durable::now_ms;
use plexspaces_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::{
    bindings::{HostError, plexspaces::actor},
    ctx::Ctx,
    durable::{self, CallKind, Replayed, journaled, journaled_value},
};

/// The failure code that unwinds a waiting run.
pub(crate) const SUSPENDED: &str = "suspended";

/// Why a run stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Wake {
    /// A sleep that ends at this time (ms since the Unix epoch).
    At(u64),
    /// A wait for the signal `name`, which gives up at `deadline` (ms since the Unix epoch).
    Signal {
        /// The signal's action.
        name: String,
        /// When the wait ends without it.
        deadline: u64,
    },
}

/// A signal journaled for the workflow and not yet taken by its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Signal {
    /// The message's sequence.
    pub(crate) seq: u64,
    /// Its action.
    pub(crate) action: String,
    /// The whole payload (JSON, action included).
    pub(crate) payload: Vec<u8>,
}

/// What a run's host calls work with during one of its calls.
#[derive(Debug, Default)]
pub(crate) struct RunCalls {
    /// Signals not yet taken.
    pub(crate) pending: Vec<Signal>,
    /// The state the run committed last.
    pub(crate) committed: Option<Vec<u8>>,
    /// Set when the run was told to wait.
    pub(crate) suspended: Option<Wake>,
    /// The idempotency keys of the steps the run is inside.
    pub(crate) steps: Vec<String>,
    /// The run's sequence: the key of what it does outside steps.
    pub(crate) run_seq: u64,
}

fn no_run() -> HostError {
    HostError {
        code: ErrorCode::InvalidState.as_str().to_owned(),
        message: "host.step, host.sleep and host.wait_signal work in the run handler of a \
                  @workflow_actor with the durability facet"
            .to_owned(),
        error_type: None,
    }
}

fn suspended(what: &str) -> HostError {
    HostError {
        code: SUSPENDED.to_owned(),
        message: format!("the run waits for {what}; it resumes by replay"),
        error_type: None,
    }
}

impl Ctx {
    /// Runs `work` on the run's calls, or refuses outside a durable run.
    fn with_run<T>(&self, work: impl FnOnce(&mut RunCalls) -> T) -> Result<T, HostError> {
        let mut slot = self.journal.lock();
        let run = slot.as_mut().and_then(|journal| journal.workflow.as_mut()).ok_or_else(no_run)?;
        Ok(work(run))
    }
}

impl actor::workflow::Host for Ctx {
    async fn step_begin(&mut self, name: String) -> Result<Option<String>, HostError> {
        self.with_run(|_| ())?;
        let mut slot = self.journal.lock();
        let Some(journal) = slot.as_mut() else { return Err(no_run()) };
        if let Some(reason) = &journal.diverged {
            return Err(durable::diverged(reason.clone()));
        }
        if let Some((kind, record)) = journal.recorded.front() {
            if *kind != CallKind::StepBegin as u16 {
                let reason =
                    format!("step {name:?} begins where the journal records call kind {kind}");
                journal.diverged = Some(reason.clone());
                return Err(durable::diverged(reason));
            }
            let (recorded_name, key): (String, String) =
                postcard::from_bytes(record).unwrap_or_default();
            if recorded_name != name {
                let reason =
                    format!("step {name:?} begins where the journal has step {recorded_name:?}");
                journal.diverged = Some(reason.clone());
                return Err(durable::diverged(reason));
            }
            // The step's end, at the same depth: it ran, and its result stands for it.
            let mut depth = 0usize;
            let mut end = None;
            for (position, (kind, record)) in journal.recorded.iter().enumerate().skip(1) {
                if *kind == CallKind::StepBegin as u16 {
                    depth += 1;
                } else if *kind == CallKind::StepEnd as u16 {
                    if depth == 0 {
                        end = Some((position, record.clone()));
                        break;
                    }
                    depth -= 1;
                }
            }
            return Ok(match end {
                Some((position, record)) => {
                    journal.recorded.drain(..=position);
                    let (_, result): (String, String) =
                        postcard::from_bytes(&record).unwrap_or_default();
                    Some(result)
                }
                None => {
                    // Interrupted inside the step: it runs again, its recorded calls replayed.
                    journal.recorded.pop_front();
                    if let Some(run) = journal.workflow.as_mut() {
                        run.steps.push(key);
                    }
                    None
                }
            });
        }
        if journal.complete {
            let reason = format!("step {name:?} begins past the calls the journal records");
            journal.diverged = Some(reason.clone());
            return Err(durable::diverged(reason));
        }
        let key = format!("{}:{}:{}", journal.actor, journal.seq, journal.next_index);
        journal.append_call(CallKind::StepBegin, &(name, key.clone()));
        if let Some(run) = journal.workflow.as_mut() {
            run.steps.push(key);
        }
        Ok(None)
    }

    async fn step_end(&mut self, name: String, result: String) -> Result<(), HostError> {
        self.with_run(|run| run.steps.pop())?;
        match durable::replayed::<(String, String)>(&self.journal, CallKind::StepEnd) {
            Replayed::Value(_) => return Ok(()),
            Replayed::Diverged(error) => return Err(error),
            Replayed::Live => {}
        }
        durable::record(&self.journal, CallKind::StepEnd, &(name, result));
        // A journaled step never runs again: its record is durable before the run goes on.
        durable::barrier(&self.journal).await
    }

    async fn sleep(&mut self, ms: u64) -> Result<(), HostError> {
        self.with_run(|_| ())?;
        let due =
            journaled_value(&self.journal, CallKind::SleepDue, || now_ms().saturating_add(ms));
        if now_ms() >= due {
            return Ok(());
        }
        self.with_run(|run| run.suspended = Some(Wake::At(due)))?;
        Err(suspended(&format!("a sleep until {due}")))
    }

    async fn wait_signal(&mut self, name: String, timeout_ms: u64) -> Result<bool, HostError> {
        self.with_run(|_| ())?;
        let deadline = journaled_value(&self.journal, CallKind::WaitDeadline, || {
            now_ms().saturating_add(timeout_ms)
        });
        match durable::replayed::<bool>(&self.journal, CallKind::WaitResolved) {
            Replayed::Value(found) => return Ok(found),
            Replayed::Diverged(error) => return Err(error),
            Replayed::Live => {}
        }
        let pending =
            self.with_run(|run| run.pending.iter().any(|signal| signal.action == name))?;
        let resolved = if pending {
            true
        } else if now_ms() >= deadline {
            false
        } else {
            self.with_run(|run| {
                run.suspended = Some(Wake::Signal { name: name.clone(), deadline })
            })?;
            return Err(suspended(&format!("the signal {name:?}")));
        };
        durable::record(&self.journal, CallKind::WaitResolved, &resolved);
        Ok(resolved)
    }

    async fn take_signals(&mut self) -> Result<Vec<String>, HostError> {
        self.with_run(|_| ())?;
        match durable::replayed::<Vec<(u64, String)>>(&self.journal, CallKind::TakeSignals) {
            Replayed::Value(taken) => return Ok(taken.into_iter().map(|(_, text)| text).collect()),
            Replayed::Diverged(error) => return Err(error),
            Replayed::Live => {}
        }
        let taken: Vec<(u64, String)> = self.with_run(|run| {
            std::mem::take(&mut run.pending)
                .into_iter()
                .map(|signal| (signal.seq, String::from_utf8_lossy(&signal.payload).into_owned()))
                .collect()
        })?;
        durable::record(&self.journal, CallKind::TakeSignals, &taken);
        Ok(taken.into_iter().map(|(_, text)| text).collect())
    }

    async fn commit(&mut self, state: Vec<u8>) -> Result<(), HostError> {
        self.with_run(|_| ())?;
        let state = match durable::replayed::<Vec<u8>>(&self.journal, CallKind::Commit) {
            Replayed::Value(recorded) => recorded,
            Replayed::Diverged(error) => return Err(error),
            Replayed::Live => {
                durable::record(&self.journal, CallKind::Commit, &state);
                state
            }
        };
        self.with_run(|run| run.committed = Some(state))
    }

    async fn idempotency_key(&mut self) -> String {
        let slot = self.journal.lock();
        let Some(journal) = slot.as_ref() else {
            return self.serving.as_ref().map(ToString::to_string).unwrap_or_default();
        };
        match journal.workflow.as_ref() {
            Some(run) => match run.steps.last() {
                Some(key) => key.clone(),
                None => format!("{}:{}", journal.actor, run.run_seq),
            },
            None => format!("{}:{}", journal.actor, journal.seq),
        }
    }
}

impl actor::timers::Host for Ctx {
    async fn schedule(
        &mut self,
        action: String,
        payload: String,
        delay_ms: u64,
        durable: bool,
    ) -> Result<String, HostError> {
        journaled!(self, CallKind::TimerSchedule, effect = true, |this| {
            if action.is_empty() {
                return Err(crate::services::invalid(
                    "a timer needs the action its message carries",
                ));
            }
            let payload = crate::services::json(&payload, "payload")?;
            if !payload.is_object() {
                return Err(crate::services::invalid("a timer's payload is a JSON object"));
            }
            let me = this.serving()?.clone();
            let delay = Duration::from_millis(delay_ms);
            let timers = std::sync::Arc::clone(&this.services.timers);
            Ok(timers.schedule(&me, &action, payload, delay, durable).await?)
        })
    }

    async fn cancel(&mut self, id: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::TimerCancel, effect = true, |this| {
            let me = this.serving()?.clone();
            let timers = std::sync::Arc::clone(&this.services.timers);
            Ok(timers.cancel(&me, &id).await?)
        })
    }
}
