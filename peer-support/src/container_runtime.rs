//! The container runtime: turns a chaincode definition into VM requests: the build (on the
//! definition's backend or the one the router picks), and the launch data of a start (the
//! package and its platform, the peer connection with a freshly issued TLS identity, the
//! logging settings).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vm_api::{
    BuildOutcome, BuildRequest, Ccid, ChaincodeLogging, PeerConnection, StartRequest, Started,
    StopRequest, WaitRequest,
};

#[cfg(test)]
use crate::VmFactory;
use crate::chaincode_identity::ClientCertIssuer;
use crate::router::{build_on, route};
use crate::{ChaincodeDefinition, Error, Metrics, Result, SupportConfig, VmController};

/// Builds, starts, stops and waits for chaincodes through the VM controller.
pub struct ContainerRuntime {
    config: Arc<SupportConfig>,
    controller: Arc<VmController>,
    tls: Option<Arc<dyn ClientCertIssuer>>,
    /// The backend each package was built for in this run of the peer.
    built: Mutex<HashMap<Ccid, String>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for ContainerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerRuntime")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
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
            built: Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    /// Measures builds into `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The controller.
    pub fn controller(&self) -> &Arc<VmController> {
        &self.controller
    }

    fn build_request(def: &ChaincodeDefinition) -> Result<Option<BuildRequest>> {
        let Some(package) = &def.package else {
            return Ok(None);
        };
        Ok(Some(BuildRequest {
            ccid: def.ccid.clone(),
            platform: vm_api::platform(&package.kind)?,
            package: package.clone(),
        }))
    }

    /// The launch data of `def`'s chaincode on `container_type`. With TLS on and a backend
    /// that runs chaincodes outside the peer, it issues the chaincode a client certificate,
    /// which its registration is then checked against.
    pub fn start_request(
        &self,
        def: &ChaincodeDefinition,
        container_type: &str,
    ) -> Result<StartRequest> {
        let c = &self.config;
        let tls = match &self.tls {
            Some(issuer) if !self.controller.is_in_process(container_type) => {
                Some(issuer.issue(&def.ccid.registered_name())?)
            }
            _ => None,
        };
        let platform = match &def.package {
            Some(p) => vm_api::platform(&p.kind)?,
            None => None,
        };
        Ok(StartRequest {
            ccid: def.ccid.clone(),
            package: def.package.clone(),
            platform,
            peer: PeerConnection {
                address: c.peer_address.clone(),
                tls,
                msp_id: c.local_msp_id.clone(),
            },
            logging: ChaincodeLogging {
                level: c.chaincode_log_level.clone(),
                shim: c.shim_log_level.clone(),
                format: c.log_format.clone(),
            },
        })
    }

    /// Gets `def`'s package ready to start and returns the container type that runs it: its
    /// own, or the one the router picks. A package built before in this run of the peer is not
    /// built again; see [`rebuild`](Self::rebuild).
    pub async fn build(&self, def: &ChaincodeDefinition) -> Result<String> {
        let known = self
            .built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&def.ccid)
            .cloned();
        match known {
            Some(container_type)
                if def
                    .container_type
                    .as_ref()
                    .is_none_or(|t| *t == container_type) =>
            {
                Ok(container_type)
            }
            _ => self.rebuild(def).await,
        }
    }

    /// Builds `def`'s package now, even if it was built before (an install), within
    /// `chaincode.installTimeout`, and returns the container type that runs it.
    pub async fn rebuild(&self, def: &ChaincodeDefinition) -> Result<String> {
        let Some(req) = Self::build_request(def)? else {
            // Nothing to build: a chaincode built into its backend.
            return def.container_type.clone().ok_or_else(|| {
                Error::Protocol(format!(
                    "chaincode {} names neither a backend nor a package",
                    def.ccid
                ))
            });
        };
        let timeout = self.config.install_timeout;
        let build = async {
            match &def.container_type {
                Some(container_type) => {
                    let metrics = self.metrics.as_deref();
                    match build_on(&self.controller, container_type, &req, metrics).await? {
                        BuildOutcome::Built { detail } => Ok((container_type.clone(), detail)),
                        BuildOutcome::Declined { reason } => Err(Error::NoBackend {
                            ccid: def.ccid.clone(),
                            package_type: req.package.kind.clone(),
                            tried: vec![format!("{container_type}: {reason}")],
                        }),
                    }
                }
                None => route(&self.controller, &req, self.metrics.as_deref())
                    .await
                    .map(|r| (r.container_type, r.detail)),
            }
        };
        let (container_type, detail) =
            tokio::time::timeout(timeout, build)
                .await
                .map_err(|_| Error::BuildTimeout {
                    ccid: def.ccid.clone(),
                    timeout,
                })??;
        tracing::info!(chaincode = %def.ccid, backend = %container_type, detail, "built");
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(def.ccid.clone(), container_type.clone());
        Ok(container_type)
    }

    /// Starts `def`'s chaincode on `container_type`. A failed start makes the next launch
    /// build again (what was built may be gone).
    pub async fn start(&self, def: &ChaincodeDefinition, container_type: &str) -> Result<Started> {
        let req = self.start_request(def, container_type)?;
        let started = self.controller.process(container_type, &req).await;
        if started.is_err() {
            self.built
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&def.ccid);
        }
        started
    }

    /// Stops `def`'s chaincode on `container_type`, killing it after the configured stop
    /// timeout.
    pub async fn stop(&self, def: &ChaincodeDefinition, container_type: &str) -> Result<()> {
        let req = StopRequest::new(def.ccid.clone(), self.config.stop_timeout);
        self.controller.process(container_type, &req).await
    }

    /// Waits for `def`'s chaincode on `container_type` to end and returns its exit code.
    pub async fn wait(&self, def: &ChaincodeDefinition, container_type: &str) -> Result<i64> {
        let req = WaitRequest {
            ccid: def.ccid.clone(),
        };
        self.controller.process(container_type, &req).await
    }

    /// The last lines `def`'s chaincode printed, if its backend keeps them.
    pub async fn recent_output(
        &self,
        def: &ChaincodeDefinition,
        container_type: &str,
    ) -> Vec<String> {
        match self.controller.vm(container_type) {
            Ok(vm) => vm.recent_output(&def.ccid).await,
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_api::{ChaincodePackage, ClientTls, VmContext};

    struct FixedIssuer;
    impl ClientCertIssuer for FixedIssuer {
        fn issue(&self, name: &str) -> Result<ClientTls> {
            Ok(ClientTls {
                cert_pem: format!("CERT {name}"),
                key_pem: "KEY".into(),
                root_pem: "ROOT".into(),
            })
        }
    }

    struct NoStreams;
    #[async_trait::async_trait]
    impl vm_api::ChaincodeStreamHandler for NoStreams {
        async fn handle_chaincode_stream(
            &self,
            _: proto::stream::ChaincodeStream,
            _: vm_api::StreamOrigin,
        ) {
        }
    }

    fn runtime(tls: bool) -> ContainerRuntime {
        let config = Arc::new(SupportConfig {
            peer_address: "127.0.0.1:7052".into(),
            local_msp_id: Some("Org1MSP".into()),
            chaincode_log_level: "debug".into(),
            ..SupportConfig::default()
        });
        let in_process: crate::vm_controller::InProcessFactory = Arc::new(|_, _| {
            Err(vm_api::Error::Config {
                key: "test".into(),
                message: "not created in these tests".into(),
            })
        });
        let controller = Arc::new(VmController::new(
            VmContext::new("p", "n"),
            Arc::new(NoStreams),
            [("SYSTEM".to_owned(), VmFactory::InProcess(in_process))].into(),
        ));
        let tls = tls.then(|| Arc::new(FixedIssuer) as Arc<dyn ClientCertIssuer>);
        ContainerRuntime::new(config, controller, tls)
    }

    fn node_cc() -> ChaincodeDefinition {
        let ccid = Ccid::new("kv", "1.0");
        let package = ChaincodePackage::legacy(&ccid, "node", "/x");
        ChaincodeDefinition::user(ccid, "DOCKER", package)
    }

    #[test]
    fn launch_data_carries_the_issued_identity_the_platform_and_the_settings() {
        let req = runtime(true).start_request(&node_cc(), "DOCKER").unwrap();
        let tls = req.peer.tls.as_ref().expect("TLS identity issued");
        assert_eq!(
            tls.cert_pem, "CERT kv:1.0",
            "issued for the registered name"
        );
        assert_eq!(req.peer.address, "127.0.0.1:7052");
        assert_eq!(req.peer.msp_id.as_deref(), Some("Org1MSP"));
        assert_eq!(req.platform.map(|p| p.name()), Some("node"));
        assert_eq!(req.logging.level, "debug");
        assert_eq!(req.package.as_ref().map(|p| p.id.as_str()), Some("kv:1.0"));
    }

    #[test]
    fn no_identity_without_tls_or_for_in_process_backends() {
        assert!(
            runtime(false)
                .start_request(&node_cc(), "DOCKER")
                .unwrap()
                .peer
                .tls
                .is_none()
        );
        let system = ChaincodeDefinition::system(Ccid::new("kvscc", "1"));
        let req = runtime(true).start_request(&system, "SYSTEM").unwrap();
        assert!(req.peer.tls.is_none());
        assert!(req.platform.is_none() && req.package.is_none());
    }
}
