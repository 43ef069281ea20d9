//! Timers of actors: a message to the actor after a delay. A durable timer (a reminder, or the
//! wake-up of a workflow's run) is a row of the journal, stored before `schedule` returns,
//! armed again when the node starts, and fires once per due time: its message carries the
//! timer's id and due time as idempotency key, so a durable actor that got it before a crash
//! drops it the second time. A workflow's wake-up stays stored until its run ends, so a run
//! interrupted by a crash resumes when the node starts again.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use plexspaces_durable::now_ms;
use plexspaces_sdk::Message;
use plexspaces_storage::journal::{JournalBackend, Timer};
use plexspaces_types::{ActorId, ErrorCode, Refusal};
use plexspaces_wasm::{BoxFuture, TimerService, WAKE};
use serde_json::Value;
use tokio::task::AbortHandle;

use crate::{Api, api::Inner, payload::JSON, registry::Envelope};

/// The id of a workflow's wake-up timer (one per actor).
const WAKE_ID: &str = "__wake";

/// The longest delay a timer takes: ten years.
const MAX_DELAY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The node's timers: cheap to clone.
#[derive(Clone)]
pub(crate) struct NodeTimers {
    inner: Arc<Shared>,
}

struct Shared {
    api: OnceLock<Weak<Inner>>,
    journal: Arc<dyn JournalBackend>,
    next: AtomicU64,
    /// The armed timers, by (actor, id).
    armed: Mutex<HashMap<(String, String), AbortHandle>>,
}

impl std::fmt::Debug for NodeTimers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTimers").field("armed", &self.inner.armed.lock().len()).finish()
    }
}

impl NodeTimers {
    pub(crate) fn new(journal: Arc<dyn JournalBackend>) -> Self {
        Self {
            inner: Arc::new(Shared {
                api: OnceLock::new(),
                journal,
                next: AtomicU64::new(1),
                armed: Mutex::default(),
            }),
        }
    }

    pub(crate) fn connect(&self, api: &Api) {
        let _already = self.inner.api.set(api.downgrade());
    }

    /// Arms every stored timer: reminders and the wake-ups of runs in progress.
    pub(crate) async fn restore(&self) {
        match self.inner.journal.timers().await {
            Ok(timers) => {
                let count = timers.len();
                for timer in timers {
                    self.arm(timer, true);
                }
                tracing::info!(count, "stored timers armed");
            }
            Err(error) => tracing::error!(error = %error, "the stored timers cannot be read"),
        }
    }

    /// Disarms and forgets every timer of `actor` (it was deleted; its rows went with its
    /// journal).
    pub(crate) fn forget(&self, actor: &ActorId) {
        let actor = actor.to_string();
        self.inner.armed.lock().retain(|(owner, _), task| {
            let keep = *owner != actor;
            if !keep {
                task.abort();
            }
            keep
        });
    }

    fn arm(&self, timer: Timer, durable: bool) {
        let key = (timer.actor.clone(), timer.id.clone());
        let shared = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            let wait = Duration::from_millis(timer.due_ms.saturating_sub(now_ms()));
            tokio::time::sleep(wait).await;
            let fired = fire(&shared, &timer, durable);
            if let Err(error) = &fired {
                tracing::warn!(actor = %timer.actor, timer = %timer.id, error = %error.message, "timer not delivered");
            }
            let wake = timer.id == WAKE_ID;
            // A wake-up stays armed in the journal until its run ends; a delivered timer, or
            // one whose actor is gone, is done.
            if durable
                && !wake
                && let Err(error) = shared.journal.cancel_timer(&timer.actor, &timer.id).await
            {
                tracing::warn!(actor = %timer.actor, error = %error, "a fired timer stays stored");
            }
            // Done: forgotten, unless a newer timer of the same id took its place.
            let key = (timer.actor.clone(), timer.id.clone());
            let mut armed = shared.armed.lock();
            if armed.get(&key).is_some_and(|task| task.id() == tokio::task::id()) {
                armed.remove(&key);
            }
        });
        if let Some(previous) = self.inner.armed.lock().insert(key, task.abort_handle()) {
            previous.abort();
        }
    }
}

/// Tells the actor its timer's message.
fn fire(shared: &Shared, timer: &Timer, durable: bool) -> Result<(), crate::Error> {
    let api = shared
        .api
        .get()
        .and_then(Api::upgrade)
        .ok_or_else(|| crate::Error::new(ErrorCode::Unavailable, "the node is stopping"))?;
    let id = ActorId::parse(&timer.actor)
        .map_err(|error| crate::Error::new(ErrorCode::Internal, error.to_string()))?;
    let kind = api.kind(&id)?;
    let message = Message {
        action: timer.action.clone().into(),
        payload: timer.payload.clone(),
        content_type: JSON.into(),
    };
    let envelope = Envelope {
        idempotency_key: durable.then(|| format!("timer:{}:{}", timer.id, timer.due_ms)),
        ..Envelope::named(api.next_message_id())
    };
    kind.tell(api.system(), id, message, envelope)
}

fn refusal(error: crate::Error) -> Refusal {
    Refusal::new(error.code, error.message)
}

impl TimerService for NodeTimers {
    fn schedule<'a>(
        &'a self,
        actor: &'a ActorId,
        action: &'a str,
        payload: Value,
        delay: Duration,
        durable: bool,
    ) -> BoxFuture<'a, Result<String, Refusal>> {
        Box::pin(async move {
            if delay > MAX_DELAY {
                return Err(Refusal::new(
                    ErrorCode::InvalidArguments,
                    "a timer's delay is at most ten years",
                ));
            }
            if action.starts_with("__") {
                return Err(Refusal::new(
                    ErrorCode::InvalidArguments,
                    "actions starting with __ are the node's",
                ));
            }
            let mut body = match payload {
                Value::Object(object) => object,
                _ => {
                    return Err(Refusal::new(
                        ErrorCode::InvalidArguments,
                        "a timer's payload is a JSON object",
                    ));
                }
            };
            body.insert("action".to_owned(), Value::String(action.to_owned()));
            let payload = serde_json::to_vec(&Value::Object(body))
                .map_err(|error| Refusal::new(ErrorCode::Internal, error.to_string()))?;
            let sequence = self.inner.next.fetch_add(1, Ordering::Relaxed);
            let id = format!("t{:x}-{sequence}", now_ms());
            let due_ms =
                now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            let timer = Timer {
                actor: actor.to_string(),
                id: id.clone(),
                due_ms,
                action: action.to_owned(),
                payload,
            };
            if durable {
                self.inner.journal.set_timer(&timer).await?;
            }
            self.arm(timer, durable);
            Ok(id)
        })
    }

    fn cancel<'a>(
        &'a self,
        actor: &'a ActorId,
        id: &'a str,
    ) -> BoxFuture<'a, Result<bool, Refusal>> {
        Box::pin(async move {
            let key = (actor.to_string(), id.to_owned());
            let task = self.inner.armed.lock().remove(&key);
            let pending = task.is_some_and(|task| {
                let pending = !task.is_finished();
                task.abort();
                pending
            });
            self.inner.journal.cancel_timer(&key.0, id).await?;
            Ok(pending)
        })
    }

    fn set_wake<'a>(
        &'a self,
        actor: &'a ActorId,
        due_ms: u64,
    ) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            let timer = Timer {
                actor: actor.to_string(),
                id: WAKE_ID.to_owned(),
                due_ms,
                action: WAKE.to_owned(),
                payload: format!("{{\"action\":\"{WAKE}\"}}").into_bytes(),
            };
            self.inner.journal.set_timer(&timer).await?;
            self.arm(timer, true);
            Ok(())
        })
    }

    fn clear_wake<'a>(&'a self, actor: &'a ActorId) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            let key = (actor.to_string(), WAKE_ID.to_owned());
            if let Some(task) = self.inner.armed.lock().remove(&key) {
                task.abort();
            }
            self.inner
                .journal
                .cancel_timer(&key.0, WAKE_ID)
                .await
                .map_err(|error| refusal(crate::Error::new(error.code, error.message)))
        })
    }
}
