//! The node's API error: a catalogue code, a message a person can act on, and the facet that
//! refused the message when one did. HTTP renders it as `application/problem+json`, gRPC as a
//! status whose code follows the catalogue and whose `plexspaces-error-code` metadata carries
//! the stable code.

use plexspaces_sdk::BehaviorError;
use plexspaces_types::ErrorCode;

/// The gRPC metadata key that carries the catalogue code.
pub const GRPC_CODE_KEY: &str = "plexspaces-error-code";

/// The gRPC metadata key that carries the exception type a wasm actor raised.
pub const ERROR_TYPE_KEY: &str = "plexspaces-error-type";

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// The catalogue code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// The facet that refused the message (`facet_rejected` only).
    pub facet: Option<String>,
    /// The exception a wasm actor raised (`actor_error` from a guest).
    pub error_type: Option<String>,
}

/// The node's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), facet: None, error_type: None }
    }

    /// The problem+json body (RFC 9457) of this error.
    pub fn problem(&self) -> serde_json::Value {
        let status = self.code.http_status();
        let mut problem = serde_json::json!({
            "type": format!("https://plexspaces.dev/errors/{}", self.code.as_str()),
            "title": self.code.as_str(),
            "status": status,
            "code": self.code.as_str(),
            "detail": self.message,
        });
        if let Some(facet) = &self.facet {
            problem["facet"] = serde_json::Value::String(facet.clone());
        }
        if let Some(error_type) = &self.error_type {
            problem["error_type"] = serde_json::Value::String(error_type.clone());
        }
        problem
    }

    /// The gRPC status of this error.
    pub fn to_status(&self) -> tonic::Status {
        let mut status =
            tonic::Status::new(tonic::Code::from_i32(self.code.grpc_code()), self.message.clone());
        if let Ok(value) = self.code.as_str().parse() {
            status.metadata_mut().insert(GRPC_CODE_KEY, value);
        }
        if let Some(facet) = &self.facet
            && let Ok(value) = facet.parse()
        {
            status.metadata_mut().insert("plexspaces-facet", value);
        }
        if let Some(error_type) = &self.error_type
            && let Ok(value) = error_type.parse()
        {
            status.metadata_mut().insert(ERROR_TYPE_KEY, value);
        }
        status
    }

    /// The error a gRPC status stands for (the client side of [`Error::to_status`]).
    pub fn from_status(status: &tonic::Status) -> Self {
        let code = status
            .metadata()
            .get(GRPC_CODE_KEY)
            .and_then(|value| value.to_str().ok())
            .and_then(ErrorCode::parse)
            .unwrap_or(match status.code() {
                tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
                tonic::Code::NotFound => ErrorCode::NotFound,
                tonic::Code::InvalidArgument => ErrorCode::InvalidArguments,
                tonic::Code::DeadlineExceeded => ErrorCode::Timeout,
                tonic::Code::ResourceExhausted => ErrorCode::PayloadTooLarge,
                tonic::Code::Unavailable => ErrorCode::Unavailable,
                tonic::Code::Unimplemented => ErrorCode::MethodNotAllowed,
                _ => ErrorCode::Internal,
            });
        let facet = status
            .metadata()
            .get("plexspaces-facet")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let error_type = status
            .metadata()
            .get(ERROR_TYPE_KEY)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Self { code, message: status.message().to_owned(), facet, error_type }
    }
}

impl From<BehaviorError> for Error {
    fn from(error: BehaviorError) -> Self {
        let facet = match &error {
            BehaviorError::FacetRejected { facet, .. } => Some(facet.clone()),
            _ => None,
        };
        Self { code: error.code(), message: error.to_string(), facet, error_type: None }
    }
}

impl From<plexspaces_core::Error> for Error {
    fn from(error: plexspaces_core::Error) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl From<plexspaces_types::Refusal> for Error {
    fn from(error: plexspaces_types::Refusal) -> Self {
        Self::new(error.code, error.message)
    }
}

impl From<plexspaces_sdk::SpawnError> for Error {
    fn from(error: plexspaces_sdk::SpawnError) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        error.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_carries_the_catalogue_code_both_ways() {
        for code in ErrorCode::ALL {
            let error = Error::new(code, "what happened");
            let status = error.to_status();
            assert_eq!(status.code() as i32, code.grpc_code());
            assert_eq!(Error::from_status(&status), error);
        }
        let rejected = Error::from(BehaviorError::FacetRejected {
            facet: "fraud_detection".into(),
            reason: "fraud_detected".into(),
        });
        assert_eq!(Error::from_status(&rejected.to_status()), rejected);
        assert_eq!(rejected.problem()["facet"], "fraud_detection");
        assert_eq!(rejected.problem()["status"], 403);
    }
}
