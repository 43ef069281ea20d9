//! Channels per tenant and namespace: queues, where each message goes to one consumer, and
//! topics, where each message goes to every subscription.
//!
//! A consumer receives a message for a visibility timeout and then acknowledges it (`ack`: it
//! is gone) or gives it back (`nack`: it is delivered again, at once or after a delay). A
//! message neither acknowledged nor given back before its timeout is delivered again: delivery
//! is at least once, and each delivery carries its attempt number. A topic's subscription is a
//! queue of its own that gets a copy of every message published after it subscribed.
//!
//! Channels are bounded: a queue (or any subscription of a topic) holding `capacity` messages,
//! delivered or not, refuses the next one with `channel_full` until a consumer acknowledges
//! one, and [`Channels::send`] can wait for room. A closed channel takes no new messages and
//! keeps serving what it holds.
//!
//! [`Channels`] checks every request on its face and waits where a caller asked it to; the
//! state lives in a [`ChannelBackend`]: in memory ([`Channels::in_memory`]) or in one SQLite
//! file ([`Channels::open_sqlite`], see `channels_sqlite`). Redis, NATS and Kafka backends
//! implement the same trait.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use plexspaces_types::ErrorCode;
use tokio::sync::Notify;

use crate::{Error, Result, kv::now_ms};

/// The longest channel or subscription name, in characters (`A-Z a-z 0-9 _ . -`).
pub const MAX_NAME: usize = 128;

/// The largest message, in bytes of JSON text.
pub const MAX_MESSAGE: usize = 1 << 20;

/// The largest capacity of a queue or subscription, in messages.
pub const MAX_CAPACITY: u32 = 1_000_000;

/// The capacity of a channel created without one.
pub const DEFAULT_CAPACITY: u32 = 10_000;

/// The visibility timeout of a channel created without one.
pub const DEFAULT_VISIBILITY_MS: u64 = 30_000;

/// The longest visibility timeout (and the longest `nack` delay): twelve hours.
pub const MAX_VISIBILITY_MS: u64 = 12 * 3600 * 1000;

/// The most messages one `receive` returns.
pub const MAX_RECEIVE: u32 = 1_000;

/// The most subscriptions one topic has.
pub const MAX_SUBSCRIPTIONS: usize = 1_000;

/// Whose channels: tenant and namespace.
pub type Scope<'a> = (&'a str, &'a str);

/// What a channel delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Each message to one consumer.
    Queue,
    /// Each message to every subscription.
    Topic,
}

impl Kind {
    /// The kind's name: `queue` or `topic`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Queue => "queue",
            Kind::Topic => "topic",
        }
    }

    /// The kind named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "queue" => Some(Kind::Queue),
            "topic" => Some(Kind::Topic),
            _ => None,
        }
    }
}

/// How a channel behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Queue or topic.
    pub kind: Kind,
    /// The most messages the queue (each subscription, for a topic) holds, delivered or not.
    pub capacity: u32,
    /// How long a received message stays invisible to other consumers before it is delivered
    /// again, in ms.
    pub visibility_timeout_ms: u64,
}

impl Config {
    /// A queue with the default capacity and visibility timeout.
    pub const fn queue() -> Self {
        Self {
            kind: Kind::Queue,
            capacity: DEFAULT_CAPACITY,
            visibility_timeout_ms: DEFAULT_VISIBILITY_MS,
        }
    }

    /// A topic with the default capacity and visibility timeout.
    pub const fn topic() -> Self {
        Self { kind: Kind::Topic, ..Self::queue() }
    }
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// What `ack` and `nack` take: this delivery of this message (a later delivery of the same
    /// message has another receipt).
    pub receipt: String,
    /// The message: JSON text.
    pub data: Arc<str>,
    /// Which delivery of the message this is: 1 the first time.
    pub attempt: u32,
    /// When it was sent, in ms since the Unix epoch.
    pub sent_at_ms: u64,
}

/// What a `receive` got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// The messages, oldest first.
    pub deliveries: Vec<Delivery>,
    /// When nothing was ready: when the next message waiting for its visibility timeout (or
    /// its `nack` delay) becomes deliverable, in ms since the Unix epoch.
    pub next_visible_ms: Option<u64>,
}

/// The state of one queue: a queue channel's, or a topic subscription's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The subscription (`None`: the queue of a queue channel).
    pub subscription: Option<String>,
    /// Messages waiting to be delivered now.
    pub ready: u64,
    /// Messages delivered and not yet acknowledged, or given back with a delay.
    pub in_flight: u64,
    /// Messages acknowledged since the node started.
    pub acked: u64,
    /// Deliveries after the first (timeouts and `nack`s) since the node started.
    pub redelivered: u64,
}

/// A channel and its queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The channel's name.
    pub name: String,
    /// How it behaves.
    pub config: Config,
    /// True once closed: it takes no new messages.
    pub closed: bool,
    /// Messages sent to it since the node started.
    pub sent: u64,
    /// Its queue, or its subscriptions in name order.
    pub queues: Vec<QueueStats>,
}

/// An actor the node hands a channel's messages to, one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Consumer {
    /// The channel.
    pub channel: String,
    /// The topic subscription it consumes (`None` for a queue).
    pub subscription: Option<String>,
    /// The actor, as `namespace/type/key`.
    pub actor: String,
    /// The action its messages arrive as.
    pub action: String,
}

/// Where channels live. Every request reaching a backend is already checked; `now_ms` is the
/// clock the request is judged by.
#[async_trait::async_trait]
pub trait ChannelBackend: Send + Sync + std::fmt::Debug + 'static {
    /// The backend's name, for logs and the status page.
    fn name(&self) -> &'static str;

    /// Creates a channel: true when it did, false when it exists with this config;
    /// `already_exists` when it exists with another.
    async fn create(&self, scope: Scope<'_>, name: &str, config: Config) -> Result<bool>;

    /// Deletes a channel, its messages, subscriptions and consumers; false when there was none.
    async fn delete(&self, scope: Scope<'_>, name: &str) -> Result<bool>;

    /// Stops a channel's intake; false when it was closed already.
    async fn close(&self, scope: Scope<'_>, name: &str) -> Result<bool>;

    /// Adds a subscription to a topic; false when it was there.
    async fn subscribe(&self, scope: Scope<'_>, topic: &str, subscription: &str) -> Result<bool>;

    /// Removes a subscription and its messages; false when there was none.
    async fn unsubscribe(&self, scope: Scope<'_>, topic: &str, subscription: &str) -> Result<bool>;

    /// Appends a message (JSON text) to the queue, or to every subscription of the topic;
    /// how many queues got it. `channel_full` when one of them is full (then none got it).
    async fn send(&self, scope: Scope<'_>, name: &str, data: Arc<str>, now_ms: u64) -> Result<u32>;

    /// Up to `max` deliverable messages of the queue (or of the topic's `subscription`), each
    /// invisible to others for `visibility_ms` from now (`None`: the channel's timeout).
    async fn receive(
        &self,
        scope: Scope<'_>,
        name: &str,
        subscription: Option<&str>,
        max: u32,
        visibility_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<Received>;

    /// Removes the message of `receipt`; false when that delivery no longer holds it (it was
    /// acknowledged, or delivered again since).
    async fn ack(
        &self,
        scope: Scope<'_>,
        name: &str,
        receipt: &Receipt,
        now_ms: u64,
    ) -> Result<bool>;

    /// Gives the message of `receipt` back, deliverable again `delay_ms` from now; false when
    /// that delivery no longer holds it.
    async fn nack(
        &self,
        scope: Scope<'_>,
        name: &str,
        receipt: &Receipt,
        delay_ms: u64,
        now_ms: u64,
    ) -> Result<bool>;

    /// A channel's state.
    async fn stats(&self, scope: Scope<'_>, name: &str, now_ms: u64) -> Result<Stats>;

    /// Every channel of a scope, in name order.
    async fn list(&self, scope: Scope<'_>, now_ms: u64) -> Result<Vec<Stats>>;

    /// Registers a consumer (one per actor and channel; a second registration replaces the
    /// first); true when it is new.
    async fn add_consumer(&self, scope: Scope<'_>, consumer: Consumer) -> Result<bool>;

    /// Removes the consumer `actor` of a channel; false when there was none.
    async fn remove_consumer(&self, scope: Scope<'_>, channel: &str, actor: &str) -> Result<bool>;

    /// Every registered consumer, with its tenant and namespace.
    async fn consumers(&self) -> Result<Vec<(String, String, Consumer)>>;
}

/// A delivery's receipt, parsed: `[subscription/]id.attempt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The topic subscription (`None`: a queue).
    pub subscription: Option<String>,
    /// The message's id in its queue.
    pub id: u64,
    /// The delivery.
    pub attempt: u32,
}

impl Receipt {
    /// The receipt in `text`, or `invalid_arguments`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            invalid(format!("{text:?} is not a receipt: pass the receipt of a delivery as it came"))
        };
        let (subscription, rest) = match text.split_once('/') {
            Some((subscription, rest)) => {
                check_name("subscription", subscription).map_err(|_| bad())?;
                (Some(subscription.to_owned()), rest)
            }
            None => (None, text),
        };
        let (id, attempt) = rest.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            subscription,
            id: id.parse().map_err(|_| bad())?,
            attempt: attempt.parse().map_err(|_| bad())?,
        })
    }

    fn text(subscription: &str, id: u64, attempt: u32) -> String {
        if subscription.is_empty() {
            format!("{id}.{attempt}")
        } else {
            format!("{subscription}/{id}.{attempt}")
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArguments, message)
}

/// Checks a channel or subscription name.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let chars = name.chars().count();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if chars == 0 || chars > MAX_NAME || !name.chars().all(allowed) {
        return Err(invalid(format!(
            "a {what} name is 1 to {MAX_NAME} of A-Z a-z 0-9 _ . -, not {name:?}"
        )));
    }
    Ok(())
}

fn check_config(config: &Config) -> Result<()> {
    if config.capacity == 0 || config.capacity > MAX_CAPACITY {
        return Err(invalid(format!("a channel's capacity is 1 to {MAX_CAPACITY} messages")));
    }
    check_ms("visibility timeout", config.visibility_timeout_ms)?;
    if config.visibility_timeout_ms == 0 {
        return Err(invalid("a visibility timeout is more than 0 ms"));
    }
    Ok(())
}

fn check_ms(what: &str, ms: u64) -> Result<()> {
    if ms > MAX_VISIBILITY_MS {
        return Err(invalid(format!("a {what} is at most {MAX_VISIBILITY_MS} ms")));
    }
    Ok(())
}

fn not_found(scope: Scope<'_>, name: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("no channel {name:?} in {}/{}: create it first", scope.0, scope.1),
    )
}

/// Why a send was refused: the channel is full.
pub(crate) fn full(name: &str, subscription: &str, capacity: u32) -> Error {
    let whose = if subscription.is_empty() {
        String::new()
    } else {
        format!(" (subscription {subscription:?})")
    };
    Error::new(
        ErrorCode::ChannelFull,
        format!(
            "channel {name:?}{whose} holds its capacity of {capacity} messages: its consumers \
             are behind; retry later or send with a wait"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// The embedded backends: the state in memory, and (SQLite) every change written behind it.

/// A channel's key: tenant, namespace, name.
pub(crate) type Key = (String, String, String);

fn key(scope: Scope<'_>, name: &str) -> Key {
    (scope.0.to_owned(), scope.1.to_owned(), name.to_owned())
}

/// One message in a queue.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) data: Arc<str>,
    /// Deliveries so far.
    pub(crate) attempt: u32,
    /// While it waits (delivered, or given back with a delay): when it is deliverable again.
    pub(crate) visible_at: Option<u64>,
    pub(crate) sent_at: u64,
}

/// A queue: a queue channel's (named `""`) or a topic subscription's.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) next_id: u64,
    pub(crate) messages: HashMap<u64, Stored>,
    /// Deliverable now, by id (oldest first).
    pub(crate) ready: BTreeSet<u64>,
    /// Waiting for their visibility timeout or delay, by (deliverable at, id).
    pub(crate) waiting: BTreeSet<(u64, u64)>,
    acked: u64,
    redelivered: u64,
}

impl Queue {
    pub(crate) fn insert(&mut self, id: u64, stored: Stored) {
        match stored.visible_at {
            Some(at) => self.waiting.insert((at, id)),
            None => self.ready.insert(id),
        };
        self.next_id = self.next_id.max(id + 1);
        self.messages.insert(id, stored);
    }

    /// Moves what has become deliverable by `now` to `ready`.
    fn promote(&mut self, now: u64) {
        while let Some(&(at, id)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            if let Some(stored) = self.messages.get_mut(&id) {
                stored.visible_at = None;
                self.ready.insert(id);
            }
        }
    }

    /// The message of this delivery, while it holds it.
    fn held(&self, receipt: &Receipt) -> Option<&Stored> {
        self.messages.get(&receipt.id).filter(|stored| stored.attempt == receipt.attempt)
    }

    fn unqueue(&mut self, id: u64) -> Option<Stored> {
        let stored = self.messages.remove(&id)?;
        match stored.visible_at {
            Some(at) => self.waiting.remove(&(at, id)),
            None => self.ready.remove(&id),
        };
        Some(stored)
    }

    fn stats(&mut self, subscription: &str, now: u64) -> QueueStats {
        self.promote(now);
        QueueStats {
            subscription: (!subscription.is_empty()).then(|| subscription.to_owned()),
            ready: self.ready.len() as u64,
            in_flight: self.waiting.len() as u64,
            acked: self.acked,
            redelivered: self.redelivered,
        }
    }
}

/// One channel.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) config: Config,
    pub(crate) closed: bool,
    sent: u64,
    /// By subscription; a queue channel has the one queue `""`.
    pub(crate) queues: BTreeMap<String, Queue>,
    /// By actor.
    pub(crate) consumers: BTreeMap<String, Consumer>,
}

impl Channel {
    pub(crate) fn new(config: Config, closed: bool) -> Self {
        let mut queues = BTreeMap::new();
        if config.kind == Kind::Queue {
            queues.insert(String::new(), Queue { next_id: 1, ..Queue::default() });
        }
        Self { config, closed, sent: 0, queues, consumers: BTreeMap::new() }
    }

    fn queue_mut(&mut self, name: &str, subscription: Option<&str>) -> Result<&mut Queue> {
        let sub = match (self.config.kind, subscription) {
            (Kind::Queue, None) => "",
            (Kind::Queue, Some(_)) => {
                return Err(invalid(format!(
                    "{name:?} is a queue: receive from it without a subscription"
                )));
            }
            (Kind::Topic, None) => {
                return Err(invalid(format!(
                    "{name:?} is a topic: receive from one of its subscriptions"
                )));
            }
            (Kind::Topic, Some(sub)) => sub,
        };
        self.queues.get_mut(sub).ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!("topic {name:?} has no subscription {sub:?}: subscribe first"),
            )
        })
    }

    /// The queue a receipt names; `None` when it is of the other kind of channel (a receipt
    /// of a topic on a queue), so it holds nothing here.
    fn receipt_queue(&mut self, name: &str, receipt: &Receipt) -> Result<Option<&mut Queue>> {
        let fits = (self.config.kind == Kind::Topic) == receipt.subscription.is_some();
        if !fits {
            return Ok(None);
        }
        self.queue_mut(name, receipt.subscription.as_deref()).map(Some)
    }

    fn stats(&mut self, name: &str, now: u64) -> Stats {
        Stats {
            name: name.to_owned(),
            config: self.config,
            closed: self.closed,
            sent: self.sent,
            queues: self.queues.iter_mut().map(|(sub, queue)| queue.stats(sub, now)).collect(),
        }
    }
}

/// A change to the stored channels, in the order it was made.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Create { key: Key, config: Config },
    Drop { key: Key },
    Close { key: Key },
    AddQueue { key: Key, sub: String },
    DropQueue { key: Key, sub: String },
    Put { key: Key, sub: String, id: u64, stored: Stored },
    Visible { key: Key, sub: String, id: u64, attempt: u32, visible_at: Option<u64> },
    Remove { key: Key, sub: String, id: u64 },
    AddConsumer { key: Key, consumer: Consumer },
    RemoveConsumer { key: Key, actor: String },
}

/// The changes an operation made, when they are kept.
pub(crate) struct Log {
    keep: bool,
    pub(crate) changes: Vec<Change>,
}

impl Log {
    fn push(&mut self, change: impl FnOnce() -> Change) {
        if self.keep {
            self.changes.push(change());
        }
    }
}

/// Every channel of a node, in memory.
#[derive(Debug, Default)]
pub(crate) struct Core {
    pub(crate) channels: HashMap<Key, Channel>,
}

impl Core {
    fn channel(&mut self, scope: Scope<'_>, name: &str) -> Result<(Key, &mut Channel)> {
        let key = key(scope, name);
        match self.channels.get_mut(&key) {
            Some(channel) => Ok((key, channel)),
            None => Err(not_found(scope, name)),
        }
    }

    fn create(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        config: Config,
    ) -> Result<bool> {
        let key = key(scope, name);
        if let Some(channel) = self.channels.get(&key) {
            if channel.config == config {
                return Ok(false);
            }
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "channel {name:?} exists as a {} of capacity {} and visibility timeout {} ms",
                    channel.config.kind.as_str(),
                    channel.config.capacity,
                    channel.config.visibility_timeout_ms
                ),
            ));
        }
        log.push(|| Change::Create { key: key.clone(), config });
        if config.kind == Kind::Queue {
            log.push(|| Change::AddQueue { key: key.clone(), sub: String::new() });
        }
        self.channels.insert(key, Channel::new(config, false));
        Ok(true)
    }

    fn delete(&mut self, log: &mut Log, scope: Scope<'_>, name: &str) -> bool {
        let key = key(scope, name);
        let gone = self.channels.remove(&key).is_some();
        if gone {
            log.push(|| Change::Drop { key });
        }
        gone
    }

    fn close(&mut self, log: &mut Log, scope: Scope<'_>, name: &str) -> Result<bool> {
        let (key, channel) = self.channel(scope, name)?;
        if channel.closed {
            return Ok(false);
        }
        channel.closed = true;
        log.push(|| Change::Close { key });
        Ok(true)
    }

    fn topic(&mut self, scope: Scope<'_>, name: &str) -> Result<(Key, &mut Channel)> {
        let (key, channel) = self.channel(scope, name)?;
        if channel.config.kind != Kind::Topic {
            return Err(invalid(format!("{name:?} is a queue: only topics have subscriptions")));
        }
        Ok((key, channel))
    }

    fn subscribe(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        sub: &str,
    ) -> Result<bool> {
        let (key, channel) = self.topic(scope, name)?;
        if channel.queues.contains_key(sub) {
            return Ok(false);
        }
        if channel.queues.len() >= MAX_SUBSCRIPTIONS {
            return Err(invalid(format!(
                "topic {name:?} has {MAX_SUBSCRIPTIONS} subscriptions, the most it takes"
            )));
        }
        channel.queues.insert(sub.to_owned(), Queue { next_id: 1, ..Queue::default() });
        log.push(|| Change::AddQueue { key, sub: sub.to_owned() });
        Ok(true)
    }

    fn unsubscribe(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        sub: &str,
    ) -> Result<bool> {
        let (key, channel) = self.topic(scope, name)?;
        if channel.queues.remove(sub).is_none() {
            return Ok(false);
        }
        channel.consumers.retain(|_, consumer| consumer.subscription.as_deref() != Some(sub));
        log.push(|| Change::DropQueue { key, sub: sub.to_owned() });
        Ok(true)
    }

    fn send(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        data: Arc<str>,
        now: u64,
    ) -> Result<u32> {
        let (key, channel) = self.channel(scope, name)?;
        if channel.closed {
            return Err(Error::new(
                ErrorCode::InvalidState,
                format!("channel {name:?} is closed: it takes no new messages"),
            ));
        }
        let capacity = channel.config.capacity as usize;
        if let Some((sub, _)) =
            channel.queues.iter().find(|(_, queue)| queue.messages.len() >= capacity)
        {
            return Err(full(name, sub, channel.config.capacity));
        }
        channel.sent += 1;
        let mut sent = 0;
        for (sub, queue) in &mut channel.queues {
            let id = queue.next_id;
            let stored =
                Stored { data: Arc::clone(&data), attempt: 0, visible_at: None, sent_at: now };
            log.push(|| Change::Put {
                key: key.clone(),
                sub: sub.clone(),
                id,
                stored: stored.clone(),
            });
            queue.insert(id, stored);
            sent += 1;
        }
        Ok(sent)
    }

    #[allow(clippy::too_many_arguments)]
    fn receive(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        subscription: Option<&str>,
        max: u32,
        visibility_ms: Option<u64>,
        now: u64,
    ) -> Result<Received> {
        let (key, channel) = self.channel(scope, name)?;
        let visibility_ms = visibility_ms.unwrap_or(channel.config.visibility_timeout_ms);
        let queue = channel.queue_mut(name, subscription)?;
        let sub = subscription.unwrap_or("");
        queue.promote(now);
        let visible_at = now.saturating_add(visibility_ms);
        let mut deliveries = Vec::new();
        while deliveries.len() < max as usize {
            let Some(id) = queue.ready.pop_first() else { break };
            let Some(stored) = queue.messages.get_mut(&id) else { continue };
            stored.attempt += 1;
            stored.visible_at = Some(visible_at);
            if stored.attempt > 1 {
                queue.redelivered += 1;
            }
            let attempt = stored.attempt;
            deliveries.push(Delivery {
                receipt: Receipt::text(sub, id, attempt),
                data: Arc::clone(&stored.data),
                attempt,
                sent_at_ms: stored.sent_at,
            });
            queue.waiting.insert((visible_at, id));
            log.push(|| Change::Visible {
                key: key.clone(),
                sub: sub.to_owned(),
                id,
                attempt,
                visible_at: Some(visible_at),
            });
        }
        let next_visible_ms =
            if deliveries.is_empty() { queue.waiting.first().map(|(at, _)| *at) } else { None };
        Ok(Received { deliveries, next_visible_ms })
    }

    fn ack(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        receipt: &Receipt,
    ) -> Result<bool> {
        let (key, channel) = self.channel(scope, name)?;
        let Some(queue) = channel.receipt_queue(name, receipt)? else { return Ok(false) };
        if queue.held(receipt).is_none() {
            return Ok(false);
        }
        queue.unqueue(receipt.id);
        queue.acked += 1;
        let sub = receipt.subscription.clone().unwrap_or_default();
        log.push(|| Change::Remove { key, sub, id: receipt.id });
        Ok(true)
    }

    fn nack(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        receipt: &Receipt,
        delay_ms: u64,
        now: u64,
    ) -> Result<bool> {
        let (key, channel) = self.channel(scope, name)?;
        let Some(queue) = channel.receipt_queue(name, receipt)? else { return Ok(false) };
        // Only a delivery still out can be given back.
        if queue.held(receipt).is_none_or(|stored| stored.visible_at.is_none()) {
            return Ok(false);
        }
        let Some(mut stored) = queue.unqueue(receipt.id) else { return Ok(false) };
        stored.visible_at = (delay_ms > 0).then(|| now.saturating_add(delay_ms));
        let (attempt, visible_at) = (stored.attempt, stored.visible_at);
        queue.insert(receipt.id, stored);
        let sub = receipt.subscription.clone().unwrap_or_default();
        log.push(|| Change::Visible { key, sub, id: receipt.id, attempt, visible_at });
        Ok(true)
    }

    fn stats(&mut self, scope: Scope<'_>, name: &str, now: u64) -> Result<Stats> {
        let (_, channel) = self.channel(scope, name)?;
        Ok(channel.stats(name, now))
    }

    fn list(&mut self, scope: Scope<'_>, now: u64) -> Vec<Stats> {
        let mut listed: Vec<Stats> = self
            .channels
            .iter_mut()
            .filter(|((tenant, namespace, _), _)| *tenant == scope.0 && *namespace == scope.1)
            .map(|((_, _, name), channel)| channel.stats(name, now))
            .collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        listed
    }

    fn add_consumer(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        consumer: Consumer,
    ) -> Result<bool> {
        let (key, channel) = self.channel(scope, &consumer.channel)?;
        let name = consumer.channel.clone();
        channel.queue_mut(&name, consumer.subscription.as_deref())?;
        if channel.consumers.get(&consumer.actor) == Some(&consumer) {
            return Ok(false);
        }
        log.push(|| Change::AddConsumer { key, consumer: consumer.clone() });
        Ok(channel.consumers.insert(consumer.actor.clone(), consumer).is_none())
    }

    fn remove_consumer(
        &mut self,
        log: &mut Log,
        scope: Scope<'_>,
        name: &str,
        actor: &str,
    ) -> Result<bool> {
        let (key, channel) = self.channel(scope, name)?;
        if channel.consumers.remove(actor).is_none() {
            return Ok(false);
        }
        log.push(|| Change::RemoveConsumer { key, actor: actor.to_owned() });
        Ok(true)
    }

    fn consumers(&self) -> Vec<(String, String, Consumer)> {
        self.channels
            .iter()
            .flat_map(|((tenant, namespace, _), channel)| {
                channel
                    .consumers
                    .values()
                    .map(|consumer| (tenant.clone(), namespace.clone(), consumer.clone()))
            })
            .collect()
    }
}

/// Where an embedded backend writes its changes: nowhere (memory), or a SQLite file.
pub(crate) trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Hands `changes` to the writer, in order: called with the state's lock held, so the
    /// file sees changes in the order they were made. The future resolves once they are
    /// durable.
    fn submit(&self, changes: Vec<Change>) -> Result<tokio::sync::oneshot::Receiver<Result<()>>>;

    /// The file's name, for errors.
    fn describe(&self) -> String;
}

/// The embedded backend: the state in memory, written behind to a store when there is one.
/// An operation returns once its changes are durable; since the store takes changes in the
/// order they were made, nothing a caller is told rests on a change that is not.
#[derive(Debug)]
pub(crate) struct Embedded {
    name: &'static str,
    core: Mutex<Core>,
    store: Option<Box<dyn Store>>,
}

impl Embedded {
    pub(crate) fn new(name: &'static str, core: Core, store: Option<Box<dyn Store>>) -> Self {
        Self { name, core: Mutex::new(core), store }
    }

    async fn op<T>(&self, apply: impl FnOnce(&mut Core, &mut Log) -> Result<T>) -> Result<T> {
        let (answer, durable) = {
            let mut core = self.core.lock();
            let mut log = Log { keep: self.store.is_some(), changes: Vec::new() };
            let answer = apply(&mut core, &mut log);
            let durable = match &self.store {
                Some(store) if !log.changes.is_empty() => Some(store.submit(log.changes)?),
                _ => None,
            };
            (answer, durable)
        };
        if let Some(durable) = durable {
            durable.await.map_err(|_| {
                Error::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the channel store {} is closed",
                        self.store.as_ref().map(|store| store.describe()).unwrap_or_default()
                    ),
                )
            })??;
        }
        answer
    }
}

#[async_trait::async_trait]
impl ChannelBackend for Embedded {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn create(&self, scope: Scope<'_>, name: &str, config: Config) -> Result<bool> {
        self.op(|core, log| core.create(log, scope, name, config)).await
    }

    async fn delete(&self, scope: Scope<'_>, name: &str) -> Result<bool> {
        self.op(|core, log| Ok(core.delete(log, scope, name))).await
    }

    async fn close(&self, scope: Scope<'_>, name: &str) -> Result<bool> {
        self.op(|core, log| core.close(log, scope, name)).await
    }

    async fn subscribe(&self, scope: Scope<'_>, topic: &str, subscription: &str) -> Result<bool> {
        self.op(|core, log| core.subscribe(log, scope, topic, subscription)).await
    }

    async fn unsubscribe(&self, scope: Scope<'_>, topic: &str, subscription: &str) -> Result<bool> {
        self.op(|core, log| core.unsubscribe(log, scope, topic, subscription)).await
    }

    async fn send(&self, scope: Scope<'_>, name: &str, data: Arc<str>, now_ms: u64) -> Result<u32> {
        self.op(|core, log| core.send(log, scope, name, data, now_ms)).await
    }

    async fn receive(
        &self,
        scope: Scope<'_>,
        name: &str,
        subscription: Option<&str>,
        max: u32,
        visibility_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<Received> {
        self.op(|core, log| {
            core.receive(log, scope, name, subscription, max, visibility_ms, now_ms)
        })
        .await
    }

    async fn ack(
        &self,
        scope: Scope<'_>,
        name: &str,
        receipt: &Receipt,
        _now_ms: u64,
    ) -> Result<bool> {
        self.op(|core, log| core.ack(log, scope, name, receipt)).await
    }

    async fn nack(
        &self,
        scope: Scope<'_>,
        name: &str,
        receipt: &Receipt,
        delay_ms: u64,
        now_ms: u64,
    ) -> Result<bool> {
        self.op(|core, log| core.nack(log, scope, name, receipt, delay_ms, now_ms)).await
    }

    async fn stats(&self, scope: Scope<'_>, name: &str, now_ms: u64) -> Result<Stats> {
        self.core.lock().stats(scope, name, now_ms)
    }

    async fn list(&self, scope: Scope<'_>, now_ms: u64) -> Result<Vec<Stats>> {
        Ok(self.core.lock().list(scope, now_ms))
    }

    async fn add_consumer(&self, scope: Scope<'_>, consumer: Consumer) -> Result<bool> {
        self.op(|core, log| core.add_consumer(log, scope, consumer)).await
    }

    async fn remove_consumer(&self, scope: Scope<'_>, channel: &str, actor: &str) -> Result<bool> {
        self.op(|core, log| core.remove_consumer(log, scope, channel, actor)).await
    }

    async fn consumers(&self) -> Result<Vec<(String, String, Consumer)>> {
        Ok(self.core.lock().consumers())
    }
}

// ---------------------------------------------------------------------------------------------
// The front: checks, waits and wake-ups.

/// Who waits on a channel.
#[derive(Debug, Default)]
struct Signals {
    /// A message may have become deliverable.
    readable: Notify,
    /// Room may have been made.
    writable: Notify,
}

/// The node's channels: cheap to clone.
#[derive(Debug, Clone)]
pub struct Channels {
    backend: Arc<dyn ChannelBackend>,
    signals: Arc<Mutex<HashMap<Key, Arc<Signals>>>>,
    accepting: Arc<AtomicBool>,
}

impl Default for Channels {
    fn default() -> Self {
        Self::in_memory()
    }
}

fn check_data(data: &str) -> Result<()> {
    if data.len() > MAX_MESSAGE {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("a message is at most {MAX_MESSAGE} bytes, not {}", data.len()),
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(data).map_err(|error| {
        Error::new(ErrorCode::InvalidJson, format!("a message is JSON text: {error}"))
    })?;
    Ok(())
}

impl Channels {
    /// Channels that live as long as the process.
    pub fn in_memory() -> Self {
        Self::with_backend(Arc::new(Embedded::new("memory", Core::default(), None)))
    }

    /// The channels in the SQLite file `path` (created when missing): a call returns once
    /// what it changed is on disk.
    pub fn open_sqlite(path: &Path) -> Result<Self> {
        Ok(Self::with_backend(Arc::new(crate::channels_sqlite::open(path)?)))
    }

    /// Channels over another backend.
    pub fn with_backend(backend: Arc<dyn ChannelBackend>) -> Self {
        Self { backend, signals: Arc::default(), accepting: Arc::new(AtomicBool::new(true)) }
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    fn signals(&self, scope: Scope<'_>, name: &str) -> Arc<Signals> {
        Arc::clone(self.signals.lock().entry(key(scope, name)).or_default())
    }

    /// Creates a channel; true when it did, false when it existed with this config.
    pub async fn create(&self, scope: Scope<'_>, name: &str, config: Config) -> Result<bool> {
        check_name("channel", name)?;
        check_config(&config)?;
        self.backend.create(scope, name, config).await
    }

    /// Deletes a channel with its messages; false when there was none. Whoever waits on it
    /// gets `not_found`.
    pub async fn delete(&self, scope: Scope<'_>, name: &str) -> Result<bool> {
        check_name("channel", name)?;
        let deleted = self.backend.delete(scope, name).await?;
        if let Some(signals) = self.signals.lock().remove(&key(scope, name)) {
            signals.readable.notify_waiters();
            signals.writable.notify_waiters();
        }
        Ok(deleted)
    }

    /// Stops a channel's intake; what it holds is still delivered.
    pub async fn close(&self, scope: Scope<'_>, name: &str) -> Result<bool> {
        check_name("channel", name)?;
        let closed = self.backend.close(scope, name).await?;
        self.signals(scope, name).writable.notify_waiters();
        Ok(closed)
    }

    /// Adds a subscription to a topic: it gets every message sent from now on.
    pub async fn subscribe(
        &self,
        scope: Scope<'_>,
        topic: &str,
        subscription: &str,
    ) -> Result<bool> {
        check_name("channel", topic)?;
        check_name("subscription", subscription)?;
        self.backend.subscribe(scope, topic, subscription).await
    }

    /// Removes a subscription with its messages.
    pub async fn unsubscribe(
        &self,
        scope: Scope<'_>,
        topic: &str,
        subscription: &str,
    ) -> Result<bool> {
        check_name("channel", topic)?;
        check_name("subscription", subscription)?;
        let removed = self.backend.unsubscribe(scope, topic, subscription).await?;
        self.signals(scope, topic).writable.notify_waiters();
        Ok(removed)
    }

    /// Sends `data` (JSON text); how many queues got it (a topic without subscriptions: 0).
    /// A full channel makes it wait up to `wait` for room, then `channel_full`.
    pub async fn send(
        &self,
        scope: Scope<'_>,
        name: &str,
        data: String,
        wait: Duration,
    ) -> Result<u32> {
        check_name("channel", name)?;
        check_data(&data)?;
        let data: Arc<str> = Arc::from(data);
        let deadline = tokio::time::Instant::now() + wait;
        let signals = self.signals(scope, name);
        loop {
            let room = signals.writable.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            self.check_accepting()?;
            match self.backend.send(scope, name, Arc::clone(&data), now_ms()).await {
                Err(error)
                    if error.code == ErrorCode::ChannelFull
                        && tokio::time::Instant::now() < deadline =>
                {
                    // A missed wake-up costs at most the recheck period.
                    let recheck = tokio::time::Instant::now() + Duration::from_millis(250);
                    tokio::select! {
                        () = room => {}
                        () = tokio::time::sleep_until(deadline.min(recheck)) => {}
                    }
                }
                Ok(sent) => {
                    signals.readable.notify_waiters();
                    return Ok(sent);
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn check_accepting(&self) -> Result<()> {
        if self.accepting.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::Unavailable,
                "the node is shutting down: its channels take no new messages",
            ))
        }
    }

    /// Up to `max` messages of the queue (of a topic: of `subscription`), each invisible to
    /// others for `visibility` (`None`: the channel's timeout). With nothing deliverable it
    /// waits up to `wait` for a message.
    pub async fn receive(
        &self,
        scope: Scope<'_>,
        name: &str,
        subscription: Option<&str>,
        max: u32,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> Result<Vec<Delivery>> {
        check_name("channel", name)?;
        if let Some(subscription) = subscription {
            check_name("subscription", subscription)?;
        }
        if max == 0 || max > MAX_RECEIVE {
            return Err(invalid(format!("a receive takes 1 to {MAX_RECEIVE} messages")));
        }
        let visibility_ms = match visibility {
            Some(visibility) => {
                let ms = u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX);
                check_ms("visibility timeout", ms)?;
                Some(ms.max(1))
            }
            None => None,
        };
        let deadline = tokio::time::Instant::now() + wait;
        let signals = self.signals(scope, name);
        loop {
            let mail = signals.readable.notified();
            tokio::pin!(mail);
            mail.as_mut().enable();
            let now = now_ms();
            let received =
                self.backend.receive(scope, name, subscription, max, visibility_ms, now).await?;
            let start = tokio::time::Instant::now();
            if !received.deliveries.is_empty() || start >= deadline {
                return Ok(received.deliveries);
            }
            let mut wake = deadline.min(start + Duration::from_millis(250));
            if let Some(at) = received.next_visible_ms {
                wake = wake.min(start + Duration::from_millis(at.saturating_sub(now)));
            }
            tokio::select! {
                () = mail => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Acknowledges a delivery: the message is gone. False when that delivery no longer holds
    /// it (acknowledged already, or delivered again after its visibility timeout).
    pub async fn ack(&self, scope: Scope<'_>, name: &str, receipt: &str) -> Result<bool> {
        check_name("channel", name)?;
        let receipt = Receipt::parse(receipt)?;
        let acked = self.backend.ack(scope, name, &receipt, now_ms()).await?;
        if acked {
            self.signals(scope, name).writable.notify_waiters();
        }
        Ok(acked)
    }

    /// Gives a delivery back: deliverable again after `delay`. False when that delivery no
    /// longer holds it.
    pub async fn nack(
        &self,
        scope: Scope<'_>,
        name: &str,
        receipt: &str,
        delay: Duration,
    ) -> Result<bool> {
        check_name("channel", name)?;
        let receipt = Receipt::parse(receipt)?;
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        check_ms("delay", delay_ms)?;
        let given = self.backend.nack(scope, name, &receipt, delay_ms, now_ms()).await?;
        if given && delay_ms == 0 {
            self.signals(scope, name).readable.notify_waiters();
        }
        Ok(given)
    }

    /// A channel's state.
    pub async fn stats(&self, scope: Scope<'_>, name: &str) -> Result<Stats> {
        check_name("channel", name)?;
        self.backend.stats(scope, name, now_ms()).await
    }

    /// The channels of a scope, in name order.
    pub async fn list(&self, scope: Scope<'_>) -> Result<Vec<Stats>> {
        self.backend.list(scope, now_ms()).await
    }

    /// Registers an actor as a consumer of a channel (of a topic: of one subscription).
    pub async fn add_consumer(&self, scope: Scope<'_>, consumer: Consumer) -> Result<bool> {
        check_name("channel", &consumer.channel)?;
        if let Some(subscription) = &consumer.subscription {
            check_name("subscription", subscription)?;
        }
        if consumer.action.is_empty() || consumer.action.len() > MAX_NAME {
            return Err(invalid(format!("an action is 1 to {MAX_NAME} bytes")));
        }
        self.backend.add_consumer(scope, consumer).await
    }

    /// Removes the consumer `actor` of a channel.
    pub async fn remove_consumer(
        &self,
        scope: Scope<'_>,
        channel: &str,
        actor: &str,
    ) -> Result<bool> {
        check_name("channel", channel)?;
        self.backend.remove_consumer(scope, channel, actor).await
    }

    /// Every registered consumer, with its tenant and namespace.
    pub async fn consumers(&self) -> Result<Vec<(String, String, Consumer)>> {
        self.backend.consumers().await
    }

    /// Stops every channel's intake (the node is shutting down): sends fail with
    /// `unavailable`, waiting ones at once; receives go on, so consumers drain what is there.
    pub fn stop_intake(&self) {
        self.accepting.store(false, Ordering::Release);
        for signals in self.signals.lock().values() {
            signals.writable.notify_waiters();
        }
    }
}
