//! The `durability` facet: the marker that makes a deployed type's actors durable. Each
//! message is journaled before it is handled, with its host calls' results; the actor
//! recovers from its latest checkpoint and the journal after it. Around messages the facet
//! itself does nothing: `WasmKind` reads it when it builds the type's actors.

use async_trait::async_trait;
use plexspaces_core::{
    FacetRegistry,
    facet::{Facet, FacetError},
};
use serde_json::Value;

/// The facet's name.
pub(crate) const DURABILITY: &str = "durability";

/// The marker.
#[derive(Debug)]
struct DurabilityFacet;

#[async_trait]
impl Facet for DurabilityFacet {
    fn name(&self) -> &str {
        DURABILITY
    }
}

/// The checkpoint interval a facet config asks for (`checkpoint_every`, in journal entries),
/// or `None` for the node's.
pub(crate) fn checkpoint_every(config: &Value) -> Result<Option<u64>, FacetError> {
    match config.get("checkpoint_every") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().filter(|every| *every > 0).map(Some).ok_or_else(|| {
            FacetError::InvalidConfig {
                name: DURABILITY.to_owned(),
                reason: format!("checkpoint_every must be a positive integer, not {value}"),
            }
        }),
    }
}

/// Registers the facet.
pub(crate) fn register(registry: &mut FacetRegistry) {
    registry.register(DURABILITY, |config| {
        checkpoint_every(config)?;
        Ok(Box::new(DurabilityFacet))
    });
}
