//! A wasm actor on the core runtime: the host holds its committed state and remembers which
//! instance keeps a copy of it, so most messages pass no state at all.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::RwLock;
use plexspaces_core::{Actor, Context, facet::FacetChain, facet::MethodOutcome};
use plexspaces_storage::journal::{
    Checkpoint, Entry, JournalBackend, KeyMark, MessageRecord, Origin, Outcome as JournalOutcome,
    SenderMark, Ticket,
};
use plexspaces_types::ErrorCode;
use tokio::sync::oneshot;

use crate::{
    Error, Module, Result,
    bindings::StateIn,
    durable::CallJournal,
    groups_host::PG_MESSAGE,
    logs::{Logs, Stream},
    module::Outcome,
};

mod workflow;

/// Which class of which module serves a type now. A redeploy swaps it: each actor of the type
/// uses the new module from its next message on.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The module.
    pub module: Module,
    /// The class's index in the module's description.
    pub class: u32,
}

/// The current binding of a deployed type, shared by all its actors.
#[derive(Debug)]
pub struct Served {
    binding: RwLock<Arc<Binding>>,
    logs: Logs,
}

impl Served {
    /// A type served by `binding`.
    pub fn new(binding: Binding, logs: Logs) -> Arc<Self> {
        Arc::new(Self { binding: RwLock::new(Arc::new(binding)), logs })
    }

    /// The binding messages use from now on.
    pub fn current(&self) -> Arc<Binding> {
        Arc::clone(&self.binding.read())
    }

    /// Serves the type from another module (a new version).
    pub fn replace(&self, binding: Binding) {
        *self.binding.write() = Arc::new(binding);
    }
}

/// One message for a wasm actor.
#[derive(Debug)]
pub struct Invocation {
    /// The action.
    pub action: String,
    /// The payload: a JSON object.
    pub payload: Vec<u8>,
    /// The tell's message id (none for an ask): a failed tell is logged with it.
    pub message_id: Option<String>,
    /// The deterministic id of a message a durable actor sent: a durable receiver drops it
    /// when it has seen it.
    pub origin: Option<Origin>,
    /// The client's `Idempotency-Key` (tells): a durable actor keeps it with the message.
    pub idempotency_key: Option<String>,
    /// Told when a durable actor has journaled the message (or found it a duplicate); the
    /// sender acknowledges once that ticket is durable.
    pub admission: Option<Admission>,
}

impl Invocation {
    /// A plain message: no origin, no key, no admission.
    pub fn new(action: String, payload: Vec<u8>, message_id: Option<String>) -> Self {
        Self { action, payload, message_id, origin: None, idempotency_key: None, admission: None }
    }
}

/// What a durable actor says of a message it was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Durable once the journal has made this ticket durable.
    pub ticket: Ticket,
    /// The message id an earlier delivery of the same key or origin had: not delivered again.
    pub duplicate_of: Option<String>,
}

/// The channel an admission is told on.
pub type Admission = oneshot::Sender<Result<Admitted>>;

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

/// What a wasm actor keeps while it is deactivated: its state and, when durable, where its
/// journal stands.
#[derive(Debug, Default)]
pub struct Kept {
    state: Option<Vec<u8>>,
    durable: Option<Memory>,
}

/// A durable actor's place in its journal.
#[derive(Debug, Default)]
struct Memory {
    /// The last message journaled.
    seq: u64,
    /// The last ticket appended.
    ticket: Ticket,
    /// Entries since the last checkpoint.
    since_checkpoint: u64,
    /// Per durable sender, the last origin seen.
    senders: HashMap<String, SenderMark>,
    /// Idempotency keys inside their window, and the order they came in.
    keys: HashMap<String, KeyMark>,
    key_order: VecDeque<String>,
    /// Damage found at recovery: every message is refused with it.
    damage: Option<Error>,
    /// A workflow's run and signals.
    workflow: workflow::WorkflowMemory,
    /// Who asked for the run in progress, answered when it ends (not kept across restarts).
    asker: Option<plexspaces_core::ReplyTo<Result<Vec<u8>>>>,
}

impl Memory {
    fn from_checkpoint(checkpoint: Checkpoint) -> (Option<Vec<u8>>, Self) {
        let memory = Self {
            seq: checkpoint.seq,
            senders: checkpoint
                .senders
                .into_iter()
                .map(|mark| (mark.sender.clone(), mark))
                .collect(),
            key_order: checkpoint.keys.iter().map(|mark| mark.key.clone()).collect(),
            keys: checkpoint.keys.into_iter().map(|mark| (mark.key.clone(), mark)).collect(),
            workflow: workflow::WorkflowMemory::decode(&checkpoint.extra),
            ..Self::default()
        };
        (checkpoint.state, memory)
    }

    /// The keys, oldest first, for a checkpoint.
    fn key_marks(&self) -> Vec<KeyMark> {
        self.key_order.iter().filter_map(|key| self.keys.get(key).cloned()).collect()
    }

    fn note(&mut self, record: &MessageRecord, durability: &Durability) {
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

    /// Journals a durable message unless its origin or idempotency key was seen before.
    fn admit(&mut self, msg: &Invocation, actor: &str, durability: &Durability) -> Result<Admit> {
        if let Some(origin) = &msg.origin
            && let Some(mark) = self.senders.get(&origin.sender)
            && !origin.is_after(mark)
        {
            // A durable sender asking again gets the reply it was given.
            let same = (mark.seq, mark.call) == (origin.seq, origin.call);
            let reply = mark.reply.clone().filter(|_| same).unwrap_or_else(|| b"null".to_vec());
            return Ok(Admit::Duplicate { first: msg.message_id.clone(), reply });
        }
        if let Some(key) = &msg.idempotency_key
            && let Some(first) = self.keys.get(key)
        {
            let first = Some(first.message_id.clone());
            return Ok(Admit::Duplicate { first, reply: b"null".to_vec() });
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
        let seq = self.seq + 1;
        let entry = Entry::Message(record);
        self.ticket = durability.journal.append(actor, seq, 0, &entry).map_err(journal_error)?;
        let Entry::Message(record) = entry else { unreachable!("built as a message") };
        self.seq = seq;
        self.note(&record, durability);
        Ok(Admit::New(seq, record))
    }

    /// Journals how message `seq` ended (at `index`, after its calls).
    fn end(
        &mut self,
        journal: &Arc<dyn JournalBackend>,
        actor: &str,
        seq: u64,
        index: u32,
        outcome: JournalOutcome,
    ) -> Result<()> {
        match journal.append(actor, seq, index, &Entry::Done(outcome)) {
            Ok(ticket) => {
                self.ticket = ticket;
                self.since_checkpoint += u64::from(index) + 1;
                Ok(())
            }
            Err(error) => {
                let error = journal_error(error);
                self.damage = Some(error.clone());
                Err(error)
            }
        }
    }

    fn keep_reply(&mut self, origin: &Origin, reply: Vec<u8>) {
        if let Some(mark) = self.senders.get_mut(&origin.sender)
            && (mark.seq, mark.call) == (origin.seq, origin.call)
        {
            mark.reply = Some(reply);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

fn journal_error(error: plexspaces_types::Refusal) -> Error {
    Error::new(error.code, error.message)
}

/// What admitting a durable message gave.
enum Admit {
    /// Journaled as message `seq`.
    New(u64, MessageRecord),
    /// Seen before: the first delivery's message id, and the reply kept for a durable asker.
    Duplicate { first: Option<String>, reply: Vec<u8> },
}

/// A journaled message and what followed it.
struct Journaled {
    seq: u64,
    record: MessageRecord,
    calls: VecDeque<(u16, Vec<u8>)>,
    done: Option<JournalOutcome>,
}

fn group(entries: Vec<(u64, u32, Entry)>) -> Vec<Journaled> {
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

/// A wasm actor: the host's side of it.
#[derive(Debug)]
pub struct WasmActor {
    served: Arc<Served>,
    /// The facets around each message, in priority order.
    facets: FacetChain,
    /// The state the guest returned after its last successful handler.
    state: Option<Vec<u8>>,
    /// The instance that keeps a copy of `state`: (module serial, instance id).
    holder: Option<(u64, u64)>,
    /// Set for a durable type: the journal, and where this actor stands in it.
    durable: Option<(Arc<Durability>, Memory)>,
}

impl WasmActor {
    /// A new actor of the type `served`, with `facets` around each of its messages.
    pub fn new(served: Arc<Served>, facets: FacetChain) -> Self {
        Self { served, facets, state: None, holder: None, durable: None }
    }

    /// A durable actor: each message is journaled before it is handled, with the results of
    /// its host calls; it recovers from its checkpoint and journal when it activates.
    pub fn durable(served: Arc<Served>, facets: FacetChain, durability: Arc<Durability>) -> Self {
        Self { durable: Some((durability, Memory::default())), ..Self::new(served, facets) }
    }

    /// Runs the message through the facets and the guest.
    async fn handle_with_facets(
        &mut self,
        msg: &Invocation,
        ctx: &Context<Self>,
        journal: Option<CallJournal>,
    ) -> (Result<Vec<u8>>, Option<CallJournal>) {
        if self.facets.is_empty() {
            return self.serve(&msg.action, &msg.payload, ctx, journal).await;
        }
        if let Err(rejection) = self.facets.before(&msg.action, &msg.payload).await {
            let mut error = Error::new(ErrorCode::FacetRejected, rejection.to_string());
            error.facet = Some(rejection.facet);
            return (Err(error), journal);
        }
        let (outcome, journal) = self.serve(&msg.action, &msg.payload, ctx, journal).await;
        let failure =
            outcome.as_ref().err().map(|error| format!("{}: {}", error.code, error.message));
        let method_outcome = match &failure {
            None => MethodOutcome::Replied,
            Some(message) => MethodOutcome::Failed(message),
        };
        self.facets.after(&msg.action, &msg.payload, method_outcome).await;
        (outcome, journal)
    }

    async fn serve(
        &mut self,
        action: &str,
        payload: &[u8],
        ctx: &Context<Self>,
        mut journal: Option<CallJournal>,
    ) -> (Result<Vec<u8>>, Option<CallJournal>) {
        let binding = self.served.current();
        let module = &binding.module;
        // A group message for a class without a handler for it is dropped, and counted: a
        // member need not care for every message of its groups.
        if action == PG_MESSAGE && !module.handles(binding.class, PG_MESSAGE) {
            module.services().groups.count_dropped();
            return (Ok(b"null".to_vec()), journal);
        }
        let mut instance = match module.acquire().await {
            Ok(instance) => instance,
            Err(error) => return (Err(error), journal),
        };
        let mut resend_state = false;
        loop {
            let cached = self.holder == Some((module.serial(), instance.id));
            let state = match (&self.state, cached && !resend_state) {
                (_, true) => StateIn::Cached,
                (None, false) => StateIn::Fresh,
                (Some(bytes), false) => StateIn::Bytes(bytes.clone()),
            };
            // Another instance of this module holds a now stale copy: let it drop it.
            if let Some((serial, holder)) = self.holder
                && serial == module.serial()
                && holder != instance.id
            {
                module.evict(holder, binding.class, ctx.id().key.as_str());
            }
            let instance_id = instance.id;
            let (outcome, returned) = module
                .call(instance, ctx.id(), binding.class, &state, action, payload, journal)
                .await;
            journal = returned;
            // Replay that disagrees with the journal commits nothing.
            if let Some(reason) = journal.as_ref().and_then(|journal| journal.diverged.clone()) {
                self.holder = None;
                return (Err(Error::new(ErrorCode::ReplayDiverged, reason)), journal);
            }
            match outcome {
                Outcome::Replied(reply) => {
                    if let Some(state) = reply.state {
                        self.state = Some(state);
                    }
                    self.holder = Some((module.serial(), instance_id));
                    return (Ok(reply.payload), journal);
                }
                Outcome::Failed(failure) if failure.code == "need_state" && !resend_state => {
                    resend_state = true;
                    self.holder = None;
                    instance = match module.acquire().await {
                        Ok(instance) => instance,
                        Err(error) => return (Err(error), journal),
                    };
                }
                Outcome::Failed(failure) => {
                    self.holder = None;
                    let code = ErrorCode::parse(&failure.code).unwrap_or(ErrorCode::ActorError);
                    let mut error = Error::new(code, failure.message);
                    error.error_type = failure.error_type;
                    return (Err(error), journal);
                }
                Outcome::Trapped(error) => {
                    self.holder = None;
                    return (Err(error), journal);
                }
            }
        }
    }

    /// A durable actor's message: dropped when it is a duplicate; otherwise journaled (the
    /// sender acknowledged once that is durable), handled with its host calls journaled, its
    /// end journaled, and a reply only once all of that is durable.
    async fn handle_durable(
        &mut self,
        mut msg: Invocation,
        ctx: &mut Context<Self>,
        durability: &Arc<Durability>,
        mut memory: Memory,
    ) -> (Result<Vec<u8>>, Memory) {
        let admission = msg.admission.take();
        if self.is_workflow() && memory.damage.is_none() {
            return self.handle_workflow(msg, admission, ctx, durability, memory).await;
        }
        let admit = |answer: Result<Admitted>| {
            if let Some(admission) = admission {
                let _sender_gone = admission.send(answer);
            }
        };
        if let Some(damage) = &memory.damage {
            admit(Err(damage.clone()));
            return (Err(damage.clone()), memory);
        }
        let journal = &durability.journal;
        let actor = ctx.id().to_string();
        let (seq, record) = match memory.admit(&msg, &actor, durability) {
            Ok(Admit::New(seq, record)) => (seq, record),
            Ok(Admit::Duplicate { first, reply }) => {
                admit(Ok(Admitted { ticket: memory.ticket, duplicate_of: first }));
                return (Ok(reply), memory);
            }
            Err(error) => {
                admit(Err(error.clone()));
                return (Err(error), memory);
            }
        };
        let (ask, ticket) = (record.ask, memory.ticket);
        admit(Ok(Admitted { ticket, duplicate_of: None }));
        let calls = CallJournal::live(Arc::clone(journal), actor.clone(), seq, ticket);
        let (outcome, calls) = self.handle_with_facets(&msg, ctx, Some(calls)).await;
        let (next_index, failed) =
            calls.map_or((1, None), |calls| (calls.next_index, calls.failed));
        if let Some(error) = failed {
            // The journal could not take the message's calls: nothing more is acknowledged.
            let error = journal_error(error);
            memory.damage = Some(error.clone());
            return (Err(error), memory);
        }
        let outcome =
            self.finish(&actor, seq, next_index, &record, outcome, &mut memory, durability);
        // The asker is answered once the message and everything it did is durable.
        if ask && let Err(error) = journal.durable(memory.ticket).await {
            return (Err(journal_error(error)), memory);
        }
        if memory.since_checkpoint >= durability.checkpoint_every {
            Self::checkpoint(self.state.clone(), &actor, &mut memory, durability).await;
        }
        (outcome, memory)
    }

    /// Whether the type is a workflow (its runs journaled across their waits).
    fn is_workflow(&self) -> bool {
        let binding = self.served.current();
        binding
            .module
            .description()
            .classes
            .get(binding.class as usize)
            .is_some_and(|class| class.behavior == "workflow")
    }

    /// Journals how message `seq` ended.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        actor: &str,
        seq: u64,
        index: u32,
        record: &MessageRecord,
        outcome: Result<Vec<u8>>,
        memory: &mut Memory,
        durability: &Durability,
    ) -> Result<Vec<u8>> {
        let kept_reply = match (&outcome, &record.origin) {
            (Ok(reply), Some(_)) if record.ask => Some(reply.clone()),
            _ => None,
        };
        let done = match &outcome {
            Ok(_) => JournalOutcome::Replied { reply: kept_reply.clone() },
            Err(error) if error.code == ErrorCode::GuestTrapped => JournalOutcome::Trapped,
            Err(_) => JournalOutcome::Failed,
        };
        memory.end(&durability.journal, actor, seq, index, done)?;
        if let (Some(origin), Some(reply)) = (&record.origin, kept_reply) {
            memory.keep_reply(origin, reply);
        }
        outcome
    }

    /// Stores a checkpoint once everything it covers is durable; the journal is truncated
    /// behind it. A failure is logged: the journal still holds everything.
    async fn checkpoint(
        state: Option<Vec<u8>>,
        actor: &str,
        memory: &mut Memory,
        durability: &Durability,
    ) {
        let journal = &durability.journal;
        let checkpoint = Checkpoint {
            seq: memory.seq,
            state,
            senders: memory.senders.values().cloned().collect(),
            keys: memory.key_marks(),
            extra: memory.workflow.encode(),
        };
        let stored = match journal.durable(memory.ticket).await {
            Ok(()) => journal.checkpoint(actor, &checkpoint).await,
            Err(error) => Err(error),
        };
        match stored {
            Ok(()) => memory.since_checkpoint = 0,
            Err(error) => tracing::warn!(actor, error = %error, "checkpoint not stored"),
        }
    }

    /// Rebuilds a durable actor from its checkpoint and journal: the journaled messages that
    /// replied are handled again with their recorded host calls, which perform nothing; one
    /// the crash interrupted replays its recorded calls and then carries on live.
    async fn recover(&mut self, ctx: &Context<Self>, durability: &Arc<Durability>) -> Memory {
        let actor = ctx.id().to_string();
        let recovered = match durability.journal.recover(&actor).await {
            Ok(recovered) => recovered,
            Err(error) => {
                tracing::error!(actor, error = %error, "durable actor not recovered");
                return Memory { damage: Some(journal_error(error)), ..Memory::default() };
            }
        };
        let (state, mut memory) = match recovered.checkpoint {
            Some(checkpoint) => Memory::from_checkpoint(checkpoint),
            None => (None, Memory::default()),
        };
        self.state = state;
        self.holder = None;
        memory.since_checkpoint = recovered.entries.len() as u64;
        let workflow = self.is_workflow();
        for message in group(recovered.entries) {
            memory.seq = message.seq;
            memory.note(&message.record, durability);
            if workflow {
                self.recover_workflow_message(message, ctx, durability, &mut memory).await;
                if memory.damage.is_some() {
                    return memory;
                }
                continue;
            }
            let replayed = match &message.done {
                // A failed or trapped message left the state as it was.
                Some(
                    JournalOutcome::Failed
                    | JournalOutcome::Trapped
                    | JournalOutcome::Suspended { .. }
                    | JournalOutcome::Buffered,
                ) => continue,
                Some(JournalOutcome::Replied { reply }) => {
                    if let (Some(origin), Some(reply)) = (&message.record.origin, reply) {
                        memory.keep_reply(origin, reply.clone());
                    }
                    true
                }
                None => false,
            };
            let calls = CallJournal::replay(
                Arc::clone(&durability.journal),
                actor.clone(),
                message.seq,
                message.calls,
                replayed,
            );
            let record = &message.record;
            let (outcome, calls) =
                self.serve(&record.action, &record.payload, ctx, Some(calls)).await;
            if let Err(error) = &outcome
                && error.code == ErrorCode::ReplayDiverged
            {
                tracing::error!(actor, seq = message.seq, error = %error.message, "replay diverged");
                memory.damage = Some(error.clone());
                return memory;
            }
            if !replayed {
                // Interrupted by the crash: it has now run to its end, which is journaled.
                let (next_index, failed) =
                    calls.map_or((1, None), |calls| (calls.next_index, calls.failed));
                if let Some(error) = failed {
                    memory.damage = Some(journal_error(error));
                    return memory;
                }
                let _reply = self.finish(
                    &actor,
                    message.seq,
                    next_index,
                    record,
                    outcome,
                    &mut memory,
                    durability,
                );
            }
        }
        memory
    }
}

impl Actor for WasmActor {
    type Msg = Invocation;
    type Reply = Result<Vec<u8>>;
    type Snapshot = Kept;

    async fn handle(&mut self, mut msg: Invocation, ctx: &mut Context<Self>) -> Result<Vec<u8>> {
        let tell = msg.message_id.clone().map(|id| (id, msg.action.clone()));
        let outcome = match self.durable.take() {
            Some((durability, memory)) => {
                let (outcome, memory) = self.handle_durable(msg, ctx, &durability, memory).await;
                self.durable = Some((durability, memory));
                outcome
            }
            None => {
                // Not durable: nothing to journal, admitted at once.
                if let Some(admission) = msg.admission.take() {
                    let admitted = Admitted { ticket: 0, duplicate_of: None };
                    let _sender_gone = admission.send(Ok(admitted));
                }
                self.handle_with_facets(&msg, ctx, None).await.0
            }
        };
        self.logged(outcome, tell, ctx)
    }

    async fn activate(
        &mut self,
        snapshot: Option<Kept>,
        ctx: &mut Context<Self>,
    ) -> Result<(), plexspaces_core::ExitReason> {
        let kept = snapshot.unwrap_or_default();
        self.state = kept.state;
        if let Some((durability, _)) = self.durable.take() {
            let memory = match kept.durable {
                Some(memory) => memory,
                None => self.recover(ctx, &durability).await,
            };
            self.durable = Some((durability, memory));
        }
        Ok(())
    }

    async fn deactivate(&mut self, ctx: &mut Context<Self>) -> Option<Kept> {
        let binding = self.served.current();
        if let Some((serial, holder)) = self.holder.take()
            && serial == binding.module.serial()
        {
            binding.module.evict(holder, binding.class, ctx.id().key.as_str());
        }
        let durable = match self.durable.take() {
            Some((durability, mut memory)) => {
                if memory.since_checkpoint > 0 && memory.damage.is_none() {
                    let actor = ctx.id().to_string();
                    Self::checkpoint(self.state.clone(), &actor, &mut memory, &durability).await;
                }
                Some(memory)
            }
            None => None,
        };
        Some(Kept { state: self.state.take(), durable })
    }

    fn inspect(&self) -> Option<serde_json::Value> {
        match &self.state {
            None => Some(serde_json::Value::Null),
            Some(bytes) => serde_json::from_slice(bytes).ok(),
        }
    }
}

impl WasmActor {
    /// Logs a failed tell in the type's log buffer, with its message id.
    fn logged(
        &self,
        outcome: Result<Vec<u8>>,
        tell: Option<(String, String)>,
        ctx: &Context<Self>,
    ) -> Result<Vec<u8>> {
        if let (Err(error), Some((message_id, action))) = (&outcome, tell) {
            self.served.logs.push(
                ctx.id(),
                "warn",
                Stream::Host,
                format!("tell {message_id} ({action}) failed: {}: {}", error.code, error.message),
            );
        }
        outcome
    }
}
