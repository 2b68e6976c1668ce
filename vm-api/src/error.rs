//! The one error type of the VM layer.

use crate::Ccid;

/// A boxed error from a backend's own library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result of VM operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting, stopping or waiting for a chaincode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No backend is registered for the requested container type.
    #[error("unknown container type {requested:?}; registered container types: {}", registered.join(", "))]
    UnknownContainerType {
        /// The type asked for.
        requested: String,
        /// The types that are registered, sorted.
        registered: Vec<String>,
    },
    /// Two crates registered a provider (or platform) under the same key.
    #[error("{kind} {key:?} is registered twice")]
    DuplicateRegistration {
        /// What was registered (`container type`, `platform`, `system chaincode`).
        kind: &'static str,
        /// The key registered twice.
        key: String,
    },
    /// The backend does not know this chaincode.
    #[error("unknown chaincode {ccid}")]
    UnknownChaincode {
        /// The chaincode asked for.
        ccid: Ccid,
    },
    /// The chaincode is already running in this backend.
    #[error("chaincode {ccid} is already running")]
    AlreadyRunning {
        /// The chaincode.
        ccid: Ccid,
    },
    /// Stop or wait named a chaincode that is not running.
    #[error("chaincode {ccid} is not running")]
    NotRunning {
        /// The chaincode.
        ccid: Ccid,
    },
    /// Building the chaincode's image or package failed.
    #[error(
        "building chaincode {ccid} failed: {message}{}",
        crate::output::tail_suffix(output)
    )]
    Build {
        /// The chaincode.
        ccid: Ccid,
        /// What failed.
        message: String,
        /// The last lines of the build output.
        output: Vec<String>,
    },
    /// The chaincode's container or process exited.
    #[error(
        "chaincode {ccid} exited with {code}{}",
        crate::output::tail_suffix(output)
    )]
    Exited {
        /// The chaincode.
        ccid: Ccid,
        /// Its exit code (128 + signal number when a signal ended it).
        code: i64,
        /// The last lines it printed.
        output: Vec<String>,
    },
    /// An in-process chaincode panicked.
    #[error("chaincode {ccid} panicked: {message}")]
    Panicked {
        /// The chaincode.
        ccid: Ccid,
        /// The panic message.
        message: String,
    },
    /// The backend's daemon or runtime cannot be reached.
    #[error("cannot reach {backend} at {endpoint}: {source}")]
    Unreachable {
        /// The backend (`Docker`, …).
        backend: &'static str,
        /// Where it was looked for.
        endpoint: String,
        /// Why it could not be reached.
        source: BoxError,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration {key}: {message}")]
    Config {
        /// The configuration key, in its dotted `core.yaml` form.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A name breaks a naming rule of the backend.
    #[error("invalid name {name:?}: {rule}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A request is missing something the backend needs.
    #[error("chaincode {ccid}: {message}")]
    BadRequest {
        /// The chaincode.
        ccid: Ccid,
        /// What is missing or wrong.
        message: String,
    },
    /// A package is not what its type needs (no executable, no `package.json`, …).
    #[error("invalid package: {message}")]
    InvalidPackage {
        /// What is wrong with it.
        message: String,
    },
    /// Something read from outside the peer (a `connection.json`, a builder's output) is
    /// malformed.
    #[error("malformed {what}: {message}")]
    Malformed {
        /// What was read.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// An I/O operation of the backend failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Any other failure of a backend.
    #[error("{backend}: {message}")]
    Backend {
        /// The backend that failed.
        backend: &'static str,
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exited_error_shows_code_and_output() {
        let e = Error::Exited {
            ccid: Ccid::new("kv", "1"),
            code: 3,
            output: vec!["panic: boom".into(), "bye".into()],
        };
        assert_eq!(
            e.to_string(),
            "chaincode kv:1 exited with 3; last output:\npanic: boom\nbye"
        );
    }

    #[test]
    fn unknown_type_lists_registered() {
        let e = Error::UnknownContainerType {
            requested: "FOO".into(),
            registered: vec!["DOCKER".into(), "SYSTEM".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown container type \"FOO\"; registered container types: DOCKER, SYSTEM"
        );
    }
}
