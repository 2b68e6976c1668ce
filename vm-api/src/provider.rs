//! Backend registration: each backend crate submits one [`VmProvider`] with `inventory`.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use proto::stream::ChaincodeStream;

use crate::registry::{self, Registry};
use crate::{Ccid, Result, Settings, Vm};

/// Registers a backend under a container type; collected with `inventory`, so linking the
/// backend's crate is enough to make the type available.
///
/// A crate linked only for its registration must still be named, or the linker drops it:
/// `use vm_docker as _;`.
#[derive(Debug)]
pub struct VmProvider {
    /// The container type chaincodes name to use this backend (`DOCKER`, `SYSTEM`, …).
    pub container_type: &'static str,
    /// One line for listings.
    pub description: &'static str,
    /// Creates the backend. Called at most once per peer, when the type is first used.
    pub create: fn(&VmContext) -> Result<Arc<dyn Vm>>,
}

inventory::collect!(VmProvider);

/// Every backend linked into this program, by container type.
pub fn providers() -> Result<&'static Registry<VmProvider>> {
    static REGISTRY: OnceLock<std::result::Result<Registry<VmProvider>, String>> = OnceLock::new();
    registry::collected(&REGISTRY, "container type", |p| p.container_type)
}

/// What a backend is given when it is created.
#[derive(Clone)]
pub struct VmContext {
    /// The peer's id (`peer.id`), used in container names and ownership labels.
    pub peer_id: String,
    /// The network's id (`peer.networkId`), used the same way.
    pub network_id: String,
    /// The peer's configuration, flattened to `core.yaml`'s dotted keys.
    pub settings: Settings,
    /// Where in-process backends hand the peer end of a chaincode's stream.
    pub stream_handler: Option<Arc<dyn ChaincodeStreamHandler>>,
}

impl std::fmt::Debug for VmContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmContext")
            .field("peer_id", &self.peer_id)
            .field("network_id", &self.network_id)
            .field("settings", &self.settings)
            .field("stream_handler", &self.stream_handler.is_some())
            .finish()
    }
}

impl VmContext {
    /// A context for peer `peer_id` on network `network_id` with empty settings and no
    /// stream handler.
    pub fn new(peer_id: impl Into<String>, network_id: impl Into<String>) -> Self {
        Self {
            peer_id: peer_id.into(),
            network_id: network_id.into(),
            settings: Settings::default(),
            stream_handler: None,
        }
    }
}

/// What the peer knows about where a chaincode stream comes from.
#[derive(Debug, Clone, Default)]
pub struct StreamOrigin {
    /// The chaincode the stream was opened for, when the peer started it itself (in-process
    /// chaincodes). A broken registration then fails that chaincode's launch at once.
    pub expected: Option<Ccid>,
    /// SHA-256 of the client certificate the connection presented (mutual TLS).
    pub client_cert_hash: Option<[u8; 32]>,
}

/// The peer side of chaincode streams (Fabric's `HandleChaincodeStream`).
///
/// In-process backends call it with the peer's end of the in-memory pair; the gRPC server
/// calls it for every accepted `Register` stream.
#[async_trait]
pub trait ChaincodeStreamHandler: Send + Sync {
    /// Serves the stream until it ends. Errors are reported by the handler itself.
    async fn handle_chaincode_stream(&self, stream: ChaincodeStream, origin: StreamOrigin);
}
