//! Builders: turn an installed package into something a backend can start (Fabric 2.x's
//! `container.Builder`), or decline it.

use async_trait::async_trait;

use crate::{Ccid, ChaincodePackage, Platform, Result};

/// Build a package for a backend (Fabric's `Build`).
#[derive(Clone)]
pub struct BuildRequest {
    /// The chaincode the package becomes (its package ID, or `name:version`).
    pub ccid: Ccid,
    /// The installed package.
    pub package: ChaincodePackage,
    /// The platform of the package's type, when one is linked.
    pub platform: Option<&'static dyn Platform>,
}

impl std::fmt::Debug for BuildRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildRequest")
            .field("ccid", &self.ccid)
            .field("package", &self.package)
            .field("platform", &self.platform.map(|p| p.name()))
            .finish()
    }
}

/// What a builder made of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    /// Built (or found built before): the backend can start it.
    Built {
        /// What was built, for logs (`image dev-peer0-kv-1-…`, `external builder ccaas`).
        detail: String,
    },
    /// This backend does not run packages like this one (no platform for its type, no external
    /// builder detected it): the peer tries the next backend.
    Declined {
        /// Why, for the error when no backend takes the package.
        reason: String,
    },
}

/// Gets packages ready to start (Fabric 2.x's `container.Builder`): a Docker image built, an
/// external builder's `build` and `release` run, or just a check that the package can run.
///
/// A backend offers its builder through [`Vm::builder`](crate::Vm::builder). The peer builds
/// when a package is installed, so that errors show then, and again before the first launch in
/// each run of the peer (and after a failed start), so a build must be idempotent and cheap
/// when its result exists (an image present, a durable build folder). A backend without a
/// builder runs no packages: only chaincodes built into it (system chaincodes).
#[async_trait]
pub trait Builder: Send + Sync {
    /// Builds `req.package`, or declines it when this backend does not run packages like it.
    /// A package this backend takes but cannot build (a failed image build, an external
    /// builder's `build` failing) is an error, with the output that says why.
    async fn build(&self, req: &BuildRequest) -> Result<BuildOutcome>;
}
