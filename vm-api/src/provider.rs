//! Backend registration: each backend crate submits one [`VmProvider`] with `inventory`.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use proto::stream::ChaincodeStream;

use crate::registry::{self, Registry};
use crate::{Ccid, Result, Settings, Vm};

/// Makes a backend whose chaincodes reach the peer from outside.
pub type CreateStandalone = fn(&VmContext) -> Result<Arc<dyn Vm>>;

/// Makes a backend that runs chaincodes inside the peer, given the peer's side of streams.
pub type CreateInProcess = fn(&VmContext, Arc<dyn ChaincodeStreamHandler>) -> Result<Arc<dyn Vm>>;

/// How a provider makes its backend.
#[derive(Clone, Copy)]
pub enum Create {
    /// A backend whose chaincodes reach the peer from outside (a process, a container, a
    /// server the peer dials).
    Standalone(CreateStandalone),
    /// A backend that runs chaincodes inside the peer: it is given the peer's side of
    /// chaincode streams, which no other backend sees.
    InProcess(CreateInProcess),
}

impl std::fmt::Debug for Create {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Create::Standalone(_) => "Standalone",
            Create::InProcess(_) => "InProcess",
        })
    }
}

/// Where the built-in backends rank for chaincodes that name no backend (see
/// [`VmProvider::user_chaincodes`]); a backend of your own picks a number among them.
pub mod priority {
    /// External builders (`EXTERNAL`): first, as Fabric tries them first.
    pub const EXTERNAL_BUILDERS: u32 = 300;
    /// Containers (`DOCKER`, when configured): the platform's own path in Fabric.
    pub const CONTAINERS: u32 = 200;
    /// Processes of the peer (`PROCESS`): the last resort.
    pub const PROCESSES: u32 = 100;
}

fn no_check(_: &VmContext) -> Result<()> {
    Ok(())
}

fn not_routed(_: &Settings) -> Option<u32> {
    None
}

fn no_builtins() -> Result<Vec<Ccid>> {
    Ok(Vec::new())
}

/// Registers a backend under a container type; collected with `inventory`, so linking the
/// backend's crate is enough to make the type available. Built with `const` methods, so new
/// options never break an existing registration:
///
/// ```
/// # use std::sync::Arc;
/// # fn create(_: &vm_api::VmContext) -> vm_api::Result<Arc<dyn vm_api::Vm>> { unimplemented!() }
/// fn check(ctx: &vm_api::VmContext) -> vm_api::Result<()> {
///     ctx.settings.parse::<u32>("vm.mine.slots").map(|_| ())
/// }
/// inventory::submit! {
///     vm_api::VmProvider::new("MINE", "chaincodes on my cluster", create)
///         .config_check(check)
///         .user_chaincodes(|_| Some(50))
/// }
/// let mine = vm_api::providers().unwrap().get("MINE").unwrap();
/// assert_eq!(mine.priority(&vm_api::Settings::new()), Some(50));
/// ```
///
/// A crate linked only for its registration must still be named, or the linker drops it:
/// `use vm_docker as _;`.
#[derive(Debug)]
pub struct VmProvider {
    container_type: &'static str,
    description: &'static str,
    create: Create,
    check: fn(&VmContext) -> Result<()>,
    priority: fn(&Settings) -> Option<u32>,
    builtin: fn() -> Result<Vec<Ccid>>,
}

impl VmProvider {
    /// A backend for `container_type` made by `create`, running chaincodes outside the peer.
    pub const fn new(
        container_type: &'static str,
        description: &'static str,
        create: CreateStandalone,
    ) -> Self {
        Self {
            container_type,
            description,
            create: Create::Standalone(create),
            check: no_check,
            priority: not_routed,
            builtin: no_builtins,
        }
    }

    /// A backend running chaincodes inside the peer; `create` gets the peer's side of
    /// chaincode streams.
    pub const fn in_process(
        container_type: &'static str,
        description: &'static str,
        create: CreateInProcess,
    ) -> Self {
        Self {
            container_type,
            description,
            create: Create::InProcess(create),
            check: no_check,
            priority: not_routed,
            builtin: no_builtins,
        }
    }

    /// Checks the backend's configuration without creating it or contacting anything, so that
    /// a peer refuses a bad value when it starts, naming the key.
    pub const fn config_check(mut self, check: fn(&VmContext) -> Result<()>) -> Self {
        self.check = check;
        self
    }

    /// The backend runs user chaincode packages of its own accord: when a chaincode names no
    /// backend, the peer tries the backends whose `priority` is `Some` under the peer's
    /// settings, highest first, skipping those whose health check fails; the first whose
    /// builder takes the package runs it. (External builders rank first, then Docker when
    /// configured, then processes, as Fabric routes: builders, then the platform's own path.)
    pub const fn user_chaincodes(mut self, priority: fn(&Settings) -> Option<u32>) -> Self {
        self.priority = priority;
        self
    }

    /// Chaincodes built into the backend, defined on every channel without being installed
    /// (system chaincodes).
    pub const fn builtin_chaincodes(mut self, builtin: fn() -> Result<Vec<Ccid>>) -> Self {
        self.builtin = builtin;
        self
    }

    /// The container type chaincodes name to use this backend (`DOCKER`, `SYSTEM`, …).
    pub fn container_type(&self) -> &'static str {
        self.container_type
    }

    /// One line for listings.
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// How the backend is made.
    pub fn create(&self) -> Create {
        self.create
    }

    /// Checks the backend's configuration in `context`.
    pub fn check(&self, context: &VmContext) -> Result<()> {
        (self.check)(context)
    }

    /// Where the backend ranks when a chaincode names no backend, under `settings`; `None`
    /// when it is not a candidate.
    pub fn priority(&self, settings: &Settings) -> Option<u32> {
        (self.priority)(settings)
    }

    /// The chaincodes built into the backend.
    pub fn builtin(&self) -> Result<Vec<Ccid>> {
        (self.builtin)()
    }
}

inventory::collect!(VmProvider);

/// Every backend linked into this program, by container type.
pub fn providers() -> Result<&'static Registry<VmProvider>> {
    static REGISTRY: OnceLock<std::result::Result<Registry<VmProvider>, String>> = OnceLock::new();
    registry::collected(&REGISTRY, "container type", |p| p.container_type)
}

/// What a backend is given when it is created.
#[derive(Debug, Clone)]
pub struct VmContext {
    /// The peer's id (`peer.id`), used in container names and ownership labels.
    pub peer_id: String,
    /// The network's id (`peer.networkId`), used the same way.
    pub network_id: String,
    /// The peer's configuration (`core.yaml`'s keys).
    pub settings: Settings,
}

impl VmContext {
    /// A context for peer `peer_id` on network `network_id` with empty settings.
    pub fn new(peer_id: impl Into<String>, network_id: impl Into<String>) -> Self {
        Self {
            peer_id: peer_id.into(),
            network_id: network_id.into(),
            settings: Settings::default(),
        }
    }
}

/// What the peer knows about where a chaincode stream comes from.
#[derive(Debug, Clone, Default)]
pub struct StreamOrigin {
    /// The chaincode the stream was opened for, when the peer started it itself (in-process
    /// chaincodes) or dialed it (chaincode as a service). A registration under another name
    /// is refused, and a broken registration fails that chaincode's launch at once.
    pub expected: Option<Ccid>,
    /// SHA-256 of the client certificate the connection presented (mutual TLS).
    pub client_cert_hash: Option<[u8; 32]>,
}

/// The peer side of chaincode streams (Fabric's `HandleChaincodeStream`), given to in-process
/// backends only.
///
/// In-process backends call it with the peer's end of an in-memory pair; the peer's own gRPC
/// server and chaincode-as-a-service dialer feed it the same way.
#[async_trait]
pub trait ChaincodeStreamHandler: Send + Sync {
    /// Serves the stream until it ends. Errors are reported by the handler itself.
    async fn handle_chaincode_stream(&self, stream: ChaincodeStream, origin: StreamOrigin);
}
