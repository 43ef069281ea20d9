//! The error catalogue: one stable code per kind of failure, mapped once to HTTP and gRPC.

use std::fmt;

/// A stable, documented error code. Clients match on [`ErrorCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The addressed actor, type or resource does not exist.
    NotFound,
    /// The resource already exists (for example an actor id already taken).
    AlreadyExists,
    /// The arguments of a call are not valid.
    InvalidArguments,
    /// The payload is not valid JSON (or not the JSON the handler expects).
    InvalidJson,
    /// The actor has no handler for the message's action.
    UnknownAction,
    /// A facet attached to the actor refused the message.
    FacetRejected,
    /// The action is not valid in the actor's current state (a GenFSM).
    InvalidState,
    /// Durability was asked for an actor whose state cannot be serialized.
    StateNotSerializable,
    /// A workflow got `run` while a run is in progress.
    WorkflowRunning,
    /// The addressed actor has stopped and accepts no more messages.
    ActorStopped,
    /// The actor failed while handling the message.
    ActorError,
    /// A deadline passed before the answer came.
    Timeout,
    /// The platform failed; not the caller's fault.
    Internal,
    /// The request carries no valid credential (the admin token, when one is required).
    Unauthenticated,
    /// The request body is larger than the route accepts.
    PayloadTooLarge,
    /// The request body's media type is not one the route accepts.
    UnsupportedMediaType,
    /// A deployed module is not a valid component for this node.
    InvalidModule,
    /// Every instance that could serve the call is busy.
    PoolExhausted,
    /// The route exists but not with this HTTP method.
    MethodNotAllowed,
    /// The node cannot serve the request now (starting or shutting down); retry later.
    Unavailable,
    /// The client took too long to send its request.
    RequestTimeout,
    /// A WebAssembly guest trapped (deadline, stack, a fault): its instance was discarded and
    /// the actor keeps its last committed state.
    GuestTrapped,
    /// A durable actor's journal or checkpoint is damaged: its state is not served.
    JournalDamaged,
    /// Replaying a durable actor's journal made other host calls than the journal records (its
    /// code changed, or it is not deterministic outside its host calls).
    ReplayDiverged,
    /// A channel holds its capacity of messages: its consumers are behind (backpressure).
    ChannelFull,
    /// A presigned URL was used after it expired.
    UrlExpired,
    /// A presigned URL's signature does not match it: it was changed, or used with another
    /// method than the one it was signed for.
    SignatureInvalid,
}

impl ErrorCode {
    /// Every code, in catalogue order.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidArguments,
        ErrorCode::InvalidJson,
        ErrorCode::UnknownAction,
        ErrorCode::FacetRejected,
        ErrorCode::InvalidState,
        ErrorCode::StateNotSerializable,
        ErrorCode::WorkflowRunning,
        ErrorCode::ActorStopped,
        ErrorCode::ActorError,
        ErrorCode::Timeout,
        ErrorCode::Internal,
        ErrorCode::Unauthenticated,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidModule,
        ErrorCode::PoolExhausted,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Unavailable,
        ErrorCode::RequestTimeout,
        ErrorCode::GuestTrapped,
        ErrorCode::JournalDamaged,
        ErrorCode::ReplayDiverged,
        ErrorCode::ChannelFull,
        ErrorCode::UrlExpired,
        ErrorCode::SignatureInvalid,
    ];

    /// The code of a stable name (`"not_found"`), if it is one.
    pub fn parse(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|code| code.as_str() == name)
    }

    /// The code's stable name, as clients see it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidArguments => "invalid_arguments",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::FacetRejected => "facet_rejected",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::StateNotSerializable => "state_not_serializable",
            ErrorCode::WorkflowRunning => "workflow_running",
            ErrorCode::ActorStopped => "actor_stopped",
            ErrorCode::ActorError => "actor_error",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidModule => "invalid_module",
            ErrorCode::PoolExhausted => "pool_exhausted",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::GuestTrapped => "guest_trapped",
            ErrorCode::JournalDamaged => "journal_damaged",
            ErrorCode::ReplayDiverged => "replay_diverged",
            ErrorCode::ChannelFull => "channel_full",
            ErrorCode::UrlExpired => "url_expired",
            ErrorCode::SignatureInvalid => "signature_invalid",
        }
    }

    /// The HTTP status the code maps to.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists => 409,
            ErrorCode::InvalidArguments | ErrorCode::InvalidJson | ErrorCode::UnknownAction => 400,
            ErrorCode::FacetRejected => 403,
            ErrorCode::InvalidState => 409,
            ErrorCode::StateNotSerializable => 400,
            ErrorCode::WorkflowRunning => 409,
            ErrorCode::ActorStopped => 410,
            ErrorCode::ActorError => 500,
            ErrorCode::Timeout => 504,
            ErrorCode::Internal => 500,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::InvalidModule => 422,
            ErrorCode::PoolExhausted => 503,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Unavailable => 503,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::GuestTrapped => 500,
            ErrorCode::JournalDamaged | ErrorCode::ReplayDiverged => 500,
            ErrorCode::ChannelFull => 429,
            ErrorCode::UrlExpired | ErrorCode::SignatureInvalid => 403,
        }
    }

    /// The gRPC status code number (as in `google.rpc.Code`) the code maps to.
    pub const fn grpc_code(self) -> i32 {
        match self {
            ErrorCode::NotFound => 5,      // NOT_FOUND
            ErrorCode::AlreadyExists => 6, // ALREADY_EXISTS
            ErrorCode::InvalidArguments | ErrorCode::InvalidJson | ErrorCode::UnknownAction => 3,
            ErrorCode::FacetRejected => 7, // PERMISSION_DENIED
            ErrorCode::InvalidState => 9,  // FAILED_PRECONDITION
            ErrorCode::StateNotSerializable => 9,
            ErrorCode::WorkflowRunning => 10, // ABORTED
            ErrorCode::ActorStopped => 9,     // FAILED_PRECONDITION
            ErrorCode::ActorError => 2,       // UNKNOWN
            ErrorCode::Timeout => 4,          // DEADLINE_EXCEEDED
            ErrorCode::Internal => 13,        // INTERNAL
            ErrorCode::Unauthenticated => 16, // UNAUTHENTICATED
            ErrorCode::PayloadTooLarge => 8,  // RESOURCE_EXHAUSTED
            ErrorCode::UnsupportedMediaType | ErrorCode::InvalidModule => 3, // INVALID_ARGUMENT
            ErrorCode::PoolExhausted => 8,    // RESOURCE_EXHAUSTED
            ErrorCode::MethodNotAllowed => 12, // UNIMPLEMENTED
            ErrorCode::Unavailable => 14,     // UNAVAILABLE
            ErrorCode::RequestTimeout => 4,   // DEADLINE_EXCEEDED
            ErrorCode::GuestTrapped => 13,    // INTERNAL
            ErrorCode::JournalDamaged => 15,  // DATA_LOSS
            ErrorCode::ReplayDiverged => 13,  // INTERNAL
            ErrorCode::ChannelFull => 8,      // RESOURCE_EXHAUSTED
            ErrorCode::UrlExpired | ErrorCode::SignatureInvalid => 7, // PERMISSION_DENIED
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_distinct() {
        let all = ErrorCode::ALL;
        let mut names: Vec<_> = all.iter().map(|code| code.as_str()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for code in all {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn statuses_follow_the_catalogue() {
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
        assert_eq!(ErrorCode::Timeout.http_status(), 504);
        assert_eq!(ErrorCode::Timeout.grpc_code(), 4);
        assert_eq!(ErrorCode::InvalidArguments.http_status(), 400);
    }
}
