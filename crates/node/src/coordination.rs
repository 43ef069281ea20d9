//! The KV store and the tuple space for clients outside the node, written once over the proto
//! messages: the gRPC services are these methods, and the HTTP routes
//! (`http_coordination.rs`) build the same requests and call them.

use std::time::Duration;

use plexspaces_proto::v1::{
    self as pb, kv_service_server::KvService, tuple_space_service_server::TupleSpaceService,
};
use plexspaces_storage::kv::Entry;
use plexspaces_tuplespace::{Pattern, Space, tuple_from_json};
use plexspaces_types::{ErrorCode, Namespace, TenantId};
use tonic::{Request, Response, Status};

use crate::{Api, Error, Result, api::name};

/// How many entries or tuples a listing without a limit returns.
const DEFAULT_LIMIT: u32 = 100;

/// A validated scope: tenant and namespace.
pub(crate) struct Scoped {
    pub(crate) tenant: TenantId,
    pub(crate) namespace: Namespace,
}

impl Scoped {
    pub(crate) fn of(scope: Option<&pb::Scope>) -> Result<Self> {
        let Some(scope) = scope else {
            return Err(Error::new(ErrorCode::InvalidArguments, "the request names no scope"));
        };
        Ok(Self { tenant: name(&scope.tenant)?, namespace: name(&scope.namespace)? })
    }

    pub(crate) fn pair(&self) -> (&str, &str) {
        (self.tenant.as_str(), self.namespace.as_str())
    }
}

fn entry(entry: Entry) -> pb::KvEntry {
    pb::KvEntry {
        key: entry.key,
        value: entry.value,
        expires_at_ms: entry.expires_at_ms.unwrap_or(0),
    }
}

fn ttl(ttl_ms: u64) -> Option<Duration> {
    (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms))
}

fn limit(limit: u32) -> u32 {
    if limit == 0 { DEFAULT_LIMIT } else { limit }
}

/// JSON text of at most [`plexspaces_wasm::MAX_TUPLE_BYTES`].
pub(crate) fn json(text: &str, what: &str) -> Result<serde_json::Value> {
    if text.len() > plexspaces_wasm::MAX_TUPLE_BYTES {
        return Err(Error::new(
            ErrorCode::InvalidArguments,
            format!(
                "the {what} is {} bytes; at most {}",
                text.len(),
                plexspaces_wasm::MAX_TUPLE_BYTES
            ),
        ));
    }
    serde_json::from_str(text).map_err(|error| {
        Error::new(ErrorCode::InvalidJson, format!("the {what} is not JSON: {error}"))
    })
}

fn pattern(text: &str) -> Result<Pattern> {
    Ok(Pattern::from_json(&json(text, "pattern")?)?)
}

fn tuple_text(tuple: &[serde_json::Value]) -> String {
    serde_json::to_string(tuple).unwrap_or_default()
}

impl Api {
    /// Waits until the tuple journal (when there is one) holds every change made so far.
    async fn tuples_durable(&self) -> Result<()> {
        Ok(self.services().tuples.flush().await?)
    }

    fn space(&self, scope: &Scoped) -> std::sync::Arc<Space> {
        let (tenant, namespace) = scope.pair();
        self.services().tuples.space(tenant, namespace)
    }

    /// The live entry under a key.
    pub async fn kv_get(&self, request: pb::KvGetRequest) -> Result<pb::KvGetResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let found = self.services().kv.get(scope.pair(), &request.key).await?;
        Ok(pb::KvGetResponse { entry: found.map(entry) })
    }

    /// Stores a value.
    pub async fn kv_put(&self, request: pb::KvPutRequest) -> Result<pb::KvPutResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let kv = &self.services().kv;
        kv.put(scope.pair(), &request.key, request.value, ttl(request.ttl_ms)).await?;
        Ok(pb::KvPutResponse {})
    }

    /// Removes a key.
    pub async fn kv_delete(&self, request: pb::KvDeleteRequest) -> Result<pb::KvDeleteResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let deleted = self.services().kv.delete(scope.pair(), &request.key).await?;
        Ok(pb::KvDeleteResponse { deleted })
    }

    /// One page of the entries with a prefix.
    pub async fn kv_list(&self, request: pb::KvListRequest) -> Result<pb::KvListResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let after = (!request.after.is_empty()).then_some(request.after.as_str());
        let page = self
            .services()
            .kv
            .list(scope.pair(), &request.prefix, after, limit(request.limit) as usize)
            .await?;
        Ok(pb::KvListResponse {
            entries: page.entries.into_iter().map(entry).collect(),
            next_after: page.next_after.unwrap_or_default(),
        })
    }

    /// Compare-and-swap.
    pub async fn kv_compare_and_swap(
        &self,
        request: pb::KvCompareAndSwapRequest,
    ) -> Result<pb::KvCompareAndSwapResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let swapped = self
            .services()
            .kv
            .compare_and_swap(
                scope.pair(),
                &request.key,
                request.expected.as_deref(),
                request.value,
                ttl(request.ttl_ms),
            )
            .await?;
        Ok(pb::KvCompareAndSwapResponse { swapped })
    }

    /// Writes a tuple.
    pub async fn tuple_write(
        &self,
        request: &pb::TupleWriteRequest,
    ) -> Result<pb::TupleWriteResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let tuple = tuple_from_json(json(&request.tuple_json, "tuple")?)?;
        let lease = (request.lease_ms > 0).then(|| Duration::from_millis(request.lease_ms));
        self.space(&scope).write(tuple, lease)?;
        self.tuples_durable().await?;
        Ok(pb::TupleWriteResponse {})
    }

    /// The oldest matching tuple, read or taken, waiting up to the request's timeout.
    pub async fn tuple_find(
        &self,
        request: &pb::TupleFindRequest,
        take: bool,
    ) -> Result<pb::TupleFindResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let pattern = pattern(&request.pattern_json)?;
        let max = self.options().max_ask_timeout_ms;
        if u64::from(request.timeout_ms) > max {
            return Err(Error::new(
                ErrorCode::InvalidArguments,
                format!("timeout_ms must be at most {max}"),
            ));
        }
        let space = self.space(&scope);
        let found = if request.timeout_ms == 0 {
            if take { space.take(&pattern) } else { space.read(&pattern) }
        } else {
            let timeout = Duration::from_millis(u64::from(request.timeout_ms));
            if take {
                space.take_within(pattern, timeout).await
            } else {
                space.read_within(pattern, timeout).await
            }
        };
        if take && found.is_some() {
            self.tuples_durable().await?;
        }
        Ok(pb::TupleFindResponse { tuple_json: found.as_deref().map(tuple_text) })
    }

    /// How many tuples match.
    pub fn tuple_count(&self, request: &pb::TupleCountRequest) -> Result<pb::TupleCountResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let pattern = pattern(&request.pattern_json)?;
        Ok(pb::TupleCountResponse { count: self.space(&scope).count(&pattern) as u64 })
    }

    /// Matching tuples, oldest first.
    pub fn tuple_scan(&self, request: &pb::TupleScanRequest) -> Result<pb::TupleScanResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let pattern = pattern(&request.pattern_json)?;
        if request.limit > plexspaces_wasm::MAX_SCAN {
            return Err(Error::new(
                ErrorCode::InvalidArguments,
                format!("a scan returns at most {} tuples", plexspaces_wasm::MAX_SCAN),
            ));
        }
        let limit = limit(request.limit) as usize;
        let found = self.space(&scope).scan(&pattern, limit);
        Ok(pb::TupleScanResponse {
            tuples_json: found.iter().map(|tuple| tuple_text(tuple)).collect(),
        })
    }
}

#[tonic::async_trait]
impl KvService for Api {
    async fn get(
        &self,
        request: Request<pb::KvGetRequest>,
    ) -> Result<Response<pb::KvGetResponse>, Status> {
        self.observed("plexspaces.v1.KvService/Get", self.kv_get(request.into_inner())).await
    }

    async fn put(
        &self,
        request: Request<pb::KvPutRequest>,
    ) -> Result<Response<pb::KvPutResponse>, Status> {
        self.observed("plexspaces.v1.KvService/Put", self.kv_put(request.into_inner())).await
    }

    async fn delete(
        &self,
        request: Request<pb::KvDeleteRequest>,
    ) -> Result<Response<pb::KvDeleteResponse>, Status> {
        self.observed("plexspaces.v1.KvService/Delete", self.kv_delete(request.into_inner())).await
    }

    async fn list(
        &self,
        request: Request<pb::KvListRequest>,
    ) -> Result<Response<pb::KvListResponse>, Status> {
        self.observed("plexspaces.v1.KvService/List", self.kv_list(request.into_inner())).await
    }

    async fn compare_and_swap(
        &self,
        request: Request<pb::KvCompareAndSwapRequest>,
    ) -> Result<Response<pb::KvCompareAndSwapResponse>, Status> {
        self.observed(
            "plexspaces.v1.KvService/CompareAndSwap",
            self.kv_compare_and_swap(request.into_inner()),
        )
        .await
    }
}

#[tonic::async_trait]
impl TupleSpaceService for Api {
    async fn write(
        &self,
        request: Request<pb::TupleWriteRequest>,
    ) -> Result<Response<pb::TupleWriteResponse>, Status> {
        self.observed("plexspaces.v1.TupleSpaceService/Write", self.tuple_write(request.get_ref()))
            .await
    }

    async fn read(
        &self,
        request: Request<pb::TupleFindRequest>,
    ) -> Result<Response<pb::TupleFindResponse>, Status> {
        self.observed(
            "plexspaces.v1.TupleSpaceService/Read",
            self.tuple_find(request.get_ref(), false),
        )
        .await
    }

    async fn take(
        &self,
        request: Request<pb::TupleFindRequest>,
    ) -> Result<Response<pb::TupleFindResponse>, Status> {
        self.observed(
            "plexspaces.v1.TupleSpaceService/Take",
            self.tuple_find(request.get_ref(), true),
        )
        .await
    }

    async fn count(
        &self,
        request: Request<pb::TupleCountRequest>,
    ) -> Result<Response<pb::TupleCountResponse>, Status> {
        self.observed("plexspaces.v1.TupleSpaceService/Count", async {
            self.tuple_count(request.get_ref())
        })
        .await
    }

    async fn scan(
        &self,
        request: Request<pb::TupleScanRequest>,
    ) -> Result<Response<pb::TupleScanResponse>, Status> {
        self.observed("plexspaces.v1.TupleSpaceService/Scan", async {
            self.tuple_scan(request.get_ref())
        })
        .await
    }
}
