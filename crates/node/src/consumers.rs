//! Consumers of channels: the node hands each registered consumer's messages to its actor,
//! one at a time (each consumer at its actor's own pace), and acknowledges a message once the
//! actor's handler returned; a handler that fails gives the message back, delivered again
//! after a backoff that doubles with each attempt. A message in hand when the node dies comes
//! back after its visibility timeout: delivery is at least once.
//!
//! Registrations live in the channel store (they outlive activations and, on SQLite,
//! restarts); a task per registration runs here. At shutdown the channels stop taking new
//! messages and the consumers drain what is ready, within the shutdown grace.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use plexspaces_sdk::Message;
use plexspaces_storage::channels::{Channels, Consumer, Delivery};
use plexspaces_types::{ActorId, ErrorCode, Refusal};
use plexspaces_wasm::{BoxFuture, ChannelConsumers};
use tokio::task::JoinHandle;

use crate::{Api, api::Inner, payload::JSON};

/// How long a consumer's receive waits for a message before it looks around again.
const POLL: Duration = Duration::from_secs(1);

/// The longest backoff before a failed message is delivered again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A running consumer: tenant, namespace, channel, actor.
type Key = (String, String, String, String);

/// The node's consumers: cheap to clone.
#[derive(Clone)]
pub(crate) struct NodeConsumers {
    inner: Arc<Shared>,
}

struct Shared {
    api: OnceLock<Weak<Inner>>,
    channels: Channels,
    running: Mutex<HashMap<Key, JoinHandle<()>>>,
    /// Set at shutdown: consumers end once nothing is ready.
    draining: AtomicBool,
}

impl std::fmt::Debug for NodeConsumers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConsumers").field("running", &self.inner.running.lock().len()).finish()
    }
}

/// How long a message that failed `attempt` times waits before it is delivered again.
fn backoff(attempt: u32) -> Duration {
    let doubled = Duration::from_millis(100).saturating_mul(1 << attempt.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF)
}

/// What the actor gets: `{"action", "channel", "subscription", "data", "receipt", "attempt"}`.
fn payload(consumer: &Consumer, delivery: &Delivery) -> Vec<u8> {
    let text = |value: &str| serde_json::Value::String(value.to_owned()).to_string();
    let subscription = consumer.subscription.as_deref().map_or_else(|| "null".to_owned(), text);
    // The data is JSON already (checked when it was sent): it goes in as it is.
    format!(
        "{{\"action\":{},\"channel\":{},\"subscription\":{subscription},\"data\":{},\"receipt\":{},\"attempt\":{}}}",
        text(&consumer.action),
        text(&consumer.channel),
        delivery.data,
        text(&delivery.receipt),
        delivery.attempt
    )
    .into_bytes()
}

impl NodeConsumers {
    pub(crate) fn new(channels: Channels) -> Self {
        Self {
            inner: Arc::new(Shared {
                api: OnceLock::new(),
                channels,
                running: Mutex::default(),
                draining: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn connect(&self, api: &Api) {
        let _already = self.inner.api.set(api.downgrade());
    }

    /// Starts every stored consumer.
    pub(crate) async fn restore(&self) {
        match self.inner.channels.consumers().await {
            Ok(consumers) => {
                let count = consumers.len();
                for (tenant, namespace, consumer) in consumers {
                    self.start(tenant, namespace, consumer);
                }
                if count > 0 {
                    tracing::info!(count, "channel consumers started");
                }
            }
            Err(error) => tracing::error!(error = %error, "the channel consumers cannot be read"),
        }
    }

    fn start(&self, tenant: String, namespace: String, consumer: Consumer) {
        let key =
            (tenant.clone(), namespace.clone(), consumer.channel.clone(), consumer.actor.clone());
        let shared = Arc::clone(&self.inner);
        let task = tokio::spawn(async move { run(&shared, &tenant, &namespace, &consumer).await });
        if let Some(previous) = self.inner.running.lock().insert(key, task) {
            previous.abort();
        }
    }

    /// Ends and unregisters every consumer that is the actor `actor` (deleted for good); how
    /// many there were.
    pub(crate) async fn forget_actor(&self, actor: &ActorId) -> usize {
        let (tenant, name) = (actor.tenant.as_str(), actor.local_name());
        let consumers = match self.inner.channels.consumers().await {
            Ok(consumers) => consumers,
            Err(error) => {
                tracing::warn!(actor = %actor, error = %error, "its channel consumers stay");
                return 0;
            }
        };
        let mut forgotten = 0;
        for (owner, namespace, consumer) in consumers {
            if owner == tenant && consumer.actor == name {
                let scope = (owner.as_str(), namespace.as_str());
                if let Err(error) = self.remove(scope, &consumer.channel, &name).await {
                    tracing::warn!(actor = %actor, error = %error.message, "a channel consumer stays");
                } else {
                    forgotten += 1;
                }
            }
        }
        forgotten
    }

    /// Stops the intake of every channel and lets the consumers drain what is ready, up to
    /// `grace`; then ends them.
    pub(crate) async fn drain(&self, grace: Duration) {
        self.inner.channels.stop_intake();
        self.inner.draining.store(true, Ordering::Release);
        let tasks: Vec<JoinHandle<()>> =
            self.inner.running.lock().drain().map(|(_, task)| task).collect();
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(grace, futures_util::future::join_all(tasks)).await.is_err() {
            tracing::warn!(?grace, "channel consumers still busy after the shutdown grace");
            for abort in aborts {
                abort.abort();
            }
        }
    }
}

/// One consumer's loop: receive one message, hand it to the actor, ack or nack.
async fn run(shared: &Shared, tenant: &str, namespace: &str, consumer: &Consumer) {
    let scope = (tenant, namespace);
    let channels = &shared.channels;
    let subscription = consumer.subscription.as_deref();
    let actor = match ActorId::parse(&format!("{tenant}/{}", consumer.actor)) {
        Ok(actor) => actor,
        Err(error) => {
            tracing::error!(actor = %consumer.actor, error = %error, "consumer of a bad actor id not started");
            return;
        }
    };
    loop {
        let draining = shared.draining.load(Ordering::Acquire);
        let wait = if draining { Duration::ZERO } else { POLL };
        let got = match channels
            .receive(scope, &consumer.channel, subscription, 1, wait, None)
            .await
        {
            Ok(got) => got,
            Err(error) if error.code == ErrorCode::NotFound => {
                tracing::info!(channel = %consumer.channel, actor = %consumer.actor, "consumer ended: {}", error.message);
                return;
            }
            Err(error) => {
                tracing::warn!(channel = %consumer.channel, error = %error, "consumer cannot receive");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let Some(delivery) = got.into_iter().next() else {
            if draining {
                return;
            }
            continue;
        };
        let Some(api) = shared.api.get().and_then(Api::upgrade) else { return };
        let handled = deliver(&api, &actor, consumer, &delivery).await;
        drop(api);
        let settled = match handled {
            Ok(()) => channels.ack(scope, &consumer.channel, &delivery.receipt).await,
            Err(error) => {
                tracing::debug!(channel = %consumer.channel, actor = %consumer.actor, attempt = delivery.attempt, error = %error.message, "message given back");
                let delay = backoff(delivery.attempt);
                channels.nack(scope, &consumer.channel, &delivery.receipt, delay).await
            }
        };
        if let Err(error) = settled {
            tracing::warn!(channel = %consumer.channel, error = %error, "delivery not settled; it comes back after its visibility timeout");
        }
    }
}

async fn deliver(
    api: &Api,
    actor: &ActorId,
    consumer: &Consumer,
    delivery: &Delivery,
) -> Result<(), crate::Error> {
    let kind = api.kind(actor)?;
    let message = Message {
        action: consumer.action.clone().into(),
        payload: payload(consumer, delivery),
        content_type: JSON.into(),
    };
    let timeout = api.options().ask_timeout();
    kind.call(api.system(), actor.clone(), message, timeout, None).await.map(drop)
}

fn refusal(error: crate::Error) -> Refusal {
    Refusal::new(error.code, error.message)
}

impl NodeConsumers {
    /// Registers a consumer and starts it.
    pub(crate) async fn add(&self, scope: (&str, &str), consumer: Consumer) -> crate::Result<bool> {
        if consumer.action.starts_with("__") {
            return Err(crate::Error::new(
                ErrorCode::InvalidArguments,
                "actions starting with __ are the node's",
            ));
        }
        let channels = &self.inner.channels;
        if let Some(subscription) = &consumer.subscription {
            channels.subscribe(scope, &consumer.channel, subscription).await?;
        }
        let added = channels.add_consumer(scope, consumer.clone()).await?;
        self.start(scope.0.to_owned(), scope.1.to_owned(), consumer);
        Ok(added)
    }

    /// Unregisters a consumer and ends it.
    pub(crate) async fn remove(
        &self,
        scope: (&str, &str),
        channel: &str,
        actor: &str,
    ) -> crate::Result<bool> {
        let removed = self.inner.channels.remove_consumer(scope, channel, actor).await?;
        let key = (scope.0.to_owned(), scope.1.to_owned(), channel.to_owned(), actor.to_owned());
        if let Some(task) = self.inner.running.lock().remove(&key) {
            task.abort();
        }
        Ok(removed)
    }
}

impl ChannelConsumers for NodeConsumers {
    fn consume<'a>(
        &'a self,
        scope: (&'a str, &'a str),
        consumer: Consumer,
    ) -> BoxFuture<'a, Result<bool, Refusal>> {
        Box::pin(async move { self.add(scope, consumer).await.map_err(refusal) })
    }

    fn stop<'a>(
        &'a self,
        scope: (&'a str, &'a str),
        channel: &'a str,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<bool, Refusal>> {
        Box::pin(async move { self.remove(scope, channel, actor).await.map_err(refusal) })
    }
}
