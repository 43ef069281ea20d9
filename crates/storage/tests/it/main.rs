//! The stores through their public API: locks (`locks`), KV on each backend (`kv`), the
//! tuple space's journal (`tuples`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kv;
mod locks;
mod tuples;

use std::path::PathBuf;

pub(crate) const SCOPE: (&str, &str) = ("acme", "default");

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("plexspaces-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
