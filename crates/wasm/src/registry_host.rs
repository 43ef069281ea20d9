//! The `registry` interface: the service registry of the calling actor's namespace.

use plexspaces_storage::registry::{self, Registration};

use crate::{
    bindings::{HostError, plexspaces::actor},
    ctx::Ctx,
    durable::{CallKind, journaled},
};

fn registration(registration: Registration) -> actor::registry::Registration {
    actor::registry::Registration {
        metadata: serde_json::Value::Object(registration.metadata).to_string(),
        service: registration.service,
        instance: registration.instance,
        ttl_ms: registration.ttl_ms,
        registered_at_ms: registration.registered_at_ms,
        expires_at_ms: registration.expires_at_ms,
    }
}

impl Ctx {
    /// The scope of the calling actor, and the instance a call names (empty: the caller).
    fn registry_call(&self, instance: String) -> Result<((String, String), String), HostError> {
        let instance = if instance.is_empty() { self.serving()?.local_name() } else { instance };
        Ok((self.scope()?, instance))
    }
}

impl actor::registry::Host for Ctx {
    async fn register(
        &mut self,
        service: String,
        instance: String,
        metadata: String,
        ttl_ms: u64,
    ) -> Result<actor::registry::Registration, HostError> {
        journaled!(self, CallKind::RegistryRegister, effect = true, |this| {
            let ((tenant, namespace), instance) = this.registry_call(instance)?;
            let metadata = registry::metadata_from_json(&metadata)?;
            let registered = this
                .services
                .registry
                .register((&tenant, &namespace), &service, &instance, metadata, ttl_ms)
                .await?;
            Ok(registration(registered))
        })
    }

    async fn heartbeat(
        &mut self,
        service: String,
        instance: String,
        ttl_ms: u64,
    ) -> Result<actor::registry::Registration, HostError> {
        journaled!(self, CallKind::RegistryHeartbeat, effect = true, |this| {
            let ((tenant, namespace), instance) = this.registry_call(instance)?;
            let renewed = this
                .services
                .registry
                .heartbeat((&tenant, &namespace), &service, &instance, ttl_ms)
                .await?;
            Ok(registration(renewed))
        })
    }

    async fn deregister(&mut self, service: String, instance: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::RegistryDeregister, effect = true, |this| {
            let ((tenant, namespace), instance) = this.registry_call(instance)?;
            let registry = &this.services.registry;
            Ok(registry.deregister((&tenant, &namespace), &service, &instance).await?)
        })
    }

    async fn lookup(
        &mut self,
        service: String,
    ) -> Result<Vec<actor::registry::Registration>, HostError> {
        journaled!(self, CallKind::RegistryLookup, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            let found = this.services.registry.lookup((&tenant, &namespace), &service).await?;
            Ok(found.into_iter().map(registration).collect())
        })
    }

    async fn list_services(
        &mut self,
        prefix: String,
        after: String,
        limit: u32,
    ) -> Result<Vec<actor::registry::ServiceSummary>, HostError> {
        journaled!(self, CallKind::RegistryList, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            let after = (!after.is_empty()).then_some(after.as_str());
            let page =
                this.services.registry.list((&tenant, &namespace), &prefix, after, limit).await?;
            Ok(page
                .services
                .into_iter()
                .map(|summary| actor::registry::ServiceSummary {
                    service: summary.service,
                    instances: summary.instances,
                })
                .collect())
        })
    }
}
