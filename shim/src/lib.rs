//! The chaincode side of Fabric's chaincode protocol.
//!
//! Write a chaincode by implementing [`Chaincode`]; each transaction gets a
//! [`ChaincodeStub`] to read its arguments and proposal, read and write state, run queries,
//! set an event and call other chaincodes.
//!
//! # Layout
//!
//! - [`Chaincode`], [`success`], [`error`]: what a chaincode implements and returns.
//! - [`ChaincodeStub`]: the per-transaction API (state, private data, metadata, ranges with
//!   batched iteration and pagination, composite keys, history, rich queries, cc-to-cc calls,
//!   events, creator / transient map / timestamp / signed proposal).
//! - [`QueryIterator`]: query results, fetched batch by batch.
//! - [`create_composite_key`], [`split_composite_key`]: Fabric's composite key layout.
//! - [`SystemChaincode`]: registers a system chaincode with `inventory`.
//! - The handler (private): the protocol state machine, over one transport seam,
//!   [`proto::stream::ChaincodeStream`], run by [`serve_stream`]. Transports:
//!   [`start`] dials the peer over gRPC (Fabric's flags, environment and TLS files, see
//!   [`ClientConfig`]), or serves as a service when `CHAINCODE_SERVER_ADDRESS` is set (see
//!   [`ServerConfig`]), and ends on SIGTERM; [`serve`] is chaincode as a service (the peer
//!   dials us);
//!   [`inproc::serve`] runs over in-memory streams inside the peer.
//!
//! # A chaincode
//!
//! ```
//! use shim::{Chaincode, ChaincodeStub, Response};
//!
//! struct Counter;
//!
//! #[shim::async_trait]
//! impl Chaincode for Counter {
//!     async fn invoke(&self, stub: &ChaincodeStub) -> Response {
//!         let (function, params) = stub.function_and_parameters();
//!         let Some(key) = params.first() else {
//!             return shim::error("expected a key");
//!         };
//!         let current = match stub.get_state(key).await {
//!             Ok(value) => value,
//!             Err(e) => return shim::error(e.to_string()),
//!         };
//!         let n: u64 = current
//!             .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
//!             .unwrap_or(0);
//!         match function.as_str() {
//!             "incr" => match stub.put_state(key, (n + 1).to_string()).await {
//!                 Ok(()) => shim::success((n + 1).to_string()),
//!                 Err(e) => shim::error(e.to_string()),
//!             },
//!             "get" => shim::success(n.to_string()),
//!             other => shim::error(format!("unknown function {other}")),
//!         }
//!     }
//! }
//! # let _ = Counter;
//! ```

// Unit tests see the dev-dependencies too; the lint matters for the library build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod chaincode;
mod client;
mod composite;
mod config;
mod error;
mod handler;
pub mod inproc;
mod iterator;
mod proposal;
mod server;
mod stub;

pub use chaincode::{Chaincode, SystemChaincode, error, success, system_chaincodes};
pub use client::{connect, start, start_with};
pub use composite::{
    COMPOSITE_KEY_NAMESPACE, EMPTY_KEY_SUBSTITUTE, MAX_UNICODE_RUNE, create_composite_key,
    split_composite_key,
};
pub use config::{ClientConfig, ClientTls};
pub use error::{Error, Result};
pub use handler::serve_stream;
pub use iterator::{HistoryQueryIterator, QueryIterator, StateQueryIterator};
pub use server::{ServerConfig, ServerTls, serve};
pub use stub::{ChaincodeStub, VALIDATION_PARAMETER};

pub use async_trait::async_trait;
pub use bytes::Bytes;
pub use inventory;
pub use proto::protos::{QueryResponseMetadata, Response};
pub use proto::queryresult::{KeyModification, Kv};
