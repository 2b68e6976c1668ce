//! The gRPC transport: a chaincode dials its peer's `ChaincodeSupport/Register`.

use std::sync::Arc;

use proto::protos::chaincode_support_client::ChaincodeSupportClient;
use proto::stream::{ChaincodeStream, DEFAULT_CAPACITY};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use tokio::net::TcpListener;

use crate::{Chaincode, ClientConfig, Error, Result, ServerConfig};

/// Runs `chaincode` as Fabric runs a chaincode process: reads the peer's address, the
/// chaincode's name and TLS settings from flags and the environment (see [`ClientConfig`]),
/// connects, registers, and serves transactions until the stream ends.
///
/// When `CHAINCODE_SERVER_ADDRESS` is set it serves as a service instead (Fabric 2.x's
/// chaincode as a service, from the environment Fabric's samples use: see [`ServerConfig`]),
/// so one binary runs either way with no code change.
///
/// It returns `Ok(())` on SIGTERM or SIGINT, so that a chaincode stops at once when asked,
/// even as PID 1 of a container, where a signal without a handler is ignored (a server gives
/// connected peers half a second to hang up, then ends anyway).
///
/// Returns an error — it never hangs — when the peer cannot be reached, refuses the
/// registration, or closes the stream.
///
/// A chaincode process answers fastest on a current-thread runtime
/// (`#[tokio::main(flavor = "current_thread")]`): every message of a transaction is then
/// handled on one thread, without cross-thread wake-ups (about half the latency of a
/// two-worker runtime on a two-core machine; see BENCHMARKS.md). Use a multi-thread runtime
/// when transactions do heavy computation.
pub async fn start(chaincode: impl Chaincode) -> Result<()> {
    let chaincode: Arc<dyn Chaincode> = Arc::new(chaincode);
    let terminated = terminated()?;
    if let Some(server) = ServerConfig::from_sources(|k| std::env::var(k).ok())? {
        let listener = TcpListener::bind(&server.address)
            .await
            .map_err(|e| Error::Config {
                key: "CHAINCODE_SERVER_ADDRESS".into(),
                message: format!("cannot listen on {}: {e}", server.address),
            })?;
        tracing::info!(chaincode = %server.chaincode_id, address = %server.address, tls = server.tls.is_some(), "serving");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = crate::serve(
            chaincode,
            server.chaincode_id,
            listener,
            server.tls,
            async {
                let _ = stopped.await;
            },
        );
        tokio::pin!(serving);
        return tokio::select! {
            served = &mut serving => served,
            () = terminated => {
                tracing::info!("terminated by a signal");
                // A graceful shutdown waits for every peer to hang up, and a peer keeps its
                // stream open: give them a moment, then end regardless.
                let _ = stop.send(());
                match tokio::time::timeout(SHUTDOWN_GRACE, serving).await {
                    Ok(served) => served,
                    Err(_) => Ok(()),
                }
            }
        };
    }
    let config = ClientConfig::from_env()?;
    tokio::select! {
        served = start_with(chaincode, config) => served,
        () = terminated => {
            tracing::info!("terminated by a signal");
            Ok(())
        }
    }
}

/// How long a chaincode server told to stop waits for its peers to hang up.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Completes at the first SIGTERM or SIGINT.
fn terminated() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| {
        signal(kind).map_err(|e| Error::Config {
            key: "signals".into(),
            message: format!("cannot handle signals: {e}"),
        })
    };
    let (mut term, mut int) = (
        listen(SignalKind::terminate())?,
        listen(SignalKind::interrupt())?,
    );
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// [`start`] with an explicit configuration.
pub async fn start_with(chaincode: Arc<dyn Chaincode>, config: ClientConfig) -> Result<()> {
    let name = config.chaincode_id.clone();
    let stream = connect(&config).await?;
    tracing::info!(chaincode = %name, peer = %config.peer_address, tls = config.tls.is_some(), "connected");
    crate::serve_stream(chaincode, &name, stream).await
}

/// Dials the peer and opens the Register stream.
pub async fn connect(config: &ClientConfig) -> Result<ChaincodeStream> {
    let connect_error = |message: String| Error::Connect {
        address: config.peer_address.clone(),
        message,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", config.peer_address))
        .map_err(|e| connect_error(format!("bad address: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(config.connect_timeout)
        .http2_keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .keep_alive_while_idle(true);
    if let Some(tls) = &config.tls {
        let host = match &tls.server_name {
            Some(name) => name.clone(),
            None => host_of(&config.peer_address).to_owned(),
        };
        let tls_config = ClientTlsConfig::new()
            .domain_name(host)
            .ca_certificate(Certificate::from_pem(&tls.root_pem))
            .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        endpoint = endpoint
            .tls_config(tls_config)
            .map_err(|e| connect_error(format!("bad TLS settings: {}", chain(&e))))?;
    }
    let channel = tokio::time::timeout(config.connect_timeout, endpoint.connect())
        .await
        .map_err(|_| connect_error(format!("no connection within {:?}", config.connect_timeout)))?
        .map_err(|e| connect_error(chain(&e)))?;
    let (tx, rx) = mpsc::channel(DEFAULT_CAPACITY);
    let mut client = ChaincodeSupportClient::new(channel);
    let response = tokio::time::timeout(
        config.connect_timeout,
        client.register(ReceiverStream::new(rx)),
    )
    .await
    .map_err(|_| connect_error("the peer did not answer the Register call".into()))?
    .map_err(|status| connect_error(format!("Register failed: {}", status.message())))?;
    Ok(ChaincodeStream::new(tx, response.into_inner()))
}

/// The host part of `host:port` (IPv6 brackets removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// An error with its causes, on one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    proto::error_chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("127.0.0.1:7052"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7052"), "::1");
        assert_eq!(host_of("peer0.example.com:7052"), "peer0.example.com");
    }

    #[tokio::test]
    async fn an_unreachable_peer_is_an_error_not_a_hang() {
        // A port nobody listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = ClientConfig::new(format!("127.0.0.1:{port}"), "cc:1");
        let started = std::time::Instant::now();
        let e = connect(&config).await.unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        assert!(started.elapsed() < config.connect_timeout + std::time::Duration::from_secs(1));
    }
}
