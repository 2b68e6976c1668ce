//! The shim's error type.

/// Result of shim operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a chaincode's conversation with the peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer answered a request with ERROR.
    #[error("{message}")]
    Peer {
        /// The peer's error text.
        message: String,
    },
    /// The stream to the peer ended.
    #[error("stream to the peer closed{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    StreamClosed {
        /// Why, when known.
        detail: Option<String>,
    },
    /// The peer refused the registration.
    #[error("the peer refused to register chaincode {name}: {message}")]
    RegistrationRefused {
        /// The name the chaincode registered with.
        name: String,
        /// The peer's reason.
        message: String,
    },
    /// The peer sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A message or payload could not be decoded.
    #[error("cannot decode {what}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoding error.
        source: prost::DecodeError,
    },
    /// An argument given to the stub is not acceptable.
    #[error("{0}")]
    InvalidArgument(String),
    /// The chaincode panicked while running a transaction; the chaincode instance ends.
    #[error("chaincode panicked in transaction {txid}: {message}")]
    Panicked {
        /// The transaction that panicked.
        txid: String,
        /// The panic message.
        message: String,
    },
    /// The chaincode process is misconfigured (environment, flags, TLS files).
    #[error("invalid configuration {key}: {message}")]
    Config {
        /// The variable or flag.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Connecting to the peer failed.
    #[error("cannot connect to the peer at {address}: {message}")]
    Connect {
        /// The peer's address.
        address: String,
        /// Why.
        message: String,
    },
}

impl Error {
    pub(crate) fn decode(what: &'static str, source: prost::DecodeError) -> Self {
        Self::Decode { what, source }
    }

    pub(crate) fn closed() -> Self {
        Self::StreamClosed { detail: None }
    }
}
