//! The process backend (container type `PROCESS`): user chaincodes run as child processes of
//! the peer, the default where no Docker is configured.
//!
//! - `binary` packages: the executable is run with Fabric's arguments
//!   (`-peer.address=<addr>`).
//! - `node` packages: a folder with `package.json` and its own `node_modules`, started the way
//!   `npm start -- --peer.address <addr>` would start it.
//!
//! Every chaincode gets Fabric's environment (`CORE_CHAINCODE_ID_NAME`, the TLS variables, …),
//! its TLS files in a private folder, and its own process group. Its stdout and stderr go to
//! the peer's log under target `chaincode` with the chaincode's name, and the last lines are
//! kept for error messages ("exited with 1" comes with what it printed).
//!
//! Linking this crate registers the provider:
//!
//! ```
//! use vm_process as _;
//! assert!(vm_api::providers().unwrap().get("PROCESS").is_some());
//! ```

mod command;
mod output;
mod vm;

use std::sync::Arc;

pub use vm::{ProcessConfig, ProcessVm};

/// The container type this backend serves.
pub const CONTAINER_TYPE: &str = "PROCESS";

fn create(context: &vm_api::VmContext) -> vm_api::Result<Arc<dyn vm_api::Vm>> {
    Ok(Arc::new(ProcessVm::new(ProcessConfig::from_settings(
        &context.settings,
    )?)))
}

inventory::submit! {
    vm_api::VmProvider {
        container_type: CONTAINER_TYPE,
        description: "user chaincodes as child processes of the peer",
        create,
    }
}
