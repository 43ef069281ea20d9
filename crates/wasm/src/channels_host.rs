//! The `channels` interface: queues and topics of the calling actor's namespace, and the
//! registration of the caller as a consumer the node hands messages to.

use std::time::Duration;

use plexspaces_storage::channels::{
    Config, Consumer, DEFAULT_CAPACITY, DEFAULT_VISIBILITY_MS, Kind,
};
use plexspaces_types::{ErrorCode, Refusal};

use crate::{
    bindings::{HostError, plexspaces::actor},
    ctx::{BoxFuture, Ctx},
    durable::{CallKind, journaled},
    services::invalid,
};

/// The longest a guest's `send` or `receive` waits: five minutes.
pub const MAX_CHANNEL_WAIT_MS: u32 = 300_000;

/// Runs the consumers of channels: the node hands each consumer's messages to its actor.
pub trait ChannelConsumers: Send + Sync + std::fmt::Debug + 'static {
    /// Registers `consumer` in the scope and starts handing it messages; true when it is new.
    fn consume<'a>(
        &'a self,
        scope: (&'a str, &'a str),
        consumer: Consumer,
    ) -> BoxFuture<'a, Result<bool, Refusal>>;

    /// Ends the consumer `actor` of `channel`; false when there was none.
    fn stop<'a>(
        &'a self,
        scope: (&'a str, &'a str),
        channel: &'a str,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<bool, Refusal>>;
}

/// No consumers: a host without a node (tests, benchmarks) refuses them.
#[derive(Debug, Default)]
pub struct NoConsumers;

fn no_consumers() -> Refusal {
    Refusal::new(ErrorCode::Unavailable, "channel consumers need a node: this host has none")
}

impl ChannelConsumers for NoConsumers {
    fn consume<'a>(
        &'a self,
        _: (&'a str, &'a str),
        _: Consumer,
    ) -> BoxFuture<'a, Result<bool, Refusal>> {
        Box::pin(async { Err(no_consumers()) })
    }

    fn stop<'a>(
        &'a self,
        _: (&'a str, &'a str),
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<bool, Refusal>> {
        Box::pin(async { Err(no_consumers()) })
    }
}

fn wait(timeout_ms: u32) -> Result<Duration, HostError> {
    if timeout_ms > MAX_CHANNEL_WAIT_MS {
        return Err(invalid(format!(
            "a channel call waits at most {MAX_CHANNEL_WAIT_MS} ms, not {timeout_ms}"
        )));
    }
    Ok(Duration::from_millis(u64::from(timeout_ms)))
}

fn subscription(subscription: &str) -> Option<&str> {
    (!subscription.is_empty()).then_some(subscription)
}

impl actor::channels::Host for Ctx {
    async fn create(
        &mut self,
        name: String,
        kind: String,
        capacity: u32,
        visibility_ms: u64,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelCreate, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            let kind = Kind::parse(&kind).ok_or_else(|| {
                invalid(format!("a channel's kind is \"queue\" or \"topic\", not {kind:?}"))
            })?;
            let config = Config {
                kind,
                capacity: if capacity == 0 { DEFAULT_CAPACITY } else { capacity },
                visibility_timeout_ms: if visibility_ms == 0 {
                    DEFAULT_VISIBILITY_MS
                } else {
                    visibility_ms
                },
            };
            Ok(this.services.channels.create((&tenant, &namespace), &name, config).await?)
        })
    }

    async fn send(
        &mut self,
        name: String,
        data: String,
        timeout_ms: u32,
    ) -> Result<u32, HostError> {
        journaled!(self, CallKind::ChannelSend, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            let wait = wait(timeout_ms)?;
            Ok(this.services.channels.send((&tenant, &namespace), &name, data, wait).await?)
        })
    }

    async fn receive(
        &mut self,
        name: String,
        subscription_name: String,
        max: u32,
        timeout_ms: u32,
    ) -> Result<Vec<actor::channels::Delivery>, HostError> {
        journaled!(self, CallKind::ChannelReceive, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            let wait = wait(timeout_ms)?;
            let got = this
                .services
                .channels
                .receive(
                    (&tenant, &namespace),
                    &name,
                    subscription(&subscription_name),
                    max.max(1),
                    wait,
                    None,
                )
                .await?;
            Ok(got
                .into_iter()
                .map(|delivery| actor::channels::Delivery {
                    receipt: delivery.receipt,
                    data: delivery.data.to_string(),
                    attempt: delivery.attempt,
                })
                .collect())
        })
    }

    async fn ack(&mut self, name: String, receipt: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelAck, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this.services.channels.ack((&tenant, &namespace), &name, &receipt).await?)
        })
    }

    async fn nack(
        &mut self,
        name: String,
        receipt: String,
        delay_ms: u64,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelNack, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            let delay = Duration::from_millis(delay_ms);
            Ok(this.services.channels.nack((&tenant, &namespace), &name, &receipt, delay).await?)
        })
    }

    async fn subscribe(&mut self, topic: String, subscription: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelSubscribe, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this
                .services
                .channels
                .subscribe((&tenant, &namespace), &topic, &subscription)
                .await?)
        })
    }

    async fn unsubscribe(
        &mut self,
        topic: String,
        subscription: String,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelUnsubscribe, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            let channels = &this.services.channels;
            Ok(channels.unsubscribe((&tenant, &namespace), &topic, &subscription).await?)
        })
    }

    async fn consume(
        &mut self,
        name: String,
        subscription_name: String,
        action: String,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelConsume, effect = true, |this| {
            let me = this.serving()?.clone();
            let consumer = Consumer {
                channel: name,
                subscription: subscription(&subscription_name).map(str::to_owned),
                actor: me.local_name(),
                action,
            };
            let scope = (me.tenant.as_str(), me.namespace.as_str());
            Ok(this.services.consumers.consume(scope, consumer).await?)
        })
    }

    async fn stop_consuming(&mut self, name: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelStopConsuming, effect = true, |this| {
            let me = this.serving()?.clone();
            let scope = (me.tenant.as_str(), me.namespace.as_str());
            Ok(this.services.consumers.stop(scope, &name, &me.local_name()).await?)
        })
    }

    async fn close(&mut self, name: String) -> Result<bool, HostError> {
        journaled!(self, CallKind::ChannelClose, effect = true, |this| {
            let (tenant, namespace) = this.scope()?;
            Ok(this.services.channels.close((&tenant, &namespace), &name).await?)
        })
    }
}
