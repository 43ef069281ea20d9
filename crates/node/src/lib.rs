//! The PlexSpaces node: the actor runtime behind its front doors. An invoke HTTP port (8080),
//! an admin HTTP port (8094) and a gRPC port (8000) serve the services of
//! `proto/plexspaces/v1`; native Rust actors are embedded with
//! `Node::builder().register::<Counter>("counter")`.
//!
//! ```no_run
//! use plexspaces_sdk::prelude::*;
//!
//! #[gen_server_actor]
//! struct Counter { count: i32 }
//!
//! #[plexspaces_handlers]
//! impl Counter {
//!     #[handler("increment")]
//!     async fn increment(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
//!         self.count += 1;
//!         Ok(json!({ "count": self.count }))
//!     }
//! }
//!
//! # async fn run() -> Result<(), plexspaces_node::Error> {
//! let node = plexspaces_node::Node::builder().register::<Counter>("counter").start().await?;
//! println!("invoke on {}", node.invoke_addr());
//! node.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod auth;
mod blobs_api;
mod channels_api;
mod consumers;
mod coordination;
mod deploy;
mod deploy_api;
mod durability;
mod durable_native;
mod durable_workflow;
mod error;
mod gate;
mod http;
mod http_blobs;
mod http_channels;
mod http_coordination;
mod http_deploy;
mod http_pools;
mod http_service_registry;
mod idempotency;
mod locks_groups;
mod metrics;
mod openapi;
mod openapi_registry_blobs;
mod options;
mod outbound;
pub mod partition;
mod payload;
mod pools;
mod registry;
mod service_registry;
mod timers;
mod wasm_kind;
mod workflow_kind;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use plexspaces_core::{FacetRegistry, facet::FacetMetrics};
use plexspaces_proto::v1::{
    actor_service_server::ActorServiceServer, blob_service_server::BlobServiceServer,
    channel_service_server::ChannelServiceServer,
    deployment_service_server::DeploymentServiceServer,
    invocation_service_server::InvocationServiceServer, kv_service_server::KvServiceServer,
    lock_service_server::LockServiceServer, node_service_server::NodeServiceServer,
    process_group_service_server::ProcessGroupServiceServer,
    registry_service_server::RegistryServiceServer,
    shard_group_service_server::ShardGroupServiceServer,
    tuple_space_service_server::TupleSpaceServiceServer,
};
use plexspaces_sdk::{ActorState, Handlers};
use plexspaces_types::{ActorType, ErrorCode};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::service::interceptor::InterceptedService;

pub use api::{Api, DEFAULT_ACTOR_ID};
pub use error::{ERROR_TYPE_KEY, Error, GRPC_CODE_KEY, Result};
pub use options::{ChannelsBackend, KvBackend, Options, TupleSpaceBackend};

use registry::{ActorKind, Native, Registry};

/// A registration waiting for the facet registry and options.
type Registration = Box<
    dyn FnOnce(&FacetRegistry, Duration, &deploy::DurableDefaults) -> Result<Arc<dyn ActorKind>>
        + Send,
>;

/// Builds a node: options, facets, and the native actor types it serves.
pub struct NodeBuilder {
    options: Options,
    facets: FacetRegistry,
    registrations: Vec<(String, Registration)>,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types: Vec<&str> = self.registrations.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("NodeBuilder")
            .field("options", &self.options)
            .field("types", &types)
            .finish()
    }
}

/// The node: see [`Node::builder`].
#[derive(Debug)]
pub struct Node;

impl Node {
    /// A builder on the embedded defaults, with the built-in facets registered.
    pub fn builder() -> NodeBuilder {
        let mut facets = FacetRegistry::with_builtins(FacetMetrics::default());
        durability::register(&mut facets);
        NodeBuilder { options: Options::default(), facets, registrations: Vec::new() }
    }
}

impl NodeBuilder {
    /// Replaces the options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The facet registry, to register custom facets before the types that attach them.
    pub fn facets(&mut self) -> &mut FacetRegistry {
        &mut self.facets
    }

    /// Serves the native SDK actor type `S` as `name`: every actor of it is virtual (activated
    /// by its first message, deactivated when idle).
    pub fn register<S: Handlers + ActorState>(self, name: &str) -> Self {
        self.register_with_facets::<S>(name, &[])
    }

    /// [`NodeBuilder::register`] with more facets attached to every actor of the type.
    pub fn register_with_facets<S: Handlers + ActorState>(
        mut self,
        name: &str,
        facets: &[(&str, serde_json::Value)],
    ) -> Self {
        let facets: Vec<(String, serde_json::Value)> =
            facets.iter().map(|(name, config)| ((*name).to_owned(), config.clone())).collect();
        let registration: Registration = Box::new(move |registry, idle_timeout, durable| {
            let kind = Native::<S>::new(registry.clone(), idle_timeout, &facets, durable)?;
            Ok(Arc::new(kind) as Arc<dyn ActorKind>)
        });
        self.registrations.push((name.to_owned(), registration));
        self
    }

    /// Serves the native workflow type `S` (`#[workflow_actor]`) as `name`: `run` starts an
    /// actor's run (an ask gets its result when it ends), its query names read the committed
    /// state, other actions are signals. Such a run lives in the node's memory, through idle
    /// deactivations but not a restart: [`NodeBuilder::register_workflow_with_facets`] with
    /// the `durability` facet makes it durable.
    pub fn register_workflow<S: plexspaces_sdk::WorkflowHandlers>(self, name: &str) -> Self {
        self.register_workflow_with_facets::<S>(name, &[])
    }

    /// [`NodeBuilder::register_workflow`] with more facets. With `durability`, every message
    /// is journaled and a run survives restarts of the node: a step's result is journaled
    /// before the run goes on and is never computed again, a sleep or a wait for a signal ends
    /// when it is due also after a restart, and signals are kept until the run takes them (the
    /// state needs serde, or registration fails with `state_not_serializable`).
    pub fn register_workflow_with_facets<S: plexspaces_sdk::WorkflowHandlers>(
        mut self,
        name: &str,
        facets: &[(&str, serde_json::Value)],
    ) -> Self {
        let facets: Vec<(String, serde_json::Value)> =
            facets.iter().map(|(name, config)| ((*name).to_owned(), config.clone())).collect();
        let registration: Registration = Box::new(move |registry, idle_timeout, durable| {
            let kind = workflow_kind::NativeWorkflow::<S>::new(
                registry.clone(),
                idle_timeout,
                &facets,
                durable,
            )?;
            Ok(Arc::new(kind) as Arc<dyn ActorKind>)
        });
        self.registrations.push((name.to_owned(), registration));
        self
    }

    /// Binds the ports and starts serving. Must run inside a tokio multi-thread runtime.
    pub async fn start(self) -> Result<RunningNode> {
        let options = self.options;
        options.validate()?;
        let idle_timeout = Duration::from_secs(options.idle_timeout_secs);
        for (name, _) in &self.registrations {
            ActorType::new(name)
                .map_err(|error| Error::new(ErrorCode::InvalidArguments, error.to_string()))?;
        }
        // File-system work stays off the async worker threads.
        let data_dir = options.data_dir.clone();
        let created = tokio::task::spawn_blocking(move || std::fs::create_dir_all(&data_dir)).await;
        let created =
            created.map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))?;
        created.map_err(|error| {
            Error::new(
                ErrorCode::Internal,
                format!("cannot create the data directory {}: {error}", options.data_dir.display()),
            )
        })?;
        let system =
            plexspaces_core::Options { ask_timeout: options.ask_timeout(), ..Default::default() }
                .build()
                .map_err(Error::from)?;
        let bind = |port: u16, name: &'static str| {
            let address = SocketAddr::new(options.host, port);
            async move {
                TcpListener::bind(address).await.map_err(|error| {
                    Error::new(
                        ErrorCode::Internal,
                        format!("cannot bind the {name} port on {address}: {error}"),
                    )
                })
            }
        };
        let invoke = bind(options.invoke_port, "invoke").await?;
        let admin = bind(options.admin_port, "admin").await?;
        let grpc = bind(options.grpc_port, "gRPC").await?;
        let local = |listener: &TcpListener| {
            listener
                .local_addr()
                .map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))
        };
        let addresses =
            Addresses { invoke: local(&invoke)?, admin: local(&admin)?, grpc: local(&grpc)? };
        let outbound = Arc::new(outbound::GuestOutbound::default());
        let logs = plexspaces_wasm::Logs::new(options.wasm.log_lines);
        // Opening the stores reads and fsyncs files: off the async threads.
        let opening = options.clone();
        let invoke_address = addresses.invoke;
        let (services, journal, pools) = tokio::task::spawn_blocking(move || {
            let services = open_services(&opening, invoke_address)?;
            let journal =
                plexspaces_storage::SqliteJournal::open(&opening.data_dir.join("journal"))?;
            let pools = pools::Pools::open(&opening.data_dir)?;
            Ok::<_, Error>((services, Arc::new(journal), pools))
        })
        .await
        .map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))??;
        let timers = timers::NodeTimers::new(Arc::clone(&journal) as _);
        let mut services = services;
        services.timers = Arc::new(timers.clone());
        let consumers = consumers::NodeConsumers::new(services.channels.clone());
        services.consumers = Arc::new(consumers.clone());
        let host =
            plexspaces_wasm::Host::new(options.wasm.clone(), outbound.clone(), services, logs)
                .map_err(|error| Error::new(error.code, error.message))?;
        let durable = deploy::DurableDefaults {
            journal,
            checkpoint_every: options.checkpoint_every,
            key_window: Duration::from_secs(options.idempotency_window_secs),
            max_keys: options.idempotency_max_keys,
            timers: Arc::new(timers.clone()),
        };
        let mut kinds = BTreeMap::new();
        for (name, registration) in self.registrations {
            let kind = registration(&self.facets, idle_timeout, &durable).map_err(|error| {
                Error::new(error.code, format!("actor type {name:?}: {}", error.message))
            })?;
            if kinds.insert(name.clone(), kind).is_some() {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!("actor type {name:?} is registered twice"),
                ));
            }
        }
        let deployments = deploy::Deployments::new(
            host,
            self.facets.clone(),
            options.data_dir.clone(),
            options.compile_cache(),
            idle_timeout,
            durable,
        );
        let api = Api::new(
            system,
            Registry::new(kinds),
            deployments,
            options.clone(),
            timers.clone(),
            pools,
            consumers.clone(),
        );
        outbound.connect(&api);
        timers.connect(&api);
        consumers.connect(&api);
        // What was deployed before a restart serves before the ports open.
        let native = |name: &str| api.registry().find(name).is_some();
        let restored = api.deployments().restore(&native, api.system()).await;
        // Reminders, and the wake-ups of workflow runs in progress, once their types serve.
        timers.restore().await;
        // The consumers of channels, once their types serve.
        consumers.restore().await;
        api.set_listeners(vec![
            ("invoke".to_owned(), addresses.invoke),
            ("admin".to_owned(), addresses.admin),
            ("grpc".to_owned(), addresses.grpc),
        ]);
        let (stop, stopped) = watch::channel(false);
        let header_timeout = Duration::from_millis(options.header_timeout_ms);
        let token: Option<Arc<str>> = options.admin_token.as_deref().map(Arc::from);
        let servers = vec![
            tokio::spawn(serve_http(
                invoke,
                http::finish(http::invoke_router(api.clone()), &api, "invoke", token.clone()),
                header_timeout,
                stopped.clone(),
            )),
            tokio::spawn(serve_http(
                admin,
                http::finish(http::admin_router(api.clone()), &api, "admin", token.clone()),
                header_timeout,
                stopped.clone(),
            )),
            tokio::spawn(serve_grpc(grpc, api.clone(), token, stopped)),
        ];
        tracing::info!(
            invoke = %addresses.invoke, admin = %addresses.admin, grpc = %addresses.grpc,
            data_dir = %options.data_dir.display(), deployments = restored, "node started"
        );
        Ok(RunningNode { api, addresses, stop, servers })
    }
}

#[derive(Debug, Clone, Copy)]
struct Addresses {
    invoke: SocketAddr,
    admin: SocketAddr,
    grpc: SocketAddr,
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _sender_gone = stopped.wait_for(|stop| *stop).await;
}

/// Serves HTTP/1.1 and HTTP/2 (cleartext) on `listener` until `stopped`, then lets the open
/// connections finish their requests. A client that takes longer than `header_timeout` to send
/// a request's headers is disconnected.
async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto::Builder, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn serve_grpc(
    listener: TcpListener,
    api: Api,
    token: Option<Arc<str>>,
    stopped: watch::Receiver<bool>,
) {
    let limit = api.options().max_body_bytes;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let invocation = InvocationServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let actors = ActorServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let deployments = DeploymentServiceServer::new(api.clone())
        .max_decoding_message_size(limit.max(4 * 1024 * 1024));
    let kv = KvServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let tuples = TupleSpaceServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let locks = LockServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let groups = ProcessGroupServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let pools = ShardGroupServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let channels = ChannelServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let registry = RegistryServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let blobs = BlobServiceServer::new(api.clone()).max_decoding_message_size(limit);
    let node = NodeServiceServer::new(api).max_decoding_message_size(limit);
    let mut server = tonic::transport::Server::builder();
    // Without a token nothing is checked, and the services are served as they are: the
    // interceptor's conversion of every request costs time on each call.
    let served = match token {
        None => {
            server
                .add_service(invocation)
                .add_service(actors)
                .add_service(deployments)
                .add_service(kv)
                .add_service(tuples)
                .add_service(locks)
                .add_service(groups)
                .add_service(pools)
                .add_service(channels)
                .add_service(registry)
                .add_service(blobs)
                .add_service(node)
                .serve_with_incoming_shutdown(incoming, until_stopped(stopped))
                .await
        }
        Some(token) => {
            let check = move |request: tonic::Request<()>| {
                let header = request
                    .metadata()
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| axum::http::HeaderValue::from_str(value).ok());
                if auth::bearer_matches(header.as_ref(), &token) {
                    return Ok(request);
                }
                Err(Error::new(
                    ErrorCode::Unauthenticated,
                    "this node requires `authorization: Bearer <admin token>` metadata",
                )
                .to_status())
            };
            server
                .add_service(InterceptedService::new(invocation, check.clone()))
                .add_service(InterceptedService::new(actors, check.clone()))
                .add_service(InterceptedService::new(deployments, check.clone()))
                .add_service(InterceptedService::new(kv, check.clone()))
                .add_service(InterceptedService::new(tuples, check.clone()))
                .add_service(InterceptedService::new(locks, check.clone()))
                .add_service(InterceptedService::new(channels, check.clone()))
                .add_service(InterceptedService::new(registry, check.clone()))
                .add_service(InterceptedService::new(blobs, check.clone()))
                .add_service(InterceptedService::new(groups, check.clone()))
                .add_service(InterceptedService::new(pools, check.clone()))
                .add_service(InterceptedService::new(node, check))
                .serve_with_incoming_shutdown(incoming, until_stopped(stopped))
                .await
        }
    };
    if let Err(error) = served {
        tracing::error!(%error, "gRPC server failed");
    }
}

/// The coordination services on the embedded backends the options name.
fn open_services(options: &Options, invoke: SocketAddr) -> Result<plexspaces_wasm::Services> {
    use plexspaces_storage::{
        blobs::Blobs, channels::Channels, groups::Groups, kv::Kv, locks::Locks, presign::Presigner,
        registry::Registry,
    };
    // Fencing tokens stay increasing across restarts: the boot epoch lives in the data
    // directory, advanced and fsynced once here.
    let locks = Locks::open(&options.data_dir.join("locks.epoch"))?;
    let kv = match options.kv_backend {
        options::KvBackend::Sqlite => Kv::open_sqlite(&options.data_dir.join("kv.sqlite"))?,
        options::KvBackend::Memory => Kv::in_memory(),
    };
    let channels = match options.channel_backend {
        options::ChannelsBackend::Sqlite => {
            Channels::open_sqlite(&options.data_dir.join("channels.sqlite"))?
        }
        options::ChannelsBackend::Memory => Channels::in_memory(),
    };
    let registry = match options.registry_backend {
        options::KvBackend::Sqlite => {
            Registry::open_sqlite(&options.data_dir.join("registry.sqlite"))?
        }
        options::KvBackend::Memory => Registry::in_memory(),
    };
    let blobs = Blobs::open_local(&options.data_dir.join("blobs"))?;
    let presigner =
        Presigner::open(&options.data_dir.join("blobs.key"), &options.public_url(invoke))?;
    Ok(plexspaces_wasm::Services {
        tuples: Arc::new(open_tuples(options)?),
        locks: Arc::new(locks),
        kv,
        groups: Arc::new(Groups::default()),
        pending_takes: Default::default(),
        // The node's timers replace these once the journal is open.
        timers: Arc::new(plexspaces_wasm::NoTimers),
        channels,
        // The node's consumers replace these once the API is up.
        consumers: Arc::new(plexspaces_wasm::NoConsumers),
        registry,
        blobs,
        presigner: Some(Arc::new(presigner)),
    })
}

/// The tuple spaces: in memory, or journaled to SQLite and restored from it.
fn open_tuples(options: &Options) -> Result<plexspaces_tuplespace::TupleSpace> {
    use plexspaces_tuplespace::TupleSpace;
    if options.tuple_space_backend == options::TupleSpaceBackend::Memory {
        return Ok(TupleSpace::new());
    }
    let path = options.data_dir.join("tuples.sqlite");
    let (journal, kept) = plexspaces_storage::tuples_sqlite::TupleJournal::open(&path)?;
    let tuples = TupleSpace::with_journal(Arc::new(journal));
    let restored = kept.len();
    for tuple in kept {
        let scope = (tuple.tenant.as_str(), tuple.namespace.as_str());
        tuples.restore(scope, tuple.id, tuple.tuple, tuple.expires_at_ms)?;
    }
    tracing::info!(restored, path = %path.display(), "the tuple spaces are journaled");
    Ok(tuples)
}

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    api: Api,
    addresses: Addresses,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// Where the invoke HTTP port listens.
    pub fn invoke_addr(&self) -> SocketAddr {
        self.addresses.invoke
    }

    /// Where the admin HTTP port listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.addresses.admin
    }

    /// Where the gRPC port listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addresses.grpc
    }

    /// The node's API, for calls from the same process.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Stops gracefully: stops accepting connections and the channels' intake, lets
    /// in-flight requests finish and the channel consumers drain what is ready (up to the
    /// shutdown grace), then deactivates every actor.
    pub async fn shutdown(self) {
        let grace = self.api.options().shutdown_grace();
        let _no_receivers = self.stop.send(true);
        let servers = async {
            let servers = futures_util::future::join_all(self.servers);
            if tokio::time::timeout(grace, servers).await.is_err() {
                tracing::warn!(?grace, "requests still in flight after the shutdown grace");
            }
        };
        tokio::join!(servers, self.api.consumers().drain(grace));
        self.api.system().shutdown(grace).await;
        tracing::info!("node stopped");
    }
}
