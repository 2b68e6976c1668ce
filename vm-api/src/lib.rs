//! The VM plugin traits of the chaincode runtime.
//!
//! A backend runs chaincodes somewhere (in the peer, as processes, in Docker containers) and
//! plugs into the peer through these types:
//!
//! - [`Vm`]: start, stop, wait and health-check chaincodes; [`VmRequest`] with
//!   [`StartRequest`], [`StopRequest`] and [`WaitRequest`] (Fabric's `VMCReq`), which the
//!   peer's VM controller runs against a `Vm`.
//! - [`Builder`]: produces the build context of a chaincode image; [`Platform`] registers a
//!   builder factory per chaincode platform.
//! - [`VmProvider`]: registers a backend under a container type with `inventory`, so that
//!   linking a backend crate is enough; [`providers`] lists them.
//! - [`Ccid`]: which chaincode (name and version).
//! - [`ChaincodeStreamHandler`]: the peer side of chaincode streams, for in-process backends.
//! - [`Settings`]: the peer's configuration as backends read it.
//! - [`Error`]: the one error type.
//!
//! # Writing a backend
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use vm_api::{Ccid, Error, Result, StartRequest, StopRequest, Vm, VmContext, VmProvider};
//!
//! /// A backend that runs nothing, to show the shape.
//! struct Nothing;
//!
//! #[async_trait]
//! impl Vm for Nothing {
//!     async fn start(&self, req: &StartRequest) -> Result<()> {
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
//! inventory::submit! {
//!     VmProvider { container_type: "NOTHING", description: "runs nothing", create }
//! }
//!
//! let registry = vm_api::providers().unwrap();
//! assert!(registry.keys().contains(&"NOTHING"));
//! ```

mod builder;
mod ccid;
mod error;
pub mod output;
mod provider;
pub mod registry;
mod settings;
mod vm;

pub use builder::{Builder, Platform, platforms};
pub use ccid::Ccid;
pub use error::{BoxError, Error, Result};
pub use output::RecentOutput;
pub use provider::{ChaincodeStreamHandler, StreamOrigin, VmContext, VmProvider, providers};
pub use settings::{Settings, parse_duration};
pub use vm::{
    CodePackage, PrepareRequest, StartRequest, StopRequest, Vm, VmOutcome, VmRequest, WaitRequest,
};

/// Re-exported so backends and docs share one version.
pub use async_trait::async_trait;
/// Re-exported so registrations need no direct dependency.
pub use inventory;
