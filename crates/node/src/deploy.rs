//! Deployments: modules uploaded to the node, compiled once (off the async threads, the
//! artifact cached on disk by content hash and engine settings), recorded in the data
//! directory so they come back after a restart, and served as actor types.
//!
//! Layout under the data directory: `modules/<sha256>.wasm` (what was uploaded),
//! `deployments/<tenant>/<namespace>/<name>.json` (what is deployed), and
//! `<cache_dir>/<sha256>-<fingerprint>.cwasm` (the compiled artifact).

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use plexspaces_core::{ExitReason, FacetRegistry, System};
use plexspaces_durable::now_ms;
use plexspaces_proto::v1 as pb;
use plexspaces_storage::journal::JournalBackend;
use plexspaces_types::{ActorId, ActorType, ErrorCode, Namespace, TenantId};
use plexspaces_wasm::{Binding, Component, Durability, Host, Module, Served};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::{
    Error, Result,
    durability::{DURABILITY, checkpoint_every},
    registry::ActorKind,
    wasm_kind::WasmKind,
};

/// (tenant, namespace, name): a deployment, or a deployed type.
pub(crate) type Key = (String, String, String);

/// What is written for a deployment, and read back at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    tenant: String,
    namespace: String,
    name: String,
    version: String,
    sha256: String,
    size_bytes: u64,
    config: Value,
    deployed_at_ms: u64,
}

struct Deployment {
    record: Record,
    module: Module,
    /// The types it serves, in class order.
    types: Vec<String>,
    compile_ms: u64,
    cached: bool,
}

/// The journal of durable types, and the node's defaults for them.
pub(crate) struct DurableDefaults {
    pub(crate) journal: Arc<dyn JournalBackend>,
    pub(crate) checkpoint_every: u64,
    pub(crate) key_window: Duration,
    pub(crate) max_keys: usize,
    /// The node's timers: the wake-ups of durable native workflows' runs.
    pub(crate) timers: Arc<dyn plexspaces_wasm::TimerService>,
}

impl DurableDefaults {
    /// What a type's actors share when `facets` make it durable (`None` when they do not).
    pub(crate) fn for_facets(&self, facets: &[(String, Value)]) -> Option<Arc<Durability>> {
        let (_, config) = facets.iter().find(|(name, _)| name == DURABILITY)?;
        // The config was checked when the facets were built.
        let every = checkpoint_every(config).ok().flatten();
        Some(Arc::new(Durability {
            journal: Arc::clone(&self.journal),
            checkpoint_every: every.unwrap_or(self.checkpoint_every),
            key_window: self.key_window,
            max_keys: self.max_keys,
        }))
    }
}

/// Every deployment of the node, and the types they serve.
pub(crate) struct Deployments {
    host: Host,
    durable: DurableDefaults,
    facet_registry: FacetRegistry,
    data_dir: PathBuf,
    cache_dir: PathBuf,
    idle_timeout: Duration,
    deployments: Mutex<BTreeMap<Key, Deployment>>,
    types: RwLock<HashMap<Key, Arc<WasmKind>>>,
    /// One compilation per tenant at a time: a tenant cannot starve the others' deploys.
    compiling: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// What a deploy request says, checked before any work: names, the module's presence and
/// header, the version and the config.
pub(crate) struct Checked {
    pub(crate) key: Key,
    config: Value,
}

pub(crate) fn check(spec: &pb::DeploySpec, wasm: &[u8]) -> Result<Checked> {
    let tenant: TenantId = name(&spec.tenant, "tenant")?;
    let namespace: Namespace = name(&spec.namespace, "namespace")?;
    if spec.actor_type.is_empty() {
        return Err(Error::new(ErrorCode::InvalidArguments, "a deployment needs an actor_type"));
    }
    let actor_type: ActorType = name(&spec.actor_type, "actor_type")?;
    if wasm.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidArguments,
            "a deployment needs the module (wasm)",
        ));
    }
    plexspaces_wasm::check_header(wasm)?;
    let version = &spec.version;
    if version.len() > 64
        || !version.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    {
        return Err(Error::new(
            ErrorCode::InvalidArguments,
            "version: at most 64 letters, digits, '.', '_', '-' or '+'",
        ));
    }
    let config = parse_config(&spec.config)?;
    Ok(Checked {
        key: (tenant.to_string(), namespace.to_string(), actor_type.as_str().to_owned()),
        config,
    })
}

pub(crate) fn name<T>(value: &str, what: &str) -> Result<T>
where
    T: std::str::FromStr<Err = plexspaces_types::InvalidName>,
{
    let value = if value.is_empty() { "default" } else { value };
    value.parse().map_err(|error: plexspaces_types::InvalidName| {
        Error::new(ErrorCode::InvalidArguments, format!("{what}: {error}"))
    })
}

fn io(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::new(ErrorCode::Internal, format!("cannot {what} {}: {error}", path.display()))
}

/// Runs blocking file or compile work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        Error::new(ErrorCode::Internal, format!("blocking work failed: {error}"))
    })?
}

/// Writes a file so that a crash leaves the old one or the new one, never a torn one. Each
/// write has a temporary file of its own (process and sequence in its name): nodes sharing a
/// compile cache may write the same artifact at once, and each renames whole bytes into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| io("create", parent, error))?;
    }
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = path.with_extension(format!("partial-{}-{write}", std::process::id()));
    let written = (|| {
        let mut file =
            std::fs::File::create(&partial).map_err(|error| io("create", &partial, error))?;
        file.write_all(bytes).map_err(|error| io("write", &partial, error))?;
        file.sync_all().map_err(|error| io("sync", &partial, error))?;
        std::fs::rename(&partial, path).map_err(|error| io("rename", &partial, error))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

impl Deployments {
    pub(crate) fn new(
        host: Host,
        facet_registry: FacetRegistry,
        data_dir: PathBuf,
        cache_dir: PathBuf,
        idle_timeout: Duration,
        durable: DurableDefaults,
    ) -> Self {
        Self {
            host,
            durable,
            facet_registry,
            data_dir,
            cache_dir,
            idle_timeout,
            deployments: Mutex::default(),
            types: RwLock::default(),
            compiling: Mutex::default(),
        }
    }

    pub(crate) fn host(&self) -> &Host {
        &self.host
    }

    /// The deployed type that serves `id`, if one does.
    pub(crate) fn kind(&self, id: &ActorId) -> Option<Arc<dyn ActorKind>> {
        let key =
            (id.tenant.to_string(), id.namespace.to_string(), id.actor_type.as_str().to_owned());
        self.types.read().get(&key).map(|kind| Arc::clone(kind) as Arc<dyn ActorKind>)
    }

    /// Every deployed type: key and kind.
    pub(crate) fn types(&self) -> Vec<(Key, Arc<WasmKind>)> {
        let mut types: Vec<_> =
            self.types.read().iter().map(|(key, kind)| (key.clone(), Arc::clone(kind))).collect();
        types.sort_by(|a, b| a.0.cmp(&b.0));
        types
    }

    /// Whether `tenant`/`namespace` has a deployed type `actor_type`.
    pub(crate) fn has_type(&self, key: &Key) -> bool {
        self.types.read().contains_key(key)
    }

    fn record_path(&self, key: &Key) -> PathBuf {
        self.data_dir.join("deployments").join(&key.0).join(&key.1).join(format!("{}.json", key.2))
    }

    fn module_path(&self, sha256: &str) -> PathBuf {
        self.data_dir.join("modules").join(format!("{sha256}.wasm"))
    }

    fn artifact_path(&self, sha256: &str) -> PathBuf {
        self.cache_dir.join(format!("{sha256}-{}.cwasm", self.host.fingerprint()))
    }

    /// The compiled component of a module: from the artifact cache, else compiled (and
    /// cached). Returns it with the compile time (0 from the cache).
    async fn component(
        &self,
        sha256: &str,
        wasm: Option<bytes::Bytes>,
    ) -> Result<(Component, u64)> {
        let host = self.host.clone();
        let artifact_path = self.artifact_path(sha256);
        let module_path = self.module_path(sha256);
        let cached = blocking(move || {
            if let Ok(artifact) = std::fs::read(&artifact_path) {
                match host.load_artifact(&artifact) {
                    Ok(component) => return Ok(Ok(component)),
                    // A stale or damaged artifact: compile again below.
                    Err(error) => tracing::warn!(path = %artifact_path.display(), error = %error.message, "recompiling"),
                }
            }
            match wasm {
                Some(wasm) => Ok(Err(wasm.to_vec())),
                None => std::fs::read(&module_path)
                    .map(Err)
                    .map_err(|error| io("read", &module_path, error)),
            }
        })
        .await?;
        let wasm = match cached {
            Ok(component) => return Ok((component, 0)),
            Err(wasm) => wasm,
        };
        let started = Instant::now();
        let artifact = self.host.compile_bounded(wasm).await.map_err(Error::from)?;
        let compile_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let host = self.host.clone();
        let artifact_path = self.artifact_path(sha256);
        blocking(move || {
            write_atomically(&artifact_path, &artifact)?;
            let component = host.load_artifact(&artifact).map_err(Error::from)?;
            Ok((component, compile_ms.max(1)))
        })
        .await
    }

    /// Compiles and serves a module. Returns once its types can serve.
    pub(crate) async fn deploy(
        &self,
        native: &(dyn Fn(&str) -> bool + Sync),
        system: &System,
        spec: pb::DeploySpec,
        wasm: bytes::Bytes,
    ) -> Result<pb::DeploymentInfo> {
        let Checked { key, config } = check(&spec, &wasm)?;
        let sha256 = hex(&Sha256::digest(&wasm));
        let version = if spec.version.is_empty() { sha256[..12].to_owned() } else { spec.version };
        let record = Record {
            tenant: key.0.clone(),
            namespace: key.1.clone(),
            name: key.2.clone(),
            version,
            sha256: sha256.clone(),
            size_bytes: wasm.len() as u64,
            config,
            deployed_at_ms: now_ms(),
        };
        let gate = Arc::clone(
            self.compiling
                .lock()
                .entry(key.0.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1))),
        );
        let _one_compile_per_tenant = gate
            .acquire_owned()
            .await
            .map_err(|_| Error::new(ErrorCode::Unavailable, "the node is shutting down"))?;
        let module_path = self.module_path(&sha256);
        let upload = wasm.clone();
        blocking(move || {
            if module_path.exists() {
                return Ok(());
            }
            write_atomically(&module_path, &upload)
        })
        .await?;
        let info = self.install(native, system, record.clone(), Some(wasm)).await?;
        let path = self.record_path(&key);
        let text = serde_json::to_vec_pretty(&record)
            .map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))?;
        blocking(move || write_atomically(&path, &text)).await?;
        Ok(info)
    }

    /// Loads a module and serves its types under the record's name (replacing what the
    /// deployment served before).
    async fn install(
        &self,
        native: &(dyn Fn(&str) -> bool + Sync),
        system: &System,
        record: Record,
        wasm: Option<bytes::Bytes>,
    ) -> Result<pb::DeploymentInfo> {
        let (component, compile_ms) = self.component(&record.sha256, wasm).await?;
        let label =
            format!("{}/{}/{}@{}", record.tenant, record.namespace, record.name, record.version);
        let module = self.host.instantiate(&component, &label).await.map_err(Error::from)?;
        let description = module.description();
        let types = description.type_names(&record.name);
        let key_of =
            |name: &str| (record.tenant.clone(), record.namespace.clone(), name.to_owned());
        let previous: Vec<String> = self
            .deployments
            .lock()
            .get(&key_of(&record.name))
            .map(|deployment| deployment.types.clone())
            .unwrap_or_default();
        // Check every class before anything changes: a deploy that fails leaves the node
        // serving what it served.
        let mut planned = Vec::with_capacity(types.len());
        for (index, (type_name, class)) in types.iter().zip(&description.classes).enumerate() {
            ActorType::new(type_name).map_err(|error| {
                Error::new(ErrorCode::InvalidModule, format!("class {}: {error}", class.name))
            })?;
            if native(type_name) {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "{type_name} is a native actor type of this node: deploy under another name"
                    ),
                ));
            }
            let key = key_of(type_name);
            if self.has_type(&key) && !previous.contains(type_name) {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!("{type_name} is served by another deployment in {}/{}", key.0, key.1),
                ));
            }
            let facets = facets_of(class, &record.config);
            self.facet_registry.build(&facets).map_err(|error| {
                Error::new(ErrorCode::InvalidModule, format!("class {}: {error}", class.name))
            })?;
            if class.guest_state() && facets.iter().any(|(name, _)| name == DURABILITY) {
                return Err(Error::new(
                    ErrorCode::StateNotSerializable,
                    format!(
                        "class {}: the durability facet checkpoints the state, and this one has no \
                         serde (it lives in the guest): derive Serialize and Deserialize for it",
                        class.name
                    ),
                ));
            }
            let class_index = u32::try_from(index).map_err(|_| {
                Error::new(ErrorCode::InvalidModule, "the module has too many classes")
            })?;
            planned.push((key, class_index, class.behavior.clone(), facets));
        }
        let idle_timeout = record
            .config
            .get("idle_timeout_ms")
            .and_then(Value::as_u64)
            .map_or(self.idle_timeout, Duration::from_millis);
        {
            let mut served_types = self.types.write();
            for (key, class, behavior, facets) in planned {
                let binding = Binding { module: module.clone(), class };
                // A new version serves each actor from its next message on.
                let served = match served_types.get(&key) {
                    Some(kind) => {
                        kind.served.replace(binding);
                        Arc::clone(&kind.served)
                    }
                    None => Served::new(binding, self.host.logs().clone()),
                };
                let durability = self.durability(&facets);
                let kind = WasmKind {
                    served,
                    behavior,
                    durability,
                    facets,
                    facet_registry: self.facet_registry.clone(),
                    idle_timeout,
                    version: record.version.clone(),
                };
                served_types.insert(key, Arc::new(kind));
            }
        }
        // Types the new version no longer has stop serving.
        for gone in previous.iter().filter(|name| !types.contains(name)) {
            self.retire(system, &key_of(gone)).await;
        }
        let key = key_of(&record.name);
        let cached = compile_ms == 0;
        let deployment = Deployment { record, module, types, compile_ms, cached };
        let info = info(&deployment);
        self.deployments.lock().insert(key, deployment);
        Ok(info)
    }

    /// The journal durable actors keep.
    pub(crate) fn journal(&self) -> &Arc<dyn JournalBackend> {
        &self.durable.journal
    }

    /// What a type's actors share when its facets make it durable.
    fn durability(&self, facets: &[(String, Value)]) -> Option<Arc<Durability>> {
        self.durable.for_facets(facets)
    }

    /// Stops the actors of a type and forgets it.
    async fn retire(&self, system: &System, key: &Key) {
        self.types.write().remove(key);
        self.host.logs().remove(key);
        let actors: Vec<_> = system
            .actors()
            .into_iter()
            .filter(|actor| {
                let id = actor.id();
                id.tenant.as_str() == key.0
                    && id.namespace.as_str() == key.1
                    && id.actor_type.as_str() == key.2
            })
            .collect();
        for actor in actors {
            actor.shutdown(ExitReason::Shutdown, Duration::from_secs(5)).await;
        }
    }

    /// Stops a deployment's actors and forgets it, on disk too.
    pub(crate) async fn undeploy(&self, system: &System, key: &Key) -> Result<()> {
        let Some(deployment) = self.deployments.lock().remove(key) else {
            return Err(not_deployed(key));
        };
        for type_name in &deployment.types {
            self.retire(system, &(key.0.clone(), key.1.clone(), type_name.clone())).await;
        }
        let path = self.record_path(key);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io("remove", &path, error)),
        })
        .await
    }

    pub(crate) fn get(&self, key: &Key) -> Result<pb::DeploymentInfo> {
        self.deployments.lock().get(key).map(info).ok_or_else(|| not_deployed(key))
    }

    pub(crate) fn list(&self, tenant: &str, namespace: &str) -> Vec<pb::DeploymentInfo> {
        self.deployments
            .lock()
            .iter()
            .filter(|(key, _)| key.0 == tenant && (namespace.is_empty() || key.1 == namespace))
            .map(|(_, deployment)| info(deployment))
            .collect()
    }

    /// Serves again what was deployed before the node stopped. A deployment that no longer
    /// loads is logged and skipped: the node still starts.
    pub(crate) async fn restore(
        &self,
        native: &(dyn Fn(&str) -> bool + Sync),
        system: &System,
    ) -> usize {
        let root = self.data_dir.join("deployments");
        let records = blocking(move || Ok(read_records(&root))).await.unwrap_or_default();
        let mut restored = 0;
        for record in records {
            let label = format!("{}/{}/{}", record.tenant, record.namespace, record.name);
            match self.install(native, system, record, None).await {
                Ok(_) => restored += 1,
                Err(error) => {
                    tracing::error!(deployment = %label, code = %error.code, error = %error.message, "deployment not restored")
                }
            }
        }
        restored
    }
}

fn read_records(root: &Path) -> Vec<Record> {
    let mut records = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                match std::fs::read(&path).map(|bytes| serde_json::from_slice::<Record>(&bytes)) {
                    Ok(Ok(record)) => records.push(record),
                    _ => tracing::error!(path = %path.display(), "unreadable deployment record"),
                }
            }
        }
    }
    records.sort_by(|a, b| {
        (&a.tenant, &a.namespace, &a.name).cmp(&(&b.tenant, &b.namespace, &b.name))
    });
    records
}

fn not_deployed(key: &Key) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("nothing is deployed as {} in {}/{}", key.2, key.0, key.1),
    )
}

fn parse_config(config: &[u8]) -> Result<Value> {
    if config.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice::<Value>(config) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(Error::new(ErrorCode::InvalidArguments, "config must be a JSON object")),
        Err(error) => {
            Err(Error::new(ErrorCode::InvalidJson, format!("config is not JSON: {error}")))
        }
    }
}

/// A class's facets, with configs from the deployment's `config.facets` overriding the
/// module's own.
fn facets_of(class: &plexspaces_wasm::Class, config: &Value) -> Vec<(String, Value)> {
    let overrides = config.get("facets").and_then(Value::as_object);
    class
        .facets
        .iter()
        .map(|facet| {
            let config = overrides
                .and_then(|overrides| overrides.get(&facet.name))
                .cloned()
                .unwrap_or_else(|| facet.config.clone());
            (
                facet.name.clone(),
                if config.is_null() { Value::Object(Default::default()) } else { config },
            )
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _infallible = write!(out, "{byte:02x}");
        out
    })
}

fn info(deployment: &Deployment) -> pb::DeploymentInfo {
    let record = &deployment.record;
    let description = deployment.module.description();
    let stats = deployment.module.pool_stats();
    let types = deployment
        .types
        .iter()
        .zip(&description.classes)
        .map(|(name, class)| pb::DeployedType {
            name: name.clone(),
            class_name: class.name.clone(),
            behavior: class.behavior.clone(),
            facets: facets_of(class, &record.config).into_iter().map(|(name, _)| name).collect(),
            handlers: class.handlers.iter().map(|handler| handler.name.clone()).collect(),
            state: class.state.clone(),
        })
        .collect();
    pb::DeploymentInfo {
        tenant: record.tenant.clone(),
        namespace: record.namespace.clone(),
        name: record.name.clone(),
        version: record.version.clone(),
        sha256: record.sha256.clone(),
        size_bytes: record.size_bytes,
        sdk: description.sdk.clone(),
        types,
        deployed_at_ms: record.deployed_at_ms,
        compile_ms: deployment.compile_ms,
        cached: deployment.cached,
        config: record.config.to_string().into_bytes(),
        instances: stats.live as u64,
        discarded_instances: stats.discarded,
        pinned_instances: stats.pinned as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes sharing a compile cache write the same artifact at once: every write succeeds
    /// and the file holds one writer's whole bytes.
    #[test]
    fn concurrent_writes_of_one_file_all_land_whole() {
        let dir = std::env::temp_dir().join(format!("plexspaces-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("artifact.cwasm");
        let writers: Vec<_> = (0..8_u8)
            .map(|writer| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        write_atomically(&path, &[writer; 4096]).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() == 4096 && bytes.iter().all(|byte| *byte == bytes[0]));
        let left: Vec<_> =
            std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("artifact.cwasm")], "no temporary file stays");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
