//! How the Docker backend connects and what it puts on what it creates.

use bollard::models::HostConfig;
use vm_api::{Error, Result, Settings, VmContext};

/// Label: the peer that created a container or built an image.
pub const LABEL_PEER_ID: &str = "io.fabric-ccrt.peer.id";
/// Label: the network of that peer.
pub const LABEL_NETWORK_ID: &str = "io.fabric-ccrt.network.id";
/// Label: the chaincode's name (Fabric's label).
pub const LABEL_CC_NAME: &str = "org.hyperledger.fabric.chaincode.id.name";
/// Label: the chaincode's version (Fabric's label).
pub const LABEL_CC_VERSION: &str = "org.hyperledger.fabric.chaincode.id.version";
/// Label: the chaincode's platform (Fabric's label).
pub const LABEL_CC_TYPE: &str = "org.hyperledger.fabric.chaincode.type";

/// The default Docker endpoint.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Configuration of the Docker backend.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The daemon (`vm.endpoint`): `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub endpoint: String,
    /// The peer's id (`peer.id`), in names and labels.
    pub peer_id: String,
    /// The network's id (`peer.networkId`), in names and labels.
    pub network_id: String,
    /// Host configuration of chaincode containers (`vm.docker.hostConfig.*`).
    pub host_config: HostConfig,
    /// Output lines kept per chaincode for error messages.
    pub output_lines: usize,
    /// How long a call to the daemon may take, in seconds.
    pub timeout_secs: u64,
    /// The peer's settings, for platforms' build contexts (`chaincode.node.runtime`, …).
    pub settings: Settings,
}

impl DockerConfig {
    /// Reads the backend's settings over the defaults.
    pub fn from_context(context: &VmContext) -> Result<Self> {
        Self::from_settings(&context.peer_id, &context.network_id, &context.settings)
    }

    /// Reads `vm.endpoint`, `vm.docker.hostConfig.*` and `vm.docker.outputLines`.
    pub fn from_settings(peer_id: &str, network_id: &str, settings: &Settings) -> Result<Self> {
        Ok(Self {
            endpoint: settings
                .get("vm.endpoint")
                .filter(|e| !e.is_empty())
                .unwrap_or(DEFAULT_ENDPOINT)
                .to_owned(),
            peer_id: peer_id.to_owned(),
            network_id: network_id.to_owned(),
            host_config: crate::host_config::host_config(settings)?,
            output_lines: settings.parse("vm.docker.outputLines")?.unwrap_or(50),
            timeout_secs: settings.parse("vm.docker.timeout")?.unwrap_or(120),
            settings: settings.clone(),
        })
    }
}

impl DockerConfig {
    /// Checks that the endpoint is `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub fn check_endpoint(&self) -> Result<()> {
        if ["unix://", "tcp://", "http://"]
            .iter()
            .any(|p| self.endpoint.starts_with(p))
        {
            Ok(())
        } else {
            Err(Error::Config {
                key: "vm.endpoint".into(),
                message: format!(
                    "{:?}: expected unix:///path, tcp://host:port or http://host:port",
                    self.endpoint
                ),
            })
        }
    }
}
