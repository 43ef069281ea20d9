//! Host calls of durable actors: each non-deterministic call a durable actor makes (clocks,
//! randomness, WASI's too, and every service call) is journaled with its result while the
//! message runs live, and answered from the journal when the message is replayed, so replay
//! performs nothing again. A live call with effects first waits until the message, and every
//! call before it, is durable: no effect ever leaves for a message the journal could lose.
//!
//! The journal of the message being handled lives in a slot shared by the instance's store
//! data and its WASI clocks and random generators (which the store data cannot reach).

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use plexspaces_storage::journal::{Entry, JournalBackend, Origin, Ticket};
use plexspaces_types::{ErrorCode, Refusal};
use serde::{Serialize, de::DeserializeOwned};

use crate::{bindings::HostError, workflow_host::RunCalls};

/// Which host call a journal entry records. The numbers are stored: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum CallKind {
    NowMs = 1,
    RandomU64 = 2,
    WallClock = 3,
    MonotonicClock = 4,
    RandomBytes = 5,
    RandomWord = 6,
    Tell = 10,
    Ask = 11,
    TsWrite = 20,
    TsRead = 21,
    TsTake = 22,
    TsCount = 23,
    TsScan = 24,
    TsTakeLater = 25,
    LockAcquire = 30,
    LockRenew = 31,
    LockRelease = 32,
    KvGet = 40,
    KvPut = 41,
    KvDelete = 42,
    KvList = 43,
    KvCas = 44,
    PgJoin = 50,
    PgLeave = 51,
    PgMembers = 52,
    PgPublish = 53,
    StepBegin = 60,
    StepEnd = 61,
    SleepDue = 62,
    WaitDeadline = 63,
    WaitResolved = 64,
    TakeSignals = 65,
    Commit = 66,
    TimerSchedule = 70,
    TimerCancel = 71,
    ChannelCreate = 80,
    ChannelSend = 81,
    ChannelReceive = 82,
    ChannelAck = 83,
    ChannelNack = 84,
    ChannelSubscribe = 85,
    ChannelUnsubscribe = 86,
    ChannelConsume = 87,
    ChannelStopConsuming = 88,
    ChannelClose = 89,
    RegistryRegister = 90,
    RegistryHeartbeat = 91,
    RegistryDeregister = 92,
    RegistryLookup = 93,
    RegistryList = 94,
    BlobPut = 100,
    BlobGet = 101,
    BlobHead = 102,
    BlobDelete = 103,
    BlobList = 104,
    BlobPresign = 105,
}

impl CallKind {
    /// WASI's clocks and random: read by the interpreter for itself as well as by user code.
    pub(crate) fn is_soft(self) -> bool {
        Self::soft(self as u16)
    }

    pub(crate) fn soft(kind: u16) -> bool {
        [Self::WallClock, Self::MonotonicClock, Self::RandomBytes, Self::RandomWord]
            .iter()
            .any(|soft| *soft as u16 == kind)
    }
}

/// The journal of the message a durable actor is handling.
#[derive(Debug)]
pub(crate) struct CallJournal {
    pub(crate) journal: Arc<dyn JournalBackend>,
    /// The actor's journal key (`tenant/namespace/type/key`).
    pub(crate) actor: String,
    /// The message's sequence.
    pub(crate) seq: u64,
    /// The index the next recorded call gets (the message itself is 0).
    pub(crate) next_index: u32,
    /// On replay: the results the message's calls had, in order.
    pub(crate) recorded: VecDeque<(u16, Vec<u8>)>,
    /// The recorded message ended (its `Done` is journaled): every call it makes is recorded.
    pub(crate) complete: bool,
    /// The last append's ticket, and the ticket known to be durable.
    pub(crate) last_ticket: Ticket,
    pub(crate) durable_ticket: Ticket,
    /// Why replay stopped agreeing with the journal; every call after it fails.
    pub(crate) diverged: Option<String>,
    /// An append that failed: the message cannot be made durable.
    pub(crate) failed: Option<Refusal>,
    /// A workflow run's calls: its signals, commits and waits.
    pub(crate) workflow: Option<RunCalls>,
    /// A workflow run keeps its live calls' results, to replay them when it resumes.
    pub(crate) captured: Option<Vec<(u16, Vec<u8>)>>,
}

impl CallJournal {
    /// A message handled live: `ticket` is its own entry's.
    pub(crate) fn live(
        journal: Arc<dyn JournalBackend>,
        actor: String,
        seq: u64,
        ticket: Ticket,
    ) -> Self {
        Self {
            journal,
            actor,
            seq,
            next_index: 1,
            recorded: VecDeque::new(),
            complete: false,
            last_ticket: ticket,
            durable_ticket: 0,
            diverged: None,
            failed: None,
            workflow: None,
            captured: None,
        }
    }

    /// A journaled message replayed: `recorded` are its calls' results; `complete` when it
    /// ended before the crash.
    pub(crate) fn replay(
        journal: Arc<dyn JournalBackend>,
        actor: String,
        seq: u64,
        recorded: VecDeque<(u16, Vec<u8>)>,
        complete: bool,
    ) -> Self {
        Self {
            next_index: 1 + recorded.len() as u32,
            recorded,
            complete,
            ..Self::live(journal, actor, seq, 0)
        }
    }

    /// Whether the calls are being answered from the journal.
    pub(crate) fn replaying(&self) -> bool {
        self.complete || !self.recorded.is_empty()
    }

    /// The origin the next live call carries: the index its record gets.
    pub(crate) fn origin(&self) -> Origin {
        Origin { sender: self.actor.clone(), seq: self.seq, call: self.next_index }
    }

    /// Records the result of a live call.
    pub(crate) fn append_call<R: Serialize>(&mut self, kind: CallKind, result: &R) {
        match postcard::to_allocvec(result) {
            Ok(bytes) => self.append(kind, bytes),
            Err(error) => {
                self.failed = Some(Refusal::new(
                    ErrorCode::Internal,
                    format!("the result of {kind:?} cannot be journaled: {error}"),
                ));
            }
        }
    }

    /// The recorded result of the next call, if it was recorded.
    ///
    /// WASI's clocks and random generators are *soft*: the interpreter inside a guest reads
    /// them for itself too (a fresh instance seeds its hash and its generators at its first
    /// call), so an instance that is not the one that ran the message live makes more or fewer
    /// such reads. A soft read takes the next recorded read of its kind when one comes before
    /// the next host call, and is otherwise served live; host calls skip the soft records
    /// before them. Host calls (and `host.now`, `host.random`) must match exactly.
    fn take_recorded(&mut self, kind: CallKind) -> Result<Option<Vec<u8>>, String> {
        if let Some(reason) = &self.diverged {
            return Err(reason.clone());
        }
        if kind.is_soft() {
            let position = self
                .recorded
                .iter()
                .take_while(|(recorded, _)| CallKind::soft(*recorded))
                .position(|(recorded, _)| *recorded == kind as u16);
            return Ok(position.and_then(|position| {
                self.recorded.drain(..position);
                self.recorded.pop_front().map(|(_, result)| result)
            }));
        }
        while self.recorded.front().is_some_and(|(recorded, _)| CallKind::soft(*recorded)) {
            self.recorded.pop_front();
        }
        match self.recorded.pop_front() {
            Some((recorded, result)) if recorded == kind as u16 => Ok(Some(result)),
            Some((recorded, _)) => {
                let reason = format!(
                    "message {} made host call {kind:?} where the journal records call kind {recorded}",
                    self.seq
                );
                self.diverged = Some(reason.clone());
                Err(reason)
            }
            None if self.complete => {
                let reason = format!(
                    "message {} made host call {kind:?} past the calls the journal records",
                    self.seq
                );
                self.diverged = Some(reason.clone());
                Err(reason)
            }
            None => Ok(None),
        }
    }

    fn append(&mut self, kind: CallKind, result: Vec<u8>) {
        // A message replayed whole is in the journal already, its end included.
        if self.failed.is_some() || self.diverged.is_some() || self.complete {
            return;
        }
        let entry = Entry::Call { kind: kind as u16, result };
        match self.journal.append(&self.actor, self.seq, self.next_index, &entry) {
            Ok(ticket) => self.last_ticket = ticket,
            Err(error) => self.failed = Some(error),
        }
        self.next_index += 1;
        if let (Some(captured), Entry::Call { kind, result }) = (&mut self.captured, entry) {
            captured.push((kind, result));
        }
    }

    /// Checks, once the guest returned, that a complete replay used every recorded call
    /// (soft reads aside).
    pub(crate) fn finish_replay(&mut self) {
        self.recorded.retain(|(kind, _)| !CallKind::soft(*kind));
        if self.complete && self.diverged.is_none() && !self.recorded.is_empty() {
            self.diverged = Some(format!(
                "message {} made {} fewer host calls than the journal records",
                self.seq,
                self.recorded.len()
            ));
        }
    }
}

/// The slot an instance's journal lives in while it serves a durable actor.
pub(crate) type Slot = Arc<Mutex<Option<CallJournal>>>;

/// What the journal says about the next call.
pub(crate) enum Replayed<R> {
    /// Not recorded (or not durable): make the call.
    Live,
    /// Its recorded result.
    Value(R),
    /// Replay no longer agrees with the journal.
    Diverged(HostError),
}

pub(crate) fn diverged(reason: String) -> HostError {
    HostError {
        code: ErrorCode::ReplayDiverged.as_str().to_owned(),
        message: reason,
        error_type: None,
    }
}

fn journal_failed(error: Refusal) -> HostError {
    HostError { code: error.code.as_str().to_owned(), message: error.message, error_type: None }
}

/// The recorded result of the next call of kind `kind`.
pub(crate) fn replayed<R: DeserializeOwned>(slot: &Slot, kind: CallKind) -> Replayed<R> {
    let mut guard = slot.lock();
    let Some(journal) = guard.as_mut() else { return Replayed::Live };
    match journal.take_recorded(kind) {
        Ok(None) => Replayed::Live,
        Ok(Some(bytes)) => match postcard::from_bytes(&bytes) {
            Ok(value) => Replayed::Value(value),
            Err(error) => {
                let reason = format!("the recorded result of {kind:?} does not decode: {error}");
                journal.diverged = Some(reason.clone());
                Replayed::Diverged(diverged(reason))
            }
        },
        Err(reason) => Replayed::Diverged(diverged(reason)),
    }
}

/// Records the result of a live call.
pub(crate) fn record<R: Serialize>(slot: &Slot, kind: CallKind, result: &R) {
    if let Some(journal) = slot.lock().as_mut() {
        journal.append_call(kind, result);
    }
}

/// Before a live call with effects: waits until the message and every call before it are
/// durable.
pub(crate) async fn barrier(slot: &Slot) -> Result<(), HostError> {
    let (journal, ticket) = {
        let guard = slot.lock();
        let Some(journal) = guard.as_ref() else { return Ok(()) };
        if let Some(error) = &journal.failed {
            return Err(journal_failed(error.clone()));
        }
        if journal.last_ticket <= journal.durable_ticket {
            return Ok(());
        }
        (Arc::clone(&journal.journal), journal.last_ticket)
    };
    journal.durable(ticket).await.map_err(journal_failed)?;
    if let Some(journal) = slot.lock().as_mut() {
        journal.durable_ticket = journal.durable_ticket.max(ticket);
    }
    Ok(())
}

/// The origin of the next call, for a durable actor.
pub(crate) fn origin(slot: &Slot) -> Option<Origin> {
    slot.lock().as_ref().map(CallJournal::origin)
}

/// Whether the calls are answered from the journal now (a replayed message's logs are not
/// repeated).
pub(crate) fn replaying(slot: &Slot) -> bool {
    slot.lock().as_ref().is_some_and(CallJournal::replaying)
}

/// Runs a host call through the journal: the recorded result on replay; otherwise (after the
/// durability barrier, for a call with effects) the call itself, recorded.
macro_rules! journaled {
    ($ctx:ident, $kind:expr, effect = $effect:expr, |$this:ident| $body:block) => {{
        match $crate::durable::replayed(&$ctx.journal, $kind) {
            $crate::durable::Replayed::Value(recorded) => return recorded,
            $crate::durable::Replayed::Diverged(error) => return Err(error),
            $crate::durable::Replayed::Live => {}
        }
        if $effect {
            $crate::durable::barrier(&$ctx.journal).await?;
        }
        // The body gets the store data as `$this`, moved into its future (a shared borrow
        // held across an await would need the store data to be `Sync`).
        let result: Result<_, $crate::bindings::HostError> = {
            let $this = &mut *$ctx;
            async move $body
        }
        .await;
        $crate::durable::record(&$ctx.journal, $kind, &result);
        result
    }};
}
pub(crate) use journaled;

/// A value read from the world outside (a clock, randomness) through the journal; divergence
/// cannot be reported here, so it is noted and the live value returned.
pub(crate) fn journaled_value<R: Serialize + DeserializeOwned>(
    slot: &Slot,
    kind: CallKind,
    live: impl FnOnce() -> R,
) -> R {
    match replayed::<R>(slot, kind) {
        Replayed::Value(value) => value,
        Replayed::Live | Replayed::Diverged(_) => {
            let value = live();
            record(slot, kind, &value);
            value
        }
    }
}

/// Nanoseconds since the Unix epoch.
fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// WASI's wall clock, journaled for durable actors.
pub(crate) struct WallClock(pub(crate) Slot);

impl wasmtime_wasi::HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(journaled_value(&self.0, CallKind::WallClock, wall_nanos))
    }
}

/// The guests' monotonic clock: wall-clock nanoseconds, never going back in this process. A
/// replayed reading comes from before a restart and a live one after it, so a clock that
/// restarted at each boot would make durations across them meaningless.
pub(crate) struct MonotonicClock(pub(crate) Slot);

static MONOTONIC: AtomicU64 = AtomicU64::new(0);

fn monotonic_nanos() -> u64 {
    let now = wall_nanos();
    let previous = MONOTONIC.fetch_max(now, Ordering::Relaxed);
    previous.max(now)
}

impl wasmtime_wasi::HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        journaled_value(&self.0, CallKind::MonotonicClock, monotonic_nanos)
    }
}

/// WASI's random generators (secure and insecure), journaled for durable actors.
pub(crate) struct Random {
    pub(crate) slot: Slot,
    pub(crate) inner: Box<dyn rand_core::Rng + Send>,
}

impl rand_core::TryRng for Random {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let inner = &mut self.inner;
        let word = journaled_value(&self.slot, CallKind::RandomWord, || inner.next_u64());
        Ok(word as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let inner = &mut self.inner;
        Ok(journaled_value(&self.slot, CallKind::RandomWord, || inner.next_u64()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let inner = &mut self.inner;
        let bytes: Vec<u8> = journaled_value(&self.slot, CallKind::RandomBytes, || {
            let mut bytes = vec![0; dst.len()];
            inner.fill_bytes(&mut bytes);
            bytes
        });
        if bytes.len() == dst.len() {
            dst.copy_from_slice(&bytes);
        } else {
            // Replay asked for another length than the recorded call: the journal disagrees.
            if let Some(journal) = self.slot.lock().as_mut() {
                journal.diverged.get_or_insert_with(|| {
                    format!(
                        "random bytes of length {} where the journal has {}",
                        dst.len(),
                        bytes.len()
                    )
                });
            }
            inner.fill_bytes(dst);
        }
        Ok(())
    }
}
