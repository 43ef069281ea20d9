//! How a node is configured: every field has a default (a node on the embedded defaults needs
//! no configuration), and the CLI fills them from flags, environment variables and a TOML file.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::Duration,
};

use plexspaces_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The address every port binds (127.0.0.1 by default).
    pub host: IpAddr,
    /// The invoke HTTP port (0: any free port).
    pub invoke_port: u16,
    /// The admin HTTP port (0: any free port).
    pub admin_port: u16,
    /// The gRPC port (0: any free port).
    pub grpc_port: u16,
    /// When set, every request on every port must carry `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// Allows binding a non-loopback address without an admin token.
    pub insecure: bool,
    /// The node's one data directory.
    pub data_dir: PathBuf,
    /// The largest request body (and gRPC message) accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long an ask waits when the request names no timeout, in milliseconds.
    pub ask_timeout_ms: u64,
    /// The longest timeout a request may ask for, in milliseconds.
    pub max_ask_timeout_ms: u64,
    /// How long an idempotency key is remembered, in seconds.
    pub idempotency_window_secs: u64,
    /// How many idempotency keys are remembered at most (the oldest go first).
    pub idempotency_max_keys: usize,
    /// How long a native actor stays active without messages, in seconds.
    pub idle_timeout_secs: u64,
    /// How long a shutdown waits for in-flight requests and actors, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// How long a client may take to send a request's headers, in milliseconds.
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body, in milliseconds.
    pub body_timeout_ms: u64,
    /// The largest module `POST /api/v1/deploy` (and gRPC `Deploy`) accepts, in bytes.
    pub max_module_bytes: usize,
    /// Where compiled modules are cached (default: `<data_dir>/cache`). Several nodes may
    /// share one: artifacts are keyed by module hash and engine settings.
    pub compile_cache_dir: Option<PathBuf>,
    /// Where the KV store lives: `sqlite` (`<data_dir>/kv.sqlite`, the default) or `memory`
    /// (gone when the node stops).
    pub kv_backend: KvBackend,
    /// Whether the tuple spaces outlive the node: `memory` (the default) or `sqlite`
    /// (`<data_dir>/tuples.sqlite`; a write or take returns once it is durable).
    pub tuple_space_backend: TupleSpaceBackend,
    /// Where the channels live: `sqlite` (`<data_dir>/channels.sqlite`, the default: a send,
    /// receive or ack returns once it is durable) or `memory` (gone when the node stops).
    pub channel_backend: ChannelsBackend,
    /// Where the service registry lives: `sqlite` (`<data_dir>/registry.sqlite`, the default:
    /// a registration or heartbeat returns once it is durable) or `memory`.
    pub registry_backend: KvBackend,
    /// The largest blob a client may store over HTTP or gRPC, in bytes (blobs live in
    /// `<data_dir>/blobs`, streamed, never held whole).
    pub max_blob_bytes: u64,
    /// The address clients reach the invoke port at (`https://plex.example.com`), the base
    /// of presigned blob URLs; by default `http://` and the bound invoke address.
    pub public_url: Option<String>,
    /// A durable actor's checkpoint follows this many journal entries (messages, host calls
    /// and ends); a facet config's `checkpoint_every` overrides it per type.
    pub checkpoint_every: u64,
    /// Limits and pool sizes of WebAssembly actors.
    pub wasm: plexspaces_wasm::Options,
}

/// Where the tuple spaces live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TupleSpaceBackend {
    /// In memory: a restart empties them.
    #[default]
    Memory,
    /// In memory, journaled to one SQLite file in the data directory and restored at start.
    Sqlite,
}

/// The channels' backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelsBackend {
    /// Served from memory, every change in one SQLite file of the data directory before a
    /// call returns, restored at start.
    #[default]
    Sqlite,
    /// In memory.
    Memory,
}

/// The KV store's backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvBackend {
    /// One SQLite file in the data directory, durable once a call returns.
    #[default]
    Sqlite,
    /// In memory.
    Memory,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            invoke_port: 8080,
            admin_port: 8094,
            grpc_port: 8000,
            admin_token: None,
            insecure: false,
            data_dir: PathBuf::from("plexspaces-data"),
            max_body_bytes: 1024 * 1024,
            ask_timeout_ms: 30_000,
            max_ask_timeout_ms: 300_000,
            idempotency_window_secs: 600,
            idempotency_max_keys: 100_000,
            idle_timeout_secs: 300,
            shutdown_grace_ms: 10_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_module_bytes: 64 * 1024 * 1024,
            compile_cache_dir: None,
            kv_backend: KvBackend::Sqlite,
            tuple_space_backend: TupleSpaceBackend::Memory,
            channel_backend: ChannelsBackend::Sqlite,
            registry_backend: KvBackend::Sqlite,
            max_blob_bytes: 5 << 30,
            public_url: None,
            checkpoint_every: 1000,
            wasm: plexspaces_wasm::Options::default(),
        }
    }
}

impl Options {
    /// Checks the options make sense together: a node reachable from other machines needs a
    /// token, or an explicit `insecure`.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |message: String| Err(Error::new(ErrorCode::InvalidArguments, message));
        if let Some(token) = &self.admin_token
            && (token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return invalid("the admin token must be non-empty and have no spaces".to_owned());
        }
        if !self.host.is_loopback() && self.admin_token.is_none() && !self.insecure {
            return invalid(format!(
                "binding {} makes the node reachable from other machines: pass --admin-token TOKEN \
                 (every request must then carry `Authorization: Bearer TOKEN`) or --insecure",
                self.host
            ));
        }
        if self.max_body_bytes == 0 || self.max_module_bytes == 0 {
            return invalid("max_body_bytes and max_module_bytes must be positive".to_owned());
        }
        if let Err(message) = self.wasm.validate() {
            return invalid(message);
        }
        if self.ask_timeout_ms == 0 || self.ask_timeout_ms > self.max_ask_timeout_ms {
            return invalid(format!(
                "ask_timeout_ms must be between 1 and max_ask_timeout_ms ({})",
                self.max_ask_timeout_ms
            ));
        }
        if self.max_blob_bytes == 0 {
            return invalid("max_blob_bytes must be positive".to_owned());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid(format!("public_url starts with http:// or https://, not {url:?}"));
        }
        if self.checkpoint_every == 0 {
            return invalid("checkpoint_every must be positive".to_owned());
        }
        if self.idle_timeout_secs == 0 {
            return invalid("idle_timeout_secs must be positive".to_owned());
        }
        if self.header_timeout_ms == 0 || self.body_timeout_ms == 0 {
            return invalid("header_timeout_ms and body_timeout_ms must be positive".to_owned());
        }
        Ok(())
    }

    /// Where compiled modules are cached.
    pub(crate) fn compile_cache(&self) -> PathBuf {
        self.compile_cache_dir.clone().unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// The base of presigned URLs: `public_url`, or the bound invoke address (loopback for a
    /// node bound to every interface).
    pub(crate) fn public_url(&self, invoke: std::net::SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let mut address = invoke;
        if address.ip().is_unspecified() {
            address.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("http://{address}")
    }

    pub(crate) fn ask_timeout(&self) -> Duration {
        Duration::from_millis(self.ask_timeout_ms)
    }

    pub(crate) fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_a_token_or_insecure() {
        let public = Options { host: IpAddr::V4(Ipv4Addr::UNSPECIFIED), ..Options::default() };
        let error = public.validate().unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidArguments);
        assert!(error.message.contains("--admin-token"), "{}", error.message);
        let with_token = Options { admin_token: Some("s3cret".into()), ..public.clone() };
        assert_eq!(with_token.validate(), Ok(()));
        assert_eq!(Options { insecure: true, ..public }.validate(), Ok(()));
        assert_eq!(Options::default().validate(), Ok(()));
        let no_header_time = Options { header_timeout_ms: 0, ..Options::default() };
        assert!(no_header_time.validate().unwrap_err().message.contains("header_timeout_ms"));
    }

    #[test]
    fn a_config_file_names_only_what_it_changes() {
        let options: Options =
            serde_json::from_value(serde_json::json!({"invoke_port": 0})).unwrap();
        assert_eq!(options, Options { invoke_port: 0, ..Options::default() });
        let unknown = serde_json::from_value::<Options>(serde_json::json!({"invoke_prot": 0}));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }
}
