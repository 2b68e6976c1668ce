//! The error type of the peer's chaincode support.

use std::sync::Arc;
use std::time::Duration;

use vm_api::Ccid;

/// Result of chaincode support operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong launching, running or talking to a chaincode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A backend failed (unknown container type, exit, build failure, …).
    #[error(transparent)]
    Vm(#[from] vm_api::Error),
    /// No chaincode of that name is defined on the channel.
    #[error("chaincode {name} is not defined on channel {channel:?}")]
    UnknownChaincode {
        /// The name asked for.
        name: String,
        /// The channel.
        channel: String,
    },
    /// The chaincode is defined on the channel, but the package the peer's organisation
    /// approved for it is not installed on this peer (Fabric's words).
    #[error("chaincode definition for '{name}' exists, but chaincode is not installed")]
    NotInstalled {
        /// The chaincode.
        name: String,
    },
    /// The call breaks the definition's Init rule (Fabric 2.x `--init-required`).
    #[error("invalid invocation: {0}")]
    InvalidInvocation(String),
    /// A call named a version other than the defined one.
    #[error("chaincode {name} is at version {defined}, not {requested}")]
    WrongVersion {
        /// The chaincode.
        name: String,
        /// The version asked for.
        requested: String,
        /// The defined version.
        defined: String,
    },
    /// Launching the chaincode failed; every launch that waited for it sees this.
    #[error("could not launch chaincode {ccid}")]
    Launch {
        /// The chaincode.
        ccid: Ccid,
        /// Why.
        #[source]
        cause: Arc<Error>,
    },
    /// The chaincode did not register within the startup timeout.
    #[error(
        "chaincode {ccid} did not register within {timeout:?}{}",
        vm_api::output::tail_suffix(output)
    )]
    StartupTimeout {
        /// The chaincode.
        ccid: Ccid,
        /// The startup timeout.
        timeout: Duration,
        /// The last lines the chaincode printed.
        output: Vec<String>,
    },
    /// No backend takes the package: none was a candidate, or each declined it or was
    /// unreachable.
    #[error(
        "no backend runs chaincode {ccid} (package type {package_type:?}){}",
        if tried.is_empty() { "; no backend takes packages of its own accord".to_owned() } else { format!("; tried {}", tried.join("; ")) }
    )]
    NoBackend {
        /// The chaincode.
        ccid: Ccid,
        /// Its package's type.
        package_type: String,
        /// Each backend tried, with why it did not take the package.
        tried: Vec<String>,
    },
    /// Building the package took longer than `chaincode.installTimeout`.
    #[error("building chaincode {ccid} took longer than {timeout:?} (chaincode.installTimeout)")]
    BuildTimeout {
        /// The chaincode.
        ccid: Ccid,
        /// The install timeout.
        timeout: Duration,
    },
    /// Dialing a chaincode served as a service failed.
    #[error("cannot connect to chaincode server {address}: {message}")]
    ChaincodeServer {
        /// The address from its `connection.json`.
        address: String,
        /// Why.
        message: String,
    },
    /// A package could not be installed or read.
    #[error(transparent)]
    Package(#[from] chaincode_package::Error),
    /// The peer refused a chaincode's registration.
    #[error("registration of chaincode {name} refused: {reason}")]
    RegistrationRefused {
        /// The name the chaincode registered with.
        name: String,
        /// Why.
        reason: String,
    },
    /// In dev mode the peer launches nothing, and this chaincode has not registered.
    #[error(
        "chaincode {name} is not running; in dev mode start it yourself (CORE_CHAINCODE_ID_NAME={name})"
    )]
    NotRunningInDevMode {
        /// The chaincode's registered name.
        name: String,
    },
    /// The chaincode did not answer within the execute timeout.
    #[error(
        "timeout expired after {timeout:?} while executing transaction {txid} on chaincode {ccid}"
    )]
    ExecuteTimeout {
        /// The chaincode.
        ccid: String,
        /// The transaction.
        txid: String,
        /// The execute timeout.
        timeout: Duration,
    },
    /// The chaincode's stream ended while a transaction waited for it.
    #[error("chaincode stream terminated: chaincode {ccid}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    StreamTerminated {
        /// The chaincode.
        ccid: String,
        /// Why the stream ended, when known.
        reason: Option<String>,
    },
    /// The chaincode answered a transaction with ERROR.
    #[error("transaction {txid} failed in chaincode {ccid}: {message}")]
    Chaincode {
        /// The chaincode.
        ccid: String,
        /// The transaction.
        txid: String,
        /// The chaincode's error text.
        message: String,
    },
    /// A transaction with this id is already running on this chaincode.
    #[error("transaction {txid} on channel {channel:?} is already running on chaincode {ccid}")]
    DuplicateTransaction {
        /// The chaincode.
        ccid: String,
        /// The channel.
        channel: String,
        /// The transaction.
        txid: String,
    },
    /// The other side broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A message or payload could not be decoded.
    #[error("cannot decode {what}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoding error.
        #[source]
        source: prost::DecodeError,
    },
    /// State access failed or is not allowed.
    #[error("{0}")]
    Ledger(String),
    /// Another transaction changed what this one read; nothing was committed.
    #[error(
        "transaction {txid} conflicts with a newer commit on {key}; nothing was committed, retry it"
    )]
    MvccConflict {
        /// The transaction.
        txid: String,
        /// The first key (`namespace/key`) found changed.
        key: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration {key}: {message}")]
    Config {
        /// The configuration key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The peer is shutting down.
    #[error("the peer is shutting down")]
    ShuttingDown,
    /// The gRPC server failed.
    #[error("the chaincode listener failed")]
    Server {
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
}

impl Error {
    pub(crate) fn decode(what: &'static str, source: prost::DecodeError) -> Self {
        Self::Decode { what, source }
    }

    /// The message with every cause after it (`outer: inner: innermost`), for places that
    /// show one line: ERROR payloads and gRPC statuses.
    pub fn report(&self) -> String {
        proto::error_chain(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_joins_causes_once() {
        let inner = Error::Vm(vm_api::Error::Exited {
            ccid: Ccid::new("kv", "1"),
            code: 2,
            output: vec!["oops".into()],
        });
        let e = Error::Launch {
            ccid: Ccid::new("kv", "1"),
            cause: Arc::new(inner),
        };
        assert_eq!(
            e.report(),
            "could not launch chaincode kv:1: chaincode kv:1 exited with 2; last output:\noops"
        );
    }
}
