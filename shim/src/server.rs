//! Chaincode as a service (Fabric 2.0+): the chaincode serves `protos.Chaincode/Connect` and
//! the peer dials it. The conversation on each stream is the same as over `Register`: the
//! chaincode sends REGISTER first.

use std::future::Future;
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

/// Serves `chaincode`, registering as `name` (`name:version` or a package id), to every peer
/// that connects on `listener`, until `shutdown` completes.
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
