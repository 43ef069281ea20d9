//! The host's limits and pool sizes.

use std::time::Duration;

/// Limits every guest call runs under, and how instances are pooled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// How long one call may run guest code (waiting host calls not counted), in ms.
    pub deadline_ms: u64,
    /// The memory one instance may grow to, in MiB.
    pub memory_limit_mib: u64,
    /// The elements one table may grow to.
    pub table_elements: usize,
    /// The guest's stack, in KiB (a deeper recursion traps).
    pub max_wasm_stack_kib: usize,
    /// Instances per deployed module: a waiting actor keeps its instance and others get
    /// another one, up to this many.
    pub max_instances: usize,
    /// Instances per deployed module pinned to one actor each: an actor whose state lives in
    /// the guest (a Rust state without serde) keeps an instance of its own while it is active.
    pub max_pinned_instances: usize,
    /// How long a message waits for an instance when all are lent, before `pool_exhausted`.
    pub pool_wait_ms: u64,
    /// An instance whose memory has grown past this (MiB) is retired when it is handed back,
    /// since guest memory never shrinks; its actors reload from their committed state.
    pub recycle_memory_mib: u64,
    /// Lines of guest output kept per actor type.
    pub log_lines: usize,
    /// How long a deploy waits for its module to compile, in ms, before it is refused.
    pub compile_timeout_ms: u64,
    /// Compiles that may run at once (default: the machine's cores). A compile past its
    /// timeout cannot be interrupted: it keeps its slot until it ends.
    pub compile_slots: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            deadline_ms: 5_000,
            memory_limit_mib: 256,
            table_elements: 1_000_000,
            max_wasm_stack_kib: 512,
            max_instances: 32,
            max_pinned_instances: 1_024,
            pool_wait_ms: 200,
            recycle_memory_mib: 192,
            log_lines: 1_000,
            compile_timeout_ms: 120_000,
            compile_slots: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

impl Options {
    /// The epoch deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// Refuses settings the host cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("deadline_ms", self.deadline_ms),
            ("memory_limit_mib", self.memory_limit_mib),
            ("max_instances", self.max_instances as u64),
            ("max_wasm_stack_kib", self.max_wasm_stack_kib as u64),
            ("log_lines", self.log_lines as u64),
            ("compile_timeout_ms", self.compile_timeout_ms),
            ("compile_slots", self.compile_slots as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("wasm.{name} must be positive"));
            }
        }
        if self.max_wasm_stack_kib > 64 * 1024 {
            return Err("wasm.max_wasm_stack_kib must be at most 65536".to_owned());
        }
        Ok(())
    }
}
