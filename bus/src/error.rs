//! The bus's error type.

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A node, service or prefix name iceoryx2 does not accept.
    #[error("invalid bus name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// iceoryx2 refused an operation.
    #[error("failed to {action}: {detail}")]
    Iceoryx {
        /// What khorus was doing.
        action: String,
        /// iceoryx2's error, formatted.
        detail: String,
    },
    /// A command could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    /// No reply to a command before the deadline.
    #[error("no reply from {stage} within {timeout_ms} ms (is it running?)")]
    Timeout {
        /// The stage that was asked.
        stage: &'static str,
        /// How long we waited.
        timeout_ms: u64,
    },
    /// The server answered with an error.
    #[error("{stage} refused the command: {error}")]
    Refused {
        /// The stage that refused.
        stage: &'static str,
        /// The reply's error.
        error: crate::command::ReplyError,
    },
}

impl BusError {
    pub(crate) fn iceoryx(action: &str, err: impl std::fmt::Debug) -> Self {
        Self::Iceoryx {
            action: action.to_string(),
            detail: format!("{err:?}"),
        }
    }
}
