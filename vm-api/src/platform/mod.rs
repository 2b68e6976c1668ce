//! Chaincode platforms: what a package of one type (`binary`, `node`, …) needs to run, in one
//! place that every backend uses: its image's build context and command line (for backends
//! that build images), and its command line in place (for backends that run the installed
//! files as they are).
//!
//! Platforms register with `inventory`; `binary` and `node` are built in:
//!
//! ```
//! let node = vm_api::platform("node").unwrap().expect("built in");
//! assert_eq!(
//!     node.image_command("127.0.0.1:7052"),
//!     ["/bin/sh", "-c", "cd /usr/local/src; npm start -- --peer.address 127.0.0.1:7052"]
//! );
//! ```

mod binary;
mod node;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;

use crate::registry::{self, Registry};
use crate::{Result, Settings};

pub use binary::BinaryPlatform;
pub use node::{DEFAULT_NODE_RUNTIME, NodePlatform};

/// How to run a chaincode from its installed files (Fabric's command line, in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessCommand {
    /// The program to execute.
    pub program: PathBuf,
    /// Its arguments (the program name not included).
    pub args: Vec<String>,
    /// The folder to run it in.
    pub cwd: PathBuf,
    /// A folder to put before the inherited `PATH` (a Node package's `node_modules/.bin`).
    pub path_prefix: Option<PathBuf>,
}

/// What one package type needs to run. Methods that read the package's files may block: call
/// them from `tokio::task::spawn_blocking` in async code.
pub trait Platform: Send + Sync + 'static {
    /// The package type it serves, as `metadata.json` names it (`binary`, `node`).
    fn name(&self) -> &'static str;

    /// One line for listings.
    fn description(&self) -> &'static str;

    /// Checks that `code` (an installed package's code: a folder, or a file for a single
    /// executable) is a package of this type, with an error saying what is missing.
    fn validate(&self, code: &Path) -> Result<()>;

    /// A tar archive holding a `Dockerfile` and every file it copies, whose image runs
    /// [`image_command`](Self::image_command). `settings` name runtime images and the like.
    fn build_context(&self, code: &Path, settings: &Settings) -> Result<Bytes>;

    /// The command line inside the image that [`build_context`](Self::build_context) makes,
    /// dialing the peer at `peer_address`.
    fn image_command(&self, peer_address: &str) -> Vec<String>;

    /// The command line that runs the chaincode from its files at `code`, dialing the peer at
    /// `peer_address`.
    fn process_command(&self, code: &Path, peer_address: &str) -> Result<ProcessCommand>;
}

impl std::fmt::Debug for dyn Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Platform({})", self.name())
    }
}

/// Registers a platform with `inventory`; linking its crate is enough.
///
/// ```
/// use std::path::Path;
/// use vm_api::{Platform, PlatformRegistration, ProcessCommand, Result, Settings};
///
/// struct Python;
/// impl Platform for Python {
///     fn name(&self) -> &'static str { "python" }
///     fn description(&self) -> &'static str { "a Python package (doc example)" }
///     fn validate(&self, code: &Path) -> Result<()> { Ok(()) }
///     fn build_context(&self, _: &Path, _: &Settings) -> Result<bytes::Bytes> { Ok(bytes::Bytes::new()) }
///     fn image_command(&self, peer: &str) -> Vec<String> {
///         vec!["python3".into(), "/src/main.py".into(), format!("--peer.address={peer}")]
///     }
///     fn process_command(&self, code: &Path, peer: &str) -> Result<ProcessCommand> {
///         Ok(ProcessCommand {
///             program: "python3".into(),
///             args: vec!["main.py".into(), format!("--peer.address={peer}")],
///             cwd: code.to_path_buf(),
///             path_prefix: None,
///         })
///     }
/// }
/// inventory::submit! { PlatformRegistration { platform: &Python } }
///
/// assert!(vm_api::platform("python").unwrap().is_some());
/// ```
pub struct PlatformRegistration {
    /// The platform.
    pub platform: &'static dyn Platform,
}

impl std::fmt::Debug for PlatformRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.platform.fmt(f)
    }
}

inventory::collect!(PlatformRegistration);

inventory::submit! { PlatformRegistration { platform: &BinaryPlatform } }
inventory::submit! { PlatformRegistration { platform: &NodePlatform } }

/// Every platform linked into this program, by name.
pub fn platforms() -> Result<&'static Registry<PlatformRegistration>> {
    static REGISTRY: OnceLock<std::result::Result<Registry<PlatformRegistration>, String>> =
        OnceLock::new();
    registry::collected(&REGISTRY, "platform", |p| p.platform.name())
}

/// The platform of packages of type `kind`, if one is linked.
pub fn platform(kind: &str) -> Result<Option<&'static dyn Platform>> {
    Ok(platforms()?.get(kind).map(|p| p.platform))
}

fn invalid(message: String) -> crate::Error {
    crate::Error::InvalidPackage { message }
}
