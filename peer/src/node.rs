//! `peer node start`: the chaincode listener, the admin API, the system chaincodes, persistent
//! state; runs until SIGINT or SIGTERM, then stops every chaincode it launched.

use std::sync::Arc;

use anyhow::{Context, Result};
use peer_support::ChaincodeSupport;
use peer_support::ledger::{Ledgers, VersionedDb};
use peer_support::server::ServerOptions;
use proto::admin::admin_server::AdminServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{AdminService, Node};
use crate::config::PeerConfig;
use crate::identity::Identity;
use crate::lifecycle::Lifecycle;
use crate::store::Store;

/// Binds `address` for the configuration key `key`, with an error naming both.
async fn bind(address: std::net::SocketAddr, key: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {key} {address}"))
}

/// Completes at SIGINT or SIGTERM.
async fn terminated() -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Runs the peer until it is told to stop.
pub async fn start(config: PeerConfig) -> Result<()> {
    let data = &config.file_system_path;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create peer.fileSystemPath {}", data.display()))?;
    // The development identity clients sign with, unless they bring their own.
    Identity::load_or_create(&config.msp_dir, &config.local_msp_id).with_context(|| {
        format!(
            "cannot prepare the identity in {}",
            config.msp_dir.display()
        )
    })?;
    let store = Store::open(&data.join("ledger.redb"))?;
    // The system chaincodes are the ones built into the linked backends.
    let system: Vec<vm_api::Ccid> = peer_support::builtin_chaincodes()
        .map_err(|e| anyhow::anyhow!("{}", e.report()))?
        .into_iter()
        .map(|(_, ccid)| ccid)
        .collect();
    let lifecycle = Arc::new(Lifecycle::load(
        store.clone(),
        data.join("chaincodes"),
        system.clone(),
    )?);
    let ledgers = {
        let store = store.clone();
        Arc::new(Ledgers::new(
            move |channel| -> peer_support::Result<Arc<dyn VersionedDb>> { store.channel(channel) },
        ))
    };
    let support = ChaincodeSupport::builder(config.support.clone())
        .definitions(lifecycle.clone())
        .ledgers(ledgers.clone())
        .build()
        .map_err(|e| anyhow::anyhow!("{}", e.report()))?;

    let chaincode_listener = bind(
        config.chaincode_listen_address,
        "peer.chaincodeListenAddress",
    )
    .await?;
    let admin_listener = bind(config.listen_address, "peer.listenAddress").await?;
    // The backends that run chaincodes of their own accord, checked now (the Docker backend
    // also removes this peer's leftover containers from a previous run when it connects).
    for backend in support.controller().candidates() {
        match support.controller().vm(&backend) {
            Ok(vm) => match vm.health_check().await {
                Ok(()) => tracing::info!(backend, "backend ready"),
                Err(e) => {
                    tracing::warn!(backend, error = %e, "backend unavailable: chaincodes go to the next one")
                }
            },
            Err(e) => tracing::warn!(backend, error = %e.report(), "backend unavailable"),
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let chaincode_server = tokio::spawn(peer_support::server::serve(
        support.clone(),
        chaincode_listener,
        ServerOptions {
            keepalive_interval: config.keepalive.0,
            keepalive_timeout: config.keepalive.1,
            ..ServerOptions::default()
        },
        stopped(stop_rx.clone()),
    ));
    let node = Arc::new(Node {
        support: support.clone(),
        lifecycle,
        ledgers,
        store,
    });
    let admin_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AdminServer::new(AdminService::new(node)))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(admin_listener)
                    .with_nodelay(Some(true)),
                stopped(stop_rx),
            ),
    );
    tracing::info!(
        peer = %config.support.peer_id,
        admin = %config.listen_address,
        chaincodes = %config.chaincode_listen_address,
        data = %data.display(),
        mode = if config.support.dev_mode { "dev" } else { "net" },
        tls = config.support.tls_enabled(),
        system_chaincodes = %system.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
        "peer started"
    );

    let signal = tokio::select! {
        s = terminated() => s?,
        r = chaincode_server => {
            return Err(anyhow::anyhow!("the chaincode listener stopped: {:?}", r.map(|r| r.map_err(|e| e.report()))));
        }
    };
    tracing::info!(signal, "stopping: chaincodes first");
    support.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), admin_server).await;
    tracing::info!("peer stopped");
    Ok(())
}
