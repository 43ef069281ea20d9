//! Errors a handler returns to its caller.

use plexspaces_types::ErrorCode;

/// Why a handler did not produce a reply. It goes back to the caller with a stable code; the
/// actor keeps running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BehaviorError {
    /// No handler for this action.
    #[error("{}", unknown_action(.0))]
    UnknownAction(String),
    /// The payload is not the JSON the handler expects (`?` on `serde_json` results).
    #[error("invalid json: {0}")]
    InvalidJson(#[from] serde_json::Error),
    /// The payload lacks or mistypes an argument.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// A GenFSM actor got an action that is not valid in its current state; nothing changed.
    #[error("action {action:?} is not valid in state {state:?}")]
    InvalidState {
        /// The action.
        action: String,
        /// The state the actor is in.
        state: &'static str,
    },
    /// A workflow got `run` while a run is in progress.
    #[error("the workflow is already running; one run at a time")]
    WorkflowRunning,
    /// A facet attached to the actor refused the message; the handler did not run.
    #[error("facet {facet} rejected the message: {reason}")]
    FacetRejected {
        /// The facet's name.
        facet: String,
        /// Its reason.
        reason: String,
    },
    /// The handler failed; the message is the actor's own.
    #[error("{0}")]
    ProcessingError(String),
}

fn unknown_action(action: &str) -> String {
    if action.is_empty() {
        "the message names no action: a JSON payload names it in its \"action\" field".to_owned()
    } else {
        format!("unknown action {action:?}")
    }
}

impl BehaviorError {
    /// The stable catalogue code.
    pub fn code(&self) -> ErrorCode {
        match self {
            BehaviorError::UnknownAction(_) => ErrorCode::UnknownAction,
            BehaviorError::InvalidJson(_) => ErrorCode::InvalidJson,
            BehaviorError::InvalidArguments(_) => ErrorCode::InvalidArguments,
            BehaviorError::FacetRejected { .. } => ErrorCode::FacetRejected,
            BehaviorError::InvalidState { .. } => ErrorCode::InvalidState,
            BehaviorError::WorkflowRunning => ErrorCode::WorkflowRunning,
            BehaviorError::ProcessingError(_) => ErrorCode::ActorError,
        }
    }
}

/// Why an SDK actor could not be spawned.
#[cfg(not(target_family = "wasm"))]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// A facet name is unknown or its config was refused.
    #[error(transparent)]
    Facet(#[from] plexspaces_core::FacetError),
    /// Durability was asked for a state that cannot be checkpointed.
    #[error(
        "state {state} cannot be checkpointed, so it cannot be durable: derive Serialize and Deserialize for it"
    )]
    StateNotSerializable {
        /// The state's type.
        state: &'static str,
    },
    /// The runtime refused the spawn (for example, the id is taken).
    #[error(transparent)]
    Runtime(#[from] plexspaces_core::Error),
}

#[cfg(not(target_family = "wasm"))]
impl SpawnError {
    /// The stable catalogue code.
    pub fn code(&self) -> ErrorCode {
        match self {
            SpawnError::Facet(_) => ErrorCode::InvalidArguments,
            SpawnError::StateNotSerializable { .. } => ErrorCode::StateNotSerializable,
            SpawnError::Runtime(error) => error.code(),
        }
    }
}
