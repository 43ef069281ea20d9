//! Blobs for clients outside the node, written once: the gRPC `BlobService` is these methods,
//! and the HTTP routes (`http_blobs.rs`) call the same ones. Put and Get stream: an upload
//! takes chunks as they come (bounded by `max_blob_bytes`, each chunk within the body
//! timeout), a download hands out chunks as the client takes them.

use std::{pin::Pin, time::Duration};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use plexspaces_proto::v1::{self as pb, blob_service_server::BlobService};
use plexspaces_storage::{
    blobs::{BlobInfo, ByteStream, Upload},
    now_ms,
    presign::{Method, Presigned, Presigner},
};
use plexspaces_types::ErrorCode;
use tonic::{Request, Response, Status, Streaming};

use crate::{Api, Error, Result, coordination::Scoped};

pub(crate) fn info(info: BlobInfo) -> pb::BlobInfo {
    pb::BlobInfo {
        key: info.key,
        size: info.size,
        content_type: info.content_type,
        modified_at_ms: info.modified_at_ms,
        etag: info.etag,
    }
}

fn not_found(key: &str) -> Error {
    Error::new(ErrorCode::NotFound, format!("there is no blob {key:?}"))
}

/// Why an upload stopped: the caller's body, or the store.
pub(crate) enum Stopped {
    /// The body was larger than the node takes.
    TooLarge(u64),
    /// A chunk did not come within the body timeout.
    Slow(Duration),
    /// The body could not be read (the client went away).
    Body(String),
    /// The store refused.
    Store(Error),
}

impl From<Stopped> for Error {
    fn from(stopped: Stopped) -> Self {
        match stopped {
            Stopped::TooLarge(limit) => Error::new(
                ErrorCode::PayloadTooLarge,
                format!("the blob is larger than this node stores ({limit} bytes)"),
            ),
            Stopped::Slow(timeout) => Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the next part of the blob did not arrive within {} ms",
                    timeout.as_millis()
                ),
            ),
            Stopped::Body(message) => Error::new(
                ErrorCode::InvalidArguments,
                format!("the blob could not be read: {message}"),
            ),
            Stopped::Store(error) => error,
        }
    }
}

impl Api {
    fn presigner(&self) -> Result<&Presigner> {
        self.services()
            .presigner
            .as_deref()
            .ok_or_else(|| Error::new(ErrorCode::Unavailable, "this node signs no blob URLs"))
    }

    /// Stores the chunks of `body` as the blob `key`: nothing shows until the last one is
    /// written, and an upload that stops (too large, too slow, cut off) leaves the blob as it
    /// was.
    pub(crate) async fn blob_store_stream<E: std::fmt::Display>(
        &self,
        scope: &Scoped,
        key: &str,
        content_type: &str,
        body: impl Stream<Item = Result<Bytes, E>>,
    ) -> Result<BlobInfo, Stopped> {
        let limit = self.options().max_blob_bytes;
        let timeout = Duration::from_millis(self.options().body_timeout_ms);
        let blobs = &self.services().blobs;
        let mut upload = blobs
            .upload(scope.pair(), key, content_type)
            .await
            .map_err(|error| Stopped::Store(error.into()))?;
        match feed(&mut upload, body, limit, timeout).await {
            Ok(()) => upload.finish().await.map_err(|error| Stopped::Store(error.into())),
            Err(stopped) => {
                upload.abort().await;
                Err(stopped)
            }
        }
    }

    /// The blob's info and a stream of its bytes.
    pub(crate) async fn blob_get(
        &self,
        scope: &Scoped,
        key: &str,
    ) -> Result<(BlobInfo, ByteStream)> {
        self.services().blobs.get(scope.pair(), key).await?.ok_or_else(|| not_found(key))
    }

    /// The blob's info.
    pub async fn blob_head(&self, request: pb::BlobRef) -> Result<pb::BlobHeadResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let found = self.services().blobs.head(scope.pair(), &request.key).await?;
        let found = found.ok_or_else(|| not_found(&request.key))?;
        Ok(pb::BlobHeadResponse { info: Some(info(found)) })
    }

    /// Removes a blob.
    pub async fn blob_delete(&self, request: pb::BlobRef) -> Result<pb::BlobDeleteResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let deleted = self.services().blobs.delete(scope.pair(), &request.key).await?;
        Ok(pb::BlobDeleteResponse { deleted })
    }

    /// One page of the blobs with a prefix.
    pub async fn blob_list(&self, request: pb::BlobListRequest) -> Result<pb::BlobListResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let after = (!request.after.is_empty()).then_some(request.after.as_str());
        let page =
            self.services().blobs.list(scope.pair(), &request.prefix, after, request.limit).await?;
        Ok(pb::BlobListResponse {
            blobs: page.blobs.into_iter().map(info).collect(),
            next_after: page.next_after.unwrap_or_default(),
        })
    }

    /// A presigned URL.
    pub async fn blob_presign(
        &self,
        request: pb::BlobPresignRequest,
    ) -> Result<pb::BlobPresignResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let method = Method::parse(&request.method)?;
        let Presigned { url, path, expires_at_ms } =
            self.presigner()?.sign(method, scope.pair(), &request.key, request.ttl_ms, now_ms())?;
        Ok(pb::BlobPresignResponse { url, path, expires_at_ms })
    }

    /// Checks a presigned request: its signature, then its expiry.
    pub(crate) fn blob_check_presigned(
        &self,
        method: Method,
        scope: &Scoped,
        key: &str,
        expires: &str,
        signature: &str,
    ) -> Result<()> {
        self.presigner()?.verify(method, scope.pair(), key, expires, signature, now_ms())?;
        Ok(())
    }
}

/// Writes the chunks of `body` to `upload` until it ends, or stops at the first chunk past
/// `limit` bytes, later than `timeout`, or failed.
async fn feed<E: std::fmt::Display>(
    upload: &mut Upload,
    body: impl Stream<Item = Result<Bytes, E>>,
    limit: u64,
    timeout: Duration,
) -> Result<(), Stopped> {
    let mut body = std::pin::pin!(body);
    loop {
        let next = tokio::time::timeout(timeout, body.next()).await;
        let chunk = match next.map_err(|_elapsed| Stopped::Slow(timeout))? {
            None => return Ok(()),
            Some(chunk) => chunk.map_err(|error| Stopped::Body(error.to_string()))?,
        };
        if upload.written() + chunk.len() as u64 > limit {
            return Err(Stopped::TooLarge(limit));
        }
        upload.write(chunk).await.map_err(|error| Stopped::Store(error.into()))?;
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::BlobGetChunk, Status>> + Send>>;

#[tonic::async_trait]
impl BlobService for Api {
    async fn put(
        &self,
        request: Request<Streaming<pb::BlobPutRequest>>,
    ) -> Result<Response<pb::BlobInfo>, Status> {
        let call = async {
            let mut parts = request.into_inner();
            let header = match parts.next().await {
                Some(Ok(pb::BlobPutRequest {
                    part: Some(pb::blob_put_request::Part::Header(header)),
                })) => header,
                Some(Err(status)) => {
                    return Err(Error::new(
                        ErrorCode::InvalidArguments,
                        status.message().to_owned(),
                    ));
                }
                _ => {
                    return Err(Error::new(
                        ErrorCode::InvalidArguments,
                        "a Put starts with a header (scope, key, content type), then the chunks",
                    ));
                }
            };
            let scope = Scoped::of(header.scope.as_ref())?;
            let chunks = parts.map(|part| match part {
                Ok(pb::BlobPutRequest { part: Some(pb::blob_put_request::Part::Chunk(chunk)) }) => {
                    Ok(Bytes::from(chunk))
                }
                Ok(_) => Err("a Put has one header, then only chunks".to_owned()),
                Err(status) => Err(status.message().to_owned()),
            });
            let stored = self
                .blob_store_stream(&scope, &header.key, &header.content_type, chunks)
                .await
                .map_err(Error::from)?;
            Ok(info(stored))
        };
        self.observed("plexspaces.v1.BlobService/Put", call).await
    }

    type GetStream = ChunkStream;

    async fn get(
        &self,
        request: Request<pb::BlobRef>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let call = async {
            let request = request.into_inner();
            let scope = Scoped::of(request.scope.as_ref())?;
            let (found, bytes) = self.blob_get(&scope, &request.key).await?;
            let first = futures_util::stream::once(async move {
                Ok(pb::BlobGetChunk { part: Some(pb::blob_get_chunk::Part::Info(info(found))) })
            });
            let chunks = bytes.map(|chunk| match chunk {
                Ok(chunk) => Ok(pb::BlobGetChunk {
                    part: Some(pb::blob_get_chunk::Part::Chunk(chunk.to_vec())),
                }),
                Err(error) => Err(Error::from(error).to_status()),
            });
            Ok(Box::pin(first.chain(chunks)) as ChunkStream)
        };
        self.observed("plexspaces.v1.BlobService/Get", call).await
    }

    async fn head(
        &self,
        request: Request<pb::BlobRef>,
    ) -> Result<Response<pb::BlobHeadResponse>, Status> {
        self.observed("plexspaces.v1.BlobService/Head", self.blob_head(request.into_inner())).await
    }

    async fn delete(
        &self,
        request: Request<pb::BlobRef>,
    ) -> Result<Response<pb::BlobDeleteResponse>, Status> {
        self.observed("plexspaces.v1.BlobService/Delete", self.blob_delete(request.into_inner()))
            .await
    }

    async fn list(
        &self,
        request: Request<pb::BlobListRequest>,
    ) -> Result<Response<pb::BlobListResponse>, Status> {
        self.observed("plexspaces.v1.BlobService/List", self.blob_list(request.into_inner())).await
    }

    async fn presign(
        &self,
        request: Request<pb::BlobPresignRequest>,
    ) -> Result<Response<pb::BlobPresignResponse>, Status> {
        self.observed("plexspaces.v1.BlobService/Presign", self.blob_presign(request.into_inner()))
            .await
    }
}
