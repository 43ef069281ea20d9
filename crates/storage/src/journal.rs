//! The journal of durable actors: for each actor, the messages delivered to it in order (each
//! journaled before it is handled), the results of the host calls each message made, how each
//! message ended, and the actor's latest checkpoint (its state and the sequence it covers).
//!
//! An actor's entries are keyed by (sequence, index): index 0 of sequence `n` is the `n`-th
//! message, the indexes after it are that message's host calls in call order, and the last is
//! its `Done` (a message that replied after no host call and keeps no reply has none: the next
//! message implies its end). A checkpoint at sequence `c` holds the state after message `c`; the journal is
//! truncated behind it but keeps message `c` itself, so a journal that no longer reaches `c`
//! is recognisably damaged, not mistaken for an empty tail.
//!
//! Every record is versioned and checksummed over its actor, sequence and index as well as its
//! body, so a damaged record, or a sound one found under another key, is detected and never
//! served as state.

use async_trait::async_trait;
use plexspaces_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Orders appends: an append's ticket is durable once [`JournalBackend::durable`] says so, and
/// so is every append made before it.
pub type Ticket = u64;

/// The format of the records written now.
pub const RECORD_VERSION: u8 = 1;

/// Who sent a message, when a durable actor did: the sender, its message's sequence and the
/// host call's index in that message. The same call on replay carries the same origin, so a
/// durable receiver can drop what it has seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The sending actor (`tenant/namespace/type/key`).
    pub sender: String,
    /// The sender's message sequence.
    pub seq: u64,
    /// The host call's index in that message.
    pub call: u32,
}

impl Origin {
    /// Whether this origin comes after `mark` from the same sender.
    pub fn is_after(&self, mark: &SenderMark) -> bool {
        (self.seq, self.call) > (mark.seq, mark.call)
    }
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The action.
    pub action: String,
    /// The payload (JSON for wasm actors).
    pub payload: Vec<u8>,
    /// The tell's message id; empty for an ask.
    pub message_id: String,
    /// The client's `Idempotency-Key`, stored with the message it admitted.
    pub idempotency_key: Option<String>,
    /// The deterministic id of a message a durable actor sent.
    pub origin: Option<Origin>,
    /// When it was admitted, in ms since the Unix epoch.
    pub admitted_ms: u64,
    /// Whether the sender waits for a reply.
    pub ask: bool,
}

/// How a message's handling ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The handler replied (`reply` kept only when a durable sender asked: its retry after a
    /// crash gets this reply again).
    Replied {
        /// The reply, kept for a durable asker.
        reply: Option<Vec<u8>>,
    },
    /// The handler failed; the state stayed as it was.
    Failed,
    /// The guest trapped; the state stayed as it was, and replay skips the message.
    Trapped,
    /// A workflow's run stopped to wait: until `due_ms`, or (with `signal`) for that signal.
    Suspended {
        /// When the run resumes at the latest.
        due_ms: u64,
        /// The signal it waits for, if it waits for one.
        signal: Option<String>,
    },
    /// A signal kept for a workflow's run; nothing ran.
    Buffered,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// A message, journaled before it is handled (index 0).
    Message(MessageRecord),
    /// The result of a host call: `kind` names the call, `result` is its encoded result.
    Call {
        /// Which host call.
        kind: u16,
        /// Its encoded result.
        result: Vec<u8>,
    },
    /// How the message ended (its last index); left out for a message that replied after no
    /// host call and keeps no reply.
    Done(Outcome),
}

/// The last message a durable sender's origin reached this actor with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderMark {
    /// The sending actor.
    pub sender: String,
    /// Its message sequence.
    pub seq: u64,
    /// Its host call index.
    pub call: u32,
    /// The reply to that message, when it was an ask.
    pub reply: Option<Vec<u8>>,
}

/// An idempotency key seen, with the message it admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMark {
    /// The client's key.
    pub key: String,
    /// The message id it was admitted under.
    pub message_id: String,
    /// When, in ms since the Unix epoch.
    pub admitted_ms: u64,
}

/// An actor's state after message `seq`, with what it needs to drop duplicates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last message it covers.
    pub seq: u64,
    /// The actor's state (as its guest returned it), `None` before the first state.
    pub state: Option<Vec<u8>>,
    /// Per durable sender, the last origin seen.
    pub senders: Vec<SenderMark>,
    /// Idempotency keys still inside their window.
    pub keys: Vec<KeyMark>,
    /// What the behavior keeps beside the state (a workflow's run), opaque here.
    pub extra: Vec<u8>,
}

/// A timer of an actor, kept until it fires: at `due_ms` the actor gets `action` with
/// `payload`. Durable timers survive restarts of the node (reminders, and the wake-ups of
/// workflows that wait).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// The actor (`tenant/namespace/type/key`).
    pub actor: String,
    /// Its id, unique for the actor.
    pub id: String,
    /// When it fires, in ms since the Unix epoch.
    pub due_ms: u64,
    /// The action of the message it sends.
    pub action: String,
    /// The message's payload (a JSON object).
    pub payload: Vec<u8>,
}

/// What an actor recovers from: its checkpoint and the entries after it, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recovered {
    /// The latest checkpoint, if one was taken.
    pub checkpoint: Option<Checkpoint>,
    /// (sequence, index, entry) after the checkpoint, in order.
    pub entries: Vec<(u64, u32, Entry)>,
}

impl Recovered {
    /// The last message's sequence (the checkpoint's when no message follows it).
    pub fn last_seq(&self) -> u64 {
        self.entries
            .last()
            .map(|(seq, _, _)| *seq)
            .or_else(|| self.checkpoint.as_ref().map(|checkpoint| checkpoint.seq))
            .unwrap_or(0)
    }
}

/// What a journal is kept in: the embedded SQLite backend now; PostgreSQL will implement it so
/// that any node of a cluster can recover any durable actor.
#[async_trait]
pub trait JournalBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Queues an entry; it is durable once [`JournalBackend::durable`] resolves for the ticket.
    /// Entries of one actor must be appended in (sequence, index) order.
    fn append(&self, actor: &str, seq: u64, index: u32, entry: &Entry) -> Result<Ticket>;

    /// Resolves once the append `ticket` (and every one before it) is durable; an error when
    /// the journal could not make it so.
    async fn durable(&self, ticket: Ticket) -> Result<()>;

    /// The checkpoint and entries of `actor`, checked: a damaged record, a gap, or a journal
    /// that ends before its checkpoint's sequence is `journal_damaged`.
    async fn recover(&self, actor: &str) -> Result<Recovered>;

    /// Stores `checkpoint` durably, then truncates the journal behind it.
    async fn checkpoint(&self, actor: &str, checkpoint: &Checkpoint) -> Result<()>;

    /// Removes the actor's journal, checkpoint and timers.
    async fn remove(&self, actor: &str) -> Result<()>;

    /// Stores a timer (replacing the actor's timer of that id), durably.
    async fn set_timer(&self, timer: &Timer) -> Result<()>;

    /// Forgets the actor's timer `id`, durably.
    async fn cancel_timer(&self, actor: &str, id: &str) -> Result<()>;

    /// Every timer kept, soonest first (read when the node starts).
    async fn timers(&self) -> Result<Vec<Timer>>;
}

/// The error for damage found in `actor`'s journal or checkpoint.
pub fn damaged(actor: &str, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::JournalDamaged,
        format!("the journal of {actor} is damaged ({what}); its state is not served"),
    )
}

fn checksum(actor: &str, seq: u64, index: u32, version: u8, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(actor.as_bytes());
    hasher.update(&[0xff]);
    hasher.update(&seq.to_le_bytes());
    hasher.update(&index.to_le_bytes());
    hasher.update(&[version]);
    hasher.update(body);
    hasher.finalize()
}

/// A record: version, checksum (over the key too), then the body.
fn seal(actor: &str, seq: u64, index: u32, body: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(body.len() + 5);
    record.push(RECORD_VERSION);
    record.extend_from_slice(&checksum(actor, seq, index, RECORD_VERSION, body).to_le_bytes());
    record.extend_from_slice(body);
    record
}

fn open<'a>(actor: &str, seq: u64, index: u32, record: &'a [u8]) -> Result<&'a [u8]> {
    let where_ = || format!("record {seq}.{index}");
    let (&version, rest) = record.split_first().ok_or_else(|| damaged(actor, where_()))?;
    if version != RECORD_VERSION {
        return Err(damaged(actor, format!("{}: unknown record version {version}", where_())));
    }
    let (sum, body) = rest.split_at_checked(4).ok_or_else(|| damaged(actor, where_()))?;
    let sum = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
    if sum != checksum(actor, seq, index, version, body) {
        return Err(damaged(actor, format!("{}: checksum mismatch", where_())));
    }
    Ok(body)
}

fn internal(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Internal, what.to_string())
}

/// An entry as stored.
pub fn encode_entry(actor: &str, seq: u64, index: u32, entry: &Entry) -> Result<Vec<u8>> {
    let body = postcard::to_allocvec(entry).map_err(internal)?;
    Ok(seal(actor, seq, index, &body))
}

/// An entry read back, checked against its key.
pub fn decode_entry(actor: &str, seq: u64, index: u32, record: &[u8]) -> Result<Entry> {
    let body = open(actor, seq, index, record)?;
    postcard::from_bytes(body)
        .map_err(|error| damaged(actor, format!("record {seq}.{index} does not decode: {error}")))
}

/// The journal's head as stored: its last entry's sequence and index, sealed (under index
/// `u32::MAX - 1`).
pub fn encode_head(actor: &str, seq: u64, index: u32) -> Vec<u8> {
    seal(actor, seq, u32::MAX - 1, &index.to_le_bytes())
}

/// The head read back, checked against its actor and sequence: (sequence, index).
pub fn decode_head(actor: &str, seq: u64, record: &[u8]) -> Result<(u64, u32)> {
    let body = open(actor, seq, u32::MAX - 1, record)?;
    let index: [u8; 4] = body.try_into().map_err(|_| damaged(actor, "the head is malformed"))?;
    Ok((seq, u32::from_le_bytes(index)))
}

/// A timer as stored: sealed under its actor and due time (index `u32::MAX - 2`).
pub fn encode_timer(timer: &Timer) -> Result<Vec<u8>> {
    let body = postcard::to_allocvec(timer).map_err(internal)?;
    Ok(seal(&timer.actor, timer.due_ms, u32::MAX - 2, &body))
}

/// A timer read back, checked.
pub fn decode_timer(actor: &str, due_ms: u64, record: &[u8]) -> Result<Timer> {
    let body = open(actor, due_ms, u32::MAX - 2, record)?;
    let timer: Timer = postcard::from_bytes(body)
        .map_err(|error| damaged(actor, format!("a timer does not decode: {error}")))?;
    if timer.actor != actor || timer.due_ms != due_ms {
        return Err(damaged(actor, "a timer is stored under another key"));
    }
    Ok(timer)
}

/// A checkpoint as stored (index `u32::MAX` keeps its checksum apart from entries).
pub fn encode_checkpoint(actor: &str, checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let body = postcard::to_allocvec(checkpoint).map_err(internal)?;
    Ok(seal(actor, checkpoint.seq, u32::MAX, &body))
}

/// A checkpoint read back, checked against its actor and sequence.
pub fn decode_checkpoint(actor: &str, seq: u64, record: &[u8]) -> Result<Checkpoint> {
    let body = open(actor, seq, u32::MAX, record)?;
    let checkpoint: Checkpoint = postcard::from_bytes(body)
        .map_err(|error| damaged(actor, format!("the checkpoint does not decode: {error}")))?;
    if checkpoint.seq != seq {
        return Err(damaged(actor, "the checkpoint is stored under another sequence"));
    }
    Ok(checkpoint)
}

/// Checks the shape of what was read: entries after the checkpoint, messages numbered without
/// a gap from the checkpoint's sequence on (which must itself still be there), each message's
/// indexes without a gap from 0 (a message first), nothing after a `Done`, and the last
/// message the one the journal's head names (so a lost tail is found too; no head means no
/// journal at all).
pub fn check(
    actor: &str,
    checkpoint: Option<Checkpoint>,
    head: Option<(u64, u32)>,
    rows: Vec<(u64, u32, Entry)>,
) -> Result<Recovered> {
    let Some(head) = head else {
        if checkpoint.is_some() || !rows.is_empty() {
            return Err(damaged(actor, "entries without the journal's head"));
        }
        return Ok(Recovered::default());
    };
    let base = checkpoint.as_ref().map_or(0, |checkpoint| checkpoint.seq);
    let mut entries = Vec::with_capacity(rows.len());
    let mut expected_seq = base + 1;
    let mut saw_base = base == 0;
    let mut previous: Option<(u64, u32, bool)> = None;
    let mut last = None;
    for (seq, index, entry) in rows {
        if seq < base {
            // Truncation behind the checkpoint had not committed yet: already covered.
            continue;
        }
        last = Some((seq, index));
        if seq == base {
            if index == 0 {
                if !matches!(entry, Entry::Message(_)) {
                    return Err(damaged(actor, format!("entry {seq}.0 is not a message")));
                }
                saw_base = true;
            }
            continue;
        }
        match previous {
            Some((last_seq, last_index, done)) if seq == last_seq => {
                if index != last_index + 1 || done {
                    return Err(damaged(actor, format!("entry {seq}.{index} is out of place")));
                }
            }
            _ => {
                if seq != expected_seq || index != 0 {
                    return Err(damaged(
                        actor,
                        format!("expected message {expected_seq}, found entry {seq}.{index}"),
                    ));
                }
                if !matches!(entry, Entry::Message(_)) {
                    return Err(damaged(actor, format!("entry {seq}.0 is not a message")));
                }
                expected_seq += 1;
            }
        }
        if index > 0 && matches!(entry, Entry::Message(_)) {
            return Err(damaged(actor, format!("entry {seq}.{index} is a second message")));
        }
        previous = Some((seq, index, matches!(entry, Entry::Done(_))));
        entries.push((seq, index, entry));
    }
    if !saw_base {
        return Err(damaged(
            actor,
            format!("the journal ends before its checkpoint's sequence {base}"),
        ));
    }
    if last != Some(head) {
        let (seq, index) = last.unwrap_or_default();
        return Err(damaged(
            actor,
            format!(
                "the journal ends at entry {seq}.{index} but its head says {}.{}",
                head.0, head.1
            ),
        ));
    }
    Ok(Recovered { checkpoint, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(action: &str) -> Entry {
        Entry::Message(MessageRecord {
            action: action.to_owned(),
            payload: b"{}".to_vec(),
            message_id: "m".to_owned(),
            idempotency_key: None,
            origin: None,
            admitted_ms: 1,
            ask: false,
        })
    }

    #[test]
    fn records_round_trip_and_refuse_another_key_or_a_flipped_bit() {
        let entry = message("deposit");
        let record = encode_entry("a", 3, 0, &entry).unwrap();
        assert_eq!(decode_entry("a", 3, 0, &record).unwrap(), entry);
        assert_eq!(decode_entry("a", 4, 0, &record).unwrap_err().code, ErrorCode::JournalDamaged);
        assert_eq!(decode_entry("b", 3, 0, &record).unwrap_err().code, ErrorCode::JournalDamaged);
        for bit in 0..record.len() * 8 {
            let mut flipped = record.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let error = decode_entry("a", 3, 0, &flipped).unwrap_err();
            assert_eq!(error.code, ErrorCode::JournalDamaged, "bit {bit}");
        }
        let checkpoint =
            Checkpoint { seq: 9, state: Some(b"{}".to_vec()), ..Checkpoint::default() };
        let sealed = encode_checkpoint("a", &checkpoint).unwrap();
        assert_eq!(decode_checkpoint("a", 9, &sealed).unwrap(), checkpoint);
        assert!(decode_checkpoint("a", 8, &sealed).is_err());
    }

    #[test]
    fn the_shape_check_finds_gaps_and_a_journal_short_of_its_checkpoint() {
        let done = Entry::Done(Outcome::Failed);
        let call = Entry::Call { kind: 1, result: vec![] };
        let good = vec![(1, 0, message("a")), (1, 1, call.clone()), (1, 2, done.clone())];
        assert_eq!(check("x", None, Some((1, 2)), good.clone()).unwrap().entries.len(), 3);
        assert_eq!(check("x", None, None, vec![]).unwrap(), Recovered::default());
        // A lost tail (the head says 2.0, or 1.3), entries without a head.
        assert!(check("x", None, Some((2, 0)), good.clone()).is_err());
        assert!(check("x", None, Some((1, 3)), good.clone()).is_err());
        assert!(check("x", None, None, good).is_err());
        let gap = vec![(1, 0, message("a")), (3, 0, message("b"))];
        assert!(check("x", None, Some((3, 0)), gap).is_err());
        let index_gap = vec![(1, 0, message("a")), (1, 2, call.clone())];
        assert!(check("x", None, Some((1, 2)), index_gap).is_err());
        let after_done = vec![(1, 0, message("a")), (1, 1, done.clone()), (1, 2, call)];
        assert!(check("x", None, Some((1, 2)), after_done).is_err());
        let checkpoint = Checkpoint { seq: 5, ..Checkpoint::default() };
        let short = vec![(3, 0, message("a"))];
        assert!(check("x", Some(checkpoint.clone()), Some((3, 0)), short).is_err());
        assert!(check("x", Some(checkpoint.clone()), Some((5, 0)), vec![]).is_err());
        let kept = vec![(4, 0, message("a")), (5, 0, message("b")), (6, 0, message("c"))];
        let recovered = check("x", Some(checkpoint), Some((6, 0)), kept).unwrap();
        assert_eq!(recovered.entries.len(), 1);
        assert_eq!(recovered.last_seq(), 6);
    }
}
