//! The node's coordination state, each kind behind an API its backends share, with the
//! embedded implementation first: lease-based locks with fencing tokens (`locks`), the
//! key-value store in memory or in SQLite (`kv`), process groups (`groups`), and the tuple
//! space's SQLite journal (`tuples_sqlite`).

pub mod groups;
pub mod kv;
mod kv_sqlite;
pub mod locks;
pub mod tuples_sqlite;

use plexspaces_types::ErrorCode;

/// What a store refuses, with a catalogue code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// What a person can act on.
    pub message: String,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;
