//! The node's services, written once over the proto messages: the gRPC servers are these
//! methods, and the HTTP routes build the same requests and call the same methods, so the two
//! front doors cannot disagree.

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use plexspaces_core::{ExitReason, Lifecycle, System};
use plexspaces_proto::v1::{
    self as pb, actor_service_server::ActorService, invocation_service_server::InvocationService,
    node_service_server::NodeService,
};
use plexspaces_sdk::Message;
use plexspaces_types::{ActorId, ActorKey, ActorType, ErrorCode, Namespace, TenantId};
use tonic::{Request, Response, Status};

use tracing::Instrument as _;

use crate::{
    Error, Options, Result,
    deploy::Deployments,
    deploy_api::Jobs,
    idempotency::{Delivery, Window},
    metrics::Metrics,
    payload::{JSON, action_of, is_json},
    registry::{ActorKind, Envelope, Registry},
};

/// The id an address without one gets.
pub const DEFAULT_ACTOR_ID: &str = plexspaces_types::DEFAULT_KEY;

/// The node's API: cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    system: System,
    registry: Registry,
    deployments: Deployments,
    jobs: Jobs,
    options: Options,
    idempotency: Window,
    metrics: Metrics,
    started: Instant,
    listeners: OnceLock<Vec<(String, SocketAddr)>>,
    timers: crate::timers::NodeTimers,
    pools: crate::pools::Pools,
    consumers: crate::consumers::NodeConsumers,
    /// Message ids: this run's start time, then a counter.
    boot: u64,
    next_message: AtomicU64,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("types", &self.inner.registry).finish_non_exhaustive()
    }
}

impl Api {
    pub(crate) fn new(
        system: System,
        registry: Registry,
        deployments: Deployments,
        options: Options,
        timers: crate::timers::NodeTimers,
        pools: crate::pools::Pools,
        consumers: crate::consumers::NodeConsumers,
    ) -> Self {
        let idempotency = Window::new(
            Duration::from_secs(options.idempotency_window_secs),
            options.idempotency_max_keys,
        );
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX));
        Self {
            inner: Arc::new(Inner {
                system,
                registry,
                deployments,
                jobs: Jobs::default(),
                options,
                idempotency,
                metrics: Metrics::default(),
                started: Instant::now(),
                listeners: OnceLock::new(),
                timers,
                pools,
                consumers,
                boot,
                next_message: AtomicU64::new(1),
            }),
        }
    }

    pub(crate) fn set_listeners(&self, listeners: Vec<(String, SocketAddr)>) {
        let _already_set = self.inner.listeners.set(listeners);
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn upgrade(inner: &std::sync::Weak<Inner>) -> Option<Self> {
        inner.upgrade().map(|inner| Self { inner })
    }

    pub(crate) fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// The worker pools.
    pub(crate) fn pools(&self) -> &crate::pools::Pools {
        &self.inner.pools
    }

    /// The consumers of channels.
    pub(crate) fn consumers(&self) -> &crate::consumers::NodeConsumers {
        &self.inner.consumers
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub(crate) fn deployments(&self) -> &Deployments {
        &self.inner.deployments
    }

    /// The type that serves `id`: a native type, or one deployed in the id's tenant and
    /// namespace.
    pub(crate) fn kind(&self, id: &ActorId) -> Result<Arc<dyn ActorKind>> {
        let name = id.actor_type.as_str();
        if let Some(kind) = self.inner.registry.find(name) {
            return Ok(Arc::clone(kind));
        }
        if let Some(kind) = self.inner.deployments.kind(id) {
            return Ok(kind);
        }
        // Only what this tenant and namespace may address: another tenant's types stay unseen.
        let mut known: Vec<String> =
            self.inner.registry.iter().map(|(name, _)| name.clone()).collect();
        known.extend(
            self.inner
                .deployments
                .types()
                .into_iter()
                .filter(|(key, _)| key.0 == id.tenant.as_str() && key.1 == id.namespace.as_str())
                .map(|(key, _)| key.2),
        );
        known.sort_unstable();
        Err(Error::new(
            ErrorCode::NotFound,
            format!(
                "actor type {name:?} is not registered or deployed in {}/{}; types here: {}",
                id.tenant,
                id.namespace,
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ),
        ))
    }

    /// The coordination services (tuple space, locks, KV, groups).
    pub(crate) fn services(&self) -> &plexspaces_wasm::Services {
        self.inner.deployments.host().services()
    }

    pub(crate) fn options(&self) -> &Options {
        &self.inner.options
    }

    pub(crate) fn system(&self) -> &System {
        &self.inner.system
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The Prometheus text exposition of the node's metrics.
    pub fn render_metrics(&self) -> String {
        self.inner.metrics.render(
            &self.inner.system,
            self.services(),
            self.inner.registry.len(),
            self.inner.started.elapsed(),
        )
    }

    pub(crate) fn next_message_id(&self) -> String {
        let sequence = self.inner.next_message.fetch_add(1, Ordering::Relaxed);
        format!("{:013x}-{sequence:08x}", self.inner.boot)
    }

    /// Tells or calls an actor, in a span of its own (at debug level: creating a span per
    /// request at the default level cost 5 % of the HTTP throughput). A platform failure is
    /// logged as a warning with the actor's address.
    pub async fn invoke(&self, request: pb::InvokeRequest) -> Result<pb::InvokeResponse> {
        let id = actor_id(request.actor.as_ref())?;
        let mode = request.mode;
        let span = tracing::debug_span!("invoke", actor = %id, mode);
        let started = Instant::now();
        let outcome = self.invoke_in_span(id.clone(), request).instrument(span.clone()).await;
        let _entered = span.enter();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &outcome {
            Ok(_) => tracing::debug!(micros, "invoked"),
            Err(error) if error.code.http_status() >= 500 => tracing::warn!(
                actor = %id, mode, micros, code = %error.code, error = %error.message,
                "invocation failed"
            ),
            Err(error) => tracing::debug!(
                micros, code = %error.code, error = %error.message, "invocation refused"
            ),
        }
        outcome
    }

    async fn invoke_in_span(
        &self,
        id: ActorId,
        request: pb::InvokeRequest,
    ) -> Result<pb::InvokeResponse> {
        let kind = self.kind(&id)?;
        let content_type =
            if request.content_type.is_empty() { JSON.to_owned() } else { request.content_type };
        let payload = if request.payload.is_empty() && is_json(&content_type) {
            b"{}".to_vec()
        } else {
            request.payload
        };
        let action = if request.action.is_empty() {
            action_of(&payload, &content_type)?
        } else {
            request.action
        };
        let message = Message { action: action.into(), payload, content_type: content_type.into() };
        let system = &self.inner.system;
        let mode = pb::InvocationMode::try_from(request.mode).map_err(|_| {
            Error::new(
                ErrorCode::InvalidArguments,
                format!("unknown invocation mode {}", request.mode),
            )
        })?;
        let timeout = self.timeout(request.timeout_ms)?;
        if mode == pb::InvocationMode::Call {
            let payload = kind.call(system, id, message, timeout, None).await?;
            return Ok(pb::InvokeResponse {
                payload,
                content_type: JSON.to_owned(),
                ..pb::InvokeResponse::default()
            });
        }
        let message_id = self.next_message_id();
        if request.idempotency_key.len() > 256 {
            return Err(Error::new(
                ErrorCode::InvalidArguments,
                "an idempotency key is at most 256 bytes",
            ));
        }
        if kind.durable() {
            return self
                .tell_durable(&*kind, id, message, message_id, request.idempotency_key)
                .await;
        }
        if request.idempotency_key.is_empty() {
            kind.tell(system, id, message, Envelope::named(message_id.clone()))?;
            return Ok(pb::InvokeResponse { message_id, ..pb::InvokeResponse::default() });
        }
        let actor = id.to_string();
        let named = message_id.clone();
        let delivery = self.inner.idempotency.deliver_once(
            &actor,
            &request.idempotency_key,
            message_id,
            || kind.tell(system, id, message, Envelope::named(named)),
        )?;
        Ok(match delivery {
            Delivery::Delivered(message_id) => {
                pb::InvokeResponse { message_id, ..pb::InvokeResponse::default() }
            }
            Delivery::Duplicate(message_id) => {
                pb::InvokeResponse { message_id, duplicate: true, ..pb::InvokeResponse::default() }
            }
        })
    }

    /// A tell to a durable actor: acknowledged once the actor has journaled it and the
    /// journal made that durable. Its idempotency key is journaled with it, so a retry after a
    /// crash of the node is still recognised.
    async fn tell_durable(
        &self,
        kind: &dyn ActorKind,
        id: ActorId,
        message: Message,
        message_id: String,
        idempotency_key: String,
    ) -> Result<pb::InvokeResponse> {
        let (admission, admitted) = tokio::sync::oneshot::channel();
        let envelope = Envelope {
            message_id: message_id.clone(),
            origin: None,
            idempotency_key: (!idempotency_key.is_empty()).then_some(idempotency_key),
            admission: Some(admission),
        };
        let stopped = crate::registry::stopped(&id);
        kind.tell(&self.inner.system, id, message, envelope)?;
        let admitted = admitted.await.map_err(|_| stopped)??;
        self.inner.deployments.journal().durable(admitted.ticket).await?;
        Ok(match admitted.duplicate_of {
            None => pb::InvokeResponse { message_id, ..pb::InvokeResponse::default() },
            Some(first) => pb::InvokeResponse {
                message_id: first,
                duplicate: true,
                ..pb::InvokeResponse::default()
            },
        })
    }

    pub(crate) fn timeout(&self, timeout_ms: u64) -> Result<Duration> {
        let options = &self.inner.options;
        if timeout_ms == 0 {
            return Ok(options.ask_timeout());
        }
        if timeout_ms > options.max_ask_timeout_ms {
            return Err(Error::new(
                ErrorCode::InvalidArguments,
                format!("timeout_ms must be at most {}", options.max_ask_timeout_ms),
            ));
        }
        Ok(Duration::from_millis(timeout_ms))
    }

    /// The names of the native and deployed actor types.
    pub(crate) fn type_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.inner.registry.iter().map(|(name, _)| name.clone()).collect();
        names.extend(self.inner.deployments.types().into_iter().map(|(key, _)| key.2));
        names.sort_unstable();
        names
    }

    /// The native and deployed actor types.
    pub fn list_actor_types(&self) -> pb::ListActorTypesResponse {
        let native = self.inner.registry.iter().map(|(name, kind)| pb::ActorTypeInfo {
            name: name.clone(),
            behavior: kind.behavior().to_owned(),
            facets: kind.facets(),
            source: "native".to_owned(),
            ..pb::ActorTypeInfo::default()
        });
        let deployed =
            self.inner.deployments.types().into_iter().map(|(key, kind)| pb::ActorTypeInfo {
                name: key.2,
                behavior: kind.behavior().to_owned(),
                facets: kind.facets(),
                source: "wasm".to_owned(),
                tenant: key.0,
                namespace: key.1,
                version: kind.version().to_owned(),
            });
        pb::ListActorTypesResponse { types: native.chain(deployed).collect() }
    }

    /// Refuses an address whose type this node neither registers nor deploys there.
    fn check_type(
        &self,
        tenant: &TenantId,
        namespace: &Namespace,
        actor_type: &ActorType,
    ) -> Result<()> {
        let key = (tenant.to_string(), namespace.to_string(), actor_type.as_str().to_owned());
        if self.inner.deployments.has_type(&key) {
            return Ok(());
        }
        self.inner.registry.get(actor_type.as_str()).map(drop)
    }

    /// The actors of one type on this node.
    pub fn list_actors(&self, request: &pb::ListActorsRequest) -> Result<pb::ListActorsResponse> {
        let tenant = name::<TenantId>(&request.tenant)?;
        let namespace = name::<Namespace>(&request.namespace)?;
        let actor_type = name::<ActorType>(&request.actor_type)?;
        self.check_type(&tenant, &namespace, &actor_type)?;
        let mut actors: Vec<pb::ActorInfo> = self
            .inner
            .system
            .actors()
            .into_iter()
            .filter(|actor| {
                let id = actor.id();
                id.tenant == tenant && id.namespace == namespace && id.actor_type == actor_type
            })
            .map(|actor| pb::ActorInfo {
                actor_id: actor.id().key.as_str().to_owned(),
                lifecycle: actor.lifecycle().as_str().to_owned(),
                mailbox_depth: actor.mailbox_len() as u64,
            })
            .collect();
        actors.sort_unstable_by(|a, b| a.actor_id.cmp(&b.actor_id));
        Ok(pb::ListActorsResponse { actors })
    }

    /// One actor's state as JSON.
    pub async fn get_actor_state(
        &self,
        request: &pb::GetActorStateRequest,
    ) -> Result<pb::GetActorStateResponse> {
        let id = actor_id(request.actor.as_ref())?;
        self.check_type(&id.tenant, &id.namespace, &id.actor_type)?;
        let Some(actor) = self.inner.system.lookup_any(&id) else {
            return Err(Error::new(ErrorCode::NotFound, format!("no actor {id} on this node")));
        };
        let Some(state) = actor.inspect(self.inner.options.ask_timeout()).await? else {
            return Err(Error::new(
                ErrorCode::StateNotSerializable,
                format!(
                    "the state of {id} cannot be shown: derive Serialize and Deserialize for its state type"
                ),
            ));
        };
        let state = serde_json::to_vec(&state)
            .map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))?;
        Ok(pb::GetActorStateResponse { state, content_type: JSON.to_owned() })
    }

    /// Stops an actor for good and deletes its state, and what it owns: its group
    /// memberships, the locks it holds, its asynchronous takes and its channel consumers.
    pub async fn delete_actor(
        &self,
        request: &pb::DeleteActorRequest,
    ) -> Result<pb::DeleteActorResponse> {
        let id = actor_id(request.actor.as_ref())?;
        self.check_type(&id.tenant, &id.namespace, &id.actor_type)?;
        let durable = self.kind(&id)?.durable();
        match self.inner.system.lookup_any(&id) {
            Some(actor) => {
                actor.shutdown(ExitReason::Shutdown, self.inner.options.shutdown_grace()).await;
            }
            // A durable actor exists while its journal does, active or not (damaged too).
            None if durable => {}
            None => {
                return Err(Error::new(ErrorCode::NotFound, format!("no actor {id} on this node")));
            }
        }
        // Its journal, checkpoint and timers go with it.
        if durable {
            self.inner.deployments.journal().remove(&id.to_string()).await?;
        }
        self.inner.timers.forget(&id);
        let consumers = self.inner.consumers.forget_actor(&id).await;
        let services = self.services();
        let name = id.local_name();
        let memberships = services.groups.leave_all(id.tenant.as_str(), &|member| member == name);
        let locks = services.locks.release_held_by(id.tenant.as_str(), &name);
        let takes = services.pending_takes.cancel(&id);
        tracing::debug!(actor = %id, memberships, locks, takes, consumers, "deleted an actor and what it owned");
        Ok(pb::DeleteActorResponse {})
    }

    /// The node's status.
    pub fn status(&self) -> pb::GetStatusResponse {
        let system = &self.inner.system;
        let listeners = self
            .inner
            .listeners
            .get()
            .map(|listeners| {
                listeners
                    .iter()
                    .map(|(name, address)| pb::Listener {
                        name: name.clone(),
                        address: address.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let actors_by_lifecycle = Lifecycle::ALL
            .into_iter()
            .filter(|state| !state.is_final())
            .map(|state| pb::LifecycleCount {
                lifecycle: state.as_str().to_owned(),
                actors: u64::try_from(system.actors_in(state)).unwrap_or(0),
            })
            .collect();
        pb::GetStatusResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_ms: u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            listeners,
            actors: system.actor_count() as u64,
            actors_by_lifecycle,
            actor_types: (self.inner.registry.len() + self.inner.deployments.types().len()) as u64,
            data_dir: self.inner.options.data_dir.display().to_string(),
        }
    }
}

pub(crate) fn name<T>(value: &str) -> Result<T>
where
    T: std::str::FromStr<Err = plexspaces_types::InvalidName>,
{
    value.parse().map_err(|error: plexspaces_types::InvalidName| {
        Error::new(ErrorCode::InvalidArguments, error.to_string())
    })
}

/// The actor an address names.
pub(crate) fn actor_id(address: Option<&pb::ActorAddress>) -> Result<ActorId> {
    let Some(address) = address else {
        return Err(Error::new(ErrorCode::InvalidArguments, "the request names no actor"));
    };
    let key = if address.actor_id.is_empty() { DEFAULT_ACTOR_ID } else { &address.actor_id };
    Ok(ActorId::new(
        name::<TenantId>(&address.tenant)?,
        name::<Namespace>(&address.namespace)?,
        name::<ActorType>(&address.actor_type)?,
        name::<ActorKey>(key)?,
    ))
}

impl Api {
    /// Runs one gRPC method and records it in the metrics.
    pub(crate) async fn observed<T>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<Response<T>, Status> {
        let started = Instant::now();
        let outcome = call.await;
        let code = match &outcome {
            Ok(_) => tonic::Code::Ok,
            Err(error) => tonic::Code::from_i32(error.code.grpc_code()),
        };
        self.inner.metrics.observe_grpc(method, code, started.elapsed());
        outcome.map(Response::new).map_err(Status::from)
    }
}

#[tonic::async_trait]
impl InvocationService for Api {
    async fn invoke(
        &self,
        request: Request<pb::InvokeRequest>,
    ) -> Result<Response<pb::InvokeResponse>, Status> {
        self.observed(
            "plexspaces.v1.InvocationService/Invoke",
            Api::invoke(self, request.into_inner()),
        )
        .await
    }
}

#[tonic::async_trait]
impl ActorService for Api {
    async fn list_actor_types(
        &self,
        _request: Request<pb::ListActorTypesRequest>,
    ) -> Result<Response<pb::ListActorTypesResponse>, Status> {
        self.observed("plexspaces.v1.ActorService/ListActorTypes", async {
            Ok(Api::list_actor_types(self))
        })
        .await
    }

    async fn list_actors(
        &self,
        request: Request<pb::ListActorsRequest>,
    ) -> Result<Response<pb::ListActorsResponse>, Status> {
        self.observed("plexspaces.v1.ActorService/ListActors", async {
            Api::list_actors(self, request.get_ref())
        })
        .await
    }

    async fn get_actor_state(
        &self,
        request: Request<pb::GetActorStateRequest>,
    ) -> Result<Response<pb::GetActorStateResponse>, Status> {
        self.observed(
            "plexspaces.v1.ActorService/GetActorState",
            Api::get_actor_state(self, request.get_ref()),
        )
        .await
    }

    async fn delete_actor(
        &self,
        request: Request<pb::DeleteActorRequest>,
    ) -> Result<Response<pb::DeleteActorResponse>, Status> {
        self.observed(
            "plexspaces.v1.ActorService/DeleteActor",
            Api::delete_actor(self, request.get_ref()),
        )
        .await
    }
}

#[tonic::async_trait]
impl NodeService for Api {
    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        self.observed("plexspaces.v1.NodeService/GetStatus", async { Ok(Api::status(self)) }).await
    }
}
