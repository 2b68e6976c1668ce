//! Hyperledger Fabric's chaincode protocol, wire-compatible with Fabric.
//!
//! # Layout
//!
//! - [`protos`], [`common`], [`msp`], [`queryresult`], [`lifecycle`]: the protobuf packages of
//!   the same names, generated at build time from this crate's own `.proto` files (see `protos/`),
//!   with the gRPC services `protos.ChaincodeSupport` (the peer serves it, chaincodes dial it)
//!   and `protos.Chaincode` (chaincode as a service: the chaincode serves it, the peer dials).
//! - [`message`]: small constructors and accessors for [`protos::ChaincodeMessage`] and
//!   [`protos::Response`].
//! - [`stream`]: [`stream::ChaincodeStream`], one end of a chaincode conversation, the seam
//!   that lets the same handlers run over gRPC and over in-memory channels.
//! - [`TxKey`]: the `(channel id, transaction id)` pair that names a transaction on a stream.
//!
//! Bytes fields are [`bytes::Bytes`], so decoding from a received buffer does not copy them;
//! maps are `BTreeMap`s, so encodings are deterministic.
//!
//! ```
//! use proto::protos::{ChaincodeMessage, Response};
//! use proto::MessageType;
//! use prost::Message;
//!
//! let reply = ChaincodeMessage::with_payload(
//!     MessageType::Completed,
//!     "mychannel",
//!     "tx1",
//!     Response::ok("done").encode_to_vec(),
//! );
//! let bytes = reply.encode_to_vec();
//! let back = ChaincodeMessage::decode(bytes.as_slice()).unwrap();
//! assert_eq!(back.kind(), Some(MessageType::Completed));
//! assert_eq!(back.txid, "tx1");
//! ```

// Unit tests see the dev-dependencies too; the lint matters for the library build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod message;
pub mod stream;
mod tx_key;

pub use message::MessageType;
pub use tx_key::{TxKey, TxKeyRef};

/// Fabric's `protos` package: the chaincode messages, proposals and responses, application
/// policies, private data collection configurations, and the `ChaincodeSupport` and `Chaincode`
/// gRPC services.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

/// Fabric's `common` package: transaction headers, policies (`SignaturePolicyEnvelope`,
/// `ImplicitMetaPolicy`) and the MSP principals they name (`MSPPrincipal`, `MSPRole`: Fabric
/// declares them in `msp/msp_principal.proto` but in package `common`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

/// Fabric's `msp` package: serialized identities.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

/// Fabric's `queryresult` package: the records range, rich and history queries return.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod queryresult {
    include!(concat!(env!("OUT_DIR"), "/queryresult.rs"));
}

/// Fabric's `lifecycle` package: the arguments and results of the `_lifecycle` system
/// chaincode's functions (`InstallChaincodeArgs`, `ApproveChaincodeDefinitionForMyOrgArgs`, …).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod lifecycle {
    include!(concat!(env!("OUT_DIR"), "/lifecycle.rs"));
}

/// Our own packages (`ccrt.*`), not part of Fabric.
pub mod ccrt {
    /// The reference peer's administration API (package `ccrt.admin`): install, execute signed
    /// proposals, list, stop.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod admin {
        include!(concat!(env!("OUT_DIR"), "/ccrt.admin.rs"));
    }
}

pub use ccrt::admin;

/// The encoded `FileDescriptorSet` of every `.proto` file in this crate, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

pub use prost;
pub use prost_types::Timestamp;

/// An error with every cause after it, on one line (`outer: inner: innermost`), a cause left
/// out when the text before it already holds it: for places that carry one line, such as
/// ERROR payloads and gRPC statuses.
///
/// ```
/// let e = std::io::Error::other("disk on fire");
/// assert_eq!(proto::error_chain(&e), "disk on fire");
/// ```
pub fn error_chain(error: &(dyn std::error::Error + '_)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
