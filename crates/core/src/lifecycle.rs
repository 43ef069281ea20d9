//! Lifecycle states of an actor and the per-state gauges the system keeps for metrics.

use std::{
    fmt,
    sync::atomic::{AtomicI64, Ordering},
};

/// Where an actor is in its life.
///
/// ```text
/// Created ─► Activating ─► Active ─► Deactivating ─► Inactive ─► Activating ─► …
///                │            │            │
///                └────────────┴────────────┴──► Failed (abnormal exit) | Terminated (normal)
/// ```
/// `Failed` and `Terminated` are final: a restarted actor is a new incarnation with a new pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Lifecycle {
    /// Spawned; no message handled yet.
    Created = 0,
    /// Its activation hook is running.
    Activating = 1,
    /// Activated: handling messages or waiting for them.
    Active = 2,
    /// Its deactivation hook is running (idle timeout or graceful stop).
    Deactivating = 3,
    /// Deactivated after being idle; its snapshot is kept and the next message reactivates it.
    Inactive = 4,
    /// Stopped for an abnormal reason (a panic, an error, a linked actor's failure, a kill).
    Failed = 5,
    /// Stopped normally.
    Terminated = 6,
}

impl Lifecycle {
    /// Every state, in declaration order.
    pub const ALL: [Lifecycle; 7] = [
        Lifecycle::Created,
        Lifecycle::Activating,
        Lifecycle::Active,
        Lifecycle::Deactivating,
        Lifecycle::Inactive,
        Lifecycle::Failed,
        Lifecycle::Terminated,
    ];

    /// The state's name in metrics and APIs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Created => "created",
            Lifecycle::Activating => "activating",
            Lifecycle::Active => "active",
            Lifecycle::Deactivating => "deactivating",
            Lifecycle::Inactive => "inactive",
            Lifecycle::Failed => "failed",
            Lifecycle::Terminated => "terminated",
        }
    }

    /// Whether the actor has stopped for good.
    pub const fn is_final(self) -> bool {
        matches!(self, Lifecycle::Failed | Lifecycle::Terminated)
    }

    pub(crate) const fn from_u8(value: u8) -> Lifecycle {
        match value {
            0 => Lifecycle::Created,
            1 => Lifecycle::Activating,
            2 => Lifecycle::Active,
            3 => Lifecycle::Deactivating,
            4 => Lifecycle::Inactive,
            5 => Lifecycle::Failed,
            _ => Lifecycle::Terminated,
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many actors are in each lifecycle state; final states count actors ever stopped.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    by_state: [AtomicI64; 7],
}

impl Gauges {
    pub(crate) fn enter(&self, state: Lifecycle) {
        self.by_state[state as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self, state: Lifecycle) {
        self.by_state[state as usize].fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, state: Lifecycle) -> i64 {
        self.by_state[state as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_u8() {
        for state in Lifecycle::ALL {
            assert_eq!(Lifecycle::from_u8(state as u8), state);
        }
        assert!(Lifecycle::Failed.is_final());
        assert!(!Lifecycle::Inactive.is_final());
    }
}
