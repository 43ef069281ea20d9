//! Integration tests of the actor runtime: one binary, one module per area.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod common;
mod lifecycle;
mod links;
mod messaging;
mod properties;
mod supervision;
