//! The deployment API, written once over the proto messages (like [`crate::api`]): the gRPC
//! `DeploymentService` is these methods, and the admin HTTP routes call the same ones.

use std::{collections::HashMap, pin::Pin};

use futures_util::Stream;
use parking_lot::Mutex;
use plexspaces_proto::v1::{self as pb, deployment_service_server::DeploymentService};
use plexspaces_types::ErrorCode;
use plexspaces_wasm::LogLine;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status, Streaming};

use crate::{Api, Error, Result, deploy::Key};

/// An asynchronous deploy (`?async=true`) and how it went.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    Running { key: Key },
    Done(Box<pb::DeploymentInfo>),
    Failed(Error),
}

/// Asynchronous deploys by id.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    jobs: Mutex<HashMap<String, Job>>,
    next: std::sync::atomic::AtomicU64,
}

/// Jobs kept, oldest forgotten first.
const MAX_JOBS: usize = 1_000;

/// A tenant and namespace from a request (empty: `default`), checked as names.
fn scope(tenant: &str, namespace: &str) -> Result<(String, String)> {
    let tenant: plexspaces_types::TenantId = crate::deploy::name(tenant, "tenant")?;
    let namespace: plexspaces_types::Namespace = crate::deploy::name(namespace, "namespace")?;
    Ok((tenant.to_string(), namespace.to_string()))
}

pub(crate) fn key_of(reference: &pb::DeploymentRef) -> Result<Key> {
    let (tenant, namespace) = scope(&reference.tenant, &reference.namespace)?;
    Ok((tenant, namespace, reference.name.clone()))
}

impl Api {
    /// Compiles and serves a module; returns once its types can serve.
    pub async fn deploy(
        &self,
        spec: pb::DeploySpec,
        wasm: bytes::Bytes,
    ) -> Result<pb::DeployResponse> {
        self.check_size(&wasm)?;
        let native = |name: &str| self.registry().find(name).is_some();
        let info = self.deployments().deploy(&native, self.system(), spec, wasm).await?;
        tracing::info!(
            tenant = %info.tenant, namespace = %info.namespace, name = %info.name,
            version = %info.version, compile_ms = info.compile_ms, types = info.types.len(),
            "deployed"
        );
        Ok(pb::DeployResponse { deployment: Some(info) })
    }

    fn check_size(&self, wasm: &[u8]) -> Result<()> {
        let limit = self.options().max_module_bytes;
        if wasm.len() > limit {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("the module is larger than this node accepts ({limit} bytes)"),
            ));
        }
        Ok(())
    }

    /// Checks the request, then deploys in the background; the progress is read with
    /// [`Api::deploy_job`]. A request that is wrong on its face is refused at once.
    pub(crate) fn deploy_later(&self, spec: pb::DeploySpec, wasm: bytes::Bytes) -> Result<String> {
        self.check_size(&wasm)?;
        let key = crate::deploy::check(&spec, &wasm)?.key;
        let jobs = self.jobs();
        let number = jobs.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let id = format!("deploy-{number}");
        {
            let mut all = jobs.jobs.lock();
            if all.len() >= MAX_JOBS {
                let finished: Vec<String> = all
                    .iter()
                    .filter(|(_, job)| !matches!(job, Job::Running { .. }))
                    .map(|(id, _)| id.clone())
                    .take(all.len() + 1 - MAX_JOBS)
                    .collect();
                for old in finished {
                    all.remove(&old);
                }
            }
            all.insert(id.clone(), Job::Running { key });
        }
        let api = self.clone();
        let job = id.clone();
        tokio::spawn(async move {
            let outcome = match api.deploy(spec, wasm).await {
                Ok(response) => Job::Done(Box::new(response.deployment.unwrap_or_default())),
                Err(error) => Job::Failed(error),
            };
            api.jobs().jobs.lock().insert(job, outcome);
        });
        Ok(id)
    }

    pub(crate) fn deploy_job(&self, id: &str) -> Result<Job> {
        self.jobs().jobs.lock().get(id).cloned().ok_or_else(|| {
            Error::new(ErrorCode::NotFound, format!("no deploy job {id:?} on this node"))
        })
    }

    /// The deployments of a tenant, in one namespace or (namespace empty) in all.
    pub fn list_deployments(
        &self,
        request: &pb::ListDeploymentsRequest,
    ) -> Result<pb::ListDeploymentsResponse> {
        let (tenant, namespace) = scope(&request.tenant, &request.namespace)?;
        let namespace = if request.namespace.is_empty() { "" } else { namespace.as_str() };
        let deployments = self.deployments().list(&tenant, namespace);
        Ok(pb::ListDeploymentsResponse { deployments })
    }

    pub fn get_deployment(&self, reference: &pb::DeploymentRef) -> Result<pb::DeployResponse> {
        let deployment = self.deployments().get(&key_of(reference)?)?;
        Ok(pb::DeployResponse { deployment: Some(deployment) })
    }

    /// Stops the deployment's actors and forgets it.
    pub async fn undeploy(&self, reference: &pb::DeploymentRef) -> Result<pb::UndeployResponse> {
        self.deployments().undeploy(self.system(), &key_of(reference)?).await?;
        Ok(pb::UndeployResponse {})
    }

    /// A deployed type's buffered log lines, and a receiver of new ones when following.
    pub(crate) fn logs(
        &self,
        request: &pb::GetLogsRequest,
    ) -> Result<(Vec<pb::LogLine>, Option<broadcast::Receiver<LogLine>>)> {
        let (tenant, namespace) = scope(&request.tenant, &request.namespace)?;
        let key: Key = (tenant, namespace, request.actor_type.clone());
        if !self.deployments().has_type(&key) {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("no deployed type {} in {}/{}", key.2, key.0, key.1),
            ));
        }
        let logs = self.deployments().host().logs();
        let actor = (!request.actor_id.is_empty()).then_some(request.actor_id.as_str());
        if request.follow {
            let (lines, receiver) = logs.follow(&key, actor);
            return Ok((lines.into_iter().map(log_line).collect(), Some(receiver)));
        }
        Ok((logs.read(&key, actor).into_iter().map(log_line).collect(), None))
    }
}

pub(crate) fn log_line(line: LogLine) -> pb::LogLine {
    pb::LogLine {
        seq: line.seq,
        time_ms: line.time_ms,
        level: line.level.to_owned(),
        stream: line.stream.as_str().to_owned(),
        actor_id: line.actor_key,
        message: line.message,
    }
}

/// The lines after `lines`, from `receiver`, for one actor when `actor` is set. A follower
/// too slow for the buffer is told how many lines it missed.
pub(crate) fn followed(
    lines: Vec<pb::LogLine>,
    receiver: Option<broadcast::Receiver<LogLine>>,
    actor: String,
) -> impl Stream<Item = pb::LogLine> + Send {
    let backlog = futures_util::stream::iter(lines);
    let live = futures_util::stream::unfold(receiver, move |receiver| {
        let actor = actor.clone();
        async move {
            let mut receiver = receiver?;
            loop {
                match receiver.recv().await {
                    Ok(line) if actor.is_empty() || line.actor_key == actor => {
                        return Some((log_line(line), Some(receiver)));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let note = pb::LogLine {
                            level: "warn".to_owned(),
                            stream: "host".to_owned(),
                            message: format!(
                                "{missed} lines were dropped: the follower fell behind"
                            ),
                            ..pb::LogLine::default()
                        };
                        return Some((note, Some(receiver)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    futures_util::StreamExt::chain(backlog, live)
}

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogLine, Status>> + Send>>;

#[tonic::async_trait]
impl DeploymentService for Api {
    async fn deploy(
        &self,
        request: Request<Streaming<pb::DeployChunk>>,
    ) -> Result<Response<pb::DeployResponse>, Status> {
        let mut chunks = request.into_inner();
        let limit = self.options().max_module_bytes;
        let read = async {
            let mut spec = None;
            let mut wasm = bytes::BytesMut::new();
            while let Some(chunk) = chunks.message().await.map_err(|status| {
                Error::new(
                    ErrorCode::InvalidArguments,
                    format!("the upload failed: {}", status.message()),
                )
            })? {
                if let Some(first) = chunk.spec {
                    spec.get_or_insert(first);
                }
                if wasm.len() + chunk.data.len() > limit {
                    return Err(Error::new(
                        ErrorCode::PayloadTooLarge,
                        format!("the module is larger than this node accepts ({limit} bytes)"),
                    ));
                }
                wasm.extend_from_slice(&chunk.data);
            }
            let spec = spec.ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidArguments,
                    "the first chunk must carry the deploy spec",
                )
            })?;
            Api::deploy(self, spec, wasm.freeze()).await
        };
        self.observed("plexspaces.v1.DeploymentService/Deploy", read).await
    }

    async fn list_deployments(
        &self,
        request: Request<pb::ListDeploymentsRequest>,
    ) -> Result<Response<pb::ListDeploymentsResponse>, Status> {
        self.observed("plexspaces.v1.DeploymentService/ListDeployments", async {
            Api::list_deployments(self, request.get_ref())
        })
        .await
    }

    async fn get_deployment(
        &self,
        request: Request<pb::DeploymentRef>,
    ) -> Result<Response<pb::DeployResponse>, Status> {
        self.observed("plexspaces.v1.DeploymentService/GetDeployment", async {
            Api::get_deployment(self, request.get_ref())
        })
        .await
    }

    async fn undeploy(
        &self,
        request: Request<pb::DeploymentRef>,
    ) -> Result<Response<pb::UndeployResponse>, Status> {
        self.observed(
            "plexspaces.v1.DeploymentService/Undeploy",
            Api::undeploy(self, request.get_ref()),
        )
        .await
    }

    type GetLogsStream = LogStream;

    async fn get_logs(
        &self,
        request: Request<pb::GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        let request = request.into_inner();
        let (lines, receiver) = self.logs(&request).map_err(Status::from)?;
        let stream = futures_util::StreamExt::map(followed(lines, receiver, request.actor_id), Ok);
        Ok(Response::new(Box::pin(stream) as LogStream))
    }
}
