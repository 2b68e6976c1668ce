//! The gRPC server of `protos.ChaincodeSupport/Register`: every accepted stream goes to the
//! same handler as in-process chaincodes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use proto::protos::ChaincodeMessage;
use proto::protos::chaincode_support_server::{
    ChaincodeSupport as RegisterService, ChaincodeSupportServer,
};
use proto::stream::{ChaincodeStream, DEFAULT_CAPACITY};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use vm_api::StreamOrigin;

use crate::tls::ServerTls;
use crate::{ChaincodeSupport, Error, Result};

/// How the chaincode listener serves.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// TLS with required client certificates. `None` takes the identity from the support's
    /// chaincode CA when it has one (TLS on), and serves plain TCP otherwise.
    pub tls: Option<ServerTls>,
    /// Names or addresses chaincodes dial besides loopback, for the server certificate.
    pub hosts: Vec<String>,
    /// HTTP/2 keepalive pings to clients (`peer.keepalive.interval`, Fabric: 7200 s).
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed
    /// (`peer.keepalive.timeout`, Fabric: 20 s).
    pub keepalive_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tls: None,
            hosts: Vec::new(),
            keepalive_interval: Duration::from_secs(7200),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

struct Register {
    support: ChaincodeSupport,
}

type MessageStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl RegisterService for Register {
    type RegisterStream = MessageStream;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Self::RegisterStream>, Status> {
        let client_cert_hash = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|der| Sha256::digest(der.as_ref()).into()));
        let (stream, outbound) =
            ChaincodeStream::with_outbound(request.into_inner(), DEFAULT_CAPACITY);
        let support = self.support.clone();
        // The response stream ends when the peer shuts down, whoever still holds a sender.
        let closed = {
            let support = support.clone();
            async move { support.closed().await }
        };
        let outbound = outbound.take_until(closed);
        tokio::spawn(async move {
            let origin = StreamOrigin {
                expected: None,
                client_cert_hash,
            };
            support.handle_chaincode_stream(stream, origin).await;
        });
        Ok(Response::new(Box::pin(outbound.map(Ok))))
    }
}

/// Serves `Register` for `support` on `listener` (TCP_NODELAY on every connection) until
/// `shutdown` completes, then waits for open streams to end.
pub async fn serve(
    support: ChaincodeSupport,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut server = Server::builder()
        .http2_keepalive_interval(Some(options.keepalive_interval))
        .http2_keepalive_timeout(Some(options.keepalive_timeout))
        .tcp_nodelay(true);
    let tls = match options.tls {
        Some(tls) => Some(tls),
        None => match support.chaincode_ca() {
            Some(ca) => {
                let hosts: Vec<&str> = options.hosts.iter().map(String::as_str).collect();
                Some(ca.server_tls(&hosts)?)
            }
            None => None,
        },
    };
    if let Some(tls) = &tls {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
            .client_ca_root(Certificate::from_pem(&tls.client_ca_pem))
            .client_auth_optional(false);
        server = server
            .tls_config(config)
            .map_err(|e| Error::Server { source: e })?;
    }
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    server
        .add_service(ChaincodeSupportServer::new(Register { support }))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| Error::Server { source: e })
}
