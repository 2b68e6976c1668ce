//! The peer's configuration: Fabric's `core.yaml` names, read from a YAML file into a tree
//! that keeps lists and maps (`chaincode.externalBuilders` is a list of maps), each key
//! overridable by its `CORE_…` environment variable (JSON or YAML for a structured one, as
//! Fabric users write `CORE_CHAINCODE_EXTERNALBUILDERS='[{"name":…}]'`), with defaults that
//! work with no file at all. A bad value is an error naming its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use peer_support::SupportConfig;
use serde_json::Value;
use vm_api::Settings;
use yaml_rust2::{Yaml, YamlLoader};

/// Keys whose value is a list or a map; their environment variable holds JSON or YAML.
pub const STRUCTURED_KEYS: &[&str] = &[
    "chaincode.externalBuilders",
    "peer.tls.clientRootCAs.files",
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
    ("vm.process.outputLines", ""),
    ("vm.process.inheritEnv", ""),
];

/// The environment variable of `key`.
pub fn env_name(key: &str) -> String {
    format!("CORE_{}", key.to_uppercase().replace('.', "_"))
}

/// A YAML document as JSON: maps keep their keys (as text), scalars become text.
fn to_json(node: &Yaml) -> Value {
    match node {
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((key, to_json(v)))
                })
                .collect(),
        ),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::String(i.to_string()),
        Yaml::Boolean(b) => Value::String(b.to_string()),
        _ => Value::Null,
    }
}

/// Parses `text` as YAML (JSON is YAML too) into one value.
fn parse_yaml(text: &str) -> std::result::Result<Value, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    Ok(docs.first().map_or(Value::Null, to_json))
}

/// Settings from `file` (if any) over the defaults, then `env` over both. The environment
/// can set every key the peer knows or the file names; a structured key's variable holds JSON
/// or YAML.
pub fn settings(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
    let mut settings = Settings::new();
    for (key, default) in KEYS {
        if !default.is_empty() {
            settings.set(*key, *default);
        }
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let docs = YamlLoader::load_from_str(&text)
            .with_context(|| format!("{} is not valid YAML", path.display()))?;
        for doc in &docs {
            settings.merge(&Settings::from_json(&to_json(doc)));
        }
    }
    let known: Vec<String> = KEYS
        .iter()
        .map(|(k, _)| (*k).to_owned())
        .chain(settings.paths())
        .collect();
    for key in known {
        let Some(value) = env(&env_name(&key)) else {
            continue;
        };
        let structured = STRUCTURED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&key))
            || settings
                .value(&key)
                .is_some_and(|v| v.is_array() || v.is_object());
        if structured {
            let parsed = parse_yaml(&value).map_err(|e| {
                anyhow::anyhow!(
                    "invalid configuration {key}: {} is neither JSON nor YAML: {e}",
                    env_name(&key)
                )
            })?;
            settings.set_json(&key, &parsed);
        } else {
            settings.set(&key, value);
        }
    }
    Ok(settings)
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

fn address(settings: &Settings, key: &str) -> Result<SocketAddr> {
    let text = settings.get(key).unwrap_or_default();
    text.parse().with_context(|| {
        format!("invalid configuration {key}: {text:?} is not an address like 127.0.0.1:7051")
    })
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
        let listen_address = address(&settings, "peer.listenAddress")?;
        let chaincode_listen_address = address(&settings, "peer.chaincodeListenAddress")?;
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
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn what_reaches_beyond_loopback_needs_tls() {
        let refused = |vars: &[(&str, &str)], dev: bool, key: &str| {
            let e = PeerConfig::from_settings(settings(None, env(vars)).unwrap(), dev).unwrap_err();
            assert!(e.to_string().contains(key), "{vars:?}: {e}");
        };
        refused(
            &[("CORE_PEER_LISTENADDRESS", "0.0.0.0:7051")],
            false,
            "peer.listenAddress",
        );
        refused(
            &[("CORE_PEER_CHAINCODELISTENADDRESS", "0.0.0.0:7052")],
            true,
            "peer.chaincodeListenAddress",
        );
        refused(
            &[
                ("CORE_PEER_TLS_ENABLED", "true"),
                ("CORE_PEER_TLS_CLIENTAUTHREQUIRED", "true"),
            ],
            false,
            "peer.tls.clientAuthRequired",
        );
        let tls = PeerConfig::from_settings(
            settings(
                None,
                env(&[
                    ("CORE_PEER_TLS_ENABLED", "true"),
                    ("CORE_PEER_LISTENADDRESS", "0.0.0.0:7051"),
                    ("CORE_PEER_CHAINCODELISTENADDRESS", "0.0.0.0:7052"),
                ]),
            )
            .unwrap(),
            false,
        )
        .unwrap();
        assert!(tls.tls.is_some());
        assert_eq!(
            tls.support.peer_address, "127.0.0.1:7052",
            "chaincodes dial the listener on loopback when it listens everywhere"
        );
    }

    #[test]
    fn defaults_work_without_a_file() {
        let c = PeerConfig::from_settings(settings(None, env(&[])).unwrap(), false).unwrap();
        assert_eq!(c.listen_address.to_string(), "127.0.0.1:7051");
        assert_eq!(c.chaincode_listen_address.to_string(), "127.0.0.1:7052");
        assert_eq!(c.support.peer_address, "127.0.0.1:7052");
        assert_eq!(c.support.peer_id, "peer0");
        assert!(!c.support.dev_mode);
        assert!(c.support.tls_enabled());
    }

    #[test]
    fn file_values_and_environment_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("core.yaml");
        std::fs::write(
            &file,
            "peer:\n  id: peer7\n  networkId: net\n  chaincodeListenAddress: 127.0.0.2:9052\nchaincode:\n  executetimeout: 5s\nvm:\n  endpoint: unix:///var/run/docker.sock\n  docker:\n    hostConfig:\n      Dns:\n        - 1.1.1.1\n        - 8.8.8.8\n      LogConfig:\n        Config:\n          max-size: 50m\n",
        )
        .unwrap();
        let s = settings(
            Some(&file),
            env(&[("CORE_PEER_ID", "peer9"), ("CORE_CHAINCODE_MODE", "dev")]),
        )
        .unwrap();
        assert_eq!(s.list("vm.docker.hostConfig.Dns"), ["1.1.1.1", "8.8.8.8"]);
        assert_eq!(
            s.get("vm.docker.hostConfig.LogConfig.Config.max-size"),
            Some("50m")
        );
        let c = PeerConfig::from_settings(s, false).unwrap();
        assert_eq!(
            c.support.peer_id, "peer9",
            "the environment wins over the file"
        );
        assert_eq!(c.support.network_id, "net");
        assert!(c.support.dev_mode);
        assert!(
            !c.support.tls_enabled(),
            "TLS is off in dev mode unless set"
        );
        assert_eq!(c.support.execute_timeout, std::time::Duration::from_secs(5));
        assert_eq!(c.support.peer_address, "127.0.0.2:9052");
        assert_eq!(
            c.settings.get("vm.endpoint"),
            Some("unix:///var/run/docker.sock")
        );
        // A key only the file names can be overridden too.
        let s = settings(
            Some(&file),
            env(&[("CORE_VM_DOCKER_HOSTCONFIG_DNS", "9.9.9.9")]),
        )
        .unwrap();
        assert_eq!(s.list("vm.docker.hostConfig.Dns"), ["9.9.9.9"]);
    }

    #[test]
    fn external_builders_keep_their_structure_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("core.yaml");
        std::fs::write(
            &file,
            "chaincode:\n  installTimeout: 7m\n  externalBuilders:\n    - name: ccaas\n      path: /opt/ccaas\n      propagateEnvironment:\n        - HOME\n        - CORE_X\n    - path: /opt/bin\n      name: binary\n",
        )
        .unwrap();
        let s = settings(Some(&file), env(&[])).unwrap();
        let builders = s.value("chaincode.externalBuilders").unwrap();
        assert_eq!(builders[0]["name"], "ccaas");
        assert_eq!(builders[0]["propagateEnvironment"][1], "CORE_X");
        assert_eq!(builders[1]["path"], "/opt/bin");
        let c = PeerConfig::from_settings(s, false).unwrap();
        assert_eq!(
            c.support.install_timeout,
            std::time::Duration::from_secs(420)
        );

        // JSON in the environment, as Fabric users set it, replaces the file's list.
        let json = r#"[{"name":"ext","path":"/opt/ext","propagateEnvironment":["A"]}]"#;
        let s = settings(
            Some(&file),
            env(&[("CORE_CHAINCODE_EXTERNALBUILDERS", json)]),
        )
        .unwrap();
        let builders = s.value("chaincode.externalBuilders").unwrap();
        assert_eq!(builders.as_array().unwrap().len(), 1);
        assert_eq!(builders[0]["name"], "ext");
        // With no file too, and YAML's flow style reads the same.
        let s = settings(
            None,
            env(&[("CORE_CHAINCODE_EXTERNALBUILDERS", "[{name: y, path: /y}]")]),
        )
        .unwrap();
        assert_eq!(
            s.value("chaincode.externalBuilders").unwrap()[0]["path"],
            "/y"
        );
        let e = settings(None, env(&[("CORE_CHAINCODE_EXTERNALBUILDERS", "[{")])).unwrap_err();
        assert!(
            format!("{e:#}").contains("chaincode.externalBuilders"),
            "{e:#}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (var, value, key) in [
            (
                "CORE_CHAINCODE_EXECUTETIMEOUT",
                "soon",
                "chaincode.executetimeout",
            ),
            ("CORE_PEER_LISTENADDRESS", "localhost", "peer.listenAddress"),
            ("CORE_CHAINCODE_MODE", "prod", "chaincode.mode"),
            ("CORE_VM_ENDPOINT", "ftp://x", "vm.endpoint"),
            (
                "CORE_VM_DOCKER_HOSTCONFIG_MEMORY",
                "lots",
                "vm.docker.hostConfig.Memory",
            ),
            (
                "CORE_CHAINCODE_STARTUPTIMEOUT",
                "1s",
                "chaincode.startuptimeout",
            ),
        ] {
            let s = settings(None, env(&[(var, value)])).unwrap();
            let e = PeerConfig::from_settings(s, false).unwrap_err();
            assert!(format!("{e:#}").contains(key), "{var}={value}: {e:#}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("core.yaml");
        std::fs::write(&file, "peer: [unclosed").unwrap();
        assert!(
            format!("{:#}", settings(Some(&file), env(&[])).unwrap_err())
                .contains("not valid YAML")
        );
    }
}
