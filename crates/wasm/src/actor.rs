//! A wasm actor on the core runtime: the host holds its committed state and remembers which
//! instance keeps a copy of it, so most messages pass no state at all.

use std::sync::Arc;

use parking_lot::RwLock;
use plexspaces_core::{Actor, Context, facet::FacetChain, facet::MethodOutcome};
use plexspaces_types::ErrorCode;

use crate::{
    Error, Module, Result,
    bindings::StateIn,
    groups_host::PG_MESSAGE,
    logs::{Logs, Stream},
    module::Outcome,
};

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
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The action.
    pub action: String,
    /// The payload: a JSON object.
    pub payload: Vec<u8>,
    /// The tell's message id (none for an ask): a failed tell is logged with it.
    pub message_id: Option<String>,
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
}

impl WasmActor {
    /// A new actor of the type `served`, with `facets` around each of its messages.
    pub fn new(served: Arc<Served>, facets: FacetChain) -> Self {
        Self { served, facets, state: None, holder: None }
    }

    /// Runs the message through the facets and the guest.
    async fn handle_with_facets(
        &mut self,
        msg: &Invocation,
        ctx: &Context<Self>,
    ) -> Result<Vec<u8>> {
        if self.facets.is_empty() {
            return self.serve(msg, ctx).await;
        }
        if let Err(rejection) = self.facets.before(&msg.action, &msg.payload).await {
            let mut error = Error::new(ErrorCode::FacetRejected, rejection.to_string());
            error.facet = Some(rejection.facet);
            return Err(error);
        }
        let outcome = self.serve(msg, ctx).await;
        let failure =
            outcome.as_ref().err().map(|error| format!("{}: {}", error.code, error.message));
        let method_outcome = match &failure {
            None => MethodOutcome::Replied,
            Some(message) => MethodOutcome::Failed(message),
        };
        self.facets.after(&msg.action, &msg.payload, method_outcome).await;
        outcome
    }

    async fn serve(&mut self, msg: &Invocation, ctx: &Context<Self>) -> Result<Vec<u8>> {
        let binding = self.served.current();
        let module = &binding.module;
        // A group message for a class without a handler for it is dropped, and counted: a
        // member need not care for every message of its groups.
        if msg.action == PG_MESSAGE && !module.handles(binding.class, PG_MESSAGE) {
            module.services().groups.count_dropped();
            return Ok(b"null".to_vec());
        }
        let mut instance = module.acquire().await?;
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
            let outcome = module
                .call(instance, ctx.id(), binding.class, &state, &msg.action, &msg.payload)
                .await;
            match outcome {
                Outcome::Replied(reply) => {
                    if let Some(state) = reply.state {
                        self.state = Some(state);
                    }
                    self.holder = Some((module.serial(), instance_id));
                    return Ok(reply.payload);
                }
                Outcome::Failed(failure) if failure.code == "need_state" && !resend_state => {
                    resend_state = true;
                    self.holder = None;
                    instance = module.acquire().await?;
                }
                Outcome::Failed(failure) => {
                    self.holder = None;
                    let code = ErrorCode::parse(&failure.code).unwrap_or(ErrorCode::ActorError);
                    let mut error = Error::new(code, failure.message);
                    error.error_type = failure.error_type;
                    return Err(error);
                }
                Outcome::Trapped(error) => {
                    self.holder = None;
                    return Err(error);
                }
            }
        }
    }
}

impl Actor for WasmActor {
    type Msg = Invocation;
    type Reply = Result<Vec<u8>>;
    type Snapshot = Option<Vec<u8>>;

    async fn handle(&mut self, msg: Invocation, ctx: &mut Context<Self>) -> Result<Vec<u8>> {
        let outcome = self.handle_with_facets(&msg, ctx).await;
        if let (Err(error), Some(message_id)) = (&outcome, &msg.message_id) {
            self.served.logs.push(
                ctx.id(),
                "warn",
                Stream::Host,
                format!(
                    "tell {message_id} ({}) failed: {}: {}",
                    msg.action, error.code, error.message
                ),
            );
        }
        outcome
    }

    async fn activate(
        &mut self,
        snapshot: Option<Option<Vec<u8>>>,
        _ctx: &mut Context<Self>,
    ) -> Result<(), plexspaces_core::ExitReason> {
        self.state = snapshot.flatten();
        Ok(())
    }

    async fn deactivate(&mut self, ctx: &mut Context<Self>) -> Option<Option<Vec<u8>>> {
        let binding = self.served.current();
        if let Some((serial, holder)) = self.holder.take()
            && serial == binding.module.serial()
        {
            binding.module.evict(holder, binding.class, ctx.id().key.as_str());
        }
        Some(self.state.take())
    }

    fn inspect(&self) -> Option<serde_json::Value> {
        match &self.state {
            None => Some(serde_json::Value::Null),
            Some(bytes) => serde_json::from_slice(bytes).ok(),
        }
    }
}
