//! Builders: turn an installed chaincode into a build context, per platform.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::registry::Registry;
use crate::{CodePackage, Result, Settings};

/// Produces the build context of a chaincode image (Fabric's `container.Builder`).
#[async_trait]
pub trait Builder: Send + Sync {
    /// Returns a tar archive holding a `Dockerfile` and every file it copies. Fails with
    /// [`Error::Build`](crate::Error::Build) (or an I/O error) when the package cannot be read.
    async fn build(&self) -> Result<Bytes>;

    /// Labels to put on the image, beside the ones the backend adds (name, version, peer).
    fn labels(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Makes builders for one chaincode platform; collected with `inventory`.
///
/// ```
/// use std::sync::Arc;
/// use vm_api::{Builder, CodePackage, Platform, Settings};
///
/// struct Tarball;
/// #[async_trait::async_trait]
/// impl Builder for Tarball {
///     async fn build(&self) -> vm_api::Result<bytes::Bytes> {
///         Ok(bytes::Bytes::new())
///     }
/// }
/// fn tarball(_: &CodePackage, _: &Settings) -> vm_api::Result<Arc<dyn Builder>> {
///     Ok(Arc::new(Tarball))
/// }
/// inventory::submit! { Platform { platform: "tarball", description: "doc example", create_builder: tarball } }
///
/// assert!(vm_api::platforms().unwrap().get("tarball").is_some());
/// ```
#[derive(Debug)]
pub struct Platform {
    /// The platform name a chaincode is installed with (`binary`, `node`, …).
    pub platform: &'static str,
    /// One line for listings.
    pub description: &'static str,
    /// Makes a builder for an installed package, reading options (runtime images…) from
    /// the peer's settings.
    pub create_builder: fn(&CodePackage, &Settings) -> Result<Arc<dyn Builder>>,
}

inventory::collect!(Platform);

/// Every platform linked into this program, by name.
pub fn platforms() -> Result<&'static Registry<Platform>> {
    static REGISTRY: std::sync::OnceLock<Result<Registry<Platform>, String>> =
        std::sync::OnceLock::new();
    crate::registry::collected(&REGISTRY, "platform", |p| p.platform)
}
