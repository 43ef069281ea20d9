//! The host's error: a catalogue code and a message a person can act on.

use plexspaces_types::ErrorCode;

/// Why loading a module or serving a message failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// The catalogue code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// The exception a guest raised, when it raised one (`actor_error`).
    pub error_type: Option<String>,
    /// The facet that refused the message (`facet_rejected`).
    pub facet: Option<String>,
}

/// The host's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), error_type: None, facet: None }
    }

    /// A module that cannot be served.
    pub fn invalid_module(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidModule, message)
    }

    /// A failure of the host itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl From<plexspaces_types::Refusal> for Error {
    fn from(refusal: plexspaces_types::Refusal) -> Self {
        Self::new(refusal.code, refusal.message)
    }
}

impl From<&Error> for plexspaces_types::Refusal {
    fn from(error: &Error) -> Self {
        Self::new(error.code, error.message.clone())
    }
}
