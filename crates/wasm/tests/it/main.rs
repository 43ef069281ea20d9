//! The host against real components: Python modules built by the SDK, hostile modules written
//! in WAT, and durable actors replayed from their journal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;

mod durable;
mod hostile;
mod python;
mod rust;
mod support;
