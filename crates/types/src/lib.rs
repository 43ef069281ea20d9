//! Identifiers, error codes and small value types shared by every PlexSpaces crate.
//!
//! An actor is named by four parts: the tenant that owns it, a namespace inside the tenant,
//! its actor type and a key that tells one actor of that type from another. Each part is a
//! validated, cheaply clonable string. [`ErrorCode`] is the one catalogue of error codes that
//! every front door (HTTP, gRPC, the SDKs) reports.

mod error_code;
mod id;

pub use error_code::ErrorCode;
pub use id::{ActorId, ActorKey, ActorType, DEFAULT_KEY, InvalidName, Namespace, TenantId};
