//! The node's API contract, generated from `proto/plexspaces/v1/*.proto`: message types, the
//! tonic servers the node implements and the clients the CLI (and any Rust program) uses.
//! The `.proto` files are the source of truth; nothing here is written by hand.

#![allow(missing_debug_implementations, unreachable_pub, clippy::all)]

/// Version 1 of the API (`package plexspaces.v1`).
pub mod v1 {
    tonic::include_proto!("plexspaces.v1");
}
