//! The PlexSpaces WebAssembly host: actors written in any language, compiled to components of
//! the one world in `wit/plexspaces.wit`, served by wasmtime.
//!
//! A [`Host`] owns the engine (components only, async calls on fibers, an epoch ticker that
//! bounds every call), the linker of the world's imports, and the guest logs. It compiles
//! modules ([`Host::compile`], blocking: run it on a blocking thread) and makes them ready to
//! serve ([`Host::instantiate`] → [`Module`]). A module keeps a pool of instances; one
//! instance serves many actors, each strictly sequential, and the host holds each actor's
//! committed state ([`WasmActor`] on the core runtime), so a trapped instance is dropped and
//! its actors carry on from their last committed state on another.

mod actor;
mod artifact;
mod bindings;
mod blobs_host;
mod channels_host;
mod ctx;
mod describe;
mod durable;
mod error;
mod groups_host;
mod host;
mod kv_host;
mod logs;
mod module;
mod options;
mod registry_host;
mod services;
mod workflow_host;

pub use actor::{Admission, Admitted, Binding, Durability, Invocation, Kept, Served, WasmActor};
pub use bindings::{GUEST_INTERFACE, WORLD_VERSION};
pub use blobs_host::MAX_GUEST_BLOB;
pub use channels_host::{ChannelConsumers, MAX_CHANNEL_WAIT_MS, NoConsumers};
pub use ctx::{BoxFuture, Outbound};
pub use describe::{Class, Description, FacetSpec, Handler, snake_case};
pub use error::{Error, Result};
pub use groups_host::{PG_MESSAGE, pg_payload};
pub use host::{Host, check_header};
pub use logs::{LogKey, LogLine, Logs, Stream};
pub use module::{Module, PoolStats};
pub use options::Options;
pub use services::{
    MAX_SCAN, MAX_TUPLE_BYTES, NoTimers, PendingTakes, Services, TimerService, WAKE,
};
pub use wasmtime::component::Component;
