//! What a backend is told when it starts a chaincode: which chaincode, its package, how to
//! reach the peer, and its platform. Backends never take a command line apart: they ask the
//! platform for one, and [`StartRequest::environment`] for Fabric's environment.

use std::path::PathBuf;

use bytes::Bytes;

use crate::{Ccid, Error, Platform, Result};

/// An installed chaincode package, as a backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodePackage {
    /// The package ID (`label:sha256`) of a Fabric 2.x package, or `name:version` for a
    /// chaincode installed the Fabric 1.4 way.
    pub id: String,
    /// The package's type, `metadata.json`'s `type` (`binary`, `node`, `ccaas`, …).
    pub kind: String,
    /// Where its code is: the folder its `code.tar.gz` was unpacked into, or for a Fabric 1.4
    /// install the executable or folder installed.
    pub code: PathBuf,
    /// `metadata.json`: as packaged, or made up for a Fabric 1.4 install.
    pub metadata_json: Bytes,
}

impl ChaincodePackage {
    /// A chaincode installed the Fabric 1.4 way: `ccid`'s code of type `kind` at `code`, with a
    /// `metadata.json` made up for it (`{"path":…,"type":…,"label":…}`, the label being the
    /// chaincode's name).
    pub fn legacy(ccid: &Ccid, kind: impl Into<String>, code: impl Into<PathBuf>) -> Self {
        let (kind, code) = (kind.into(), code.into());
        let metadata = serde_json::json!({
            "path": code.display().to_string(),
            "type": kind,
            "label": ccid.name(),
        });
        Self {
            id: ccid.registered_name(),
            kind,
            code,
            metadata_json: Bytes::from(metadata.to_string()),
        }
    }
}

/// A TLS client identity issued to one chaincode, with the CA its peer's certificate chains to.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// The chaincode's client certificate, PEM.
    pub cert_pem: String,
    /// Its key, PEM.
    pub key_pem: String,
    /// The CA that signed the peer's server certificate, PEM.
    pub root_pem: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

/// How a chaincode reaches its peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerConnection {
    /// The peer's chaincode listener, `host:port`.
    pub address: String,
    /// The chaincode's TLS identity, when the peer requires mutual TLS.
    pub tls: Option<ClientTls>,
    /// The peer's MSP id (`CORE_PEER_LOCALMSPID`).
    pub msp_id: Option<String>,
}

/// Logging settings passed on to chaincodes (`chaincode.logging.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeLogging {
    /// `CORE_CHAINCODE_LOGGING_LEVEL` (`chaincode.logging.level`).
    pub level: String,
    /// `CORE_CHAINCODE_LOGGING_SHIM` (`chaincode.logging.shim`).
    pub shim: String,
    /// `CORE_CHAINCODE_LOGGING_FORMAT` (`chaincode.logging.format`).
    pub format: String,
}

impl Default for ChaincodeLogging {
    fn default() -> Self {
        Self {
            level: "info".into(),
            shim: "warning".into(),
            format: "%{color}%{time:2006-01-02 15:04:05.000 MST} [%{module}] %{shortfunc} -> %{level:.4s} %{id:03x}%{color:reset} %{message}".into(),
        }
    }
}

/// The TLS files a chaincode reads, by name inside the folder a backend puts them in (Fabric:
/// `/etc/hyperledger/fabric`).
pub mod tls_files {
    /// The client key, base64 of its PEM (`CORE_TLS_CLIENT_KEY_PATH`).
    pub const CLIENT_KEY: &str = "client.key";
    /// The client certificate, base64 of its PEM (`CORE_TLS_CLIENT_CERT_PATH`).
    pub const CLIENT_CERT: &str = "client.crt";
    /// The CA that signed the peer's certificate, PEM (`CORE_PEER_TLS_ROOTCERT_FILE`).
    pub const ROOT_CERT: &str = "peer.crt";
    /// The client key, PEM (`CORE_TLS_CLIENT_KEY_FILE`, Fabric 2.x).
    pub const CLIENT_KEY_PEM: &str = "client_pem.key";
    /// The client certificate, PEM (`CORE_TLS_CLIENT_CERT_FILE`, Fabric 2.x).
    pub const CLIENT_CERT_PEM: &str = "client_pem.crt";
}

/// Where Fabric puts the TLS files inside a chaincode container.
pub const FABRIC_TLS_DIR: &str = "/etc/hyperledger/fabric";

/// Start a chaincode (Fabric's `StartContainerReq`): everything a backend needs, structured.
#[derive(Clone)]
pub struct StartRequest {
    /// The chaincode: how it registers (`CORE_CHAINCODE_ID_NAME`) and what the backend calls
    /// it.
    pub ccid: Ccid,
    /// The installed package (none for system chaincodes).
    pub package: Option<ChaincodePackage>,
    /// The platform of the package's type, when one is linked.
    pub platform: Option<&'static dyn Platform>,
    /// How the chaincode reaches the peer.
    pub peer: PeerConnection,
    /// Logging settings for the chaincode.
    pub logging: ChaincodeLogging,
}

impl std::fmt::Debug for StartRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartRequest")
            .field("ccid", &self.ccid)
            .field("package", &self.package)
            .field("platform", &self.platform.map(|p| p.name()))
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl StartRequest {
    /// A request for `ccid` with no package, platform or TLS, dialing nowhere.
    pub fn new(ccid: Ccid) -> Self {
        Self {
            ccid,
            package: None,
            platform: None,
            peer: PeerConnection::default(),
            logging: ChaincodeLogging::default(),
        }
    }

    /// The package, or an error saying the backend needs one.
    pub fn package(&self) -> Result<&ChaincodePackage> {
        self.package.as_ref().ok_or_else(|| Error::BadRequest {
            ccid: self.ccid.clone(),
            message: "no package: this backend runs installed chaincode packages".into(),
        })
    }

    /// The package and its platform, or an error naming the package type no platform serves.
    pub fn package_and_platform(&self) -> Result<(&ChaincodePackage, &'static dyn Platform)> {
        let package = self.package()?;
        let platform = self.platform.ok_or_else(|| Error::BadRequest {
            ccid: self.ccid.clone(),
            message: format!(
                "no platform runs packages of type {:?}; linked platforms: {}",
                package.kind,
                crate::platforms().map_or_else(|_| String::new(), |r| r.keys().join(", "))
            ),
        })?;
        Ok((package, platform))
    }

    /// Fabric's environment for the chaincode, in Fabric's order, with the TLS files in the
    /// folder `tls_dir` (see [`tls_files`](Self::tls_files)).
    ///
    /// ```
    /// use vm_api::{Ccid, StartRequest, PeerConnection};
    /// let mut req = StartRequest::new(Ccid::new("kv", "1"));
    /// req.peer = PeerConnection { address: "127.0.0.1:7052".into(), tls: None, msp_id: Some("Org1MSP".into()) };
    /// let env: Vec<String> = req.environment("/etc/hyperledger/fabric").iter().map(|(k, v)| format!("{k}={v}")).collect();
    /// assert_eq!(&env[3..], ["CORE_CHAINCODE_ID_NAME=kv:1", "CORE_PEER_TLS_ENABLED=false", "CORE_PEER_LOCALMSPID=Org1MSP"]);
    /// ```
    pub fn environment(&self, tls_dir: &str) -> Vec<(String, String)> {
        let tls_dir = tls_dir.trim_end_matches('/');
        let file = |name: &str| format!("{tls_dir}/{name}");
        let mut env = vec![
            (
                "CORE_CHAINCODE_LOGGING_LEVEL".into(),
                self.logging.level.clone(),
            ),
            (
                "CORE_CHAINCODE_LOGGING_SHIM".into(),
                self.logging.shim.clone(),
            ),
            (
                "CORE_CHAINCODE_LOGGING_FORMAT".into(),
                self.logging.format.clone(),
            ),
            ("CORE_CHAINCODE_ID_NAME".into(), self.ccid.registered_name()),
        ];
        if self.peer.tls.is_some() {
            env.extend([
                ("CORE_PEER_TLS_ENABLED".into(), "true".into()),
                (
                    "CORE_TLS_CLIENT_KEY_PATH".into(),
                    file(tls_files::CLIENT_KEY),
                ),
                (
                    "CORE_TLS_CLIENT_CERT_PATH".into(),
                    file(tls_files::CLIENT_CERT),
                ),
                (
                    "CORE_PEER_TLS_ROOTCERT_FILE".into(),
                    file(tls_files::ROOT_CERT),
                ),
                (
                    "CORE_TLS_CLIENT_KEY_FILE".into(),
                    file(tls_files::CLIENT_KEY_PEM),
                ),
                (
                    "CORE_TLS_CLIENT_CERT_FILE".into(),
                    file(tls_files::CLIENT_CERT_PEM),
                ),
            ]);
        } else {
            env.push(("CORE_PEER_TLS_ENABLED".into(), "false".into()));
        }
        if let Some(msp) = &self.peer.msp_id {
            env.push(("CORE_PEER_LOCALMSPID".into(), msp.clone()));
        }
        env
    }

    /// The TLS files [`environment`](Self::environment) points at, by file name (see
    /// [`tls_files`]): Fabric's five, the `.key`/`.crt` ones holding base64 of the PEM. Empty
    /// without TLS.
    pub fn tls_files(&self) -> Vec<(&'static str, Bytes)> {
        let Some(tls) = &self.peer.tls else {
            return Vec::new();
        };
        vec![
            (tls_files::CLIENT_KEY, base64(tls.key_pem.as_bytes())),
            (tls_files::CLIENT_CERT, base64(tls.cert_pem.as_bytes())),
            (tls_files::ROOT_CERT, Bytes::from(tls.root_pem.clone())),
            (tls_files::CLIENT_KEY_PEM, Bytes::from(tls.key_pem.clone())),
            (
                tls_files::CLIENT_CERT_PEM,
                Bytes::from(tls.cert_pem.clone()),
            ),
        ]
    }
}

fn base64(bytes: &[u8]) -> Bytes {
    use base64::Engine;
    Bytes::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tls: bool) -> StartRequest {
        let mut req = StartRequest::new(Ccid::new("kv", "1.0"));
        req.peer = PeerConnection {
            address: "127.0.0.1:7052".into(),
            tls: tls.then(|| ClientTls {
                cert_pem: "CERT".into(),
                key_pem: "KEY".into(),
                root_pem: "ROOT".into(),
            }),
            msp_id: Some("Org1MSP".into()),
        };
        req
    }

    #[test]
    fn environment_in_fabric_order_with_tls_files() {
        let req = request(true);
        let env = req.environment("/etc/hyperledger/fabric/");
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
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
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("CORE_CHAINCODE_ID_NAME"), Some("kv:1.0"));
        assert_eq!(get("CORE_PEER_TLS_ENABLED"), Some("true"));
        assert_eq!(
            get("CORE_TLS_CLIENT_KEY_PATH"),
            Some("/etc/hyperledger/fabric/client.key")
        );
        let files = req.tls_files();
        let file = |n: &str| {
            files
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, b)| b.clone())
        };
        assert_eq!(file("client.crt").unwrap(), "Q0VSVA==", "base64 of the PEM");
        assert_eq!(file("client_pem.key").unwrap(), "KEY");
        assert_eq!(file("peer.crt").unwrap(), "ROOT");
        assert_eq!(files.len(), 5);
    }

    #[test]
    fn without_tls_no_files_and_tls_off() {
        let req = request(false);
        assert!(req.tls_files().is_empty());
        assert!(
            req.environment("/x")
                .contains(&("CORE_PEER_TLS_ENABLED".into(), "false".into()))
        );
        let e = req.package().unwrap_err();
        assert!(e.to_string().contains("no package"), "{e}");
    }

    #[test]
    fn legacy_packages_get_metadata_and_their_registered_name_as_id() {
        let p = ChaincodePackage::legacy(&Ccid::new("kv", "1"), "binary", "/opt/kv");
        assert_eq!(p.id, "kv:1");
        assert_eq!(
            p.metadata_json,
            r#"{"label":"kv","path":"/opt/kv","type":"binary"}"#
        );
    }
}
