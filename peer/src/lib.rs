//! The reference peer: hosts chaincodes with persistent state, serves an administration API,
//! and gives Fabric users the `peer` commands they know.
//!
//! # Layout
//!
//! - [`cli`]: the command line (`peer node start`, `peer lifecycle chaincode …`,
//!   `peer chaincode …`, `peer identity issue`).
//! - [`lifecycle_cli`]: `peer lifecycle chaincode …`, printing as Fabric's CLI does
//!   ([`gojson`]: Fabric's `--output json`).
//! - [`names`]: Fabric's rules for channel, chaincode, version and label names.
//! - [`config`]: `core.yaml` names, a YAML file, `CORE_…` overrides, defaults.
//! - [`node`]: `peer node start`: chaincode listener, admin API, shutdown on signals.
//! - [`admin`]: the admin service: every call a signed proposal, authenticated and authorized;
//!   transactions (with Fabric 2.x's Init rule) and the lifecycle's functions.
//! - [`transaction`]: checks signed proposals (header, transaction id, signature).
//! - [`lifecycle`]: Fabric 2.x definitions (approved, committed, by sequence), 1.4 installs and
//!   instantiations, packages by ID.
//! - [`store`]: persistent state on redb (state, history, heights, chaincode records).
//! - [`identity`]: client identities in Fabric's MSP layout, signing and verification.
//! - [`msp`]: Fabric's MSP: CAs, admins, NodeOUs; authentication of creators; the development MSP.
//! - [`client`]: the CLI's side of the admin API.
//! - [`logging`]: `RUST_LOG` or `FABRIC_LOGGING_SPEC`; levels changed at run time.
//! - [`operations`]: the operations service: `/healthz`, `/metrics`, `/logspec`, `/version`.
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
pub mod gojson;
pub mod identity;
pub mod lifecycle;
pub mod lifecycle_cli;
pub mod logging;
pub mod msp;
pub mod names;
pub mod node;
pub mod operations;
pub mod store;
pub mod transaction;
