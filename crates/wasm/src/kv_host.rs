//! The `kv` interface: the key-value store of the calling actor's namespace.

use std::time::Duration;

use plexspaces_storage::kv::Entry;

use crate::{
    bindings::{HostError, plexspaces::actor},
    ctx::Ctx,
    durable::{CallKind, journaled},
};

/// How many entries a `list` without a limit returns.
const DEFAULT_LIST: u32 = 100;

fn ttl(ttl_ms: u64) -> Option<Duration> {
    (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms))
}

fn entry(entry: Entry) -> actor::kv::Entry {
    actor::kv::Entry { key: entry.key, value: entry.value, expires_at_ms: entry.expires_at_ms }
}

impl actor::kv::Host for Ctx {
    async fn get(&mut self, key: String) -> Result<Option<String>, HostError> {
        journaled!(self, CallKind::KvGet, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            let found = this.services.kv.get((&tenant, &namespace), &key).await?;
            Ok(found.map(|entry| entry.value))
        })
    }

    async fn put(&mut self, key: String, value: String, ttl_ms: u64) -> Result<(), HostError> {
        journaled!(self, CallKind::KvPut, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this.services.kv.put((&tenant, &namespace), &key, value, ttl(ttl_ms)).await?)
        })
    }

    async fn delete(&mut self, key: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::KvDelete, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this.services.kv.delete((&tenant, &namespace), &key).await?)
        })
    }

    async fn list_prefix(
        &mut self,
        prefix: String,
        after: String,
        limit: u32,
    ) -> Result<Vec<actor::kv::Entry>, HostError> {
        journaled!(self, CallKind::KvList, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            let limit = if limit == 0 { DEFAULT_LIST } else { limit };
            let after = (!after.is_empty()).then_some(after.as_str());
            let page = this
                .services
                .kv
                .list((&tenant, &namespace), &prefix, after, limit as usize)
                .await?;
            Ok(page.entries.into_iter().map(entry).collect())
        })
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        value: Option<String>,
        ttl_ms: u64,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::KvCas, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this
                .services
                .kv
                .compare_and_swap(
                    (&tenant, &namespace),
                    &key,
                    expected.as_deref(),
                    value,
                    ttl(ttl_ms),
                )
                .await?)
        })
    }
}
