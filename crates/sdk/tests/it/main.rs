//! Integration tests of the Rust SDK: the user-facing examples, dispatch rules and errors.
#![allow(unreachable_pub, dead_code, clippy::unwrap_used, clippy::expect_used)]

mod dispatch;
mod events;
mod examples;
mod facets;
mod fsm;
mod macro_errors;
mod workflow;
