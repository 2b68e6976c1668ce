//! The Docker backend (container type `DOCKER`): user chaincodes in Docker containers,
//! through `bollard`, on a Docker Engine reached at `vm.endpoint` (default the local socket).
//!
//! Starting a chaincode follows Fabric's Docker controller: remove any old container; create
//! the container; if its image is missing, build it from the platform's build context and
//! create again; stream the container's output into the peer's log; upload the TLS files;
//! start. Names follow Fabric's rules ([`names`]), so existing tooling recognises them; every
//! container and image carries labels naming the chaincode and the peer that owns it, so a
//! restarted peer removes its own leftovers (and nobody else's) and can remove the images of
//! chaincodes it no longer has ([`DockerVm::remove_unused_images`]).
//!
//! The image and its command line come from the package type's [`vm_api::Platform`] (`binary`:
//! a static executable on `FROM scratch`; `node`: the package on `chaincode.node.runtime`);
//! packages of types without a platform are declined, so the peer can route them elsewhere.
//! The backend's [`vm_api::Builder`] builds the image when a package is installed, so build
//! errors show then. With `vm.endpoint` set, Docker runs chaincodes that name no backend,
//! after external builders and before processes.
//!
//! ```
//! use vm_docker as _; // linked for its registration
//! let docker = vm_api::providers().unwrap().get("DOCKER").unwrap();
//! let configured = vm_api::Settings::new().with("vm.endpoint", "unix:///var/run/docker.sock");
//! assert_eq!(docker.priority(&configured), Some(200));
//! assert_eq!(docker.priority(&vm_api::Settings::new()), None);
//! ```
//!
//! ```no_run
//! # async fn demo() -> vm_api::Result<()> {
//! use vm_api::{Settings, Vm};
//! let config = vm_docker::DockerConfig::from_settings("peer0", "dev", &Settings::new())?;
//! let docker = vm_docker::DockerVm::new(config);
//! docker.health_check().await?; // "cannot reach Docker at unix:///var/run/docker.sock: …"
//! # Ok(()) }
//! ```

// Unit tests see the dev-dependencies too; the lint matters for the library build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod config;
mod host_config;
mod naming;
#[cfg(feature = "testing")]
pub mod testing;
mod vm;

use std::sync::Arc;

pub use config::{
    DEFAULT_ENDPOINT, DockerConfig, LABEL_CC_NAME, LABEL_CC_TYPE, LABEL_CC_VERSION,
    LABEL_NETWORK_ID, LABEL_PEER_ID,
};
pub use host_config::host_config;
pub use naming::{Names, names};
pub use vm::DockerVm;

/// The container type this backend serves.
pub const CONTAINER_TYPE: &str = "DOCKER";

fn create(context: &vm_api::VmContext) -> vm_api::Result<Arc<dyn vm_api::Vm>> {
    Ok(Arc::new(DockerVm::new(DockerConfig::from_context(
        context,
    )?)))
}

fn check(context: &vm_api::VmContext) -> vm_api::Result<()> {
    DockerConfig::from_context(context).and_then(|c| c.check_endpoint())
}

/// Chaincodes that name no backend run in Docker when `vm.endpoint` is set: after external
/// builders, before processes.
fn priority(settings: &vm_api::Settings) -> Option<u32> {
    settings
        .get("vm.endpoint")
        .is_some_and(|e| !e.trim().is_empty())
        .then_some(vm_api::priority::CONTAINERS)
}

inventory::submit! {
    vm_api::VmProvider::new(CONTAINER_TYPE, "user chaincodes in Docker containers", create)
        .config_check(check)
        .user_chaincodes(priority)
}
