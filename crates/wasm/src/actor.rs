//! A wasm actor on the core runtime: the host holds its committed state and remembers which
//! instance keeps a copy of it, so most messages pass no state at all.

use std::sync::Arc;

use parking_lot::RwLock;
use plexspaces_core::{Actor, Context, facet::FacetChain, facet::MethodOutcome};
use plexspaces_durable::{ActorLog, Admit, Ended, answer, group, implied_replied};
pub use plexspaces_durable::{Admission, Admitted, Durability};
use plexspaces_storage::journal::{Checkpoint, MessageRecord, Origin, Outcome as JournalOutcome};
use plexspaces_types::ErrorCode;

use crate::{
    Error, Module, Result,
    bindings::{Failure, StateIn},
    durable::CallJournal,
    groups_host::PG_MESSAGE,
    logs::{Logs, Stream},
    module::{Outcome, Pinned},
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

/// What a wasm actor keeps while it is deactivated: its state and, when durable, where its
/// journal stands.
#[derive(Debug, Default)]
pub struct Kept {
    state: Option<Vec<u8>>,
    durable: Option<Memory>,
}

/// A durable wasm actor's place in its journal, and a workflow's run.
#[derive(Debug, Default)]
struct Memory {
    /// The journal's bookkeeping every durable actor has.
    log: ActorLog,
    /// A workflow's run and signals.
    workflow: workflow::WorkflowMemory,
    /// Who asked for the run in progress, answered when it ends (not kept across restarts).
    asker: Option<plexspaces_core::ReplyTo<Result<Vec<u8>>>>,
}

impl std::ops::Deref for Memory {
    type Target = ActorLog;
    fn deref(&self) -> &ActorLog {
        &self.log
    }
}

impl std::ops::DerefMut for Memory {
    fn deref_mut(&mut self) -> &mut ActorLog {
        &mut self.log
    }
}

impl Memory {
    fn from_checkpoint(checkpoint: Checkpoint) -> (Option<Vec<u8>>, Self) {
        let (state, extra, log) = ActorLog::from_checkpoint(checkpoint);
        let workflow = workflow::WorkflowMemory::decode(&extra);
        (state, Self { log, workflow, asker: None })
    }

    /// Journals a durable message unless its origin or idempotency key was seen before.
    fn admit(&mut self, msg: &Invocation, actor: &str, durability: &Durability) -> Result<Admit> {
        let record = plexspaces_durable::arrival(
            msg.action.clone(),
            msg.payload.clone(),
            msg.message_id.clone(),
            msg.idempotency_key.clone(),
            msg.origin.clone(),
        );
        Ok(self.log.admit(record, actor, durability)?)
    }

    /// The damage every message is refused with, if any.
    fn damaged(&self) -> Option<Error> {
        self.log.damage.clone().map(Error::from)
    }

    /// Refuses every message from now on with `error`.
    fn refuse_all(&mut self, error: &Error) {
        self.log.damage = Some(error.into());
    }
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
    /// For a class whose state lives in the guest: the instance that keeps it, this actor's
    /// alone while it is active.
    pinned: Option<Pinned>,
    /// Set for a durable type: the journal, and where this actor stands in it.
    durable: Option<(Arc<Durability>, Memory)>,
}

impl WasmActor {
    /// A new actor of the type `served`, with `facets` around each of its messages.
    pub fn new(served: Arc<Served>, facets: FacetChain) -> Self {
        Self { served, facets, state: None, holder: None, pinned: None, durable: None }
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
        let class = module.description().classes.get(binding.class as usize);
        if class.is_some_and(crate::Class::guest_state) {
            // Never durable: a deploy refuses the durability facet for such a class.
            return (self.serve_pinned(&binding, action, payload, ctx).await, journal);
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
                    return (Err(failed(failure)), journal);
                }
                Outcome::Trapped(error) => {
                    self.holder = None;
                    return (Err(error), journal);
                }
            }
        }
    }

    /// A message for a class whose state lives in the guest: its actor's own instance serves
    /// it, with the state that instance keeps (a new instance and the default state for the
    /// actor's first message, after a trap, and after a redeploy).
    async fn serve_pinned(
        &mut self,
        binding: &Binding,
        action: &str,
        payload: &[u8],
        ctx: &Context<Self>,
    ) -> Result<Vec<u8>> {
        let module = &binding.module;
        if self.pinned.as_ref().is_some_and(|pinned| pinned.module().serial() != module.serial()) {
            self.pinned = None;
            self.served.logs.push(
                ctx.id(),
                "warn",
                Stream::Host,
                "a new version serves this actor: its state lived in the previous version's \
                 instance (it has no serde) and starts again from its default"
                    .to_owned(),
            );
        }
        let (mut pinned, state) = match self.pinned.take() {
            Some(pinned) => (pinned, StateIn::Cached),
            None => (module.pin().await?, StateIn::Fresh),
        };
        let outcome =
            module.call_pinned(&mut pinned, ctx.id(), binding.class, &state, action, payload);
        match outcome.await {
            Outcome::Replied(reply) => {
                self.pinned = Some(pinned);
                Ok(reply.payload)
            }
            // The state stays as the handler left it, as for a native actor.
            Outcome::Failed(failure) => {
                self.pinned = Some(pinned);
                Err(failed(failure))
            }
            Outcome::Trapped(error) => Err(error),
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
        let admit = |admitted: Result<Admitted>| {
            answer(admission, admitted.map_err(|error| (&error).into()));
        };
        if let Some(damage) = memory.damaged() {
            admit(Err(damage.clone()));
            return (Err(damage), memory);
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
            memory.damage = Some(error.clone());
            return (Err(error.into()), memory);
        }
        let outcome =
            self.finish(&actor, seq, next_index, &record, outcome, &mut memory, durability);
        // The asker is answered once the message and everything it did is durable.
        if ask && let Err(error) = journal.durable(memory.ticket).await {
            return (Err(error.into()), memory);
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
        let ended = match &outcome {
            Ok(reply) => Ended::Replied(reply),
            Err(error) if error.code == ErrorCode::GuestTrapped => Ended::Trapped,
            Err(_) => Ended::Failed,
        };
        memory.log.finish(&durability.journal, actor, (seq, index), record, ended)?;
        outcome
    }

    /// Stores a checkpoint of the state and the workflow's run.
    async fn checkpoint(
        state: Option<Vec<u8>>,
        actor: &str,
        memory: &mut Memory,
        durability: &Durability,
    ) {
        let extra = memory.workflow.encode();
        memory.log.checkpoint(state, extra, actor, durability).await;
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
                return Memory { log: ActorLog::damaged(error), ..Memory::default() };
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
        let messages = group(recovered.entries);
        let count = messages.len();
        for (n, message) in messages.into_iter().enumerate() {
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
                None => implied_replied(&message, n + 1 == count),
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
                memory.refuse_all(error);
                return memory;
            }
            if !replayed {
                // Interrupted by the crash: it has now run to its end, which is journaled.
                let (next_index, failed) =
                    calls.map_or((1, None), |calls| (calls.next_index, calls.failed));
                if let Some(error) = failed {
                    memory.damage = Some(error);
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
        // A crash may have come between journaling a run and storing its wake-up: stored again.
        if workflow
            && memory.damage.is_none()
            && let Some(due) = memory.workflow.resume_due(plexspaces_durable::now_ms())
        {
            let timers = Arc::clone(&self.served.current().module.services().timers);
            if let Err(error) = timers.set_wake(ctx.id(), due).await {
                tracing::warn!(actor, error = %error, "the run's wake-up was not stored");
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
        // A state that lives in the guest goes with its instance.
        self.pinned = None;
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

/// The error a guest's failure is to the caller.
fn failed(failure: Failure) -> Error {
    let code = ErrorCode::parse(&failure.code).unwrap_or(ErrorCode::ActorError);
    let mut error = Error::new(code, failure.message);
    error.error_type = failure.error_type;
    error
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
