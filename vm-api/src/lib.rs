//! The VM plugin traits of the chaincode runtime: the seam every backend plugs into.
//!
//! A backend runs chaincodes somewhere (in the peer, as processes, in Docker containers,
//! through external builders) and plugs into the peer through these types:
//!
//! - [`Vm`]: start, stop, wait for and health-check chaincodes. A start gets a
//!   [`StartRequest`]: structured launch data (the [`Ccid`], the [`ChaincodePackage`], the
//!   [`PeerConnection`] with the chaincode's TLS identity, and the [`Platform`]); it answers
//!   whether the chaincode dials the peer or is served for the peer to dial ([`Started`]).
//! - [`Builder`]: gets packages ready for a backend, or declines them (Fabric 2.x's
//!   `container.Builder`); a backend offers one through [`Vm::builder`].
//! - [`VmRequest`]: the requests the peer's VM controller runs against a `Vm` (Fabric's
//!   `VMCReq`): [`BuildRequest`], [`StartRequest`], [`StopRequest`], [`WaitRequest`], each
//!   with its own result type.
//! - [`Platform`]: per package type (`binary`, `node`, …), its image build context and its
//!   command line, in one place for every backend; [`platform`] finds one.
//! - [`VmProvider`]: registers a backend under a container type with `inventory`, so that
//!   linking a backend crate is enough; it also carries the backend's configuration check,
//!   its rank for chaincodes that name no backend, and its built-in chaincodes.
//! - [`ChaincodeServer`]: a chaincode served as a service, from a `connection.json`.
//! - [`Settings`]: the peer's configuration as backends read it.
//! - `process` (feature `process`): supervised child processes for backends that run them.
//! - [`Error`]: the one error type.
//!
//! # Writing a backend
//!
//! `examples/backend-skeleton` in the repository is a complete one, run by the tests. In
//! short:
//!
//! ```
//! use std::sync::Arc;
//! use vm_api::{async_trait, Ccid, Error, Result, Started, StartRequest, StopRequest, Vm, VmContext, VmProvider};
//!
//! /// A backend that runs nothing, to show the shape.
//! struct Nothing;
//!
//! #[async_trait]
//! impl Vm for Nothing {
//!     async fn start(&self, req: &StartRequest) -> Result<Started> {
//!         Err(Error::UnknownChaincode { ccid: req.ccid.clone() })
//!     }
//!     async fn stop(&self, req: &StopRequest) -> Result<()> {
//!         Err(Error::NotRunning { ccid: req.ccid.clone() })
//!     }
//!     async fn wait(&self, ccid: &Ccid) -> Result<i64> {
//!         Err(Error::NotRunning { ccid: ccid.clone() })
//!     }
//!     async fn health_check(&self) -> Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! fn create(_: &VmContext) -> Result<Arc<dyn Vm>> {
//!     Ok(Arc::new(Nothing))
//! }
//!
//! inventory::submit! { VmProvider::new("NOTHING", "runs nothing", create) }
//!
//! let registry = vm_api::providers().unwrap();
//! assert!(registry.keys().contains(&"NOTHING"));
//! ```

// Unit tests see the dev-dependencies too; the lint matters for the library build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod archive;
mod builder;
mod ccid;
mod connection;
mod error;
mod launch;
pub mod output;
mod platform;
#[cfg(feature = "process")]
pub mod process;
mod provider;
pub mod registry;
mod settings;
mod vm;

pub use builder::{BuildOutcome, BuildRequest, Builder};
pub use ccid::Ccid;
pub use connection::{ChaincodeServer, DEFAULT_DIAL_TIMEOUT, ServerTls, TlsKeyPair};
pub use error::{BoxError, Error, Result};
pub use launch::{
    ChaincodeLogging, ChaincodePackage, ClientTls, FABRIC_TLS_DIR, PeerConnection, StartRequest,
    tls_files,
};
pub use output::RecentOutput;
pub use platform::{
    BinaryPlatform, DEFAULT_NODE_RUNTIME, NodePlatform, Platform, PlatformRegistration,
    ProcessCommand, platform, platforms,
};
pub use provider::{
    ChaincodeStreamHandler, Create, CreateInProcess, CreateStandalone, StreamOrigin, VmContext,
    VmProvider, priority, providers,
};
pub use settings::{Settings, parse_duration};
pub use vm::{Started, StopRequest, Vm, VmRequest, WaitRequest};

/// Re-exported so backends and docs share one version.
pub use async_trait::async_trait;
/// Re-exported so registrations need no direct dependency.
pub use inventory;
