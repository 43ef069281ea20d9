//! The service registry for clients outside the node, written once over the proto messages:
//! the gRPC `RegistryService` is these methods, and the HTTP routes
//! (`http_service_registry.rs`) build the same requests and call them.

use plexspaces_proto::v1::{self as pb, registry_service_server::RegistryService};
use plexspaces_storage::registry::{Registration, metadata_from_json};
use tonic::{Request, Response, Status};

use crate::{Api, Result, coordination::Scoped};

fn registration(registration: Registration) -> pb::Registration {
    pb::Registration {
        metadata_json: serde_json::Value::Object(registration.metadata).to_string(),
        service: registration.service,
        instance: registration.instance,
        ttl_ms: registration.ttl_ms,
        registered_at_ms: registration.registered_at_ms,
        expires_at_ms: registration.expires_at_ms,
    }
}

impl Api {
    /// Registers (or registers again) an instance.
    pub async fn registry_register(
        &self,
        request: pb::RegistryRegisterRequest,
    ) -> Result<pb::Registration> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let metadata = metadata_from_json(&request.metadata_json)?;
        let registered = self
            .services()
            .registry
            .register(scope.pair(), &request.service, &request.instance, metadata, request.ttl_ms)
            .await?;
        Ok(registration(registered))
    }

    /// Renews a live instance.
    pub async fn registry_heartbeat(
        &self,
        request: pb::RegistryHeartbeatRequest,
    ) -> Result<pb::Registration> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let renewed = self
            .services()
            .registry
            .heartbeat(scope.pair(), &request.service, &request.instance, request.ttl_ms)
            .await?;
        Ok(registration(renewed))
    }

    /// Removes an instance.
    pub async fn registry_deregister(
        &self,
        request: pb::RegistryInstanceRef,
    ) -> Result<pb::RegistryDeregisterResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let registry = &self.services().registry;
        let deregistered =
            registry.deregister(scope.pair(), &request.service, &request.instance).await?;
        Ok(pb::RegistryDeregisterResponse { deregistered })
    }

    /// The live instances of a service.
    pub async fn registry_lookup(
        &self,
        request: pb::RegistryLookupRequest,
    ) -> Result<pb::RegistryLookupResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let found = self.services().registry.lookup(scope.pair(), &request.service).await?;
        Ok(pb::RegistryLookupResponse { instances: found.into_iter().map(registration).collect() })
    }

    /// One page of the services with live instances.
    pub async fn registry_list(
        &self,
        request: pb::RegistryListRequest,
    ) -> Result<pb::RegistryListResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let after = (!request.after.is_empty()).then_some(request.after.as_str());
        let page = self
            .services()
            .registry
            .list(scope.pair(), &request.prefix, after, request.limit)
            .await?;
        Ok(pb::RegistryListResponse {
            services: page
                .services
                .into_iter()
                .map(|summary| pb::ServiceSummary {
                    service: summary.service,
                    instances: summary.instances,
                })
                .collect(),
            next_after: page.next_after.unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl RegistryService for Api {
    async fn register(
        &self,
        request: Request<pb::RegistryRegisterRequest>,
    ) -> Result<Response<pb::Registration>, Status> {
        let call = self.registry_register(request.into_inner());
        self.observed("plexspaces.v1.RegistryService/Register", call).await
    }

    async fn heartbeat(
        &self,
        request: Request<pb::RegistryHeartbeatRequest>,
    ) -> Result<Response<pb::Registration>, Status> {
        let call = self.registry_heartbeat(request.into_inner());
        self.observed("plexspaces.v1.RegistryService/Heartbeat", call).await
    }

    async fn deregister(
        &self,
        request: Request<pb::RegistryInstanceRef>,
    ) -> Result<Response<pb::RegistryDeregisterResponse>, Status> {
        let call = self.registry_deregister(request.into_inner());
        self.observed("plexspaces.v1.RegistryService/Deregister", call).await
    }

    async fn lookup(
        &self,
        request: Request<pb::RegistryLookupRequest>,
    ) -> Result<Response<pb::RegistryLookupResponse>, Status> {
        let call = self.registry_lookup(request.into_inner());
        self.observed("plexspaces.v1.RegistryService/Lookup", call).await
    }

    async fn list(
        &self,
        request: Request<pb::RegistryListRequest>,
    ) -> Result<Response<pb::RegistryListResponse>, Status> {
        let call = self.registry_list(request.into_inner());
        self.observed("plexspaces.v1.RegistryService/List", call).await
    }
}
