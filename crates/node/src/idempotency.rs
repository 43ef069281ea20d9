//! Tells with an `Idempotency-Key` to actors without the durability facet: delivered once
//! however often they are retried within the window. Kept in memory (a restart forgets them),
//! bounded in entries: past the bound the oldest keys are forgotten first. A durable actor
//! journals the key with its message instead (`Api::tell_durable`), so it outlives restarts.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use parking_lot::Mutex;

/// The keys seen within the window.
#[derive(Debug)]
pub(crate) struct Window {
    window: Duration,
    max_keys: usize,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// (actor, key) → the first delivery's message id and when it was delivered.
    by_key: HashMap<(String, String), (String, Instant)>,
    /// Keys in delivery order, for expiry.
    order: VecDeque<((String, String), Instant)>,
}

/// What to do with a tell.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Delivered now with this message id.
    Delivered(String),
    /// Delivered before with this message id: not delivered again.
    Duplicate(String),
}

impl Window {
    pub(crate) fn new(window: Duration, max_keys: usize) -> Self {
        Self { window, max_keys: max_keys.max(1), seen: Mutex::new(Seen::default()) }
    }

    /// Runs `deliver` unless `key` was delivered to `actor` within the window. The check and
    /// the delivery happen under one lock, so concurrent retries deliver once.
    pub(crate) fn deliver_once<E>(
        &self,
        actor: &str,
        key: &str,
        message_id: String,
        deliver: impl FnOnce() -> Result<(), E>,
    ) -> Result<Delivery, E> {
        let now = Instant::now();
        let mut seen = self.seen.lock();
        seen.expire(now, self.window);
        let entry = (actor.to_owned(), key.to_owned());
        if let Some((first_id, _)) = seen.by_key.get(&entry) {
            return Ok(Delivery::Duplicate(first_id.clone()));
        }
        deliver()?;
        while seen.by_key.len() >= self.max_keys {
            let Some((oldest, _)) = seen.order.pop_front() else { break };
            seen.by_key.remove(&oldest);
        }
        seen.by_key.insert(entry.clone(), (message_id.clone(), now));
        seen.order.push_back((entry, now));
        Ok(Delivery::Delivered(message_id))
    }
}

impl Seen {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some((_, at)) = self.order.front() {
            if now.duration_since(*at) < window {
                break;
            }
            if let Some((entry, _)) = self.order.pop_front() {
                self.by_key.remove(&entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_delivered_once_per_actor_within_the_window() {
        let window = Window::new(Duration::from_secs(60), 100);
        let mut delivered = 0;
        let mut deliver = || -> Result<(), ()> {
            delivered += 1;
            Ok(())
        };
        assert_eq!(
            window.deliver_once("a", "k", "m1".into(), &mut deliver),
            Ok(Delivery::Delivered("m1".into()))
        );
        assert_eq!(
            window.deliver_once("a", "k", "m2".into(), &mut deliver),
            Ok(Delivery::Duplicate("m1".into()))
        );
        assert_eq!(
            window.deliver_once("b", "k", "m3".into(), &mut deliver),
            Ok(Delivery::Delivered("m3".into()))
        );
        assert_eq!(delivered, 2);
    }

    #[test]
    fn a_failed_delivery_is_not_remembered_and_keys_expire() {
        let window = Window::new(Duration::ZERO, 100);
        assert_eq!(window.deliver_once("a", "k", "m1".into(), || Err("stopped")), Err("stopped"));
        assert_eq!(
            window.deliver_once("a", "k", "m2".into(), || Ok::<_, ()>(())),
            Ok(Delivery::Delivered("m2".into()))
        );
        // A zero window: the key has expired by the next call.
        assert_eq!(
            window.deliver_once("a", "k", "m3".into(), || Ok::<_, ()>(())),
            Ok(Delivery::Delivered("m3".into()))
        );
    }

    #[test]
    fn the_oldest_keys_go_first_past_the_bound() {
        let window = Window::new(Duration::from_secs(60), 2);
        for (key, id) in [("k1", "m1"), ("k2", "m2"), ("k3", "m3")] {
            window.deliver_once("a", key, id.into(), || Ok::<_, ()>(())).unwrap();
        }
        assert_eq!(
            window.deliver_once("a", "k1", "m4".into(), || Ok::<_, ()>(())),
            Ok(Delivery::Delivered("m4".into()))
        );
        assert_eq!(
            window.deliver_once("a", "k3", "m5".into(), || Ok::<_, ()>(())),
            Ok(Delivery::Duplicate("m3".into()))
        );
    }
}
