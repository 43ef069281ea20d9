//! A native SDK actor with the `durability` facet: the GenServer (or GenFSM, GenEvent) hosted
//! inside an actor that journals each message before its handler runs, acknowledges a tell
//! once that entry is durable, journals how the handler ended (a reply needs no entry unless it
//! is kept for a durable asker: the next message implies it, see
//! `plexspaces_durable::ActorLog::finish`), checkpoints the state (as the JSON its serde gives)
//! every N entries and when it deactivates, and recovers on activation
//! from its checkpoint and the journal after it. A native handler makes no host calls the
//! journal must answer, so replay is the journaled messages handled again, facets left out and
//! no timer set; the last message, which the crash may have interrupted, runs to its end again.

use std::sync::Arc;

use plexspaces_core::{Actor, Context, ExitReason};
use plexspaces_durable::{
    ActorLog, Admission, Admit, Admitted, Durability, Ended, answer, arrival, group,
    implied_replied,
};
use plexspaces_sdk::{ActorContext, ActorState, BehaviorError, GenServer, Handlers, Message};
use plexspaces_storage::journal::{Origin, Outcome};
use plexspaces_types::{ErrorCode, Refusal};

use crate::{Error, Result};

/// A message for a durable native actor.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) msg: Message,
    /// The tell's message id; `None` for an ask.
    pub(crate) message_id: Option<String>,
    /// The deterministic id of a durable sender's call.
    pub(crate) origin: Option<Origin>,
    /// The client's `Idempotency-Key`.
    pub(crate) idempotency_key: Option<String>,
    /// Told once the message is journaled (or found a duplicate).
    pub(crate) admission: Option<Admission>,
}

impl Delivery {
    /// A tell, with what its envelope carries.
    pub(crate) fn told(msg: Message, envelope: crate::registry::Envelope) -> Self {
        Self {
            msg,
            message_id: Some(envelope.message_id),
            origin: envelope.origin,
            idempotency_key: envelope.idempotency_key,
            admission: envelope.admission,
        }
    }

    /// An ask, from `origin` when a durable actor sent it.
    pub(crate) fn asked(msg: Message, origin: Option<Origin>) -> Self {
        Self { msg, message_id: None, origin, idempotency_key: None, admission: None }
    }

    /// A message a timer of the actor's own sends it.
    fn timer(msg: Message) -> Self {
        Self {
            msg,
            message_id: Some("timer".to_owned()),
            origin: None,
            idempotency_key: None,
            admission: None,
        }
    }
}

/// The durable host of a native state `S`.
pub(crate) struct DurableNative<S> {
    server: GenServer<S>,
    durability: Arc<Durability>,
    /// Whether the `timer` facet is attached.
    timers: bool,
    log: ActorLog,
    context: Option<ActorContext>,
}

impl<S: Handlers + ActorState> DurableNative<S> {
    pub(crate) fn new(server: GenServer<S>, durability: Arc<Durability>, timers: bool) -> Self {
        Self { server, durability, timers, log: ActorLog::default(), context: None }
    }

    fn context(&mut self, ctx: &Context<Self>) -> ActorContext {
        if let Some(context) = self.context.take() {
            return context;
        }
        let send = self.timers.then(|| {
            let myself = ctx.myself();
            Arc::new(move |msg: Message| myself.tell(Delivery::timer(msg)).is_ok())
                as Arc<dyn Fn(Message) -> bool + Send + Sync>
        });
        ActorContext::hosted(ctx.id().clone(), send)
    }

    /// Journals the message, handles it, journals its end; an ask is answered once all of
    /// that is durable.
    async fn deliver(&mut self, mut delivery: Delivery, ctx: &Context<Self>) -> Result<Vec<u8>> {
        let admission = delivery.admission.take();
        if let Some(damage) = &self.log.damage {
            answer(admission, Err(damage.clone()));
            return Err(damage.clone().into());
        }
        let actor = ctx.id().to_string();
        let Delivery { msg, message_id, origin, idempotency_key, .. } = delivery;
        let record = arrival(
            msg.action.to_string(),
            msg.payload.clone(),
            message_id,
            idempotency_key,
            origin,
        );
        let (seq, record) = match self.log.admit(record, &actor, &self.durability) {
            Ok(Admit::New(seq, record)) => (seq, record),
            Ok(Admit::Duplicate { first, reply }) => {
                answer(admission, Ok(Admitted { ticket: self.log.ticket, duplicate_of: first }));
                return Ok(reply);
            }
            Err(error) => {
                answer(admission, Err(error.clone()));
                return Err(error.into());
            }
        };
        answer(admission, Ok(Admitted { ticket: self.log.ticket, duplicate_of: None }));
        let mut context = self.context(ctx);
        let reply = self.server.handle_hosted(&msg, &mut context, true).await;
        self.context = Some(context);
        let reply = reply_bytes(reply);
        let ended = match &reply {
            Ok(bytes) => Ended::Replied(bytes),
            Err(_) => Ended::Failed,
        };
        let journal = &self.durability.journal;
        self.log.finish(journal, &actor, (seq, 1), &record, ended)?;
        if record.ask {
            journal.durable(self.log.ticket).await?;
        }
        if self.log.since_checkpoint >= self.durability.checkpoint_every {
            self.log
                .checkpoint(self.server.checkpoint(), Vec::new(), &actor, &self.durability)
                .await;
        }
        reply
    }

    /// Rebuilds the state from the checkpoint and the journal after it. Damage (and a replay
    /// that ends differently from the journal) refuses every message from then on.
    async fn recover(&mut self, ctx: &Context<Self>) -> ActorLog {
        let actor = ctx.id().to_string();
        let durability = Arc::clone(&self.durability);
        let damaged = |error: Refusal| {
            tracing::error!(actor, error = %error, "durable actor not recovered");
            ActorLog::damaged(error)
        };
        let recovered = match durability.journal.recover(&actor).await {
            Ok(recovered) => recovered,
            Err(error) => return damaged(error),
        };
        let mut log = match recovered.checkpoint {
            Some(checkpoint) => {
                let (state, _extra, log) = ActorLog::from_checkpoint(checkpoint);
                if let Some(state) = state
                    && let Err(error) = self.server.restore(&state)
                {
                    let message = format!("the checkpoint does not fit the state: {error}");
                    return damaged(Refusal::new(ErrorCode::JournalDamaged, message));
                }
                log
            }
            None => ActorLog::default(),
        };
        log.since_checkpoint = recovered.entries.len() as u64;
        let mut context = self.context(ctx);
        let messages = group(recovered.entries);
        let count = messages.len();
        for (n, message) in messages.into_iter().enumerate() {
            log.seq = message.seq;
            log.note(&message.record, &durability);
            let record = &message.record;
            let msg = Message::new(record.action.clone(), record.payload.clone());
            let replied = matches!(message.done, Some(Outcome::Replied { .. }))
                || implied_replied(&message, n + 1 == count);
            if replied {
                if let Some(Outcome::Replied { reply: Some(reply) }) = &message.done
                    && let Some(origin) = &record.origin
                {
                    log.keep_reply(origin, reply.clone());
                }
                context.set_replaying(true);
                let replayed = self.server.handle_hosted(&msg, &mut context, false).await;
                context.set_replaying(false);
                if let Err(error) = replayed {
                    let message = format!(
                        "message {} ({}) replied when it was handled, and failed on replay \
                         ({error}): the handler is not deterministic",
                        message.seq, record.action
                    );
                    self.context = Some(context);
                    return damaged(Refusal::new(ErrorCode::ReplayDiverged, message));
                }
            } else if message.done.is_none() {
                // Interrupted by the crash (or it replied last, with no `Done`): it runs to its
                // end now, and a failure is journaled.
                let reply = reply_bytes(self.server.handle_hosted(&msg, &mut context, false).await);
                let ended = match &reply {
                    Ok(bytes) => Ended::Replied(bytes),
                    Err(_) => Ended::Failed,
                };
                let place = (message.seq, 1);
                if let Err(error) = log.finish(&durability.journal, &actor, place, record, ended) {
                    self.context = Some(context);
                    return damaged(error);
                }
            }
            // A failed message left the state as it was.
        }
        self.context = Some(context);
        log
    }
}

/// A handler's reply as the JSON bytes an asker gets.
pub(crate) fn reply_bytes(
    reply: std::result::Result<serde_json::Value, BehaviorError>,
) -> Result<Vec<u8>> {
    let reply = reply?;
    serde_json::to_vec(&reply).map_err(|error| {
        Error::new(ErrorCode::Internal, format!("the reply is not serializable: {error}"))
    })
}

impl<S: Handlers + ActorState> Actor for DurableNative<S> {
    type Msg = Delivery;
    type Reply = Result<Vec<u8>>;
    /// The state and where the journal stands, kept in memory while deactivated.
    type Snapshot = ((S, Option<&'static str>), ActorLog);

    async fn handle(&mut self, delivery: Delivery, ctx: &mut Context<Self>) -> Result<Vec<u8>> {
        self.deliver(delivery, ctx).await
    }

    async fn activate(
        &mut self,
        snapshot: Option<Self::Snapshot>,
        ctx: &mut Context<Self>,
    ) -> std::result::Result<(), ExitReason> {
        self.log = match snapshot {
            Some((state, log)) => {
                self.server.put_state(state);
                log
            }
            None => self.recover(ctx).await,
        };
        Ok(())
    }

    async fn deactivate(&mut self, ctx: &mut Context<Self>) -> Option<Self::Snapshot> {
        if let Some(context) = self.context.take() {
            context.cancel_timers();
        }
        let mut log = std::mem::take(&mut self.log);
        if log.since_checkpoint > 0 && log.damage.is_none() {
            let actor = ctx.id().to_string();
            log.checkpoint(self.server.checkpoint(), Vec::new(), &actor, &self.durability).await;
        }
        Some((self.server.take_state(), log))
    }

    fn inspect(&self) -> Option<serde_json::Value> {
        self.server.state().state_json()
    }
}
