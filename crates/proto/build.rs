//! Generates the gRPC services and messages from proto/plexspaces/v1 with the vendored
//! protoc, so no system protoc is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos = [
        "plexspaces/v1/actors.proto",
        "plexspaces/v1/node.proto",
        "plexspaces/v1/deployments.proto",
        "plexspaces/v1/coordination.proto",
        "plexspaces/v1/shardgroups.proto",
        "plexspaces/v1/channels.proto",
        "plexspaces/v1/registry.proto",
        "plexspaces/v1/blobs.proto",
    ]
    .map(|file| root.join(file));
    // Regenerate when a proto changes, not only when this script does. Relative to this
    // crate: cargo shares a build script's unit between checkouts that share a target
    // directory, and an absolute path would watch the checkout that ran it last.
    for file in [
        "actors",
        "node",
        "deployments",
        "coordination",
        "shardgroups",
        "channels",
        "registry",
        "blobs",
    ] {
        println!("cargo:rerun-if-changed=../../proto/plexspaces/v1/{file}.proto");
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(
        config,
        &protos,
        std::slice::from_ref(&root),
    )?;
    Ok(())
}
