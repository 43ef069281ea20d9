//! The host against real components: Python modules built by the SDK, and hostile modules
//! written in WAT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;

mod hostile;
mod python;
mod rust;
mod support;
