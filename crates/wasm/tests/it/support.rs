//! A host with an outbound that knows no other actors, and actors on a core system.

use std::{sync::Arc, time::Duration};

use plexspaces_core::{ActorRef, System};
use plexspaces_storage::journal::Origin;
use plexspaces_types::{ActorId, ErrorCode};
use plexspaces_wasm::{
    Binding, BoxFuture, Error, Host, Invocation, Logs, Module, Options, Outbound, Served, WasmActor,
};

struct Nobody;

impl Outbound for Nobody {
    fn tell(
        &self,
        _from: &ActorId,
        target: &str,
        _: &str,
        _: &[u8],
        _: Option<Origin>,
    ) -> Result<(), Error> {
        Err(Error::new(ErrorCode::NotFound, format!("no actor {target}")))
    }

    fn ask<'a>(
        &'a self,
        _from: &'a ActorId,
        target: &'a str,
        _: &'a str,
        _: &'a [u8],
        _: Option<Duration>,
        _: Option<Origin>,
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move { Err(Error::new(ErrorCode::NotFound, format!("no actor {target}"))) })
    }
}

pub(crate) fn host(options: Options) -> Host {
    let logs = Logs::new(options.log_lines);
    Host::new(options, Arc::new(Nobody), plexspaces_wasm::Services::default(), logs).unwrap()
}

/// Compiles (or takes the artifact compiled by an earlier run) and instantiates a module.
pub(crate) async fn load(host: &Host, wasm: &[u8]) -> Result<Module, Error> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(wasm, &mut hasher);
    let cached = crate::guests::cache_dir().join(format!(
        "{:016x}-{}.cwasm",
        std::hash::Hasher::finish(&hasher),
        host.fingerprint()
    ));
    let artifact = match std::fs::read(&cached) {
        Ok(artifact) => artifact,
        Err(_) => {
            let compiling = host.clone();
            let wasm = wasm.to_vec();
            let artifact =
                tokio::task::spawn_blocking(move || compiling.compile(&wasm)).await.unwrap()?;
            std::fs::create_dir_all(crate::guests::cache_dir()).unwrap();
            // Tests compile at once: each writes its own partial file, and the last rename wins.
            static PARTIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = PARTIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let partial = cached.with_extension(format!("partial-{}-{n}", std::process::id()));
            std::fs::write(&partial, &artifact).unwrap();
            std::fs::rename(&partial, &cached).unwrap();
            artifact
        }
    };
    let component = host.load_artifact(&artifact)?;
    host.instantiate(&component, "test").await
}

/// A virtual wasm actor of class `class` of `module`.
pub(crate) fn spawn(
    host: &Host,
    system: &System,
    module: &Module,
    class: u32,
    key: &str,
) -> ActorRef<WasmActor> {
    let served = Served::new(Binding { module: module.clone(), class }, host.logs().clone());
    let id = ActorId::parse(&format!("acme/default/t/{key}")).unwrap();
    system
        .spawn_virtual(id, Duration::from_secs(600), move || {
            WasmActor::new(Arc::clone(&served), Default::default())
        })
        .unwrap()
}

pub(crate) fn message(action: &str, payload: &str) -> Invocation {
    Invocation::new(action.to_owned(), payload.as_bytes().to_vec(), None)
}

pub(crate) async fn ask(
    actor: &ActorRef<WasmActor>,
    action: &str,
    payload: &str,
) -> Result<String, Error> {
    let reply = actor.ask(message(action, payload)).await.unwrap()?;
    Ok(String::from_utf8(reply).unwrap())
}
