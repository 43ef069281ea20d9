//! The Linda tuple space of a PlexSpaces node: tuples are JSON arrays, written (`out`), read
//! (`rd`) and taken (`in`) by pattern, without waiting or waiting up to a timeout. A waiting
//! read or take is woken by the write that matches it, never by polling; an asynchronous take
//! hands the tuple to a callback later, holding no thread and no task. Tuples may carry a
//! lease, after which they are gone. Each (tenant, namespace) has a space of its own.
//!
//! Matching does not scan the space: tuples are grouped by arity, and each position keeps an
//! index from its value to the tuples holding it, so a pattern with an exact field looks only
//! at the tuples that have it; among several exact fields the rarest is used. Within a match,
//! the oldest tuple wins (first written, first taken).

mod pattern;
mod space;

pub use pattern::{Field, Kind, Pattern};
pub use space::{Flush, Journal, Space, Stats, TupleSpace, Waiting, tuple_from_json};

/// A tuple: its fields, in order.
pub type Tuple = Vec<serde_json::Value>;

/// The most fields a tuple or pattern may have.
pub const MAX_ARITY: usize = 64;

/// The longest lease a tuple may have.
pub const MAX_LEASE: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// What the tuple space refuses, with a catalogue code (shared with the stores).
pub use plexspaces_types::Refusal as Error;

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;
