//! The runtime's error type: every failure a caller of the runtime can see.

use std::time::Duration;

use plexspaces_types::{ActorId, ErrorCode};

use crate::ExitReason;

/// What went wrong in a call into the runtime.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The actor has stopped (or stopped while the message waited) and takes no more messages.
    #[error("actor {0} has stopped")]
    Stopped(ActorId),
    /// No answer came within the ask's timeout.
    #[error("ask to {id} timed out after {after:?}")]
    Timeout {
        /// The asked actor.
        id: ActorId,
        /// The timeout that passed.
        after: Duration,
    },
    /// The actor crashed while handling the message.
    #[error("actor {id} failed while handling the message: {reason}")]
    Failed {
        /// The actor that failed.
        id: ActorId,
        /// Why it stopped.
        reason: ExitReason,
    },
    /// An actor with this id is already running.
    #[error("an actor named {0} already exists")]
    AlreadyExists(ActorId),
    /// No actor with this id is running.
    #[error("no actor named {0}")]
    NotFound(ActorId),
    /// The actor exists but is of another Rust type than the one asked for.
    #[error("actor {0} is not of the requested type")]
    WrongType(ActorId),
    /// The system is shutting down and starts no new actors.
    #[error("the actor system is shutting down")]
    ShuttingDown,
    /// The system was built outside a tokio runtime.
    #[error("no tokio runtime: build the actor system from inside one")]
    NoRuntime,
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable catalogue code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Stopped(_) => ErrorCode::ActorStopped,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::Failed { .. } => ErrorCode::ActorError,
            Error::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::WrongType(_) => ErrorCode::InvalidArguments,
            Error::ShuttingDown => ErrorCode::Unavailable,
            Error::NoRuntime => ErrorCode::Internal,
        }
    }
}
