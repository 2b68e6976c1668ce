//! Running what external builders built: a chaincode served as a service (a released
//! `chaincode/server/connection.json`: the peer dials it), or the builder's `run` program
//! with `chaincode.json` (Fabric's `externalbuilder.Instance`).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use vm_api::process::Supervised;
use vm_api::{ChaincodeServer, Error, Result, StartRequest, Started, StopRequest};

use crate::ExternalVm;
use crate::build::blocking;
use crate::durable::read_bounded;

/// How long `run` gets to end after SIGTERM, and again after SIGKILL (Fabric's 5 s).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// One started chaincode.
pub(crate) enum Instance {
    /// The builder's `run`, running.
    Running(Supervised),
    /// A chaincode server the peer dials: nothing runs here; the sender says it was stopped.
    Served(watch::Sender<bool>),
}

/// `chaincode.json`, what `run` is told (Fabric's `ChaincodeServerInfo` for the other way).
#[derive(Serialize)]
struct ChaincodeJson<'a> {
    chaincode_id: String,
    peer_address: &'a str,
    client_cert: &'a str,
    client_key: &'a str,
    root_cert: &'a str,
    mspid: &'a str,
}

fn chaincode_json(req: &StartRequest) -> Vec<u8> {
    let tls = req.peer.tls.as_ref();
    let json = ChaincodeJson {
        chaincode_id: req.ccid.registered_name(),
        peer_address: &req.peer.address,
        // Empty strings when the peer's TLS is off, as Fabric writes them.
        client_cert: tls.map_or("", |t| t.cert_pem.as_str()),
        client_key: tls.map_or("", |t| t.key_pem.as_str()),
        root_cert: tls.map_or("", |t| t.root_pem.as_str()),
        mspid: req.peer.msp_id.as_deref().unwrap_or(""),
    };
    serde_json::to_vec(&json).unwrap_or_default()
}

/// A private folder holding `chaincode.json` (mode 0600) for `run`.
fn run_dir(req: &StartRequest) -> Result<tempfile::TempDir> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what: &str, e| Error::io(format!("chaincode {}: cannot {what}", req.ccid), e);
    let dir = tempfile::Builder::new()
        .prefix("fabric-run-")
        .tempdir()
        .map_err(|e| io("make its run folder", e))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.path().join("chaincode.json"))
        .and_then(|mut f| f.write_all(&chaincode_json(req)))
        .map_err(|e| io("write chaincode.json", e))?;
    Ok(dir)
}

impl ExternalVm {
    pub(crate) async fn start_built(&self, req: &StartRequest) -> Result<Started> {
        let package = req.package()?;
        let not_built = || Error::BadRequest {
            ccid: req.ccid.clone(),
            message: "no external builder built it".into(),
        };
        let builder = self
            .built_by(&req.ccid, &package.id)
            .await?
            .ok_or_else(not_built)?;
        let durable = self.durable(&package.id).ok_or_else(not_built)?;
        let connection = durable.join("release/chaincode/server/connection.json");
        let released = blocking(move || read_bounded(&connection)).await?;
        self.stop_previous(req).await;
        if let Some(bytes) = released {
            let server = ChaincodeServer::from_connection_json(&bytes).map_err(|e| match e {
                Error::Malformed { message, .. } => Error::Malformed {
                    what: format!(
                        "connection.json released by external builder {} for chaincode {}",
                        builder.name, req.ccid
                    ),
                    message,
                },
                other => other,
            })?;
            tracing::info!(chaincode = %req.ccid, builder = %builder.name, address = %server.address, "chaincode served as a service");
            self.instances().insert(
                req.ccid.clone(),
                Arc::new(Instance::Served(watch::Sender::new(false))),
            );
            return Ok(Started::Serving(server));
        }
        if !builder.has("run").await {
            return Err(Error::BadRequest {
                ccid: req.ccid.clone(),
                message: format!(
                    "external builder {} released no chaincode/server/connection.json and has no \
                     bin/run: nothing can start it",
                    builder.name
                ),
            });
        }
        let request = req.clone();
        let dir = blocking(move || run_dir(&request)).await?;
        let (bld, rundir) = (durable.join("bld"), dir.path().to_path_buf());
        // The run folder goes when `run` exits.
        let child = builder.start(
            "run",
            &[&bld, &rundir],
            &req.ccid,
            self.config.output_lines,
            Some(Box::new(dir)),
        )?;
        tracing::info!(chaincode = %req.ccid, builder = %builder.name, pid = child.pid(), "external builder's run started");
        self.instances()
            .insert(req.ccid.clone(), Arc::new(Instance::Running(child)));
        Ok(Started::Dialing)
    }

    /// Ends whatever is left of an earlier instance of the chaincode, as a start must.
    async fn stop_previous(&self, req: &StartRequest) {
        let old = self.instances().remove(&req.ccid);
        match old.as_deref() {
            Some(Instance::Running(child)) if child.is_running() => {
                tracing::info!(chaincode = %req.ccid, "stopping the previous instance");
                child.stop(STOP_GRACE, true).await;
            }
            // Whoever waits for a served instance learns it is gone.
            Some(Instance::Served(stopped)) => {
                stopped.send_replace(true);
            }
            _ => {}
        }
    }

    pub(crate) async fn stop_instance(&self, req: &StopRequest) -> Result<()> {
        let instance = self.instances().get(&req.ccid).cloned();
        let Some(instance) = instance else {
            return Err(Error::NotRunning {
                ccid: req.ccid.clone(),
            });
        };
        let ended = match instance.as_ref() {
            Instance::Served(stopped) => {
                stopped.send_replace(true);
                true
            }
            // Fabric's stop: SIGTERM, 5 s, SIGKILL, 5 s more.
            Instance::Running(child) => child.stop(STOP_GRACE, !req.dont_kill).await,
        };
        if !req.dont_remove {
            let mut instances = self.instances();
            if instances
                .get(&req.ccid)
                .is_some_and(|i| Arc::ptr_eq(i, &instance))
            {
                instances.remove(&req.ccid);
            }
        }
        if ended {
            Ok(())
        } else {
            Err(Error::Backend {
                backend: "external",
                message: format!(
                    "chaincode {} did not end within {STOP_GRACE:?} of being told to",
                    req.ccid
                ),
                source: None,
            })
        }
    }

    pub(crate) async fn wait_instance(&self, ccid: &vm_api::Ccid) -> Result<i64> {
        let instance = self.instances().get(ccid).cloned();
        match instance.as_deref() {
            None => Err(Error::NotRunning { ccid: ccid.clone() }),
            Some(Instance::Running(child)) => Ok(child.wait().await),
            Some(Instance::Served(stopped)) => {
                let mut rx = stopped.subscribe();
                let _ = rx.wait_for(|s| *s).await;
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use vm_api::{Ccid, ClientTls, PeerConnection};

    use super::*;

    #[test]
    fn chaincode_json_as_fabric_writes_it() {
        let mut req = StartRequest::new(Ccid::parse("kv_1:abcd"));
        req.peer = PeerConnection {
            address: "127.0.0.1:7052".into(),
            tls: None,
            msp_id: Some("Org1MSP".into()),
        };
        let json: serde_json::Value = serde_json::from_slice(&chaincode_json(&req)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "chaincode_id": "kv_1:abcd",
                "peer_address": "127.0.0.1:7052",
                "client_cert": "", "client_key": "", "root_cert": "",
                "mspid": "Org1MSP"
            })
        );
        req.peer.tls = Some(ClientTls {
            cert_pem: "C".into(),
            key_pem: "K".into(),
            root_pem: "R".into(),
        });
        let json: serde_json::Value = serde_json::from_slice(&chaincode_json(&req)).unwrap();
        assert_eq!(
            (
                json["client_cert"].as_str(),
                json["client_key"].as_str(),
                json["root_cert"].as_str()
            ),
            (Some("C"), Some("K"), Some("R"))
        );
        let dir = run_dir(&req).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("chaincode.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
