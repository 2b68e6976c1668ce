//! The peer's configuration: Fabric's `core.yaml` names, read from a YAML file into a tree
//! that keeps lists and maps (`chaincode.externalBuilders` is a list of maps), each key
//! overridable by its `CORE_…` environment variable (JSON or YAML for a structured one, as
//! Fabric users write `CORE_CHAINCODE_EXTERNALBUILDERS='[{"name":…}]'`), with defaults that
//! work with no file at all. A bad value is an error naming its key.
//!
//! The file is read as Fabric reads it: found through `FABRIC_CFG_PATH` (or given with
//! `--config`), its relative paths resolved against its folder ([`paths`]), the placeholders
//! of image names expanded ([`images`]), host names accepted in addresses, and its keys
//! checked: one that neither this peer nor Fabric knows is a warning by name
//! ([`known_keys`]); [`load`] does it all.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{Context, Result};
use peer_support::SupportConfig;
use serde_json::Value;
use vm_api::Settings;

pub mod images;
pub mod known_keys;
mod load;
pub mod paths;

pub use load::{Loaded, load, settings};

/// Keys whose value is a list or a map; their environment variable holds JSON or YAML.
pub const STRUCTURED_KEYS: &[&str] = &[
    "chaincode.externalBuilders",
    "peer.tls.clientRootCAs.files",
    "peer.trustedMSPs",
    "operations.tls.clientRootCAs.files",
];

/// Sections the peer reads whole: everything under each is the peer's (Docker's host
/// configuration, the builders' maps, the trusted MSPs by id).
pub const PEER_SECTIONS: &[&str] = &[
    "vm.docker.hostConfig",
    "chaincode.externalBuilders",
    "peer.trustedMSPs",
];

/// The keys the peer reads, with their defaults (empty: none). Each can be set in the file or
/// by its environment variable: `CORE_` + the key in capitals with `.` as `_`
/// (`peer.networkId` → `CORE_PEER_NETWORKID`). Keys match without regard to case, as in
/// Fabric (`chaincode.installTimeout` and `chaincode.installtimeout` are one key).
pub const KEYS: &[(&str, &str)] = &[
    ("peer.id", "peer0"),
    ("peer.networkId", "dev"),
    ("peer.listenAddress", "127.0.0.1:7051"),
    ("peer.chaincodeListenAddress", "127.0.0.1:7052"),
    ("peer.chaincodeAddress", ""),
    ("peer.fileSystemPath", ""),
    ("peer.mspConfigPath", ""),
    ("peer.localMspId", "SampleOrg"),
    ("peer.tls.enabled", ""),
    ("peer.tls.cert.file", ""),
    ("peer.tls.key.file", ""),
    ("peer.tls.rootcert.file", ""),
    ("peer.tls.clientAuthRequired", ""),
    ("peer.tls.clientRootCAs.files", ""),
    ("peer.trustedMSPs", ""),
    ("peer.keepalive.interval", "7200s"),
    ("peer.keepalive.timeout", "20s"),
    ("chaincode.mode", "net"),
    ("chaincode.startuptimeout", "300s"),
    ("chaincode.installTimeout", "300s"),
    ("chaincode.executetimeout", "30s"),
    ("chaincode.keepalive", "0"),
    ("chaincode.logging.level", "info"),
    ("chaincode.logging.shim", "warning"),
    ("chaincode.logging.format", ""),
    ("chaincode.node.runtime", ""),
    ("chaincode.externalBuilders", ""),
    ("chaincode.runtimeParams.useWriteBatch", ""),
    ("chaincode.runtimeParams.maxSizeWriteBatch", ""),
    ("chaincode.runtimeParams.useGetMultipleKeys", ""),
    ("chaincode.runtimeParams.maxSizeGetMultipleKeys", ""),
    ("ledger.state.totalQueryLimit", ""),
    ("vm.endpoint", ""),
    ("vm.docker.outputLines", ""),
    ("vm.docker.hostConfig.NetworkMode", ""),
    ("vm.docker.hostConfig.Memory", ""),
    ("vm.docker.hostConfig.CpuShares", ""),
    ("vm.docker.hostConfig.CpuQuota", ""),
    ("vm.docker.hostConfig.CpuPeriod", ""),
    ("vm.docker.hostConfig.LogConfig.Type", ""),
    ("vm.docker.hostConfig.Dns", ""),
    ("vm.docker.hostConfig.ExtraHosts", ""),
    ("vm.docker.hostConfig.ReadonlyRootfs", ""),
    ("vm.docker.hostConfig.CapAdd", ""),
    ("vm.docker.hostConfig.CapDrop", ""),
    ("vm.docker.hostConfig.Privileged", ""),
    ("vm.docker.timeout", ""),
    ("vm.process.outputLines", ""),
    ("vm.process.inheritEnv", ""),
    ("vm.external.outputLines", ""),
    ("operations.listenAddress", ""),
    ("operations.tls.enabled", ""),
    ("operations.tls.cert.file", ""),
    ("operations.tls.key.file", ""),
    ("operations.tls.clientAuthRequired", ""),
    ("operations.tls.clientRootCAs.files", ""),
    ("metrics.provider", ""),
];

/// The environment variable of `key`.
pub fn env_name(key: &str) -> String {
    format!("CORE_{}", key.to_uppercase().replace('.', "_"))
}

/// Everything the peer runs with.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Every setting, for the backends.
    pub settings: Settings,
    /// The admin API (`peer.listenAddress`).
    pub listen_address: SocketAddr,
    /// The chaincode listener (`peer.chaincodeListenAddress`).
    pub chaincode_listen_address: SocketAddr,
    /// The data folder (`peer.fileSystemPath`).
    pub file_system_path: PathBuf,
    /// The client identity folder (`peer.mspConfigPath`; default `<data>/msp`).
    pub msp_dir: PathBuf,
    /// The MSP id of identities the peer generates (`peer.localMspId`).
    pub local_msp_id: String,
    /// Chaincode support settings (timeouts, dev mode, TLS, …).
    pub support: SupportConfig,
    /// HTTP/2 keepalive of the chaincode listener.
    pub keepalive: (std::time::Duration, std::time::Duration),
    /// TLS of the admin API (`peer.tls.*`), when enabled.
    pub tls: Option<AdminTls>,
    /// Other organisations whose members may invoke and query (`peer.trustedMSPs`: a map of
    /// MSP id to an MSP folder in Fabric's layout).
    pub trusted_msps: Vec<(String, PathBuf)>,
}

/// TLS of the client-facing server, with Fabric's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
    /// `peer.tls.cert.file` (none: one is generated into `<data>/tls/`).
    pub cert: Option<PathBuf>,
    /// `peer.tls.key.file`.
    pub key: Option<PathBuf>,
    /// `peer.tls.rootcert.file`.
    pub root_cert: Option<PathBuf>,
    /// `peer.tls.clientAuthRequired`.
    pub client_auth_required: bool,
    /// `peer.tls.clientRootCAs.files` (none: `peer.tls.rootcert.file`).
    pub client_root_cas: Vec<PathBuf>,
}

/// The admin API's TLS: on only when `peer.tls.enabled` is set true (unset, launched chaincodes
/// still use mutual TLS, but the admin API stays plain, and so on loopback only).
fn admin_tls(settings: &Settings) -> Result<Option<AdminTls>> {
    let flag = |key: &str| -> Result<bool> {
        Ok(settings
            .bool(key)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .unwrap_or(false))
    };
    if !flag("peer.tls.enabled")? {
        return Ok(None);
    }
    let path = |key: &str| {
        settings
            .get(key)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    };
    let tls = AdminTls {
        cert: path("peer.tls.cert.file"),
        key: path("peer.tls.key.file"),
        root_cert: path("peer.tls.rootcert.file"),
        client_auth_required: flag("peer.tls.clientAuthRequired")?,
        client_root_cas: settings
            .list("peer.tls.clientRootCAs.files")
            .into_iter()
            .map(PathBuf::from)
            .collect(),
    };
    if tls.cert.is_some() != tls.key.is_some() {
        anyhow::bail!(
            "invalid configuration peer.tls: peer.tls.cert.file and peer.tls.key.file go together"
        );
    }
    if tls.client_auth_required && tls.client_root_cas.is_empty() && tls.root_cert.is_none() {
        anyhow::bail!(
            "invalid configuration peer.tls.clientAuthRequired: client certificates need a CA: peer.tls.clientRootCAs.files or peer.tls.rootcert.file"
        );
    }
    Ok(Some(tls))
}

fn trusted_msps(settings: &Settings) -> Result<Vec<(String, PathBuf)>> {
    let Some(value) = settings.value("peer.trustedMSPs") else {
        return Ok(Vec::new());
    };
    match value {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(id, path)| match path.as_str() {
                Some(p) if !p.is_empty() => Ok((id.clone(), PathBuf::from(p))),
                _ => anyhow::bail!(
                    "invalid configuration peer.trustedMSPs: the value of {id:?} must be an MSP folder"
                ),
            })
            .collect(),
        _ => anyhow::bail!(
            "invalid configuration peer.trustedMSPs: expected a map of MSP id to MSP folder, like {{\"Org2MSP\": \"/etc/org2/msp\"}}"
        ),
    }
}

/// `text`, the value of `key`, as a socket address: an IP address and a port, or a host name
/// and a port resolved now (its first IPv4 address, else its first). Errors name `key`.
pub fn resolve_address(key: &str, text: &str) -> Result<SocketAddr> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let malformed = || {
        format!(
            "invalid configuration {key}: {text:?} is not an address like 127.0.0.1:7051 or localhost:7051"
        )
    };
    let (host, port) = text.rsplit_once(':').with_context(malformed)?;
    let port: u16 = port.parse().ok().with_context(malformed)?;
    if host.is_empty() {
        anyhow::bail!(malformed());
    }
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("invalid configuration {key}: cannot resolve {host:?}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .with_context(|| format!("invalid configuration {key}: {host:?} resolves to no address"))
}

/// The address at `key`, resolved; the settings then hold the resolved address, so whoever
/// reads them later sees the same one.
fn address(settings: &mut Settings, key: &str) -> Result<SocketAddr> {
    let text = settings.get(key).unwrap_or_default().trim().to_owned();
    let address = resolve_address(key, &text)?;
    if address.to_string() != text {
        tracing::debug!(target: "peer::config", key, name = %text, %address, "address resolved");
        settings.set(key, address.to_string());
    }
    Ok(address)
}

/// The default data folder: `$HOME/.fabric-ccrt/production`.
fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".fabric-ccrt/production")
}

impl PeerConfig {
    /// Reads and checks `settings`; `dev_mode` forces `chaincode.mode = dev`.
    pub fn from_settings(mut settings: Settings, dev_mode: bool) -> Result<Self> {
        if dev_mode {
            settings.set("chaincode.mode", "dev");
        }
        let listen_address = address(&mut settings, "peer.listenAddress")?;
        let chaincode_listen_address = address(&mut settings, "peer.chaincodeListenAddress")?;
        // Read by the operations service; resolved here, once, like the others.
        if settings
            .get("operations.listenAddress")
            .is_some_and(|a| !a.trim().is_empty())
        {
            address(&mut settings, "operations.listenAddress")?;
        }
        // What chaincodes dial: the listener, on loopback when it listens everywhere.
        let dial = match settings
            .get("peer.chaincodeAddress")
            .filter(|a| !a.is_empty())
        {
            Some(a) => a.to_owned(),
            None if chaincode_listen_address.ip().is_unspecified() => {
                format!("127.0.0.1:{}", chaincode_listen_address.port())
            }
            None => chaincode_listen_address.to_string(),
        };
        settings.set("peer.chaincodeAddress", dial);
        let file_system_path = settings
            .get("peer.fileSystemPath")
            .filter(|p| !p.is_empty())
            .map_or_else(default_data_dir, PathBuf::from);
        // Backends keep what they must keep across restarts (external builds) under it.
        settings.set(
            "peer.fileSystemPath",
            file_system_path.display().to_string(),
        );
        let support = SupportConfig::from_settings(&settings)
            .map_err(|e| anyhow::anyhow!("{}", e.report()))?;
        // Every linked backend checks its own settings now, so a typo shows at start.
        let context = vm_api::VmContext {
            peer_id: support.peer_id.clone(),
            network_id: support.network_id.clone(),
            settings: settings.clone(),
        };
        peer_support::check_backends(&context).map_err(|e| anyhow::anyhow!("{}", e.report()))?;
        let duration = |key: &str| -> Result<std::time::Duration> {
            settings
                .duration(key)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .with_context(|| format!("{key} is not set"))
        };
        let keepalive = (
            duration("peer.keepalive.interval")?,
            duration("peer.keepalive.timeout")?,
        );
        let msp_dir = settings
            .get("peer.mspConfigPath")
            .filter(|p| !p.is_empty())
            .map_or_else(|| file_system_path.join("msp"), PathBuf::from);
        let tls = admin_tls(&settings)?;
        if tls.is_none() && !listen_address.ip().is_loopback() {
            anyhow::bail!(
                "invalid configuration peer.listenAddress: {listen_address} reaches beyond loopback, \
                 so the admin API needs TLS (peer.tls.enabled: true; a server certificate is \
                 generated into the data folder when none is configured)"
            );
        }
        if !support.tls_enabled() && !chaincode_listen_address.ip().is_loopback() {
            anyhow::bail!(
                "invalid configuration peer.chaincodeListenAddress: {chaincode_listen_address} \
                 reaches beyond loopback, so chaincodes must use mutual TLS (peer.tls.enabled \
                 unset or true, and not dev mode): any process could register as a chaincode"
            );
        }
        let trusted_msps = trusted_msps(&settings)?;
        Ok(Self {
            tls,
            trusted_msps,
            listen_address,
            chaincode_listen_address,
            file_system_path,
            msp_dir,
            local_msp_id: settings
                .get("peer.localMspId")
                .unwrap_or("SampleOrg")
                .to_owned(),
            keepalive,
            support,
            settings,
        })
    }
}

#[cfg(test)]
mod tests;
