//! How a chaincode process finds its peer: Fabric's flags and environment variables.
//!
//! | setting | flag | environment |
//! |---|---|---|
//! | peer address | `--peer.address ADDR` (also `-peer.address=ADDR`) | `CORE_PEER_ADDRESS` |
//! | chaincode name | `--chaincode-id-name NAME:VERSION` | `CORE_CHAINCODE_ID_NAME` |
//! | TLS on | | `CORE_PEER_TLS_ENABLED=true` |
//! | client key | | `CORE_TLS_CLIENT_KEY_FILE` (PEM) or `CORE_TLS_CLIENT_KEY_PATH` (base64 of PEM) |
//! | client certificate | | `CORE_TLS_CLIENT_CERT_FILE` (PEM) or `CORE_TLS_CLIENT_CERT_PATH` (base64 of PEM) |
//! | peer's CA | | `CORE_PEER_TLS_ROOTCERT_FILE` (PEM) |
//! | server name to check | | `CORE_PEER_TLS_SERVERHOSTOVERRIDE` (default: the address's host) |
//!
//! Flags win over the environment. Keys may be PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1
//! (`BEGIN EC PRIVATE KEY`).

use std::path::Path;
use std::time::Duration;

use crate::{Error, Result};

/// TLS material of a chaincode.
#[derive(Clone)]
pub struct ClientTls {
    /// The client certificate, PEM.
    pub cert_pem: String,
    /// The client key, PEM.
    pub key_pem: String,
    /// The CA the peer's certificate must chain to, PEM.
    pub root_pem: String,
    /// The name the peer's certificate must carry; the address's host when `None`.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Where and how a chaincode connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The peer's chaincode listener, `host:port`.
    pub peer_address: String,
    /// The name to register with, `name:version`.
    pub chaincode_id: String,
    /// TLS, when the peer requires it.
    pub tls: Option<ClientTls>,
    /// How long connecting may take before giving up.
    pub connect_timeout: Duration,
    /// HTTP/2 keepalive pings to the peer (Fabric: 60 s).
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered (Fabric: 20 s).
    pub keepalive_timeout: Duration,
}

impl ClientConfig {
    /// A configuration without TLS.
    pub fn new(peer_address: impl Into<String>, chaincode_id: impl Into<String>) -> Self {
        Self {
            peer_address: peer_address.into(),
            chaincode_id: chaincode_id.into(),
            tls: None,
            connect_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }

    /// Reads the process's arguments and environment.
    pub fn from_env() -> Result<Self> {
        Self::from_sources(std::env::args().skip(1), |k| std::env::var(k).ok())
    }

    /// Reads `args` (without the program name) and the variables `env` returns.
    pub fn from_sources(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let args: Vec<String> = args.into_iter().collect();
        let missing = |key: &str, hint: &str| Error::Config {
            key: key.to_owned(),
            message: format!("not set; {hint}"),
        };
        let peer_address = flag(&args, "peer.address")
            .or_else(|| env("CORE_PEER_ADDRESS"))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                missing(
                    "CORE_PEER_ADDRESS",
                    "pass --peer.address HOST:PORT or set it",
                )
            })?;
        let chaincode_id = flag(&args, "chaincode-id-name")
            .or_else(|| env("CORE_CHAINCODE_ID_NAME"))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing("CORE_CHAINCODE_ID_NAME", "set it to NAME:VERSION"))?;
        let mut config = Self::new(peer_address, chaincode_id);
        let tls_on = match env("CORE_PEER_TLS_ENABLED").as_deref().map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(Error::Config {
                    key: "CORE_PEER_TLS_ENABLED".into(),
                    message: format!("{v:?} is not true or false"),
                });
            }
        };
        if tls_on {
            let key_pem = pem_from(&env, "CORE_TLS_CLIENT_KEY_FILE", "CORE_TLS_CLIENT_KEY_PATH")?;
            let cert_pem = pem_from(
                &env,
                "CORE_TLS_CLIENT_CERT_FILE",
                "CORE_TLS_CLIENT_CERT_PATH",
            )?;
            let root_path = env("CORE_PEER_TLS_ROOTCERT_FILE")
                .ok_or_else(|| missing("CORE_PEER_TLS_ROOTCERT_FILE", "TLS needs the peer's CA"))?;
            let root_pem = read_pem("CORE_PEER_TLS_ROOTCERT_FILE", Path::new(&root_path))?;
            config.tls = Some(ClientTls {
                cert_pem,
                key_pem,
                root_pem,
                server_name: env("CORE_PEER_TLS_SERVERHOSTOVERRIDE").filter(|s| !s.is_empty()),
            });
        }
        Ok(config)
    }
}

/// The value of `--name VALUE`, `--name=VALUE`, `-name VALUE` or `-name=VALUE`.
fn flag(args: &[String], name: &str) -> Option<String> {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(rest) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        if rest == name {
            return it.next().cloned();
        }
        if let Some(value) = rest.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(value.to_owned());
        }
    }
    None
}

/// Reads a PEM file named by `pem_var`, or else a base64-of-PEM file named by `base64_var`.
fn pem_from(
    env: &impl Fn(&str) -> Option<String>,
    pem_var: &str,
    base64_var: &str,
) -> Result<String> {
    if let Some(path) = env(pem_var).filter(|p| !p.is_empty()) {
        return read_pem(pem_var, Path::new(&path));
    }
    let path = env(base64_var)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::Config {
            key: base64_var.to_owned(),
            message: format!("not set (nor {pem_var}); TLS needs the client's key and certificate"),
        })?;
    read_pem(base64_var, Path::new(&path))
}

/// Reads a file holding PEM, or base64 of PEM (Fabric's `*_PATH` files).
fn read_pem(key: &str, path: &Path) -> Result<String> {
    use base64::Engine;
    let bad = |message: String| Error::Config {
        key: key.to_owned(),
        message,
    };
    let bytes =
        std::fs::read(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN") {
        return Ok(trimmed.to_owned() + "\n");
    }
    let compact: String = trimmed.split_whitespace().collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            bad(format!(
                "{} is neither PEM nor base64 of PEM: {e}",
                path.display()
            ))
        })?;
    let pem = String::from_utf8(decoded)
        .map_err(|_| bad(format!("{} does not decode to PEM text", path.display())))?;
    if !pem.trim_start().starts_with("-----BEGIN") {
        return Err(bad(format!("{} does not decode to PEM", path.display())));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn flags_in_every_form_win_over_the_environment() {
        let e = env(&[
            ("CORE_PEER_ADDRESS", "env:1".into()),
            ("CORE_CHAINCODE_ID_NAME", "cc:1".into()),
        ]);
        for args in [
            vec!["--peer.address", "flag:2"],
            vec!["--peer.address=flag:2"],
            vec!["-peer.address=flag:2"],
            vec!["-peer.address", "flag:2"],
        ] {
            let c = ClientConfig::from_sources(args.iter().map(|s| s.to_string()), &e).unwrap();
            assert_eq!(c.peer_address, "flag:2", "{args:?}");
            assert_eq!(c.chaincode_id, "cc:1");
        }
        let c = ClientConfig::from_sources(Vec::new(), &e).unwrap();
        assert_eq!(c.peer_address, "env:1");
        assert!(c.tls.is_none());
    }

    #[test]
    fn missing_settings_name_the_variable() {
        let e = ClientConfig::from_sources(Vec::new(), env(&[])).unwrap_err();
        assert!(e.to_string().contains("CORE_PEER_ADDRESS"), "{e}");
        let e = ClientConfig::from_sources(Vec::new(), env(&[("CORE_PEER_ADDRESS", "a:1".into())]))
            .unwrap_err();
        assert!(e.to_string().contains("CORE_CHAINCODE_ID_NAME"), "{e}");
        let e = ClientConfig::from_sources(
            Vec::new(),
            env(&[
                ("CORE_PEER_ADDRESS", "a:1".into()),
                ("CORE_CHAINCODE_ID_NAME", "c:1".into()),
                ("CORE_PEER_TLS_ENABLED", "yes".into()),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("CORE_PEER_TLS_ENABLED"), "{e}");
    }

    #[test]
    fn tls_files_as_fabric_writes_them() {
        use base64::Engine;
        let dir = std::env::temp_dir().join(format!("shim-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let cert = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(dir.join("client.key"), b64(key)).unwrap();
        std::fs::write(dir.join("client.crt"), b64(cert)).unwrap();
        std::fs::write(dir.join("peer.crt"), cert).unwrap();
        std::fs::write(dir.join("garbage"), "%%%").unwrap();
        let path = |f: &str| dir.join(f).display().to_string();
        let vars = vec![
            ("CORE_PEER_ADDRESS", "127.0.0.1:7052".to_owned()),
            ("CORE_CHAINCODE_ID_NAME", "cc:1".to_owned()),
            ("CORE_PEER_TLS_ENABLED", "TRUE".to_owned()),
            ("CORE_TLS_CLIENT_KEY_PATH", path("client.key")),
            ("CORE_TLS_CLIENT_CERT_PATH", path("client.crt")),
            ("CORE_PEER_TLS_ROOTCERT_FILE", path("peer.crt")),
        ];
        let c = ClientConfig::from_sources(Vec::new(), env(&vars)).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.key_pem, key);
        assert_eq!(tls.cert_pem, cert);
        assert_eq!(tls.root_pem, cert);
        // Plain PEM files (Fabric 2.x's *_FILE variables) take precedence.
        let mut vars2 = vars.clone();
        vars2.push(("CORE_TLS_CLIENT_CERT_FILE", path("peer.crt")));
        let c = ClientConfig::from_sources(Vec::new(), env(&vars2)).unwrap();
        assert_eq!(c.tls.unwrap().cert_pem, cert);
        let mut bad = vars.clone();
        bad[3].1 = path("garbage");
        let e = ClientConfig::from_sources(Vec::new(), env(&bad)).unwrap_err();
        assert!(e.to_string().contains("CORE_TLS_CLIENT_KEY_PATH"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
