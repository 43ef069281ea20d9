//! Durable execution's bookkeeping, shared by every kind of durable actor (deployed wasm
//! actors and native Rust ones): where an actor stands in its journal, which durable senders'
//! calls and which idempotency keys it has seen, how a message is admitted (journaled, or
//! dropped as a duplicate), how its end is journaled, checkpoints, and the recovered journal
//! regrouped by message for replay. What a message does again on replay is the actor kind's
//! business: a wasm guest is fed its recorded host calls; a native handler makes none.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use plexspaces_storage::journal::{
    Checkpoint, Entry, JournalBackend, KeyMark, MessageRecord, Origin, Outcome, SenderMark, Ticket,
};
use plexspaces_types::Refusal;
use tokio::sync::oneshot;

/// What a durable type's actors share: the journal and its settings.
#[derive(Debug, Clone)]
pub struct Durability {
    /// Where the journal and checkpoints are kept.
    pub journal: Arc<dyn JournalBackend>,
    /// A checkpoint after this many journal entries (messages, host calls, ends).
    pub checkpoint_every: u64,
    /// How long an idempotency key is remembered.
    pub key_window: Duration,
    /// How many idempotency keys one actor remembers at most (the oldest go first).
    pub max_keys: usize,
}

/// What a durable actor says of a message it was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Durable once the journal has made this ticket durable.
    pub ticket: Ticket,
    /// The message id an earlier delivery of the same key or origin had: not delivered again.
    pub duplicate_of: Option<String>,
}

/// The channel an admission is told on; the sender acknowledges once the ticket is durable.
pub type Admission = oneshot::Sender<Result<Admitted, Refusal>>;

/// Tells `admission`, if there is one, how admitting its message went.
pub fn answer(admission: Option<Admission>, answer: Result<Admitted, Refusal>) {
    if let Some(admission) = admission {
        let _sender_gone = admission.send(answer);
    }
}

/// A message as it arrives, ready to be journaled: a tell has a message id, an ask has none.
pub fn arrival(
    action: String,
    payload: Vec<u8>,
    message_id: Option<String>,
    idempotency_key: Option<String>,
    origin: Option<Origin>,
) -> MessageRecord {
    MessageRecord {
        action,
        payload,
        ask: message_id.is_none(),
        message_id: message_id.unwrap_or_default(),
        idempotency_key,
        origin,
        admitted_ms: now_ms(),
    }
}

/// What admitting a durable message gave.
#[derive(Debug)]
pub enum Admit {
    /// Journaled as message `seq`.
    New(u64, MessageRecord),
    /// Seen before: the first delivery's message id, and the reply kept for a durable asker.
    Duplicate {
        /// The message id the first delivery had, when known.
        first: Option<String>,
        /// What a durable asker is answered (`null` unless its reply was kept).
        reply: Vec<u8>,
    },
}

/// How a handled message ended, for its `Done` entry.
#[derive(Debug, Clone, Copy)]
pub enum Ended<'a> {
    /// It replied this (JSON): kept for a durable asker.
    Replied(&'a [u8]),
    /// It failed; the state is as it was.
    Failed,
    /// The guest trapped; the state is as it was.
    Trapped,
}

/// A durable actor's place in its journal.
#[derive(Debug, Default)]
pub struct ActorLog {
    /// The last message journaled.
    pub seq: u64,
    /// The last ticket appended.
    pub ticket: Ticket,
    /// Entries since the last checkpoint.
    pub since_checkpoint: u64,
    /// Damage found at recovery, or a journal that stopped taking writes: every message is
    /// refused with it.
    pub damage: Option<Refusal>,
    /// Per durable sender, the last origin seen.
    senders: HashMap<String, SenderMark>,
    /// Idempotency keys inside their window, and the order they came in.
    keys: HashMap<String, KeyMark>,
    key_order: VecDeque<String>,
}

impl ActorLog {
    /// A log that refuses every message with `damage`.
    pub fn damaged(damage: Refusal) -> Self {
        Self { damage: Some(damage), ..Self::default() }
    }

    /// Where a checkpoint leaves the actor: its state, the checkpoint's extra bytes (a
    /// workflow's run), and the log.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> (Option<Vec<u8>>, Vec<u8>, Self) {
        let log = Self {
            seq: checkpoint.seq,
            senders: checkpoint
                .senders
                .into_iter()
                .map(|mark| (mark.sender.clone(), mark))
                .collect(),
            key_order: checkpoint.keys.iter().map(|mark| mark.key.clone()).collect(),
            keys: checkpoint.keys.into_iter().map(|mark| (mark.key.clone(), mark)).collect(),
            ..Self::default()
        };
        (checkpoint.state, checkpoint.extra, log)
    }

    /// Remembers the origin and idempotency key of a journaled message, and forgets the keys
    /// past their window or over the cap.
    pub fn note(&mut self, record: &MessageRecord, durability: &Durability) {
        if let Some(origin) = &record.origin {
            let mark = SenderMark {
                sender: origin.sender.clone(),
                seq: origin.seq,
                call: origin.call,
                reply: None,
            };
            self.senders.insert(origin.sender.clone(), mark);
        }
        if let Some(key) = &record.idempotency_key {
            let mark = KeyMark {
                key: key.clone(),
                message_id: record.message_id.clone(),
                admitted_ms: record.admitted_ms,
            };
            if self.keys.insert(key.clone(), mark).is_none() {
                self.key_order.push_back(key.clone());
            }
        }
        let window = u64::try_from(durability.key_window.as_millis()).unwrap_or(u64::MAX);
        let now = now_ms();
        while let Some(oldest) = self.key_order.front() {
            let expired = self
                .keys
                .get(oldest)
                .is_none_or(|mark| mark.admitted_ms.saturating_add(window) < now);
            if !expired && self.keys.len() <= durability.max_keys {
                break;
            }
            if let Some(oldest) = self.key_order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
    }

    /// Journals a durable message as the next sequence unless its origin or idempotency key
    /// was seen before.
    pub fn admit(
        &mut self,
        record: MessageRecord,
        actor: &str,
        durability: &Durability,
    ) -> Result<Admit, Refusal> {
        let message_id = Some(record.message_id.clone()).filter(|id| !id.is_empty());
        if let Some(origin) = &record.origin
            && let Some(mark) = self.senders.get(&origin.sender)
            && !origin.is_after(mark)
        {
            // A durable sender asking again gets the reply it was given.
            let same = (mark.seq, mark.call) == (origin.seq, origin.call);
            let reply = mark.reply.clone().filter(|_| same).unwrap_or_else(|| b"null".to_vec());
            return Ok(Admit::Duplicate { first: message_id, reply });
        }
        if let Some(key) = &record.idempotency_key
            && let Some(first) = self.keys.get(key)
        {
            let first = Some(first.message_id.clone());
            return Ok(Admit::Duplicate { first, reply: b"null".to_vec() });
        }
        let seq = self.seq + 1;
        let entry = Entry::Message(record);
        self.ticket = durability.journal.append(actor, seq, 0, &entry)?;
        let Entry::Message(record) = entry else { unreachable!("built as a message") };
        self.seq = seq;
        self.note(&record, durability);
        Ok(Admit::New(seq, record))
    }

    /// Journals how message `seq` ended (at `index`, after its calls). A journal that takes
    /// it no more damages the actor: nothing more is acknowledged.
    pub fn end(
        &mut self,
        journal: &Arc<dyn JournalBackend>,
        actor: &str,
        seq: u64,
        index: u32,
        outcome: Outcome,
    ) -> Result<(), Refusal> {
        match journal.append(actor, seq, index, &Entry::Done(outcome)) {
            Ok(ticket) => {
                self.ticket = ticket;
                self.since_checkpoint += u64::from(index) + 1;
                Ok(())
            }
            Err(error) => {
                self.damage = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Journals how the handled message `record` (sequence `seq`) ended, keeping a durable
    /// asker's reply so that asking again gets it. A message that replied after no host call
    /// (`index` 1) and whose reply need not be kept gets no `Done`: the next message implies
    /// its end, and recovery handles such a message at the journal's tail as one the crash
    /// interrupted (see [`implied_replied`]). That halves the entries of the common case.
    pub fn finish(
        &mut self,
        journal: &Arc<dyn JournalBackend>,
        actor: &str,
        (seq, index): (u64, u32),
        record: &MessageRecord,
        ended: Ended<'_>,
    ) -> Result<(), Refusal> {
        let kept_reply = match (ended, &record.origin) {
            (Ended::Replied(reply), Some(_)) if record.ask => Some(reply.to_vec()),
            _ => None,
        };
        if index == 1 && kept_reply.is_none() && matches!(ended, Ended::Replied(_)) {
            self.since_checkpoint += 1;
            return Ok(());
        }
        let done = match ended {
            Ended::Replied(_) => Outcome::Replied { reply: kept_reply.clone() },
            Ended::Failed => Outcome::Failed,
            Ended::Trapped => Outcome::Trapped,
        };
        self.end(journal, actor, seq, index, done)?;
        if let (Some(origin), Some(reply)) = (&record.origin, kept_reply) {
            self.keep_reply(origin, reply);
        }
        Ok(())
    }

    /// Keeps the reply given to a durable sender's ask `origin`.
    pub fn keep_reply(&mut self, origin: &Origin, reply: Vec<u8>) {
        if let Some(mark) = self.senders.get_mut(&origin.sender)
            && (mark.seq, mark.call) == (origin.seq, origin.call)
        {
            mark.reply = Some(reply);
        }
    }

    /// Stores a checkpoint of `state` (and `extra`) once everything it covers is durable; the
    /// journal is truncated behind it. A failure is logged: the journal still holds everything.
    pub async fn checkpoint(
        &mut self,
        state: Option<Vec<u8>>,
        extra: Vec<u8>,
        actor: &str,
        durability: &Durability,
    ) {
        let journal = &durability.journal;
        let checkpoint = Checkpoint {
            seq: self.seq,
            state,
            senders: self.senders.values().cloned().collect(),
            keys: self.key_order.iter().filter_map(|key| self.keys.get(key).cloned()).collect(),
            extra,
        };
        let stored = match journal.durable(self.ticket).await {
            Ok(()) => journal.checkpoint(actor, &checkpoint).await,
            Err(error) => Err(error),
        };
        match stored {
            Ok(()) => self.since_checkpoint = 0,
            Err(error) => tracing::warn!(actor, error = %error, "checkpoint not stored"),
        }
    }
}

/// A journaled message and what followed it.
#[derive(Debug)]
pub struct Journaled {
    /// Its sequence.
    pub seq: u64,
    /// The message.
    pub record: MessageRecord,
    /// Its host calls' results, in order: (call kind, result).
    pub calls: VecDeque<(u16, Vec<u8>)>,
    /// How it ended; `None` when the crash interrupted it.
    pub done: Option<Outcome>,
}

/// Whether a journaled message without a `Done` replied: one followed by another message did
/// (it made no host call and replied, so [`ActorLog::finish`] journaled no end); the last one
/// may have been interrupted by the crash, and is handled as such.
pub fn implied_replied(message: &Journaled, last: bool) -> bool {
    message.done.is_none() && !last && message.calls.is_empty()
}

/// The recovered journal's entries, regrouped by message.
pub fn group(entries: Vec<(u64, u32, Entry)>) -> Vec<Journaled> {
    let mut messages: Vec<Journaled> = Vec::new();
    for (seq, _, entry) in entries {
        match entry {
            Entry::Message(record) => {
                messages.push(Journaled { seq, record, calls: VecDeque::new(), done: None });
            }
            Entry::Call { kind, result } => {
                if let Some(message) = messages.last_mut() {
                    message.calls.push_back((kind, result));
                }
            }
            Entry::Done(outcome) => {
                if let Some(message) = messages.last_mut() {
                    message.done = Some(outcome);
                }
            }
        }
    }
    messages
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
