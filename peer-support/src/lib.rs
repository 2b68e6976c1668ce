//! The peer's chaincode support: launch chaincodes through pluggable backends, speak the
//! chaincode protocol with them, and run their transactions against state.
//!
//! # Layout
//!
//! - [`ChaincodeSupport`]: `launch`, `execute`/`init`, `handle_chaincode_stream`, `stop`,
//!   `shutdown`; built with [`ChaincodeSupport::builder`].
//! - Launch path: the runtime launcher (one launch per chaincode however many ask: build,
//!   start, then wait for the chaincode to dial in or dial its server; startup timeout,
//!   cleanup on failure) → [`ContainerRuntime`] (the build, on the definition's backend or
//!   the one the router picks, within `chaincode.installTimeout`; the launch data: package,
//!   platform, peer connection with a fresh TLS identity) → [`VmController`] (the backend
//!   registered for the container type, one build/start/stop at a time per chaincode).
//! - Packages: [`ChaincodeSupport::install_package`] keeps Fabric 2.x packages by package ID
//!   (the `chaincode-package` crate) and builds them; [`ChaincodeDefinition::packaged`] runs
//!   one under a chaincode name.
//! - [`HandlerRegistry`]: registered chaincodes and launches in progress.
//! - The handler (private): the peer's protocol state machine per stream, with transaction
//!   contexts, query iterators in batches of 100, pagination, and chaincode-to-chaincode calls.
//! - [`ledger`]: the state traits the handler calls, and a ledger with MVCC-validated commits
//!   over any [`ledger::VersionedDb`] (an in-memory one included).
//! - [`ChaincodeDefinitions`]: which chaincodes exist and where they run.
//! - [`proposal`]: builds the signed proposals shims expect.
//! - [`policy`]: Fabric's signature-policy language (`AND('Org1MSP.member', …)`) to the
//!   envelope Fabric builds, and back; [`collections`]: private data collection
//!   configurations (`--collections-config` JSON), checked as Fabric checks them.
//! - [`server`]: the gRPC `ChaincodeSupport/Register` server, feeding the same handler;
//!   [`caas`]: dials a chaincode served as a service (`Chaincode/Connect`).
//! - [`tls`]: the chaincode CA: per-launch client certificates, checked at registration.
//! - [`metrics`]: Prometheus collectors with Fabric's chaincode metric names, registered in a
//!   registry the embedding program gives ([`ChaincodeSupportBuilder::metrics`]).
//!
//! # Running a transaction
//!
//! ```
//! # async fn demo(support: peer_support::ChaincodeSupport) -> peer_support::Result<()> {
//! use peer_support::ledger::Ledger;
//! use peer_support::TxParams;
//! use proto::protos::ChaincodeInput;
//!
//! let ledger = Ledger::in_memory("mychannel");
//! let simulator = ledger.new_tx_simulator();
//! let params = TxParams {
//!     tx_id: "tx1".into(),
//!     channel_id: "mychannel".into(),
//!     simulator: Some(simulator.clone()),
//!     ..TxParams::default()
//! };
//! let input = ChaincodeInput { args: vec!["put".into(), "k".into(), "v".into()], ..Default::default() };
//! let result = support.execute(&params, "kvscc", input).await?;
//! assert_eq!(result.response.status, 200);
//! ledger.commit("tx1", None, &simulator.rwset())?;
//! # Ok(()) }
//! ```

// Unit tests see the dev-dependencies too; the lint matters for the library build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod caas;
mod chaincode_identity;
mod chaincode_support;
pub mod collections;
mod config;
mod container_runtime;
mod definitions;
mod error;
mod handler;
mod handler_registry;
pub mod ledger;
pub mod metrics;
pub mod policy;
pub mod proposal;
mod query;
mod router;
mod runtime_launcher;
pub mod server;
pub mod tls;
mod tx_context;
mod vm_controller;

pub use chaincode_identity::{ClientCertIssuer, RegistrationCheck};
pub use chaincode_support::{
    ChaincodeSupport, ChaincodeSupportBuilder, ExecuteResult, INITIALIZED_KEY, InstalledPackage,
    TxParams,
};
pub use config::{ChaincodeTls, MIN_STARTUP_TIMEOUT, SYSTEM, SupportConfig};
pub use container_runtime::ContainerRuntime;
pub use definitions::{ChaincodeDefinition, ChaincodeDefinitions, DefinitionMap};
pub use error::{Error, Result};
pub use handler_registry::HandlerRegistry;
pub use metrics::Metrics;
pub use vm_controller::{VmController, VmFactory, builtin_chaincodes, check_backends};
