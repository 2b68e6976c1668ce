//! The process backend (container type `PROCESS`): user chaincodes run as child processes of
//! the peer, the default where no Docker is configured.
//!
//! Every package type with a [`vm_api::Platform`] runs, with the platform's command line in
//! place (`binary`: the executable with `-peer.address=<addr>`; `node`: the package's start
//! script, as `npm start -- --peer.address <addr>` would run it). Packages of other types are
//! declined, so the peer can route them elsewhere. It is the last resort for chaincodes that
//! name no backend (after external builders and Docker).
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

fn check(context: &vm_api::VmContext) -> vm_api::Result<()> {
    ProcessConfig::from_settings(&context.settings).map(|_| ())
}

/// The last resort for chaincodes that name no backend: below external builders and Docker.
fn priority(_: &vm_api::Settings) -> Option<u32> {
    Some(vm_api::priority::PROCESSES)
}

inventory::submit! {
    vm_api::VmProvider::new(CONTAINER_TYPE, "user chaincodes as child processes of the peer", create)
        .config_check(check)
        .user_chaincodes(priority)
}
