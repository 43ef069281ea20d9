//! The service registry per tenant and namespace: named services whose instances register
//! with metadata and a time to live, and stay listed only while they heartbeat.
//!
//! [`Registry`] checks every request on its face and keeps each instance as one entry of a
//! [`KvBackend`] (key `service instance`, value the metadata, time to live and registration
//! time as JSON) whose expiry is the instance's: an instance whose time to live has passed is
//! gone for every call at once, and the backend reclaims it later, exactly as it does for KV
//! entries. The node gives the registry a store of its own (`<data-dir>/registry.sqlite`), so a
//! KV listing never shows registrations. Any KV backend (memory, SQLite; PostgreSQL and Redis
//! when they land) serves the registry with no code of its own.
//!
//! The key's separator, a space, sorts before every character of a service name, so key order
//! is service-name order, the entries of one service are contiguous, and `service ` is a
//! prefix that holds exactly them.

use std::{path::Path, sync::Arc};

use plexspaces_types::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    Error, Result,
    kv::{Entry, KvBackend, now_ms},
};

/// The longest service name, in characters (`A-Z a-z 0-9 . _ - :`, the first a letter or
/// digit).
pub const MAX_SERVICE: usize = 64;

/// The longest instance name, in characters (no control characters).
pub const MAX_INSTANCE: usize = 190;

/// The largest metadata, in bytes of JSON text.
pub const MAX_METADATA: usize = 64 * 1024;

/// The time to live of a registration that names none: 30 s.
pub const DEFAULT_TTL_MS: u64 = 30_000;

/// The longest time to live: a day.
pub const MAX_TTL_MS: u64 = 24 * 3600 * 1000;

/// The most instances one `lookup` returns.
pub const MAX_LOOKUP: usize = 10_000;

/// How many services a listing without a limit returns.
pub const DEFAULT_LIST: u32 = 100;

/// The most services one listing returns.
pub const MAX_LIST: u32 = 1_000;

/// Whose services: tenant and namespace.
pub type Scope<'a> = (&'a str, &'a str);

/// Milliseconds since the Unix epoch, as the registry judges expiry.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A live instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The service.
    pub service: String,
    /// The instance.
    pub instance: String,
    /// What the instance says of itself: a JSON object.
    pub metadata: Map<String, Value>,
    /// The time to live each heartbeat renews, in ms.
    pub ttl_ms: u64,
    /// When the instance registered, in ms since the Unix epoch.
    pub registered_at_ms: u64,
    /// When it is gone unless it heartbeats, in ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// A service with live instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSummary {
    /// The service.
    pub service: String,
    /// How many live instances it has.
    pub instances: u32,
}

/// One page of services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The services, in name order.
    pub services: Vec<ServiceSummary>,
    /// Set when more services follow: pass it as `after` for the next page.
    pub next_after: Option<String>,
}

/// The stored value of an instance.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    metadata: Map<String, Value>,
    ttl_ms: u64,
    registered_at_ms: u64,
}

/// The registry: cheap to clone.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn KvBackend>,
    clock: Clock,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::in_memory()
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArguments, message)
}

fn service_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')
}

/// Checks a service name.
pub fn check_service(service: &str) -> Result<()> {
    let chars = service.chars().count();
    if chars == 0 || chars > MAX_SERVICE {
        return Err(invalid(format!(
            "a service name is 1 to {MAX_SERVICE} characters, not {chars}"
        )));
    }
    if !service.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !service.chars().all(service_char)
    {
        return Err(invalid(format!(
            "a service name is letters, digits, '.', '_', '-' and ':', starting with a letter or \
             digit, not {service:?}"
        )));
    }
    Ok(())
}

/// Checks an instance name.
pub fn check_instance(instance: &str) -> Result<()> {
    let chars = instance.chars().count();
    if chars == 0 || chars > MAX_INSTANCE {
        return Err(invalid(format!(
            "an instance name is 1 to {MAX_INSTANCE} characters, not {chars}"
        )));
    }
    if instance.chars().any(char::is_control) {
        return Err(invalid(format!("an instance name has no control characters: {instance:?}")));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.chars().count() > MAX_SERVICE || !prefix.chars().all(service_char) {
        return Err(invalid(format!(
            "a service prefix is at most {MAX_SERVICE} of the characters of service names, not \
             {prefix:?}"
        )));
    }
    Ok(())
}

/// Metadata from JSON text: an object of at most [`MAX_METADATA`] bytes; empty text is `{}`.
pub fn metadata_from_json(text: &str) -> Result<Map<String, Value>> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    if text.len() > MAX_METADATA {
        return Err(invalid(format!(
            "metadata is at most {MAX_METADATA} bytes of JSON, not {}",
            text.len()
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(metadata)) => Ok(metadata),
        Ok(_) => Err(invalid("metadata is a JSON object")),
        Err(error) => {
            Err(Error::new(ErrorCode::InvalidJson, format!("metadata is not JSON: {error}")))
        }
    }
}

fn ttl(ttl_ms: u64) -> Result<u64> {
    match ttl_ms {
        0 => Ok(DEFAULT_TTL_MS),
        ttl if ttl > MAX_TTL_MS => Err(invalid(format!(
            "a registration's time to live is at most {MAX_TTL_MS} ms (a day), not {ttl}"
        ))),
        ttl => Ok(ttl),
    }
}

/// Between the service and the instance in a key: sorts before every character of a service
/// name.
const SEPARATOR: char = ' ';

fn key(service: &str, instance: &str) -> String {
    format!("{service}{SEPARATOR}{instance}")
}

/// The service and the instance of a key.
fn split(key: &str) -> (&str, &str) {
    key.split_once(SEPARATOR).unwrap_or((key, ""))
}

fn damaged(key: &str, error: &serde_json::Error) -> Error {
    Error::new(ErrorCode::Internal, format!("the registration {key:?} is damaged: {error}"))
}

/// The registration an entry holds.
fn registration(entry: &Entry) -> Result<Registration> {
    let stored: Stored =
        serde_json::from_str(&entry.value).map_err(|error| damaged(&entry.key, &error))?;
    Ok(stored.registration(&entry.key, entry.expires_at_ms.unwrap_or(u64::MAX)))
}

impl Stored {
    /// The registration of the instance `key` whose time to live ends at `expires_at_ms`.
    fn registration(self, key: &str, expires_at_ms: u64) -> Registration {
        let (service, instance) = split(key);
        Registration {
            service: service.to_owned(),
            instance: instance.to_owned(),
            metadata: self.metadata,
            ttl_ms: self.ttl_ms,
            registered_at_ms: self.registered_at_ms,
            expires_at_ms,
        }
    }
}

/// The entry that stores an instance from `now` for its time to live, and its registration.
fn entry(key: &str, stored: Stored, now: u64) -> Result<(Entry, Registration)> {
    let expires_at_ms = now.saturating_add(stored.ttl_ms);
    let value = serde_json::to_string(&stored)
        .map_err(|error| Error::new(ErrorCode::Internal, error.to_string()))?;
    let entry = Entry { key: key.to_owned(), value, expires_at_ms: Some(expires_at_ms) };
    Ok((entry, stored.registration(key, expires_at_ms)))
}

/// How often a register or heartbeat tries when another writer changed the instance between
/// its read and its write (each retry after a short random pause).
const ATTEMPTS: u32 = 64;

/// Waits a random 0.1–1.6 ms after the `attempt`-th lost race (the clock's nanoseconds serve
/// as the randomness: contention, not security).
async fn back_off(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::from(since.subsec_nanos()));
    let micros = 100 + nanos % (100 * u64::from(attempt.min(15)));
    tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
}

impl Registry {
    /// A registry that lives as long as the process.
    pub fn in_memory() -> Self {
        Self::with_backend(Arc::new(crate::kv::Memory::default()))
    }

    /// The registry in the SQLite file `path` (created when missing), durable once a call
    /// returns.
    pub fn open_sqlite(path: &Path) -> Result<Self> {
        Ok(Self::with_backend(Arc::new(crate::kv_sqlite::Sqlite::open(path)?)))
    }

    /// A registry over a KV backend of its own.
    pub fn with_backend(store: Arc<dyn KvBackend>) -> Self {
        Self { store, clock: Arc::new(now_ms) }
    }

    /// The same registry judging time by `clock` (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.store.name()
    }

    /// Registers `instance` of `service` with `metadata` for `ttl_ms` (0: the default). A
    /// live instance registered again keeps its registration time.
    pub async fn register(
        &self,
        scope: Scope<'_>,
        service: &str,
        instance: &str,
        metadata: Map<String, Value>,
        ttl_ms: u64,
    ) -> Result<Registration> {
        check_service(service)?;
        check_instance(instance)?;
        let ttl_ms = ttl(ttl_ms)?;
        let key = key(service, instance);
        for attempt in 0..ATTEMPTS {
            back_off(attempt).await;
            let now = (self.clock)();
            let current = self.store.get(scope, &key, now).await?;
            let registered_at_ms = match &current {
                Some(entry) => registration(entry)?.registered_at_ms,
                None => now,
            };
            let stored = Stored { metadata: metadata.clone(), ttl_ms, registered_at_ms };
            let (entry, registration) = entry(&key, stored, now)?;
            let expected = current.as_ref().map(|entry| entry.value.as_str());
            if self.store.compare_and_swap(scope, &key, expected, Some(entry), now).await? {
                return Ok(registration);
            }
        }
        Err(contended(&key))
    }

    /// Renews a live instance for `ttl_ms` (0: its own time to live); `not_found` when it
    /// expired or was never registered.
    pub async fn heartbeat(
        &self,
        scope: Scope<'_>,
        service: &str,
        instance: &str,
        ttl_ms: u64,
    ) -> Result<Registration> {
        check_service(service)?;
        check_instance(instance)?;
        if ttl_ms > 0 {
            ttl(ttl_ms)?;
        }
        let key = key(service, instance);
        for attempt in 0..ATTEMPTS {
            back_off(attempt).await;
            let now = (self.clock)();
            let Some(current) = self.store.get(scope, &key, now).await? else {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    format!(
                        "service {service:?} has no instance {instance:?}: it expired or was \
                         never registered; register it again"
                    ),
                ));
            };
            let mut stored: Stored = serde_json::from_str(&current.value)
                .map_err(|error| damaged(&current.key, &error))?;
            if ttl_ms > 0 {
                stored.ttl_ms = ttl_ms;
            }
            let (entry, registration) = entry(&key, stored, now)?;
            let expected = Some(current.value.as_str());
            if self.store.compare_and_swap(scope, &key, expected, Some(entry), now).await? {
                return Ok(registration);
            }
        }
        Err(contended(&key))
    }

    /// Removes an instance; true when it was live.
    pub async fn deregister(
        &self,
        scope: Scope<'_>,
        service: &str,
        instance: &str,
    ) -> Result<bool> {
        check_service(service)?;
        check_instance(instance)?;
        self.store.delete(scope, &key(service, instance), (self.clock)()).await
    }

    /// The live instances of `service`, in instance order (at most [`MAX_LOOKUP`]).
    pub async fn lookup(&self, scope: Scope<'_>, service: &str) -> Result<Vec<Registration>> {
        check_service(service)?;
        let prefix = format!("{service}{SEPARATOR}");
        let (entries, _more) =
            self.store.list(scope, &prefix, None, MAX_LOOKUP, (self.clock)()).await?;
        entries.iter().map(registration).collect()
    }

    /// Up to `limit` (0: [`DEFAULT_LIST`]) services with live instances whose names start
    /// with `prefix`, in name order, after the service `after`.
    pub async fn list(
        &self,
        scope: Scope<'_>,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        check_prefix(prefix)?;
        let limit = if limit == 0 { DEFAULT_LIST } else { limit };
        if limit > MAX_LIST {
            return Err(invalid(format!("a listing holds 1 to {MAX_LIST} services, not {limit}")));
        }
        let limit = limit as usize;
        let now = (self.clock)();
        // Every key of the service `after` sorts before `after!` (' ' < '!'), and every key of
        // a later service after it ('!' sorts before every character of a name).
        let mut from = after.map(|after| format!("{after}!"));
        let mut services: Vec<ServiceSummary> = Vec::new();
        loop {
            let (entries, more) =
                self.store.list(scope, prefix, from.as_deref(), MAX_LOOKUP, now).await?;
            for entry in &entries {
                let (service, _) = split(&entry.key);
                if let Some(last) = services.last_mut()
                    && last.service == service
                {
                    last.instances += 1;
                    continue;
                }
                if services.len() == limit {
                    let next_after = services.last().map(|last| last.service.clone());
                    return Ok(Page { services, next_after });
                }
                services.push(ServiceSummary { service: service.to_owned(), instances: 1 });
            }
            match entries.last() {
                Some(last) if more => from = Some(last.key.clone()),
                _ => return Ok(Page { services, next_after: None }),
            }
        }
    }
}

fn contended(key: &str) -> Error {
    Error::new(
        ErrorCode::Unavailable,
        format!("the registration {key:?} changed under every attempt to write it; retry"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for (service, ok) in [
            ("orders", true),
            ("orders.v2:grpc", true),
            ("9-lives_x", true),
            ("", false),
            ("-orders", false),
            ("a/b", false),
            ("with space", false),
            (&"s".repeat(MAX_SERVICE), true),
            (&"s".repeat(MAX_SERVICE + 1), false),
        ] {
            assert_eq!(check_service(service).is_ok(), ok, "{service:?}");
        }
        for (instance, ok) in [
            ("ns/worker/1", true),
            ("10.0.0.1:8080", true),
            ("", false),
            ("tab\there", false),
            (&"é".repeat(MAX_INSTANCE), true),
            (&"i".repeat(MAX_INSTANCE + 1), false),
        ] {
            assert_eq!(check_instance(instance).is_ok(), ok, "{instance:?}");
        }
    }

    #[test]
    fn metadata_is_an_object() {
        assert_eq!(metadata_from_json("").unwrap(), Map::new());
        assert_eq!(metadata_from_json(r#"{"port": 80}"#).unwrap()["port"], 80);
        assert_eq!(metadata_from_json("[1]").unwrap_err().code, ErrorCode::InvalidArguments);
        assert_eq!(metadata_from_json("{").unwrap_err().code, ErrorCode::InvalidJson);
        let big = format!(r#"{{"x": "{}"}}"#, "x".repeat(MAX_METADATA));
        assert_eq!(metadata_from_json(&big).unwrap_err().code, ErrorCode::InvalidArguments);
    }
}
