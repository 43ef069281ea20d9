//! Guest components for tests, built once per content and cached under the target directory:
//! a Python build takes seconds, so no test builds one that an earlier run already built.

use std::{
    hash::{Hash as _, Hasher as _},
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

/// One build at a time in a test binary: two tests asking for one module share its build.
static BUILDING: Mutex<()> = Mutex::new(());

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("wit/plexspaces.wit").exists())
        .expect("the workspace root holds wit/plexspaces.wit")
        .to_path_buf()
}

/// Where built guests (and, for tests that compile them, artifacts) are kept.
pub(crate) fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("plexspaces-guests")
}

/// The Python that has the SDK's build dependencies (componentize-py).
pub(crate) fn python() -> String {
    std::env::var("PLEXSPACES_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn hash_files(hasher: &mut impl std::hash::Hasher, dir: &Path) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the SDK directory can be read")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "py" || ext == "wit"))
        .collect();
    entries.sort();
    for path in entries {
        path.file_name().hash(hasher);
        std::fs::read(&path).expect("an SDK file can be read").hash(hasher);
    }
}

/// The component built from the Python actor module `source` (a path under the workspace).
pub(crate) fn python_module(source: &str) -> PathBuf {
    let root = workspace();
    let source = root.join(source);
    let sdk = root.join("sdks/python/src/plexspaces");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(&source).expect("the example exists").hash(&mut hasher);
    hash_files(&mut hasher, &sdk);
    hash_files(&mut hasher, &sdk.join("wit"));
    let stem = source.file_stem().and_then(|stem| stem.to_str()).unwrap_or("module");
    let out = cache_dir().join(format!("{stem}-{:016x}.wasm", hasher.finish()));
    let _one_build = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(cache_dir()).expect("the guest cache directory can be made");
    let partial = out.with_extension("partial");
    let status = Command::new(python())
        .args(["-m", "plexspaces.build", "build", "-q"])
        .arg(&source)
        .arg("-o")
        .arg(&partial)
        .env("PYTHONPATH", root.join("sdks/python/src"))
        .status()
        .expect("python runs");
    assert!(status.success(), "plexspaces-py build {} failed", source.display());
    std::fs::rename(&partial, &out).expect("the built module can be moved into the cache");
    out
}

/// The files of a directory tree whose extension is one of `exts`, for a cache key.
fn hash_tree(hasher: &mut impl std::hash::Hasher, dir: &Path, exts: &[&str]) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the SDK directory can be read")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.file_name().is_some_and(|name| name != "node_modules"))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_tree(hasher, &path, exts);
        } else if path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| exts.contains(&ext))
        {
            path.file_name().hash(hasher);
            std::fs::read(&path).expect("an SDK file can be read").hash(hasher);
        }
    }
}

/// The JavaScript engines `plexspaces-ts build --engine` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum Engine {
    QuickJs,
    SpiderMonkey,
}

impl Engine {
    #[allow(dead_code)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::QuickJs => "quickjs",
            Engine::SpiderMonkey => "spidermonkey",
        }
    }
}

/// The component built from the TypeScript actor module `source` (a path under the workspace)
/// by `plexspaces-ts build --engine`, with the SDK's pinned tools (`npm ci` in
/// sdks/typescript, which `make tools` runs).
#[allow(dead_code)]
pub(crate) fn typescript_module(source: &str, engine: Engine) -> PathBuf {
    let root = workspace();
    let source = root.join(source);
    let sdk = root.join("sdks/typescript");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(&source).expect("the module exists").hash(&mut hasher);
    engine.name().hash(&mut hasher);
    for dir in ["src", "bin", "wit"] {
        hash_tree(&mut hasher, &sdk.join(dir), &["ts", "mjs", "wit"]);
    }
    std::fs::read(sdk.join("package-lock.json")).expect("the SDK pins its tools").hash(&mut hasher);
    let stem = source.file_stem().and_then(|stem| stem.to_str()).unwrap_or("module");
    let out = cache_dir().join(format!("{stem}-{}-{:016x}.wasm", engine.name(), hasher.finish()));
    let _one_build = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(cache_dir()).expect("the guest cache directory can be made");
    let partial = out.with_extension("partial");
    let output = Command::new("node")
        .arg(sdk.join("bin/plexspaces-ts.mjs"))
        .args(["build", "-q", "--engine", engine.name()])
        .arg(&source)
        .arg("-o")
        .arg(&partial)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "plexspaces-ts build {} failed (run `make tools` for the SDK's tools):\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&partial, &out).expect("the built module can be moved into the cache");
    out
}

/// The component built from the Rust guest crate at `crate_dir` (a path under the workspace),
/// with `cargo build --release --target wasm32-wasip2`. Cargo decides what to rebuild; its
/// target directory sits in the guest cache, apart from the workspace's.
pub(crate) fn rust_module(crate_dir: &str) -> PathBuf {
    let manifest = workspace().join(crate_dir).join("Cargo.toml");
    let target_dir = cache_dir().join("rust-target");
    let _one_build = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["build", "--release", "--locked", "--quiet", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        // The guest's own flags, not those of the build that runs this test.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the Rust guest {crate_dir} failed (is the wasm32-wasip2 target installed? \
         `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&manifest).expect("the guest's manifest can be read");
    let name = text
        .lines()
        .find_map(|line| line.strip_prefix("name = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("the guest's manifest names its package");
    target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")))
}
