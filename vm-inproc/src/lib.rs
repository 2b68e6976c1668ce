//! The in-process backend: system chaincodes run inside the peer (container type `SYSTEM`).
//!
//! Each chaincode runs as a task served by the shim's handler, joined to the peer's handler by
//! a pair of in-memory streams that carry the same `ChaincodeMessage`s as gRPC, unencoded.
//! A chaincode that panics ends its instance; the peer goes on and starts a new instance for
//! the next transaction.
//!
//! Linking this crate registers the `SYSTEM` provider; system chaincodes register themselves
//! with [`shim::SystemChaincode`]. Programs that add chaincodes of their own build the backend
//! with [`InprocVm::new`] and a [`SystemChaincodes`].
//!
//! ```
//! use vm_inproc as _; // linked for its registration
//! assert!(vm_api::providers().unwrap().get("SYSTEM").is_some());
//! ```

// Unit tests see the dev-dependencies too; the lint matters for the library build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod registry;
mod vm;

use std::sync::Arc;

pub use registry::{ChaincodeFactory, SystemChaincodes, linked, system_chaincodes};
pub use vm::InprocVm;

/// The container type this backend serves.
pub const CONTAINER_TYPE: &str = "SYSTEM";

fn create(context: &vm_api::VmContext) -> vm_api::Result<Arc<dyn vm_api::Vm>> {
    let peer = context
        .stream_handler
        .clone()
        .ok_or_else(|| vm_api::Error::Config {
            key: "stream handler".into(),
            message: "the SYSTEM backend needs the peer's chaincode stream handler".into(),
        })?;
    Ok(Arc::new(InprocVm::new(peer, SystemChaincodes::new())))
}

inventory::submit! {
    vm_api::VmProvider {
        container_type: CONTAINER_TYPE,
        description: "system chaincodes run inside the peer over in-memory streams",
        create,
    }
}
