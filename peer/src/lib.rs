//! The reference peer: hosts chaincodes with persistent state, serves an administration API,
//! and gives Fabric users the `peer` commands they know.
//!
//! # Layout
//!
//! - [`cli`]: the command line (`peer node start`, `peer chaincode …`).
//! - [`config`]: `core.yaml` names, a YAML file, `CORE_…` overrides, defaults.
//! - [`node`]: `peer node start`: chaincode listener, admin API, shutdown on signals.
//! - [`admin`]: the admin service: install, execute signed proposals, list, stop.
//! - [`transaction`]: checks signed proposals (header, transaction id, signature).
//! - [`lifecycle`]: installed and instantiated chaincodes.
//! - [`store`]: persistent state on redb (state, history, heights, chaincode records).
//! - [`identity`]: client identities in Fabric's MSP layout, signing and verification.
//! - [`client`]: the CLI's side of the admin API.
//! - [`logging`]: `RUST_LOG` or `FABRIC_LOGGING_SPEC`.
//!
//! The peer links every backend and the example system chaincodes.

// The backends and system chaincodes are linked for their registrations.
use scc_examples as _;
use vm_docker as _;
use vm_external as _;
use vm_inproc as _;
use vm_process as _;

pub mod admin;
pub mod cli;
pub mod client;
pub mod config;
pub mod identity;
pub mod lifecycle;
pub mod logging;
pub mod node;
pub mod store;
pub mod transaction;
