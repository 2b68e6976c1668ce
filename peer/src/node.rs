//! `peer node start`: the chaincode listener, the operations service, the admin API, the
//! system chaincodes, persistent state; runs until SIGINT or SIGTERM, then stops every
//! chaincode it launched.

use std::sync::Arc;

use anyhow::{Context, Result};
use peer_support::ChaincodeSupport;
use peer_support::ledger::{Ledgers, VersionedDb};
use peer_support::server::ServerOptions;
use proto::admin::admin_server::AdminServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use std::path::{Path, PathBuf};

use chaincode_package::PackageStore;

use crate::admin::{AdminService, Node};
use crate::client::MAX_MESSAGE;
use crate::config::{AdminTls, PeerConfig};
use crate::lifecycle::Lifecycle;
use crate::msp::{Msp, MspManager};
use crate::operations::OperationsConfig;
use crate::store::Store;

/// Calls one client connection may have under way at once on the admin API.
const ADMIN_STREAMS_PER_CONNECTION: usize = 64;

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

/// The admin API's TLS: the configured certificate, or one generated into `<data>/tls/`
/// (with its CA beside it, for clients' `--cafile`); client certificates checked against
/// `peer.tls.clientRootCAs.files` (or `peer.tls.rootcert.file`) when required.
async fn admin_tls(
    tls: &AdminTls,
    data: &Path,
    listen: std::net::SocketAddr,
) -> Result<tonic::transport::ServerTlsConfig> {
    let (tls, data) = (tls.clone(), data.to_owned());
    tokio::task::spawn_blocking(move || {
        let (cert, key) = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => {
                let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
                if !listen.ip().is_unspecified() {
                    hosts.push(listen.ip().to_string());
                }
                let (cert, key, ca) = crate::msp::dev::tls_server_cert(&data.join("tls"), &hosts)?;
                tracing::info!(cert = %cert.display(), ca = %ca.display(), "TLS certificate generated for the admin API");
                (cert, key)
            }
        };
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let mut config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(read(&cert)?, read(&key)?));
        if tls.client_auth_required {
            let mut roots = Vec::new();
            let files: Vec<PathBuf> = if tls.client_root_cas.is_empty() {
                tls.root_cert.iter().cloned().collect()
            } else {
                tls.client_root_cas.clone()
            };
            for file in &files {
                roots.extend(read(file)?);
                roots.push(b'\n');
            }
            config = config
                .client_ca_root(tonic::transport::Certificate::from_pem(roots))
                .client_auth_optional(false);
        }
        Ok(config)
    })
    .await?
}

/// Runs the peer until it is told to stop.
pub async fn start(config: PeerConfig) -> Result<()> {
    let data = &config.file_system_path;
    let operations =
        OperationsConfig::from_settings(&config.settings, |key| std::env::var(key).ok())?;
    let registry = operations.registry();
    // The organisation's MSP: the configured one, or a development MSP made in the data
    // folder on first start (a CA and an administrator the CLI signs with by default).
    let msps = {
        let (data, msp_dir, mspid, trusted) = (
            data.clone(),
            config.msp_dir.clone(),
            config.local_msp_id.clone(),
            config.trusted_msps.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<MspManager> {
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create peer.fileSystemPath {}", data.display()))?;
            if msp_dir == data.join("msp") {
                crate::msp::dev::create(&data, &mspid).with_context(|| {
                    format!("cannot make the development MSP in {}", data.display())
                })?;
            }
            let local = Msp::load(&msp_dir, &mspid)
                .with_context(|| format!("cannot load peer.mspConfigPath {}", msp_dir.display()))?;
            let trusted = trusted
                .iter()
                .map(|(id, dir)| {
                    Msp::load(dir, id).with_context(|| {
                        format!("cannot load peer.trustedMSPs {id}: {}", dir.display())
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(MspManager::new(local, trusted))
        })
        .await??
    };
    // The system chaincodes are the ones built into the linked backends.
    let system: Vec<vm_api::Ccid> = peer_support::builtin_chaincodes()
        .map_err(|e| anyhow::anyhow!("{}", e.report()))?
        .into_iter()
        .map(|(_, ccid)| ccid)
        .collect();
    // The state database and the packages (Fabric 2.x installs and 1.4 uploads alike, by
    // package ID), opened off the async workers.
    let (store, packages, lifecycle) = {
        let (data, system) = (data.clone(), system.clone());
        tokio::task::spawn_blocking(move || -> Result<_> {
            let store = Store::open(&data.join("ledger.redb"))?;
            let packages = Arc::new(
                PackageStore::open(
                    &data.join("lifecycle"),
                    chaincode_package::Limits::default(),
                )
                .map_err(|e| anyhow::anyhow!("cannot open the package store: {e}"))?,
            );
            let lifecycle = Arc::new(Lifecycle::load(store.clone(), packages.clone(), system)?);
            Ok((store, packages, lifecycle))
        })
        .await??
    };
    let ledgers = {
        let store = store.clone();
        Arc::new(Ledgers::new(
            move |channel| -> peer_support::Result<Arc<dyn VersionedDb>> { store.channel(channel) },
        ))
    };
    let mut support = ChaincodeSupport::builder(config.support.clone())
        .definitions(lifecycle.clone())
        .ledgers(ledgers.clone())
        .packages(packages);
    if let Some(registry) = &registry {
        support = support.metrics(registry);
    }
    let support = support
        .build()
        .map_err(|e| anyhow::anyhow!("{}", e.report()))?;

    let chaincode_listener = bind(
        config.chaincode_listen_address,
        "peer.chaincodeListenAddress",
    )
    .await?;
    // TLS material first: once the port answers, clients find the generated CA in place.
    let admin_tls = match &config.tls {
        Some(tls) => Some(admin_tls(tls, data, config.listen_address).await?),
        None => None,
    };
    // Before the admin API: once the peer answers its clients, probes find it too.
    let operations = crate::operations::start(&operations, support.clone(), registry).await?;
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
        msps: Arc::new(msps),
        mspid: config.local_msp_id.clone(),
        changes: tokio::sync::Mutex::new(()),
    });
    node.launch_committed();
    // Bounded work per connection: a client cannot open streams without end.
    let mut server = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(ADMIN_STREAMS_PER_CONNECTION);
    if let Some(tls) = admin_tls {
        server = server
            .tls_config(tls)
            .context("invalid TLS configuration (peer.tls)")?;
    }
    let admin_server = tokio::spawn(
        server
            .add_service(
                AdminServer::new(AdminService::new(node))
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(admin_listener)
                    .with_nodelay(Some(true)),
                stopped(stop_rx),
            ),
    );
    tracing::info!(
        peer = %config.support.peer_id,
        admin = %config.listen_address,
        operations = %operations.address,
        chaincodes = %config.chaincode_listen_address,
        data = %data.display(),
        mode = if config.support.dev_mode { "dev" } else { "net" },
        tls = config.support.tls_enabled(),
        mspid = %config.local_msp_id,
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
    operations.stop().await;
    tracing::info!("peer stopped");
    Ok(())
}
