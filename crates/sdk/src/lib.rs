//! The PlexSpaces Rust SDK: write an actor as a plain struct and a block of handlers.
//!
//! ```
//! use plexspaces_sdk::prelude::*;
//!
//! #[gen_server_actor]
//! struct Counter { count: i32 }
//!
//! #[plexspaces_handlers]
//! impl Counter {
//!     #[handler("increment")]
//!     async fn increment(&mut self, _ctx: &ActorContext, msg: &Message)
//!         -> Result<serde_json::Value, BehaviorError> {
//!         let payload: serde_json::Value = serde_json::from_slice(&msg.payload)?;
//!         self.count += payload["amount"].as_i64().unwrap_or(1) as i32;
//!         Ok(json!({ "count": self.count }))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = plexspaces_core::Options::default().build()?;
//! let id = plexspaces_types::ActorId::parse("acme/default/counter/c-1")?;
//! let counter = system.spawn(id, GenServer::<Counter>::default())?;
//! let reply = counter.ask(Message::json(&json!({"action": "increment", "amount": 5}))).await?;
//! assert_eq!(reply?, json!({"count": 5}));
//! # Ok(())
//! # }
//! ```
//!
//! The message's action picks the handler; `#[handler("*")]` takes every action that has no
//! handler of its own; any other action is [`BehaviorError::UnknownAction`]. A handler's error
//! goes back to the caller and the actor keeps running with its state as the handler left it.

#[cfg(not(target_family = "wasm"))]
mod context;
mod error;
#[cfg(not(target_family = "wasm"))]
mod gen_server;
#[cfg(target_family = "wasm")]
pub mod guest;
mod message;
mod state;
#[cfg(not(target_family = "wasm"))]
mod workflow;

#[cfg(not(target_family = "wasm"))]
pub use context::ActorContext;
pub use error::BehaviorError;
#[cfg(not(target_family = "wasm"))]
pub use error::SpawnError;
#[cfg(not(target_family = "wasm"))]
pub use gen_server::{GenEvent, GenFsm, GenServer, spawn_actor};
#[cfg(target_family = "wasm")]
pub use guest::WorkflowContext;
#[cfg(target_family = "wasm")]
pub use guest::{ActorContext, HostError, host};
pub use message::Message;
pub use plexspaces_sdk_macros::{
    gen_event_actor, gen_fsm_actor, gen_server_actor, handler, plexspaces_handlers, query_handler,
    run_handler, signal_handler, workflow_actor,
};
pub use serde_json::{Value, json};
pub use state::{ActorState, Handlers, Transition, WorkflowHandlers};
#[cfg(not(target_family = "wasm"))]
pub use workflow::{RunJournal, WorkflowActor, WorkflowContext, WorkflowKept};

/// Support code for the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::marker::PhantomData;

    /// A value whose method resolution tells whether `T` can be checkpointed.
    #[derive(Debug)]
    pub struct Probe<T>(PhantomData<T>);

    impl<T> Probe<T> {
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            Self(PhantomData)
        }
    }

    /// Picked (one autoref away) when `T` has serde.
    pub trait Checkpointable<T> {
        fn checkpointable(&self) -> bool {
            true
        }
        fn state_json(&self, state: &T) -> Option<serde_json::Value>;
        fn read_state_json(&self, json: serde_json::Value) -> Result<T, String>;
    }
    impl<T: serde::Serialize + serde::de::DeserializeOwned> Checkpointable<T> for &Probe<T> {
        fn state_json(&self, state: &T) -> Option<serde_json::Value> {
            serde_json::to_value(state).ok()
        }
        fn read_state_json(&self, json: serde_json::Value) -> Result<T, String> {
            serde_json::from_value(json).map_err(|error| error.to_string())
        }
    }

    /// The fallback (two autorefs away).
    pub trait NotCheckpointable<T> {
        fn checkpointable(&self) -> bool {
            false
        }
        fn state_json(&self, _state: &T) -> Option<serde_json::Value> {
            None
        }
        fn read_state_json(&self, _json: serde_json::Value) -> Result<T, String> {
            Err("the state has no serde".to_owned())
        }
    }
    impl<T> NotCheckpointable<T> for &&Probe<T> {}
}

/// What actor code usually needs, in one import: `use plexspaces_sdk::prelude::*;`.
#[cfg(target_family = "wasm")]
pub mod prelude {
    pub use crate::{
        ActorContext, BehaviorError, HostError, Message, Value, WorkflowContext, gen_event_actor,
        gen_fsm_actor, gen_server_actor, handler, host, json, plexspaces_handlers, query_handler,
        run_handler, signal_handler, workflow_actor,
    };
    pub use serde::{Deserialize, Serialize};
    pub use std::collections::HashMap;
    pub use std::sync::Arc;
}

/// What actor code usually needs, in one import: `use plexspaces_sdk::prelude::*;`.
#[cfg(not(target_family = "wasm"))]
pub mod prelude {
    pub use crate::{
        ActorContext, BehaviorError, GenEvent, GenFsm, GenServer, Message, Value, WorkflowActor,
        WorkflowContext, gen_event_actor, gen_fsm_actor, gen_server_actor, handler, json,
        plexspaces_handlers, query_handler, run_handler, signal_handler, workflow_actor,
    };
    pub use plexspaces_core::{
        Facet, FacetError, FacetRegistry, InterceptResult, async_trait,
        facet::{FacetMetrics, MethodOutcome},
    };
    pub use serde::{Deserialize, Serialize};
    pub use std::collections::HashMap;
    pub use std::sync::Arc;
    pub use tokio::sync::RwLock;
}
