//! What each instance's store holds: WASI (stdio captured, clocks, random; no files, no
//! sockets), the limits, the actor being served, and the host functions of the world.

use std::{
    future::Future,
    hash::BuildHasher as _,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use plexspaces_storage::journal::Origin;
use plexspaces_types::{ActorId, ErrorCode};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{
    ResourceTable, WasiCtx, WasiCtxView, WasiView,
    cli::{IsTerminal, StdoutStream},
    p2::{OutputStream, Pollable, StreamError},
};

use crate::{
    Error,
    bindings::{HostError, LogLevel, plexspaces::actor},
    durable::{self, CallKind, MonotonicClock, Random, Slot, WallClock, journaled},
    logs::{Logs, Stream},
    services::Services,
};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How guests reach other actors: the node implements it over its registry.
pub trait Outbound: Send + Sync + 'static {
    /// Queues `{"action": action, ...payload}` for `target`, resolved inside `from`'s tenant.
    /// `origin` is the deterministic id of a durable sender's call: a durable receiver drops
    /// one it has seen.
    fn tell(
        &self,
        from: &ActorId,
        target: &str,
        action: &str,
        payload: &[u8],
        origin: Option<Origin>,
    ) -> Result<(), Error>;

    /// Sends and waits for the reply (JSON bytes); `None` uses the node's default timeout.
    fn ask<'a>(
        &'a self,
        from: &'a ActorId,
        target: &'a str,
        action: &'a str,
        payload: &'a [u8],
        timeout: Option<Duration>,
        origin: Option<Origin>,
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>>;
}

/// The largest output one call may print; past it, output is dropped and counted.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// Captured stdout or stderr of one instance, drained after each call.
#[derive(Debug, Default)]
pub(crate) struct Output {
    buffer: Mutex<Vec<u8>>,
    dropped: AtomicU64,
}

impl Output {
    fn write(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock();
        let room = OUTPUT_LIMIT.saturating_sub(buffer.len());
        let kept = bytes.len().min(room);
        buffer.extend_from_slice(&bytes[..kept]);
        if kept < bytes.len() {
            self.dropped.fetch_add((bytes.len() - kept) as u64, Ordering::Relaxed);
        }
    }

    /// Takes what was printed, as lines (a partial last line included).
    pub(crate) fn take(&self) -> (Vec<String>, u64) {
        let bytes = std::mem::take(&mut *self.buffer.lock());
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if bytes.is_empty() {
            return (Vec::new(), dropped);
        }
        let text = String::from_utf8_lossy(&bytes);
        (text.lines().map(str::to_owned).collect(), dropped)
    }
}

/// The WASI stdout/stderr of an instance: writes land in its [`Output`], never on the
/// node's own streams.
#[derive(Clone)]
struct Capture(Arc<Output>);

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.0.write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(OUTPUT_LIMIT)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.write(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Memory and table limits of one instance. Memory is counted over all of the instance's
/// linear memories together.
#[derive(Debug)]
pub(crate) struct Limits {
    memory_limit: usize,
    table_elements: usize,
    /// Bytes of linear memory the instance holds now.
    pub(crate) memory: usize,
    /// Growth requests refused.
    pub(crate) refused: u64,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory.saturating_sub(current).saturating_add(desired);
        if total > self.memory_limit {
            self.refused += 1;
            return Ok(false);
        }
        self.memory = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.refused += 1;
            return Ok(false);
        }
        Ok(true)
    }
}

/// The store data of one instance.
pub(crate) struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: Limits,
    /// The actor whose message the instance is handling.
    pub(crate) serving: Option<ActorId>,
    /// Epoch ticks (about 1 ms each) of guest code in the current call.
    pub(crate) ticks: u64,
    pub(crate) deadline_ticks: u64,
    pub(crate) stdout: Arc<Output>,
    pub(crate) stderr: Arc<Output>,
    pub(crate) outbound: Arc<dyn Outbound>,
    pub(crate) logs: Logs,
    pub(crate) services: Services,
    /// The journal of the durable actor being served, shared with the WASI clocks and random.
    pub(crate) journal: Slot,
}

impl Ctx {
    pub(crate) fn new(
        outbound: Arc<dyn Outbound>,
        services: Services,
        logs: Logs,
        memory_limit: usize,
        table_elements: usize,
        deadline_ticks: u64,
    ) -> Self {
        let stdout = Arc::new(Output::default());
        let stderr = Arc::new(Output::default());
        let journal = Slot::default();
        let mut builder = WasiCtx::builder();
        // Stdio, clocks and random come from the host (journaled for durable actors); no
        // preopened directory, no network.
        builder
            .wall_clock(WallClock(Arc::clone(&journal)))
            .monotonic_clock(MonotonicClock(Arc::clone(&journal)))
            .secure_random(Random {
                slot: Arc::clone(&journal),
                inner: wasmtime_wasi::random::thread_rng(),
            })
            .insecure_random(Random {
                slot: Arc::clone(&journal),
                inner: wasmtime_wasi::random::thread_rng(),
            })
            .stdout(Capture(Arc::clone(&stdout)))
            .stderr(Capture(Arc::clone(&stderr)))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limits: Limits { memory_limit, table_elements, memory: 0, refused: 0 },
            serving: None,
            ticks: 0,
            deadline_ticks,
            stdout,
            stderr,
            outbound,
            logs,
            services,
            journal,
        }
    }

    /// Logs what the guest printed during the call, tagged with the actor it served.
    pub(crate) fn flush_output(&self, actor: &ActorId) {
        for (output, stream) in [(&self.stdout, Stream::Stdout), (&self.stderr, Stream::Stderr)] {
            let (lines, dropped) = output.take();
            for line in lines {
                self.logs.push(actor, stream.level(), stream, line);
            }
            if dropped > 0 {
                self.logs.push(
                    actor,
                    "warn",
                    stream,
                    format!("{dropped} bytes of output dropped: one call may print {OUTPUT_LIMIT}"),
                );
            }
        }
    }

    pub(crate) fn serving(&self) -> Result<&ActorId, HostError> {
        self.serving.as_ref().ok_or_else(|| HostError {
            code: ErrorCode::InvalidState.as_str().to_owned(),
            message: "host calls are made while handling a message".to_owned(),
            error_type: None,
        })
    }

    /// The tenant and namespace of the actor being served: the scope of its service calls.
    pub(crate) fn scope(&self) -> Result<(String, String), HostError> {
        let me = self.serving()?;
        Ok((me.tenant.as_str().to_owned(), me.namespace.as_str().to_owned()))
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl From<Error> for HostError {
    fn from(error: Error) -> Self {
        HostError {
            code: error.code.as_str().to_owned(),
            message: error.message,
            error_type: error.error_type,
        }
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// Seeds for `random-u64`: one counter, hashed with a process-random key.
static RANDOM_COUNTER: AtomicU64 = AtomicU64::new(0);

impl actor::types::Host for Ctx {}

impl actor::host::Host for Ctx {
    async fn actor_id(&mut self) -> String {
        match &self.serving {
            Some(id) => format!("{}/{}/{}", id.namespace, id.actor_type, id.key),
            None => String::new(),
        }
    }

    async fn tell(
        &mut self,
        target: String,
        action: String,
        payload: String,
    ) -> Result<(), HostError> {
        journaled!(self, CallKind::Tell, effect = true, |this| {
            let from = this.serving()?.clone();
            let origin = durable::origin(&this.journal);
            Ok(this.outbound.tell(&from, &target, &action, payload.as_bytes(), origin)?)
        })
    }

    async fn ask(
        &mut self,
        target: String,
        action: String,
        payload: String,
        timeout_ms: u32,
    ) -> Result<String, HostError> {
        journaled!(self, CallKind::Ask, effect = true, |this| {
            let from = this.serving()?.clone();
            let timeout = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
            let origin = durable::origin(&this.journal);
            let reply = this
                .outbound
                .ask(&from, &target, &action, payload.as_bytes(), timeout, origin)
                .await?;
            String::from_utf8(reply).map_err(|_| HostError {
                code: ErrorCode::Internal.as_str().to_owned(),
                message: "the reply is not UTF-8".to_owned(),
                error_type: None,
            })
        })
    }

    async fn log(&mut self, level: LogLevel, message: String) {
        // A replayed message said it already.
        if let Some(actor) = &self.serving
            && !durable::replaying(&self.journal)
        {
            self.logs.push(actor, level_name(level), Stream::Log, message);
        }
    }

    async fn now_ms(&mut self) -> u64 {
        durable::journaled_value(&self.journal, CallKind::NowMs, || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        })
    }

    async fn random_u64(&mut self) -> u64 {
        durable::journaled_value(&self.journal, CallKind::RandomU64, || {
            static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
            let keys = KEYS.get_or_init(std::hash::RandomState::new);
            keys.hash_one(RANDOM_COUNTER.fetch_add(1, Ordering::Relaxed))
        })
    }
}
