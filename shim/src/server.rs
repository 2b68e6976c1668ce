//! Chaincode as a service (Fabric 2.0+): the chaincode serves `protos.Chaincode/Connect` and
//! the peer dials it. The conversation on each stream is the same as over `Register`: the
//! chaincode sends REGISTER first.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use proto::protos::ChaincodeMessage;
use proto::protos::chaincode_server::{Chaincode as ConnectService, ChaincodeServer};
use proto::stream::{ChaincodeStream, DEFAULT_CAPACITY};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::{Chaincode, Error, Result};

/// TLS of a chaincode server.
#[derive(Clone)]
pub struct ServerTls {
    /// The chaincode's certificate, PEM.
    pub cert_pem: String,
    /// The chaincode's key, PEM.
    pub key_pem: String,
    /// When set, peers must present a client certificate signed by this CA (PEM).
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// Where and how a chaincode serves as a service, from the environment Fabric's samples use.
///
/// | setting | environment |
/// |---|---|
/// | listen address (`host:port`) | `CHAINCODE_SERVER_ADDRESS` |
/// | the name to register with (the package ID) | `CHAINCODE_ID` |
/// | TLS off | `CHAINCODE_TLS_DISABLED` (`true` unless set to `false`) |
/// | server key, certificate (PEM files) | `CHAINCODE_TLS_KEY`, `CHAINCODE_TLS_CERT` |
/// | CA of peers' client certificates (PEM file; set: client authentication required) | `CHAINCODE_CLIENT_CA_CERT` |
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub address: String,
    /// The name the chaincode registers with on every stream (its package ID).
    pub chaincode_id: String,
    /// TLS, unless disabled.
    pub tls: Option<ServerTls>,
}

impl ServerConfig {
    /// The server settings, when `CHAINCODE_SERVER_ADDRESS` is set (the chaincode then serves
    /// instead of dialing its peer); `None` otherwise.
    pub fn from_sources(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(address) = env("CHAINCODE_SERVER_ADDRESS").filter(|a| !a.trim().is_empty()) else {
            return Ok(None);
        };
        let config = |key: &str, message: String| Error::Config {
            key: key.to_owned(),
            message,
        };
        let chaincode_id = env("CHAINCODE_ID")
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| {
                config(
                    "CHAINCODE_ID",
                    "not set; a chaincode server registers with its package ID".into(),
                )
            })?;
        let disabled = match env("CHAINCODE_TLS_DISABLED").as_deref().map(str::trim) {
            None | Some("") => true,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(config(
                    "CHAINCODE_TLS_DISABLED",
                    format!("{v:?} is not true or false"),
                ));
            }
        };
        let read = |key: &str| -> Result<String> {
            let path = env(key).filter(|p| !p.trim().is_empty()).ok_or_else(|| {
                config(
                    key,
                    "not set; TLS needs it (or CHAINCODE_TLS_DISABLED=true)".into(),
                )
            })?;
            std::fs::read_to_string(Path::new(&path))
                .map_err(|e| config(key, format!("cannot read {path}: {e}")))
        };
        let tls = if disabled {
            None
        } else {
            Some(ServerTls {
                key_pem: read("CHAINCODE_TLS_KEY")?,
                cert_pem: read("CHAINCODE_TLS_CERT")?,
                client_ca_pem: match env("CHAINCODE_CLIENT_CA_CERT")
                    .filter(|p| !p.trim().is_empty())
                {
                    Some(_) => Some(read("CHAINCODE_CLIENT_CA_CERT")?),
                    None => None,
                },
            })
        };
        Ok(Some(Self {
            address,
            chaincode_id,
            tls,
        }))
    }
}

struct Connect {
    chaincode: Arc<dyn Chaincode>,
    name: String,
}

type MessageStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl ConnectService for Connect {
    type ConnectStream = MessageStream;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let (stream, outbound) =
            ChaincodeStream::with_outbound(request.into_inner(), DEFAULT_CAPACITY);
        let (chaincode, name) = (Arc::clone(&self.chaincode), self.name.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::serve_stream(chaincode, &name, stream).await {
                tracing::info!(chaincode = %name, error = %e, "peer connection ended");
            }
        });
        Ok(Response::new(Box::pin(outbound.map(Ok))))
    }
}

/// Serves `chaincode`, registering as `name` (`name:version` or a package ID), to every peer
/// that connects on `listener`, until `shutdown` completes. [`start`](crate::start) does this
/// by itself when `CHAINCODE_SERVER_ADDRESS` is set (see [`ServerConfig`]).
pub async fn serve(
    chaincode: Arc<dyn Chaincode>,
    name: impl Into<String>,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut server = Server::builder().tcp_nodelay(true);
    if let Some(tls) = tls {
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(tls.cert_pem, tls.key_pem));
        if let Some(ca) = tls.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        server = server.tls_config(config).map_err(|e| Error::Config {
            key: "chaincode server TLS".into(),
            message: crate::client::chain(&e),
        })?;
    }
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = Connect {
        chaincode,
        name: name.into(),
    };
    server
        .add_service(ChaincodeServer::new(service))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| Error::StreamClosed {
            detail: Some(crate::client::chain(&e)),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn fabric_samples_environment() {
        assert!(
            ServerConfig::from_sources(env(&[])).unwrap().is_none(),
            "dial mode"
        );
        let c = ServerConfig::from_sources(env(&[
            ("CHAINCODE_SERVER_ADDRESS", "0.0.0.0:9999"),
            ("CHAINCODE_ID", "kv_1:abcd"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.address.as_str(), c.chaincode_id.as_str()),
            ("0.0.0.0:9999", "kv_1:abcd")
        );
        assert!(
            c.tls.is_none(),
            "TLS is disabled unless CHAINCODE_TLS_DISABLED=false"
        );
        let e = ServerConfig::from_sources(env(&[("CHAINCODE_SERVER_ADDRESS", "0.0.0.0:9999")]))
            .unwrap_err();
        assert!(e.to_string().contains("CHAINCODE_ID"), "{e}");
        let e = ServerConfig::from_sources(env(&[
            ("CHAINCODE_SERVER_ADDRESS", "0.0.0.0:9999"),
            ("CHAINCODE_ID", "kv_1:abcd"),
            ("CHAINCODE_TLS_DISABLED", "false"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("CHAINCODE_TLS_KEY"), "{e}");
    }

    #[test]
    fn tls_files_and_client_authentication() {
        let dir = std::env::temp_dir().join(format!("shim-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in [("k", "KEY"), ("c", "CERT"), ("ca", "CA")] {
            std::fs::write(dir.join(f), text).unwrap();
        }
        let path = |f: &str| dir.join(f).display().to_string();
        let (k, c, ca) = (path("k"), path("c"), path("ca"));
        let base = [
            ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:9999"),
            ("CHAINCODE_ID", "kv_1:abcd"),
            ("CHAINCODE_TLS_DISABLED", "FALSE"),
            ("CHAINCODE_TLS_KEY", k.as_str()),
            ("CHAINCODE_TLS_CERT", c.as_str()),
        ];
        let tls = ServerConfig::from_sources(env(&base))
            .unwrap()
            .unwrap()
            .tls
            .unwrap();
        assert_eq!(
            (tls.key_pem.as_str(), tls.cert_pem.as_str()),
            ("KEY", "CERT")
        );
        assert!(tls.client_ca_pem.is_none());
        let mut with_ca = base.to_vec();
        with_ca.push(("CHAINCODE_CLIENT_CA_CERT", ca.as_str()));
        let tls = ServerConfig::from_sources(env(&with_ca))
            .unwrap()
            .unwrap()
            .tls
            .unwrap();
        assert_eq!(tls.client_ca_pem.as_deref(), Some("CA"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
