//! `examples/rust/counter.rs` as a component: the same file the node runs natively. Its state
//! has no serde, so it lives in the guest, in an instance the host pins to each counter while
//! it is active.

include!("../../counter.rs");

plexspaces_sdk::export_actors!(Counter);
