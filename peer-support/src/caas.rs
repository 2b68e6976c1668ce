//! Chaincode as a service (Fabric 2.0+): the peer dials a chaincode's `protos.Chaincode/Connect`
//! and serves the stream like any other; the chaincode still sends REGISTER first.

use proto::protos::chaincode_client::ChaincodeClient;
use proto::stream::{ChaincodeStream, DEFAULT_CAPACITY};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use vm_api::ChaincodeServer;

use crate::{Error, Result};

/// The host part of `host:port` (IPv6 brackets removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Dials the chaincode server `server` (with TLS and client authentication as its
/// `connection.json` says) and opens its Connect stream, ready for
/// [`ChaincodeSupport::handle_chaincode_stream`](crate::ChaincodeSupport::handle_chaincode_stream).
/// Connecting and opening the stream both happen within `server.dial_timeout`.
pub async fn connect(server: &ChaincodeServer) -> Result<ChaincodeStream> {
    let fail = |message: String| Error::ChaincodeServer {
        address: server.address.clone(),
        message,
    };
    let timeout = server.dial_timeout;
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", server.address))
        .map_err(|e| fail(format!("bad address: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(timeout);
    if let Some(tls) = &server.tls {
        let name = tls
            .domain
            .clone()
            .unwrap_or_else(|| host_of(&server.address).to_owned());
        let mut config = ClientTlsConfig::new()
            .domain_name(name)
            .ca_certificate(Certificate::from_pem(&tls.root_pem));
        if let Some(client) = &tls.client {
            config = config.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| fail(format!("bad TLS settings: {}", proto::error_chain(&e))))?;
    }
    let open = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| fail(proto::error_chain(&e)))?;
        let (tx, rx) = mpsc::channel(DEFAULT_CAPACITY);
        let response = ChaincodeClient::new(channel)
            .connect(ReceiverStream::new(rx))
            .await
            .map_err(|s| fail(format!("Connect failed: {}", s.message())))?;
        Ok(ChaincodeStream::new(tx, response.into_inner()))
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| fail(format!("no connection within {timeout:?}")))?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_server_that_is_down_is_an_error_naming_its_address() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = ChaincodeServer {
            address: format!("127.0.0.1:{port}"),
            dial_timeout: Duration::from_secs(2),
            tls: None,
        };
        let e = connect(&server).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot connect to chaincode server 127.0.0.1:{port}"
            )),
            "{text}"
        );
        assert_eq!(host_of("[::1]:7052"), "::1");
    }
}
