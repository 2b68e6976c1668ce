//! The container runtime: turns a chaincode definition into VM requests with Fabric's launch
//! configuration (command line, environment in Fabric's order, files to upload).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use vm_api::{PrepareRequest, StartRequest, StopRequest, VmOutcome, WaitRequest};

use crate::chaincode_identity::ClientCertIssuer;
use crate::{ChaincodeDefinition, Error, Result, SupportConfig, VmController};

/// Where Fabric puts the TLS files inside a chaincode container.
pub mod tls_paths {
    /// The client key, base64 of its PEM (`CORE_TLS_CLIENT_KEY_PATH`).
    pub const CLIENT_KEY: &str = "/etc/hyperledger/fabric/client.key";
    /// The client certificate, base64 of its PEM (`CORE_TLS_CLIENT_CERT_PATH`).
    pub const CLIENT_CERT: &str = "/etc/hyperledger/fabric/client.crt";
    /// The CA that signed the peer's certificate, PEM (`CORE_PEER_TLS_ROOTCERT_FILE`).
    pub const ROOT_CERT: &str = "/etc/hyperledger/fabric/peer.crt";
    /// The client key, PEM (`CORE_TLS_CLIENT_KEY_FILE`, Fabric 2.x).
    pub const CLIENT_KEY_PEM: &str = "/etc/hyperledger/fabric/client_pem.key";
    /// The client certificate, PEM (`CORE_TLS_CLIENT_CERT_FILE`, Fabric 2.x).
    pub const CLIENT_CERT_PEM: &str = "/etc/hyperledger/fabric/client_pem.crt";
}

/// The command line, environment and files of one launch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchConfig {
    /// The command line inside the container.
    pub args: Vec<String>,
    /// `KEY=VALUE`, in Fabric's order.
    pub env: Vec<String>,
    /// Files by absolute path inside the container.
    pub files: BTreeMap<String, Bytes>,
}

/// Starts, stops and waits for chaincodes through the VM controller.
pub struct ContainerRuntime {
    config: Arc<SupportConfig>,
    controller: Arc<VmController>,
    tls: Option<Arc<dyn ClientCertIssuer>>,
}

impl std::fmt::Debug for ContainerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerRuntime")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// The command line Fabric uses for a platform inside a container.
fn platform_args(platform: &str, peer_address: &str) -> Vec<String> {
    match platform {
        "node" => vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("cd /usr/local/src; npm start -- --peer.address {peer_address}"),
        ],
        "java" => vec![
            "/root/chaincode-java/start".into(),
            "--peerAddress".into(),
            peer_address.into(),
        ],
        // golang, car, binary and anything built into one executable
        _ => vec!["chaincode".into(), format!("-peer.address={peer_address}")],
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl ContainerRuntime {
    /// A runtime launching through `controller`; `tls` issues client certificates when the
    /// peer requires mutual TLS from chaincodes.
    pub fn new(
        config: Arc<SupportConfig>,
        controller: Arc<VmController>,
        tls: Option<Arc<dyn ClientCertIssuer>>,
    ) -> Self {
        Self {
            config,
            controller,
            tls,
        }
    }

    /// The controller.
    pub fn controller(&self) -> &Arc<VmController> {
        &self.controller
    }

    /// Fabric's launch configuration for `def`.
    pub fn launch_config(&self, def: &ChaincodeDefinition) -> Result<LaunchConfig> {
        let c = &self.config;
        let mut env = vec![
            format!("CORE_CHAINCODE_LOGGING_LEVEL={}", c.chaincode_log_level),
            format!("CORE_CHAINCODE_LOGGING_SHIM={}", c.shim_log_level),
            format!("CORE_CHAINCODE_LOGGING_FORMAT={}", c.log_format),
            format!("CORE_CHAINCODE_ID_NAME={}", def.ccid.registered_name()),
        ];
        let mut files = BTreeMap::new();
        match (&self.tls, def.is_system()) {
            (Some(tls), false) => {
                let id = tls.issue(&def.ccid.registered_name())?;
                env.extend([
                    "CORE_PEER_TLS_ENABLED=true".to_owned(),
                    format!("CORE_TLS_CLIENT_KEY_PATH={}", tls_paths::CLIENT_KEY),
                    format!("CORE_TLS_CLIENT_CERT_PATH={}", tls_paths::CLIENT_CERT),
                    format!("CORE_PEER_TLS_ROOTCERT_FILE={}", tls_paths::ROOT_CERT),
                    format!("CORE_TLS_CLIENT_KEY_FILE={}", tls_paths::CLIENT_KEY_PEM),
                    format!("CORE_TLS_CLIENT_CERT_FILE={}", tls_paths::CLIENT_CERT_PEM),
                ]);
                files.insert(
                    tls_paths::CLIENT_KEY.into(),
                    base64(id.key_pem.as_bytes()).into(),
                );
                files.insert(
                    tls_paths::CLIENT_CERT.into(),
                    base64(id.cert_pem.as_bytes()).into(),
                );
                files.insert(tls_paths::ROOT_CERT.into(), Bytes::from(id.root_pem));
                files.insert(tls_paths::CLIENT_KEY_PEM.into(), Bytes::from(id.key_pem));
                files.insert(tls_paths::CLIENT_CERT_PEM.into(), Bytes::from(id.cert_pem));
            }
            _ => env.push("CORE_PEER_TLS_ENABLED=false".into()),
        }
        if let Some(msp) = &c.local_msp_id {
            env.push(format!("CORE_PEER_LOCALMSPID={msp}"));
        }
        let args = match &def.package {
            Some(p) => platform_args(&p.platform, &c.peer_address),
            None => Vec::new(),
        };
        Ok(LaunchConfig { args, env, files })
    }

    /// The builder of `def`'s platform, when one is linked.
    fn builder(&self, def: &ChaincodeDefinition) -> Result<Option<Arc<dyn vm_api::Builder>>> {
        let Some(package) = &def.package else {
            return Ok(None);
        };
        match vm_api::platforms()?.get(&package.platform) {
            Some(platform) => Ok(Some((platform.create_builder)(
                package,
                &self.config.settings,
            )?)),
            None => Ok(None),
        }
    }

    /// Starts `def`'s chaincode.
    pub async fn start(&self, def: &ChaincodeDefinition) -> Result<()> {
        let lc = self.launch_config(def)?;
        let req = StartRequest {
            ccid: def.ccid.clone(),
            args: lc.args,
            env: lc.env,
            files: lc.files,
            peer_address: self.config.peer_address.clone(),
            package: def.package.clone(),
            builder: self.builder(def)?,
        };
        match self.controller.process(&def.container_type, &req).await? {
            VmOutcome::Started => Ok(()),
            other => Err(Error::Protocol(format!("start returned {other:?}"))),
        }
    }

    /// Gets `def`'s chaincode ready to start (the Docker backend builds its image), without
    /// starting it and without issuing it a certificate.
    pub async fn prepare(&self, def: &ChaincodeDefinition) -> Result<()> {
        let req = StartRequest {
            package: def.package.clone(),
            builder: self.builder(def)?,
            ..StartRequest::new(def.ccid.clone())
        };
        self.controller
            .process(&def.container_type, &PrepareRequest(req))
            .await?;
        Ok(())
    }

    /// Stops `def`'s chaincode, killing it after the configured stop timeout.
    pub async fn stop(&self, def: &ChaincodeDefinition) -> Result<()> {
        let req = StopRequest::new(def.ccid.clone(), self.config.stop_timeout);
        self.controller.process(&def.container_type, &req).await?;
        Ok(())
    }

    /// Waits for `def`'s chaincode to end and returns its exit code.
    pub async fn wait(&self, def: &ChaincodeDefinition) -> Result<i64> {
        let req = WaitRequest {
            ccid: def.ccid.clone(),
        };
        match self.controller.process(&def.container_type, &req).await? {
            VmOutcome::Exited(code) => Ok(code),
            other => Err(Error::Protocol(format!("wait returned {other:?}"))),
        }
    }

    /// The last lines `def`'s chaincode printed, if its backend keeps them.
    pub async fn recent_output(&self, def: &ChaincodeDefinition) -> Vec<String> {
        match self.controller.vm(&def.container_type) {
            Ok(vm) => vm.recent_output(&def.ccid).await,
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaincode_identity::ClientIdentity;
    use vm_api::{Ccid, CodePackage, VmContext};

    struct FixedIssuer;
    impl ClientCertIssuer for FixedIssuer {
        fn issue(&self, name: &str) -> Result<ClientIdentity> {
            Ok(ClientIdentity {
                cert_pem: format!("CERT {name}"),
                key_pem: "KEY".into(),
                root_pem: "ROOT".into(),
            })
        }
    }

    fn runtime(tls: bool) -> ContainerRuntime {
        let config = Arc::new(SupportConfig {
            peer_address: "127.0.0.1:7052".into(),
            local_msp_id: Some("Org1MSP".into()),
            ..SupportConfig::default()
        });
        let controller = Arc::new(VmController::new(
            VmContext::new("p", "n"),
            Default::default(),
        ));
        let tls = tls.then(|| Arc::new(FixedIssuer) as Arc<dyn ClientCertIssuer>);
        ContainerRuntime::new(config, controller, tls)
    }

    fn node_cc() -> ChaincodeDefinition {
        ChaincodeDefinition::user(
            Ccid::new("kv", "1.0"),
            "DOCKER",
            CodePackage {
                platform: "node".into(),
                path: "/x".into(),
            },
        )
    }

    #[test]
    fn environment_in_fabric_order_with_tls_files() {
        let lc = runtime(true).launch_config(&node_cc()).unwrap();
        let keys: Vec<&str> = lc
            .env
            .iter()
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "CORE_CHAINCODE_LOGGING_LEVEL",
                "CORE_CHAINCODE_LOGGING_SHIM",
                "CORE_CHAINCODE_LOGGING_FORMAT",
                "CORE_CHAINCODE_ID_NAME",
                "CORE_PEER_TLS_ENABLED",
                "CORE_TLS_CLIENT_KEY_PATH",
                "CORE_TLS_CLIENT_CERT_PATH",
                "CORE_PEER_TLS_ROOTCERT_FILE",
                "CORE_TLS_CLIENT_KEY_FILE",
                "CORE_TLS_CLIENT_CERT_FILE",
                "CORE_PEER_LOCALMSPID",
            ]
        );
        assert!(lc.env.contains(&"CORE_CHAINCODE_ID_NAME=kv:1.0".to_owned()));
        assert!(lc.env.contains(&"CORE_PEER_TLS_ENABLED=true".to_owned()));
        assert_eq!(lc.files[tls_paths::CLIENT_CERT], base64(b"CERT kv:1.0"));
        assert_eq!(lc.files[tls_paths::CLIENT_KEY_PEM], "KEY");
        assert_eq!(lc.files[tls_paths::ROOT_CERT], "ROOT");
        assert_eq!(
            lc.args,
            [
                "/bin/sh",
                "-c",
                "cd /usr/local/src; npm start -- --peer.address 127.0.0.1:7052"
            ]
        );
    }

    #[test]
    fn without_tls_and_for_binaries() {
        let mut def = node_cc();
        def.package = Some(CodePackage {
            platform: "binary".into(),
            path: "/x".into(),
        });
        let lc = runtime(false).launch_config(&def).unwrap();
        assert!(lc.env.contains(&"CORE_PEER_TLS_ENABLED=false".to_owned()));
        assert!(lc.files.is_empty());
        assert_eq!(lc.args, ["chaincode", "-peer.address=127.0.0.1:7052"]);
    }
}
