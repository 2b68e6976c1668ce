//! Chaincode as a service (Fabric 2.0+): the peer dials a chaincode's `protos.Chaincode/Connect`
//! and serves the stream like any other; the chaincode still sends REGISTER first.

use std::time::Duration;

use proto::protos::chaincode_client::ChaincodeClient;
use proto::stream::{ChaincodeStream, DEFAULT_CAPACITY};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::{Error, Result};

/// Dials the chaincode server at `address` (`host:port`, plain TCP) and opens its Connect
/// stream, ready for [`ChaincodeSupport::handle_chaincode_stream`](crate::ChaincodeSupport::handle_chaincode_stream).
pub async fn connect(address: &str, timeout: Duration) -> Result<ChaincodeStream> {
    let fail = |message: String| {
        Error::Protocol(format!(
            "cannot connect to chaincode at {address}: {message}"
        ))
    };
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| fail(e.to_string()))?
        .tcp_nodelay(true)
        .connect_timeout(timeout);
    let channel = tokio::time::timeout(timeout, endpoint.connect())
        .await
        .map_err(|_| fail(format!("no connection within {timeout:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let (tx, rx) = mpsc::channel(DEFAULT_CAPACITY);
    let response = ChaincodeClient::new(channel)
        .connect(ReceiverStream::new(rx))
        .await
        .map_err(|s| fail(s.message().to_owned()))?;
    Ok(ChaincodeStream::new(tx, response.into_inner()))
}
