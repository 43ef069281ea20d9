//! Locks and process groups for clients outside the node, over the proto messages: the tonic
//! `LockService` and `ProcessGroupService`, and the methods the HTTP routes call.

use std::time::Duration;

use plexspaces_proto::v1::{
    self as pb, lock_service_server::LockService, process_group_service_server::ProcessGroupService,
};
use plexspaces_sdk::Message;
use plexspaces_storage::locks::Grant;
use plexspaces_types::{ActorId, ErrorCode};
use tonic::{Request, Response, Status};

use crate::{
    Api, Error, Result,
    coordination::{Scoped, json},
    payload::JSON,
    registry::Envelope,
};

fn grant(name: &str, grant: Grant) -> pb::LockGrant {
    pb::LockGrant {
        name: name.to_owned(),
        version: grant.version,
        holder: grant.holder,
        metadata: grant.metadata,
        expires_at_ms: grant.expires_at_ms,
    }
}

impl Scoped {
    /// `member` (`type`, `type/key` or `namespace/type/key`) as `namespace/type/key`, inside
    /// the scope's tenant.
    fn member(&self, member: &str) -> Result<String> {
        ActorId::resolve_in(&self.tenant, &self.namespace, member)
            .map(|id| id.local_name())
            .map_err(|message| Error::new(ErrorCode::InvalidArguments, message))
    }
}

impl Api {
    /// A wait a client asked for, within the node's longest (`max_ask_timeout_ms`).
    pub(crate) fn wait_limit(&self, timeout_ms: u32) -> Result<Duration> {
        let max = self.options().max_ask_timeout_ms;
        if u64::from(timeout_ms) > max {
            return Err(Error::new(
                ErrorCode::InvalidArguments,
                format!("timeout_ms must be at most {max}"),
            ));
        }
        Ok(Duration::from_millis(u64::from(timeout_ms)))
    }

    /// Takes a lock, waiting up to the request's timeout.
    pub async fn lock_acquire(
        &self,
        request: pb::LockAcquireRequest,
    ) -> Result<pb::LockAcquireResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let timeout = self.wait_limit(request.timeout_ms)?;
        let locks = &self.services().locks;
        let lease = Duration::from_millis(request.lease_ms);
        let (name, holder, metadata) = (&request.name, &request.holder, &request.metadata);
        let granted = if timeout.is_zero() {
            locks.try_acquire(scope.pair(), name, holder, metadata, lease)
        } else {
            locks.acquire(scope.pair(), name, holder, metadata, lease, timeout).await
        }?;
        Ok(pb::LockAcquireResponse { grant: granted.map(|held| grant(name, held)) })
    }

    /// Extends a grant's lease.
    pub fn lock_renew(&self, request: &pb::LockRenewRequest) -> Result<pb::LockRenewResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let lease = Duration::from_millis(request.lease_ms);
        let renewed = self.services().locks.renew(
            scope.pair(),
            &request.name,
            &request.holder,
            request.version,
            lease,
        )?;
        Ok(pb::LockRenewResponse { grant: Some(grant(&request.name, renewed)) })
    }

    /// Releases a grant; safe to repeat.
    pub fn lock_release(
        &self,
        request: &pb::LockReleaseRequest,
    ) -> Result<pb::LockReleaseResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        plexspaces_storage::locks::check_name(&request.name)?;
        let released = self.services().locks.release(scope.pair(), &request.name, request.version);
        Ok(pb::LockReleaseResponse { released })
    }

    /// The current grant of a lock.
    pub fn lock_get(&self, request: &pb::LockGetRequest) -> Result<pb::LockGetResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        plexspaces_storage::locks::check_name(&request.name)?;
        let held = self.services().locks.holder(scope.pair(), &request.name);
        Ok(pb::LockGetResponse { grant: held.map(|held| grant(&request.name, held)) })
    }

    /// Adds a member to a group.
    pub fn group_join(&self, request: &pb::GroupJoinRequest) -> Result<pb::GroupJoinResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let member = scope.member(&request.member)?;
        let groups = &self.services().groups;
        let joined =
            groups.join(scope.pair(), &request.group, &member, request.topic.as_deref())?;
        Ok(pb::GroupJoinResponse { joined })
    }

    /// Takes a member out of a group.
    pub fn group_leave(&self, request: &pb::GroupLeaveRequest) -> Result<pb::GroupLeaveResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let member = scope.member(&request.member)?;
        let groups = &self.services().groups;
        let left = groups.leave(scope.pair(), &request.group, &member, request.topic.as_deref())?;
        Ok(pb::GroupLeaveResponse { left })
    }

    /// A group's members.
    pub fn group_members(
        &self,
        request: &pb::GroupMembersRequest,
    ) -> Result<pb::GroupMembersResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let members = self.services().groups.members(scope.pair(), &request.group)?;
        Ok(pb::GroupMembersResponse { members })
    }

    /// The groups of a namespace.
    pub fn group_list(&self, request: &pb::GroupListRequest) -> Result<pb::GroupListResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let groups = self
            .services()
            .groups
            .list(scope.pair())
            .into_iter()
            .map(|group| pb::GroupSummary { name: group.name, members: group.members as u64 })
            .collect();
        Ok(pb::GroupListResponse { groups })
    }

    /// Sends a `pg_message` to each member; a member whose type is gone leaves the group.
    pub fn group_publish(
        &self,
        request: &pb::GroupPublishRequest,
    ) -> Result<pb::GroupPublishResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let data = json(&request.data_json, "data")?;
        let topic = request.topic.as_deref();
        let payload = plexspaces_wasm::pg_payload(&request.group, topic, data, None);
        let groups = &*self.services().groups;
        let delivery = plexspaces_storage::groups::publish(
            groups,
            scope.pair(),
            &request.group,
            topic,
            |member| {
                let message = Message {
                    action: plexspaces_wasm::PG_MESSAGE.into(),
                    payload: payload.clone().into_bytes(),
                    content_type: JSON.into(),
                };
                ActorId::resolve_in(&scope.tenant, &scope.namespace, member)
                    .map_err(|message| Error::new(ErrorCode::Internal, message))
                    .and_then(|id| {
                        let kind = self.kind(&id)?;
                        kind.tell(
                            self.system(),
                            id,
                            message,
                            Envelope::named(self.next_message_id()),
                        )
                    })
                    .map_err(|error| plexspaces_storage::Error {
                        code: error.code,
                        message: error.message,
                    })
            },
        )?;
        for (member, error) in delivery.unreached {
            tracing::warn!(group = %request.group, %member, code = %error.code, error = %error.message, "a publish did not reach a member");
        }
        let sent = delivery.sent;
        Ok(pb::GroupPublishResponse { sent })
    }
}

#[tonic::async_trait]
impl LockService for Api {
    async fn acquire(
        &self,
        request: Request<pb::LockAcquireRequest>,
    ) -> Result<Response<pb::LockAcquireResponse>, Status> {
        self.observed("plexspaces.v1.LockService/Acquire", self.lock_acquire(request.into_inner()))
            .await
    }

    async fn renew(
        &self,
        request: Request<pb::LockRenewRequest>,
    ) -> Result<Response<pb::LockRenewResponse>, Status> {
        self.observed("plexspaces.v1.LockService/Renew", async {
            self.lock_renew(request.get_ref())
        })
        .await
    }

    async fn release(
        &self,
        request: Request<pb::LockReleaseRequest>,
    ) -> Result<Response<pb::LockReleaseResponse>, Status> {
        self.observed("plexspaces.v1.LockService/Release", async {
            self.lock_release(request.get_ref())
        })
        .await
    }

    async fn get(
        &self,
        request: Request<pb::LockGetRequest>,
    ) -> Result<Response<pb::LockGetResponse>, Status> {
        self.observed("plexspaces.v1.LockService/Get", async { self.lock_get(request.get_ref()) })
            .await
    }
}

#[tonic::async_trait]
impl ProcessGroupService for Api {
    async fn join(
        &self,
        request: Request<pb::GroupJoinRequest>,
    ) -> Result<Response<pb::GroupJoinResponse>, Status> {
        self.observed("plexspaces.v1.ProcessGroupService/Join", async {
            self.group_join(request.get_ref())
        })
        .await
    }

    async fn leave(
        &self,
        request: Request<pb::GroupLeaveRequest>,
    ) -> Result<Response<pb::GroupLeaveResponse>, Status> {
        self.observed("plexspaces.v1.ProcessGroupService/Leave", async {
            self.group_leave(request.get_ref())
        })
        .await
    }

    async fn members(
        &self,
        request: Request<pb::GroupMembersRequest>,
    ) -> Result<Response<pb::GroupMembersResponse>, Status> {
        self.observed("plexspaces.v1.ProcessGroupService/Members", async {
            self.group_members(request.get_ref())
        })
        .await
    }

    async fn list(
        &self,
        request: Request<pb::GroupListRequest>,
    ) -> Result<Response<pb::GroupListResponse>, Status> {
        self.observed("plexspaces.v1.ProcessGroupService/List", async {
            self.group_list(request.get_ref())
        })
        .await
    }

    async fn publish(
        &self,
        request: Request<pb::GroupPublishRequest>,
    ) -> Result<Response<pb::GroupPublishResponse>, Status> {
        self.observed("plexspaces.v1.ProcessGroupService/Publish", async {
            self.group_publish(request.get_ref())
        })
        .await
    }
}
