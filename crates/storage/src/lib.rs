//! The node's coordination state, each kind behind an API its backends share, with the
//! embedded implementation first: blobs through `object_store` (`blobs`), the service registry over a KV backend (`registry`), queues and topics (`channels`, in memory or in SQLite), lease-based locks with fencing tokens (`locks`), the
//! key-value store in memory or in SQLite (`kv`), process groups (`groups`), and the tuple
//! space's SQLite journal (`tuples_sqlite`), and the journal of durable actors (`journal`, in SQLite:
//! `SqliteJournal`).

pub mod blobs;
pub mod channels;
mod channels_sqlite;
pub mod groups;
pub mod journal;
mod journal_sqlite;
pub mod kv;
mod kv_sqlite;
pub mod locks;
pub mod presign;
pub mod registry;
mod sqlite;
pub mod tuples_sqlite;

pub use journal_sqlite::SqliteJournal;
pub use kv::now_ms;

/// What a store refuses, with a catalogue code (shared with the tuple space).
pub use plexspaces_types::Refusal as Error;

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;
