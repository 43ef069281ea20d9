//! The Rust side of `wit/plexspaces.wit`, generated at build time.

#![allow(missing_debug_implementations, unreachable_pub, clippy::all)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "actor-module",
    imports: { default: async },
    exports: { default: async },
    // Host-call results are journaled for durable actors: the records are their serde form.
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use exports::plexspaces::actor::guest::{Failure, Reply, StateIn};
pub use plexspaces::actor::types::{HostError, LogLevel};

/// The world version this host serves: the WIT package's version.
pub const WORLD_VERSION: &str = "0.1.0";

/// The interface a module must export, with its version.
pub const GUEST_INTERFACE: &str = "plexspaces:actor/guest@0.1.0";
