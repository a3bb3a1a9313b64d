//! Why a reconcile produced no desired state.

use std::fmt;

/// A reconcile that did not produce a desired state. The host writes nothing for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Something transient: the host retries with exponential backoff.
    Retry(String),
    /// Something only a change can fix: not retried until the object changes.
    Permanent(String),
}

/// `Result<T, wasmop_sdk::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A transient failure, retried with backoff: `Error::retry("backend not ready")`.
    pub fn retry(message: impl Into<String>) -> Error {
        Error::Retry(message.into())
    }

    /// A failure only a change of the object can fix (an invalid spec, a missing field).
    pub fn permanent(message: impl Into<String>) -> Error {
        Error::Permanent(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Error::Retry(m) | Error::Permanent(m) => m,
        }
    }

    /// Whether the host retries it.
    pub fn is_retry(&self) -> bool {
        matches!(self, Error::Retry(_))
    }

    /// The same error with `context: ` before its message.
    pub fn context(self, context: impl fmt::Display) -> Error {
        match self {
            Error::Retry(m) => Error::Retry(format!("{context}: {m}")),
            Error::Permanent(m) => Error::Permanent(format!("{context}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Retry(m) => write!(f, "{m} (will retry)"),
            Error::Permanent(m) => write!(f, "{m} (permanent)"),
        }
    }
}

impl std::error::Error for Error {}

/// An object or configuration that does not deserialise stays that way until it changes: a
/// permanent error.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Permanent(e.to_string())
    }
}

/// How the host sees a plugin's error.
impl From<Error> for wasmop_contract::ReconcileFailure {
    fn from(e: Error) -> wasmop_contract::ReconcileFailure {
        match e {
            Error::Retry(m) => wasmop_contract::ReconcileFailure::Retry(m),
            Error::Permanent(m) => wasmop_contract::ReconcileFailure::Permanent(m),
        }
    }
}
