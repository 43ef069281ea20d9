//! Identifiers, error codes and small value types shared by every PlexSpaces crate.
//!
//! An actor is named by four parts: the tenant that owns it, a namespace inside the tenant,
//! its actor type and a key that tells one actor of that type from another. Each part is a
//! validated, cheaply clonable string. [`ErrorCode`] is the one catalogue of error codes that
//! every front door (HTTP, gRPC, the SDKs) reports.

mod error_code;
mod id;

pub use error_code::ErrorCode;

/// A refusal with its catalogue code: what the stores and the tuple space answer when they
/// will not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// The stable code.
    pub code: ErrorCode,
    /// What a person can act on.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// An `invalid_arguments` refusal.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArguments, message)
    }
}
pub use id::{ActorId, ActorKey, ActorType, DEFAULT_KEY, InvalidName, Namespace, TenantId};
