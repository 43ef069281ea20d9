//! The `blobs` interface: the blob store of the calling actor's namespace, and presigned URLs
//! that let clients move blobs larger than a guest call carries.

use bytes::Bytes;
use plexspaces_storage::{blobs::BlobInfo, now_ms, presign::Method};
use plexspaces_types::{ErrorCode, Refusal};

use crate::{
    bindings::{HostError, plexspaces::actor},
    ctx::Ctx,
    durable::{CallKind, journaled},
};

/// The most bytes a guest moves in one blob call: 8 MiB. Larger blobs travel through
/// presigned URLs, which the node streams.
pub const MAX_GUEST_BLOB: u64 = 8 << 20;

fn info(info: BlobInfo) -> actor::blobs::BlobInfo {
    actor::blobs::BlobInfo {
        key: info.key,
        size: info.size,
        content_type: info.content_type,
        modified_at_ms: info.modified_at_ms,
        etag: info.etag,
    }
}

impl actor::blobs::Host for Ctx {
    async fn put(
        &mut self,
        key: String,
        data: Vec<u8>,
        content_type: String,
    ) -> Result<actor::blobs::BlobInfo, HostError> {
        journaled!(self, CallKind::BlobPut, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            if data.len() as u64 > MAX_GUEST_BLOB {
                return Err(Refusal::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "a guest stores at most {MAX_GUEST_BLOB} bytes in one call, not {}: use \
                         a presigned URL",
                        data.len()
                    ),
                )
                .into());
            }
            let blobs = &this.services.blobs;
            let stored =
                blobs.put((&tenant, &namespace), &key, &content_type, Bytes::from(data)).await?;
            Ok(info(stored))
        })
    }

    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        journaled!(self, CallKind::BlobGet, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            let read =
                this.services.blobs.read((&tenant, &namespace), &key, MAX_GUEST_BLOB).await?;
            Ok(read.map(|(_, data)| data.to_vec()))
        })
    }

    async fn head(&mut self, key: String) -> Result<Option<actor::blobs::BlobInfo>, HostError> {
        journaled!(self, CallKind::BlobHead, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this.services.blobs.head((&tenant, &namespace), &key).await?.map(info))
        })
    }

    async fn delete(&mut self, key: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::BlobDelete, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this.services.blobs.delete((&tenant, &namespace), &key).await?)
        })
    }

    async fn list_prefix(
        &mut self,
        prefix: String,
        after: String,
        limit: u32,
    ) -> Result<Vec<actor::blobs::BlobInfo>, HostError> {
        journaled!(self, CallKind::BlobList, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            let after = (!after.is_empty()).then_some(after.as_str());
            let page =
                this.services.blobs.list((&tenant, &namespace), &prefix, after, limit).await?;
            Ok(page.blobs.into_iter().map(info).collect())
        })
    }

    async fn presign(
        &mut self,
        key: String,
        method: String,
        ttl_ms: u64,
    ) -> Result<String, HostError> {
        journaled!(self, CallKind::BlobPresign, effect = false, |this| {
            let (tenant, namespace) = this.scope()?;
            let method = Method::parse(&method)?;
            let Some(presigner) = &this.services.presigner else {
                let missing = "presigned URLs need a node: this host has none";
                return Err(Refusal::new(ErrorCode::Unavailable, missing).into());
            };
            let signed = presigner.sign(method, (&tenant, &namespace), &key, ttl_ms, now_ms())?;
            Ok(signed.url)
        })
    }
}
