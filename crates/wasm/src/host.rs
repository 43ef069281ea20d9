//! The engine every module shares: its settings, the linker of the world's imports, the epoch
//! ticker that bounds guest calls, and compilation.

use std::{
    hash::{Hash as _, Hasher as _},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use wasmtime::{
    Config, Engine,
    component::{Component, HasSelf, Linker},
};

use crate::{
    Error, Logs, Module, Options, Outbound, Result, Services, artifact,
    bindings::{ActorModule, ActorModulePre, GUEST_INTERFACE, WORLD_VERSION},
    ctx::Ctx,
};

/// The WebAssembly host: cheap to clone.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<Ctx>,
    pub(crate) options: Options,
    pub(crate) outbound: Arc<dyn Outbound>,
    pub(crate) services: Services,
    pub(crate) logs: Logs,
    fingerprint: String,
    ticking: Arc<AtomicBool>,
    next_serial: AtomicU64,
    compile_slots: Arc<tokio::sync::Semaphore>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("options", &self.inner.options)
            .field("fingerprint", &self.inner.fingerprint)
            .finish_non_exhaustive()
    }
}

/// How often the epoch advances: the granularity of the deadline, and how often a busy guest
/// yields its thread to other tasks.
pub(crate) const TICK: Duration = Duration::from_millis(1);

impl Host {
    /// Builds the engine and linker and starts the epoch ticker. Guests reach other actors
    /// through `outbound` and the coordination services through `services`.
    pub fn new(
        options: Options,
        outbound: Arc<dyn Outbound>,
        services: Services,
        logs: Logs,
    ) -> Result<Self> {
        options.validate().map_err(Error::internal)?;
        let stack = options.max_wasm_stack_kib * 1024;
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(stack)
            // Guests run on fibers: the fiber stack must hold the wasm stack and the host's
            // frames on top of it, or a deep recursion aborts the process.
            .async_stack_size(stack + 1024 * 1024)
            // No component-model async in our world: its bookkeeping costs ~1.3 µs a call.
            .concurrency_support(false);
        let engine = Engine::new(&config)
            .map_err(|error| Error::internal(format!("cannot build the wasm engine: {error:#}")))?;
        let mut linker = Linker::<Ctx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|error| Error::internal(format!("cannot link WASI: {error:#}")))?;
        ActorModule::add_to_linker::<Ctx, HasSelf<Ctx>>(&mut linker, |ctx| ctx)
            .map_err(|error| Error::internal(format!("cannot link the host: {error:#}")))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let fingerprint = format!("wasmtime-48-{:016x}", hasher.finish());
        let ticking = Arc::new(AtomicBool::new(true));
        spawn_ticker(engine.clone(), Arc::clone(&ticking))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                outbound,
                services,
                logs,
                fingerprint,
                ticking,
                next_serial: AtomicU64::new(1),
                compile_slots: Arc::new(tokio::sync::Semaphore::new(options.compile_slots)),
                options,
            }),
        })
    }

    /// Names the engine settings compiled artifacts depend on: part of every cache key.
    pub fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    /// The host's options.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The guest log buffers.
    pub fn logs(&self) -> &Logs {
        &self.inner.logs
    }

    /// The coordination services guests call.
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    /// Compiles a component and returns the artifact to cache. Slow (seconds for Python) and
    /// blocking: call it on a blocking thread.
    pub fn compile(&self, wasm: &[u8]) -> Result<Vec<u8>> {
        check_header(wasm)?;
        let component = Component::new(&self.inner.engine, wasm).map_err(|error| {
            Error::invalid_module(format!("the module does not compile: {error:#}"))
        })?;
        self.check_world(&component)?;
        component
            .serialize()
            .map_err(|error| Error::internal(format!("cannot serialize the artifact: {error:#}")))
    }

    /// [`Host::compile`] on a thread of its own, waited for at most `compile_timeout_ms`: a
    /// module that takes longer is refused as `invalid_module`. Cranelift cannot be stopped
    /// midway, so a compile past its time runs on and keeps one of the `compile_slots` until
    /// it ends: at most that many compiles ever run at once, abandoned ones included.
    pub async fn compile_bounded(&self, wasm: Vec<u8>) -> Result<Vec<u8>> {
        let slot = Arc::clone(&self.inner.compile_slots)
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the host is shutting down"))?;
        let (done, result) = tokio::sync::oneshot::channel();
        let host = self.clone();
        std::thread::Builder::new()
            .name("plexspaces-compile".to_owned())
            .spawn(move || {
                let _slot = slot;
                // The deploy may have given up waiting; then nobody reads the result.
                let _ = done.send(host.compile(&wasm));
            })
            .map_err(|error| Error::internal(format!("cannot start a compile thread: {error}")))?;
        let limit = Duration::from_millis(self.inner.options.compile_timeout_ms);
        match tokio::time::timeout(limit, result).await {
            Ok(Ok(compiled)) => compiled,
            Ok(Err(_)) => Err(Error::internal("the compile thread ended without a result")),
            Err(_) => Err(Error::invalid_module(format!(
                "the module did not compile within {} ms (wasm.compile_timeout_ms); \
                 a smaller module, or a larger limit, deploys",
                limit.as_millis()
            ))),
        }
    }

    /// Loads an artifact made by [`Host::compile`] with the same fingerprint. Blocking.
    pub fn load_artifact(&self, artifact: &[u8]) -> Result<Component> {
        artifact::deserialize(&self.inner.engine, artifact)
    }

    /// Makes a compiled component ready to serve: links it, starts one instance and reads its
    /// description. `label` names it in logs and errors.
    pub async fn instantiate(&self, component: &Component, label: &str) -> Result<Module> {
        self.check_world(component)?;
        let pre = self.inner.linker.instantiate_pre(component).map_err(|error| {
            Error::invalid_module(format!(
                "the module imports what this node does not provide: {error:#}"
            ))
        })?;
        let pre = ActorModulePre::new(pre).map_err(|error| {
            Error::invalid_module(format!(
                "the module does not export {GUEST_INTERFACE} as this node expects: {error:#}"
            ))
        })?;
        let serial = self.inner.next_serial.fetch_add(1, Ordering::Relaxed);
        Module::start(self.clone(), pre, serial, label.to_owned()).await
    }

    /// Refuses a component built for another world version, naming both versions.
    fn check_world(&self, component: &Component) -> Result<()> {
        let engine = &self.inner.engine;
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
        if exports.iter().any(|name| name == GUEST_INTERFACE) {
            return Ok(());
        }
        if let Some(other) = exports.iter().find(|name| name.starts_with("plexspaces:actor/guest"))
        {
            let version = other.split_once('@').map_or("none", |(_, version)| version);
            return Err(Error::invalid_module(format!(
                "the module was built for world version {version}; this node serves {WORLD_VERSION}"
            )));
        }
        Err(Error::invalid_module(format!(
            "the module does not export {GUEST_INTERFACE} (it exports: {}); build it with a \
             PlexSpaces SDK",
            if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
        )))
    }
}

/// A component starts with `\0asm` and the component layer; a core module has layer 0.
/// Refuses bytes that are not a WebAssembly component, before any compile.
pub fn check_header(wasm: &[u8]) -> Result<()> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(Error::invalid_module("the file is not WebAssembly (no \\0asm header)"));
    }
    if wasm[6..8] == [0, 0] {
        return Err(Error::invalid_module(
            "the file is a core WebAssembly module, not a component: build it with a PlexSpaces \
             SDK (plexspaces-py build, plexspaces-ts build, or cargo --target wasm32-wasip2)",
        ));
    }
    Ok(())
}

fn spawn_ticker(engine: Engine, ticking: Arc<AtomicBool>) -> Result<()> {
    std::thread::Builder::new()
        .name("wasm-epoch".to_owned())
        .spawn(move || {
            while ticking.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        })
        .map(drop)
        .map_err(|error| Error::internal(format!("cannot start the epoch ticker: {error}")))
}
