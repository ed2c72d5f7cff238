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
    /// Nobody serves the stage's commands: it is not running (or did not start serving
    /// within the time the caller allowed).
    #[error("{stage} is not running (no one serves its commands; waited {waited_ms} ms)")]
    NoServer {
        /// The stage that was asked.
        stage: &'static str,
        /// How long we waited for a server.
        waited_ms: u64,
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
        let mut detail = format!("{err:?}");
        if detail.contains("CorruptedState") {
            // What a running khorus from before the postcard service configs (or damaged
            // files) looks like to this one: say what to do.
            detail.push_str(
                " — the bus holds services this khorus cannot read: a khorus of another version \
                 still runs on it (stop it with the binary that started it, or end its \
                 processes), or its files are damaged (set KHORUS_BUS_PREFIX to use another bus)",
            );
        }
        Self::Iceoryx {
            action: action.to_string(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Fake {
        ServiceInCorruptedState,
        DoesNotExist,
    }

    /// A bus written by another khorus version reads as corrupted to iceoryx2: the message
    /// says so and what to do; other errors are left as they are.
    #[test]
    fn a_bus_this_khorus_cannot_read_is_explained() {
        let e = BusError::iceoryx("open service khorus/notes", Fake::ServiceInCorruptedState);
        let text = e.to_string();
        assert!(text.starts_with("failed to open service khorus/notes: ServiceInCorruptedState"));
        assert!(text.contains("another version"), "{text}");
        let plain = BusError::iceoryx("open service khorus/notes", Fake::DoesNotExist).to_string();
        assert_eq!(plain, "failed to open service khorus/notes: DoesNotExist");
    }
}
