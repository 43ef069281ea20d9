//! Loading compiled artifacts: the one place this crate uses `unsafe`.
#![allow(unsafe_code)]

use wasmtime::{Engine, component::Component};

use crate::{Error, Result};

/// Loads an artifact that [`crate::Host::compile`] produced.
///
/// The node only passes artifacts it wrote itself into its own data directory, keyed by the
/// module's hash and the engine fingerprint, so they come from this wasmtime with these
/// settings; wasmtime also checks its version and settings header and refuses a mismatch,
/// which the node answers by compiling again.
pub(crate) fn deserialize(engine: &Engine, artifact: &[u8]) -> Result<Component> {
    // SAFETY: `Component::deserialize` requires bytes produced by `Component::serialize` (or
    // `Engine::precompile_component`) of a compatible engine, not modified since: see above.
    // Arbitrary bytes could run arbitrary native code, which is why artifacts are never taken
    // from a caller.
    unsafe { Component::deserialize(engine, artifact) }
        .map_err(|error| Error::internal(format!("the cached artifact does not load: {error:#}")))
}
