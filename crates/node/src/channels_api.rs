//! Channels for clients outside the node, written once over the proto messages: the gRPC
//! `ChannelService` is these methods, and the HTTP routes (`http_channels.rs`) build the same
//! requests and call them.

use std::time::Duration;

use plexspaces_proto::v1::{self as pb, channel_service_server::ChannelService};
use plexspaces_storage::channels::{
    Config, Consumer, DEFAULT_CAPACITY, DEFAULT_VISIBILITY_MS, Kind, Stats,
};
use plexspaces_types::{ActorId, ErrorCode};
use tonic::{Request, Response, Status};

use crate::{Api, Error, Result, coordination::Scoped};

fn config(config: Option<&pb::ChannelConfig>) -> Result<Config> {
    let Some(config) = config else {
        return Ok(Config::queue());
    };
    let kind = if config.kind.is_empty() {
        Kind::Queue
    } else {
        Kind::parse(&config.kind).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArguments,
                format!("a channel's kind is \"queue\" or \"topic\", not {:?}", config.kind),
            )
        })?
    };
    Ok(Config {
        kind,
        capacity: if config.capacity == 0 { DEFAULT_CAPACITY } else { config.capacity },
        visibility_timeout_ms: if config.visibility_timeout_ms == 0 {
            DEFAULT_VISIBILITY_MS
        } else {
            config.visibility_timeout_ms
        },
    })
}

fn info(stats: Stats, consumers: Vec<pb::ChannelConsumer>) -> pb::ChannelInfo {
    pb::ChannelInfo {
        name: stats.name,
        config: Some(pb::ChannelConfig {
            kind: stats.config.kind.as_str().to_owned(),
            capacity: stats.config.capacity,
            visibility_timeout_ms: stats.config.visibility_timeout_ms,
        }),
        closed: stats.closed,
        sent: stats.sent,
        queues: stats
            .queues
            .into_iter()
            .map(|queue| pb::ChannelQueueStats {
                subscription: queue.subscription.unwrap_or_default(),
                ready: queue.ready,
                in_flight: queue.in_flight,
                acked: queue.acked,
                redelivered: queue.redelivered,
            })
            .collect(),
        consumers,
    }
}

fn optional(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

impl Api {
    /// The consumers of the scope's channels, by channel, for their info.
    async fn channel_consumers(
        &self,
        scope: &Scoped,
    ) -> Result<std::collections::HashMap<String, Vec<pb::ChannelConsumer>>> {
        let mut by_channel: std::collections::HashMap<String, Vec<pb::ChannelConsumer>> =
            std::collections::HashMap::new();
        for (tenant, namespace, consumer) in self.services().channels.consumers().await? {
            if (tenant.as_str(), namespace.as_str()) != scope.pair() {
                continue;
            }
            by_channel.entry(consumer.channel).or_default().push(pb::ChannelConsumer {
                subscription: consumer.subscription.unwrap_or_default(),
                actor: consumer.actor,
                action: consumer.action,
            });
        }
        Ok(by_channel)
    }

    pub async fn channel_create(
        &self,
        request: pb::ChannelCreateRequest,
    ) -> Result<pb::ChannelCreateResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let config = config(request.config.as_ref())?;
        let created = self.services().channels.create(scope.pair(), &request.name, config).await?;
        Ok(pb::ChannelCreateResponse { created })
    }

    pub async fn channel_delete(
        &self,
        request: pb::ChannelRef,
    ) -> Result<pb::ChannelDeleteResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let consumers = self.channel_consumers(&scope).await?.remove(&request.name);
        for consumer in consumers.unwrap_or_default() {
            self.consumers().remove(scope.pair(), &request.name, &consumer.actor).await?;
        }
        let deleted = self.services().channels.delete(scope.pair(), &request.name).await?;
        Ok(pb::ChannelDeleteResponse { deleted })
    }

    pub async fn channel_close(&self, request: pb::ChannelRef) -> Result<pb::ChannelCloseResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let closed = self.services().channels.close(scope.pair(), &request.name).await?;
        Ok(pb::ChannelCloseResponse { closed })
    }

    pub async fn channel_get(&self, request: pb::ChannelRef) -> Result<pb::ChannelInfo> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let stats = self.services().channels.stats(scope.pair(), &request.name).await?;
        let consumers = self.channel_consumers(&scope).await?.remove(&request.name);
        Ok(info(stats, consumers.unwrap_or_default()))
    }

    pub async fn channel_list(
        &self,
        request: pb::ChannelListRequest,
    ) -> Result<pb::ChannelListResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let mut consumers = self.channel_consumers(&scope).await?;
        let channels = self.services().channels.list(scope.pair()).await?;
        let channels = channels
            .into_iter()
            .map(|stats| {
                let of_channel = consumers.remove(&stats.name).unwrap_or_default();
                info(stats, of_channel)
            })
            .collect();
        Ok(pb::ChannelListResponse { channels })
    }

    pub async fn channel_subscribe(
        &self,
        request: pb::ChannelSubscribeRequest,
        subscribe: bool,
    ) -> Result<pb::ChannelSubscribeResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let channels = &self.services().channels;
        let changed = if subscribe {
            channels.subscribe(scope.pair(), &request.topic, &request.subscription).await?
        } else {
            channels.unsubscribe(scope.pair(), &request.topic, &request.subscription).await?
        };
        Ok(pb::ChannelSubscribeResponse { changed })
    }

    pub async fn channel_send(
        &self,
        request: pb::ChannelSendRequest,
    ) -> Result<pb::ChannelSendResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let wait = self.wait_limit(request.timeout_ms)?;
        let channels = &self.services().channels;
        let queued = channels.send(scope.pair(), &request.name, request.data_json, wait).await?;
        Ok(pb::ChannelSendResponse { queued })
    }

    pub async fn channel_receive(
        &self,
        request: pb::ChannelReceiveRequest,
    ) -> Result<pb::ChannelReceiveResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let wait = self.wait_limit(request.timeout_ms)?;
        let visibility = (request.visibility_timeout_ms > 0)
            .then(|| Duration::from_millis(request.visibility_timeout_ms));
        let got = self
            .services()
            .channels
            .receive(
                scope.pair(),
                &request.name,
                optional(&request.subscription),
                request.max.max(1),
                wait,
                visibility,
            )
            .await?;
        Ok(pb::ChannelReceiveResponse {
            deliveries: got
                .into_iter()
                .map(|delivery| pb::ChannelDelivery {
                    receipt: delivery.receipt,
                    data_json: delivery.data.to_string(),
                    attempt: delivery.attempt,
                    sent_at_ms: delivery.sent_at_ms,
                })
                .collect(),
        })
    }

    pub async fn channel_ack(
        &self,
        request: pb::ChannelAckRequest,
        ack: bool,
    ) -> Result<pb::ChannelAckResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let channels = &self.services().channels;
        let done = if ack {
            channels.ack(scope.pair(), &request.name, &request.receipt).await?
        } else {
            let delay = Duration::from_millis(request.delay_ms);
            channels.nack(scope.pair(), &request.name, &request.receipt, delay).await?
        };
        Ok(pb::ChannelAckResponse { done })
    }

    /// The actor a consumer names (`type`, `type/key` or `namespace/type/key`, inside the
    /// scope's tenant) as `namespace/type/key`; its type must serve.
    fn consumer_actor(&self, scope: &Scoped, actor: &str) -> Result<String> {
        let id = ActorId::resolve_in(&scope.tenant, &scope.namespace, actor)
            .map_err(|message| Error::new(ErrorCode::InvalidArguments, message))?;
        self.kind(&id)?;
        Ok(id.local_name())
    }

    pub async fn channel_consume(
        &self,
        request: pb::ChannelConsumeRequest,
    ) -> Result<pb::ChannelConsumeResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let consumer = Consumer {
            channel: request.name,
            subscription: optional(&request.subscription).map(str::to_owned),
            actor: self.consumer_actor(&scope, &request.actor)?,
            action: request.action,
        };
        let added = self.consumers().add(scope.pair(), consumer).await?;
        Ok(pb::ChannelConsumeResponse { added })
    }

    pub async fn channel_stop_consuming(
        &self,
        request: pb::ChannelStopConsumingRequest,
    ) -> Result<pb::ChannelStopConsumingResponse> {
        let scope = Scoped::of(request.scope.as_ref())?;
        let actor = self.consumer_actor(&scope, &request.actor)?;
        let removed = self.consumers().remove(scope.pair(), &request.name, &actor).await?;
        Ok(pb::ChannelStopConsumingResponse { removed })
    }
}

#[tonic::async_trait]
impl ChannelService for Api {
    async fn create(
        &self,
        request: Request<pb::ChannelCreateRequest>,
    ) -> Result<Response<pb::ChannelCreateResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Create",
            self.channel_create(request.into_inner()),
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<pb::ChannelRef>,
    ) -> Result<Response<pb::ChannelDeleteResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Delete",
            self.channel_delete(request.into_inner()),
        )
        .await
    }

    async fn close(
        &self,
        request: Request<pb::ChannelRef>,
    ) -> Result<Response<pb::ChannelCloseResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Close",
            self.channel_close(request.into_inner()),
        )
        .await
    }

    async fn get(
        &self,
        request: Request<pb::ChannelRef>,
    ) -> Result<Response<pb::ChannelInfo>, Status> {
        self.observed("plexspaces.v1.ChannelService/Get", self.channel_get(request.into_inner()))
            .await
    }

    async fn list(
        &self,
        request: Request<pb::ChannelListRequest>,
    ) -> Result<Response<pb::ChannelListResponse>, Status> {
        self.observed("plexspaces.v1.ChannelService/List", self.channel_list(request.into_inner()))
            .await
    }

    async fn subscribe(
        &self,
        request: Request<pb::ChannelSubscribeRequest>,
    ) -> Result<Response<pb::ChannelSubscribeResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Subscribe",
            self.channel_subscribe(request.into_inner(), true),
        )
        .await
    }

    async fn unsubscribe(
        &self,
        request: Request<pb::ChannelSubscribeRequest>,
    ) -> Result<Response<pb::ChannelSubscribeResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Unsubscribe",
            self.channel_subscribe(request.into_inner(), false),
        )
        .await
    }

    async fn send(
        &self,
        request: Request<pb::ChannelSendRequest>,
    ) -> Result<Response<pb::ChannelSendResponse>, Status> {
        self.observed("plexspaces.v1.ChannelService/Send", self.channel_send(request.into_inner()))
            .await
    }

    async fn receive(
        &self,
        request: Request<pb::ChannelReceiveRequest>,
    ) -> Result<Response<pb::ChannelReceiveResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Receive",
            self.channel_receive(request.into_inner()),
        )
        .await
    }

    async fn ack(
        &self,
        request: Request<pb::ChannelAckRequest>,
    ) -> Result<Response<pb::ChannelAckResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Ack",
            self.channel_ack(request.into_inner(), true),
        )
        .await
    }

    async fn nack(
        &self,
        request: Request<pb::ChannelAckRequest>,
    ) -> Result<Response<pb::ChannelAckResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Nack",
            self.channel_ack(request.into_inner(), false),
        )
        .await
    }

    async fn consume(
        &self,
        request: Request<pb::ChannelConsumeRequest>,
    ) -> Result<Response<pb::ChannelConsumeResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/Consume",
            self.channel_consume(request.into_inner()),
        )
        .await
    }

    async fn stop_consuming(
        &self,
        request: Request<pb::ChannelStopConsumingRequest>,
    ) -> Result<Response<pb::ChannelStopConsumingResponse>, Status> {
        self.observed(
            "plexspaces.v1.ChannelService/StopConsuming",
            self.channel_stop_consuming(request.into_inner()),
        )
        .await
    }
}
