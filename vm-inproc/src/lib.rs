//! The in-process backend: system chaincodes run inside the peer (container type `SYSTEM`).
//!
//! Each chaincode runs as a task served by the shim's handler, joined to the peer's handler by
//! a pair of in-memory streams that carry the same `ChaincodeMessage`s as gRPC, unencoded.
//! A chaincode that panics ends its instance; the peer goes on and starts a new instance for
//! the next transaction.
//!
//! Linking this crate registers the `SYSTEM` provider, whose built-in chaincodes are the system
//! chaincodes linked into the program ([`shim::SystemChaincode`]): linking a system
//! chaincode's crate is enough for the peer to define it on every channel. Programs that add
//! chaincodes of their own build the backend with [`InprocVm::new`] and a
//! [`SystemChaincodes`].
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

fn create(
    _: &vm_api::VmContext,
    peer: Arc<dyn vm_api::ChaincodeStreamHandler>,
) -> vm_api::Result<Arc<dyn vm_api::Vm>> {
    Ok(Arc::new(InprocVm::new(peer, SystemChaincodes::new())))
}

inventory::submit! {
    vm_api::VmProvider::in_process(
        CONTAINER_TYPE,
        "system chaincodes run inside the peer over in-memory streams",
        create,
    )
    .builtin_chaincodes(system_chaincodes)
}
