//! Fabric 2.x external builders as a backend (container type `EXTERNAL`).
//!
//! Configured under `chaincode.externalBuilders` (a list of `{name, path,
//! propagateEnvironment}`), each builder is a folder with `bin/detect`, `bin/build` and
//! optionally `bin/release` and `bin/run`, called exactly as Fabric calls them:
//!
//! - building a package: a scratch context (`src/` with the package's code,
//!   `metadata/metadata.json` verbatim, `bld/`, `release/`, removed afterwards); `detect SRC
//!   META` with each builder in order, the first that exits 0 taking the package; `build SRC
//!   META BLD`; `release BLD RELEASE` when present. The result is kept in
//!   `<peer.fileSystemPath>/externalbuilder/builds/<sanitised package ID>/` with
//!   `build-info.json` (`{"builder_name":…}`, mode 0600), `bld/` and `release/`; after a
//!   restart it is reused without `detect`, and when its builder is no longer configured,
//!   launching it is an error naming the builder. A package no builder detects is declined,
//!   so the peer routes it to the platform's own path (Docker or processes).
//! - starting: when the release holds `chaincode/server/connection.json`, the chaincode is
//!   served as a service and the peer dials it ([`vm_api::Started::Serving`]); otherwise
//!   `run BLD RUNDIR` with `RUNDIR/chaincode.json` (mode 0600; `chaincode_id`,
//!   `peer_address`, `client_cert`, `client_key`, `root_cert` — empty without TLS — and
//!   `mspid`), the folder removed when `run` exits.
//! - stopping: SIGTERM to `run`, 5 s, SIGKILL, 5 s more, else an error.
//!
//! The programs get only the `propagateEnvironment` names and `LD_LIBRARY_PATH`, `LIBPATH`,
//! `PATH`, `TMPDIR` of the peer's environment; their stdout is discarded and each stderr line
//! logged at INFO under target `external_builder` with the builder's name (a failed build's
//! error carries its last lines). A build is bounded by `chaincode.installTimeout`; a
//! builder program still running then is killed.
//!
//! Linking this crate registers the provider, which ranks first for chaincodes that name no
//! backend:
//!
//! ```
//! use vm_external as _;
//! let external = vm_api::providers().unwrap().get("EXTERNAL").unwrap();
//! let settings = vm_api::Settings::new().with("peer.fileSystemPath", "/var/hyperledger/production");
//! assert_eq!(external.priority(&settings), Some(300));
//! ```

// Unit tests see the dev-dependencies too; the lint matters for the library build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod build;
mod config;
mod durable;
mod program;
mod run;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use vm_api::{
    BuildOutcome, BuildRequest, Builder, Ccid, Result, StartRequest, Started, StopRequest, Vm,
    VmContext,
};

pub use config::{ALWAYS_PROPAGATED, BuilderConfig, ExternalConfig};
pub use run::STOP_GRACE;

use run::Instance;

/// The container type this backend serves.
pub const CONTAINER_TYPE: &str = "EXTERNAL";

/// Builds and runs chaincodes with Fabric 2.x external builders (container type `EXTERNAL`).
pub struct ExternalVm {
    config: ExternalConfig,
    instances: Mutex<HashMap<Ccid, Arc<Instance>>>,
}

impl std::fmt::Debug for ExternalVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalVm")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ExternalVm {
    /// A backend with `config`.
    pub fn new(config: ExternalConfig) -> Self {
        Self {
            config,
            instances: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ExternalConfig {
        &self.config
    }

    fn instances(&self) -> MutexGuard<'_, HashMap<Ccid, Arc<Instance>>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process id of `ccid`'s `run` while it runs.
    pub fn pid(&self, ccid: &Ccid) -> Option<u32> {
        match self.instances().get(ccid).map(Arc::as_ref) {
            Some(Instance::Running(child)) if child.is_running() => Some(child.pid()),
            _ => None,
        }
    }
}

#[async_trait]
impl Builder for ExternalVm {
    async fn build(&self, req: &BuildRequest) -> Result<BuildOutcome> {
        self.build_package(req).await
    }
}

#[async_trait]
impl Vm for ExternalVm {
    fn builder(&self) -> Option<&dyn Builder> {
        Some(self)
    }

    async fn start(&self, req: &StartRequest) -> Result<Started> {
        self.start_built(req).await
    }

    async fn stop(&self, req: &StopRequest) -> Result<()> {
        self.stop_instance(req).await
    }

    async fn wait(&self, ccid: &Ccid) -> Result<i64> {
        self.wait_instance(ccid).await
    }

    async fn health_check(&self) -> Result<()> {
        Ok(())
    }

    async fn recent_output(&self, ccid: &Ccid) -> Vec<String> {
        match self.instances().get(ccid).map(Arc::as_ref) {
            Some(Instance::Running(child)) => child.output().snapshot(),
            _ => Vec::new(),
        }
    }
}

impl Drop for ExternalVm {
    fn drop(&mut self) {
        for instance in self.instances().values() {
            if let Instance::Running(child) = instance.as_ref()
                && child.is_running()
            {
                child.signal(nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

fn create(context: &VmContext) -> Result<Arc<dyn Vm>> {
    Ok(Arc::new(ExternalVm::new(ExternalConfig::from_settings(
        &context.settings,
    )?)))
}

fn check(context: &VmContext) -> Result<()> {
    ExternalConfig::from_settings(&context.settings).map(|_| ())
}

/// First for chaincodes that name no backend, as Fabric tries external builders first;
/// a candidate whenever builds can be kept (even with no builder configured now, a build from
/// before must be found, to say its builder is gone).
fn priority(settings: &vm_api::Settings) -> Option<u32> {
    settings
        .get("peer.fileSystemPath")
        .is_some_and(|p| !p.trim().is_empty())
        .then_some(vm_api::priority::EXTERNAL_BUILDERS)
}

inventory::submit! {
    vm_api::VmProvider::new(CONTAINER_TYPE, "chaincodes built and run by Fabric 2.x external builders", create)
        .config_check(check)
        .user_chaincodes(priority)
}
