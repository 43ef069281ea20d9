//! A deployed actor type: every actor of it is a virtual [`WasmActor`] on the core runtime,
//! served by the type's current module.

use std::{sync::Arc, time::Duration};

use plexspaces_core::{ActorRef, FacetRegistry, System};
use plexspaces_sdk::Message;
use plexspaces_storage::journal::Origin;
use plexspaces_types::{ActorId, ErrorCode};
use plexspaces_wasm::{Durability, Invocation, Served, WasmActor};
use serde_json::Value;

use crate::{
    Error, Result,
    payload::is_json,
    registry::{ActorKind, BoxFuture, Envelope, ask_retrying, tell_retrying, virtual_actor},
};

/// One deployed type.
pub(crate) struct WasmKind {
    pub(crate) served: Arc<Served>,
    pub(crate) behavior: String,
    /// Set when the type's facets include `durability`.
    pub(crate) durability: Option<Arc<Durability>>,
    /// The facets each actor gets, with their configs (checked at deploy).
    pub(crate) facets: Vec<(String, Value)>,
    pub(crate) facet_registry: FacetRegistry,
    pub(crate) idle_timeout: Duration,
    pub(crate) version: String,
}

impl WasmKind {
    fn actor(&self, system: &System, id: &ActorId) -> Result<ActorRef<WasmActor>> {
        let served = Arc::clone(&self.served);
        let durability = self.durability.clone();
        let facets = (&self.facet_registry, self.facets.as_slice());
        virtual_actor(system, id, self.idle_timeout, facets, move |chain| match &durability {
            Some(durability) => {
                WasmActor::durable(Arc::clone(&served), chain, Arc::clone(durability))
            }
            None => WasmActor::new(Arc::clone(&served), chain),
        })
    }

    fn invocation(msg: Message, message_id: Option<String>) -> Result<Invocation> {
        if !is_json(&msg.content_type) {
            return Err(Error::new(
                ErrorCode::UnsupportedMediaType,
                format!("wasm actors take JSON payloads, not {:?}", &*msg.content_type),
            ));
        }
        Ok(Invocation::new(msg.action.to_string(), msg.payload, message_id))
    }
}

impl From<plexspaces_wasm::Error> for Error {
    fn from(error: plexspaces_wasm::Error) -> Self {
        Self {
            code: error.code,
            message: error.message,
            facet: error.facet,
            error_type: error.error_type,
        }
    }
}

impl ActorKind for WasmKind {
    fn behavior(&self) -> &str {
        &self.behavior
    }

    fn facets(&self) -> Vec<String> {
        self.facets.iter().map(|(name, _)| name.clone()).collect()
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn durable(&self) -> bool {
        self.durability.is_some()
    }

    fn tell(&self, system: &System, id: ActorId, msg: Message, envelope: Envelope) -> Result<()> {
        let mut invocation = Self::invocation(msg, Some(envelope.message_id))?;
        invocation.origin = envelope.origin;
        invocation.idempotency_key = envelope.idempotency_key;
        invocation.admission = envelope.admission;
        tell_retrying(&id, invocation, || self.actor(system, &id))
    }

    fn call<'a>(
        &'a self,
        system: &'a System,
        id: ActorId,
        msg: Message,
        timeout: Duration,
        origin: Option<Origin>,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let mut invocation = Self::invocation(msg, None)?;
            invocation.origin = origin;
            Ok(ask_retrying(&id, invocation, timeout, || self.actor(system, &id)).await??)
        })
    }
}
