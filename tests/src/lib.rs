//! Shared helpers of the integration tests: a peer with in-memory ledgers, transactions with
//! well-formed signed proposals, and checks for what the environment offers.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod bench;
pub mod builders;
pub mod env;
pub mod fixtures;
pub mod peer_process;
pub mod scenarios;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use peer_support::ledger::Ledgers;
use peer_support::proposal::{self, ProposalSpec};
use peer_support::server::ServerOptions;
use peer_support::tls::ChaincodeCa;
use peer_support::{
    ChaincodeDefinition, ChaincodeSupport, DefinitionMap, ExecuteResult, SupportConfig, TxParams,
};
use proto::protos::ChaincodeInput;
use vm_api::{Ccid, ChaincodePackage};
use vm_inproc::{InprocVm, SystemChaincodes};
use vm_process::{ProcessConfig, ProcessVm};

// Linked for their registrations.
use scc_examples as _;
use vm_external::ExternalVm;

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    });
}

/// A chaincode input from text arguments.
pub fn input(args: &[&str]) -> ChaincodeInput {
    ChaincodeInput {
        args: args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect(),
        ..ChaincodeInput::default()
    }
}

/// The client identity of the tests: a self-signed X.509 certificate (PEM).
pub fn client_certificate() -> &'static str {
    static CERT: OnceLock<String> = OnceLock::new();
    CERT.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["client.example".into()]).expect("params");
        params.self_signed(&key).expect("self-signed").pem()
    })
}

/// A peer's chaincode support with in-memory ledgers and the example system chaincodes.
pub struct TestPeer {
    pub support: ChaincodeSupport,
    pub ledgers: Arc<Ledgers>,
    pub definitions: Arc<DefinitionMap>,
    /// The PROCESS backend, for looking at its processes.
    pub process: Arc<ProcessVm>,
    /// The chaincode listener, when the peer serves gRPC.
    pub listener: Option<std::net::SocketAddr>,
    /// The chaincode CA, when the listener requires mutual TLS.
    pub ca: Option<Arc<ChaincodeCa>>,
    /// The EXTERNAL backend, once created (peers built with [`TestPeerBuilder::fabric2`]).
    pub external: Arc<OnceLock<Arc<ExternalVm>>>,
    server: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    txs: AtomicU64,
}

type BuilderHook =
    Box<dyn FnOnce(peer_support::ChaincodeSupportBuilder) -> peer_support::ChaincodeSupportBuilder>;

/// Builds a [`TestPeer`].
pub struct TestPeerBuilder {
    pub config: SupportConfig,
    pub chaincodes: SystemChaincodes,
    grpc: Option<bool>,
    builder_hook: Option<BuilderHook>,
    data_dir: Option<std::path::PathBuf>,
}

impl TestPeerBuilder {
    pub fn config(mut self, f: impl FnOnce(&mut SupportConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Adds a system chaincode only this peer runs.
    pub fn chaincode(
        mut self,
        name: &str,
        version: &str,
        f: impl Fn() -> Arc<dyn shim::Chaincode> + Send + Sync + 'static,
    ) -> Self {
        self.chaincodes.add(name, version, f);
        self
    }

    /// Changes the support builder (extra backends, TLS, …).
    pub fn with(
        mut self,
        f: impl FnOnce(peer_support::ChaincodeSupportBuilder) -> peer_support::ChaincodeSupportBuilder
        + 'static,
    ) -> Self {
        self.builder_hook = Some(Box::new(f));
        self
    }

    /// A Fabric 2.x peer: packages and external builds kept under `data_dir`
    /// (`peer.fileSystemPath`; packages in `<data_dir>/lifecycle`), with `builders` as
    /// `chaincode.externalBuilders`.
    pub fn fabric2(mut self, data_dir: &std::path::Path, builders: serde_json::Value) -> Self {
        self.config
            .settings
            .set("peer.fileSystemPath", data_dir.display().to_string());
        self.config
            .settings
            .set_json("chaincode.externalBuilders", &builders);
        self.data_dir = Some(data_dir.to_path_buf());
        self
    }

    /// Serves the chaincode listener on 127.0.0.1, with mutual TLS when `tls`.
    pub fn grpc(mut self, tls: bool) -> Self {
        self.grpc = Some(tls);
        self
    }

    /// Builds the peer; with a listener, this must run inside a tokio runtime.
    pub fn build(mut self) -> TestPeer {
        init_logging();
        let listener = self.grpc.map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            self.config.peer_address = l.local_addr().expect("addr").to_string();
            l
        });
        self.config.tls = match self.grpc {
            Some(true) => peer_support::ChaincodeTls::On,
            _ => peer_support::ChaincodeTls::Off,
        };
        let process = Arc::new(ProcessVm::new(ProcessConfig::default()));
        let ledgers = Arc::new(Ledgers::in_memory());
        let definitions = Arc::new(DefinitionMap::new());
        for ccid in self.chaincodes.ids().expect("system chaincodes") {
            definitions.define(ChaincodeDefinition::system(ccid));
        }
        let chaincodes = self.chaincodes.clone();
        let mut builder = ChaincodeSupport::builder(self.config)
            .definitions(definitions.clone())
            .ledgers(ledgers.clone())
            .in_process_vm("SYSTEM", move |_, peer| {
                Ok(Arc::new(InprocVm::new(peer, chaincodes.clone())) as Arc<dyn vm_api::Vm>)
            });
        let process_vm = process.clone();
        builder = builder.vm("PROCESS", move |_| {
            Ok(process_vm.clone() as Arc<dyn vm_api::Vm>)
        });
        let external = Arc::new(OnceLock::new());
        if let Some(dir) = &self.data_dir {
            let store = chaincode_package::PackageStore::open(
                &dir.join("lifecycle"),
                chaincode_package::Limits::default(),
            )
            .expect("package store");
            let slot = Arc::clone(&external);
            builder = builder
                .packages(Arc::new(store))
                .vm("EXTERNAL", move |ctx| {
                    let config = vm_external::ExternalConfig::from_settings(&ctx.settings)?;
                    let vm = Arc::clone(slot.get_or_init(|| Arc::new(ExternalVm::new(config))));
                    Ok(vm as Arc<dyn vm_api::Vm>)
                });
        }
        if let Some(hook) = self.builder_hook {
            builder = hook(builder);
        }
        let support = builder.build().expect("chaincode support");
        let ca = support.chaincode_ca().cloned();
        let mut addr = None;
        let server = listener.map(|l| {
            addr = Some(l.local_addr().expect("addr"));
            let listener = tokio::net::TcpListener::from_std(l).expect("tokio listener");
            let options = ServerOptions::default();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let support = support.clone();
            let task = tokio::spawn(async move {
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) =
                    peer_support::server::serve(support, listener, options, shutdown).await
                {
                    eprintln!("chaincode listener failed: {}", e.report());
                }
            });
            (stop, task)
        });
        TestPeer {
            support,
            ledgers,
            definitions,
            process,
            listener: addr,
            ca,
            external,
            server,
            txs: AtomicU64::new(0),
        }
    }
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Commit the writes when the response is a success.
    OnSuccess,
    /// Never commit (a query).
    Never,
}

impl TestPeer {
    pub fn builder() -> TestPeerBuilder {
        TestPeerBuilder {
            config: SupportConfig {
                execute_timeout: std::time::Duration::from_secs(10),
                startup_timeout: std::time::Duration::from_secs(10),
                ..SupportConfig::default()
            },
            chaincodes: SystemChaincodes::new(),
            grpc: None,
            builder_hook: None,
            data_dir: None,
        }
    }

    pub fn new() -> TestPeer {
        Self::builder().build()
    }

    /// Transaction parameters with a fresh simulator and a signed proposal.
    pub fn tx(
        &self,
        channel: &str,
        chaincode: &str,
        input: &ChaincodeInput,
    ) -> (TxParams, Arc<peer_support::ledger::Simulator>) {
        let n = self.txs.fetch_add(1, Ordering::Relaxed);
        let built = proposal::build(&ProposalSpec {
            channel_id: channel.into(),
            chaincode: chaincode.into(),
            input: input.clone(),
            mspid: "Org1MSP".into(),
            certificate_pem: Bytes::from(client_certificate().to_owned()),
            nonce: Bytes::from(format!("nonce-{n}-{}", std::process::id())),
            ..ProposalSpec::default()
        });
        let ledger = self.ledgers.get_or_create(channel).expect("ledger");
        let simulator = ledger.new_tx_simulator();
        let params = TxParams {
            tx_id: built.tx_id.clone(),
            channel_id: channel.into(),
            signed_proposal: Some(built.signed(Bytes::from_static(b"unsigned"))),
            simulator: Some(simulator.clone()),
            history: Some(ledger),
        };
        (params, simulator)
    }

    async fn run(
        &self,
        channel: &str,
        cc: &str,
        args: &[&str],
        init: bool,
        commit: Commit,
    ) -> peer_support::Result<ExecuteResult> {
        let input = input(args);
        let (params, simulator) = self.tx(channel, cc, &input);
        let result = if init {
            self.support.init(&params, cc, input).await?
        } else {
            self.support.execute(&params, cc, input).await?
        };
        if commit == Commit::OnSuccess && !result.response.is_error() {
            let ledger = self.ledgers.get_or_create(channel).expect("ledger");
            ledger.commit(&params.tx_id, None, &simulator.rwset())?;
        }
        Ok(result)
    }

    /// Invokes and commits on success.
    pub async fn invoke(
        &self,
        channel: &str,
        cc: &str,
        args: &[&str],
    ) -> peer_support::Result<ExecuteResult> {
        self.run(channel, cc, args, false, Commit::OnSuccess).await
    }

    /// Runs Init and commits on success.
    pub async fn init(
        &self,
        channel: &str,
        cc: &str,
        args: &[&str],
    ) -> peer_support::Result<ExecuteResult> {
        self.run(channel, cc, args, true, Commit::OnSuccess).await
    }

    /// Invokes without committing.
    pub async fn query(
        &self,
        channel: &str,
        cc: &str,
        args: &[&str],
    ) -> peer_support::Result<ExecuteResult> {
        self.run(channel, cc, args, false, Commit::Never).await
    }

    /// The committed value of `key` in namespace `ns`.
    pub fn state(&self, channel: &str, ns: &str, key: &str) -> Option<Bytes> {
        use peer_support::ledger::QueryExecutor;
        self.ledgers
            .get_or_create(channel)
            .unwrap()
            .query_executor()
            .get_state(ns, key)
            .unwrap()
    }

    /// Defines a user chaincode run by the PROCESS backend on every channel.
    pub fn define_process(
        &self,
        name: &str,
        version: &str,
        platform: &str,
        path: impl Into<std::path::PathBuf>,
    ) -> ChaincodeDefinition {
        let ccid = Ccid::new(name, version);
        let package = ChaincodePackage::legacy(&ccid, platform, path.into());
        let def = ChaincodeDefinition::user(ccid, "PROCESS", package);
        self.definitions.define(def.clone());
        def
    }

    /// Installs a Fabric 2.x package and defines it as chaincode `name` on every channel.
    pub async fn install_and_define(
        &self,
        name: &str,
        package: Vec<u8>,
    ) -> peer_support::Result<(ChaincodeDefinition, peer_support::InstalledPackage)> {
        let installed = self.support.install_package(package.into()).await?;
        let def = ChaincodeDefinition::packaged(name, installed.package.clone());
        self.definitions.define(def.clone());
        Ok((def, installed))
    }

    /// Waits until `name` (`name:version`) is registered.
    pub async fn wait_registered(&self, name: &str, within: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self
                .support
                .registry()
                .registered()
                .iter()
                .any(|n| n == name)
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    /// Stops every chaincode and the listener.
    pub async fn shutdown(mut self) {
        self.support.shutdown().await;
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .expect("the listener stops once every stream ended")
                .expect("listener task");
        }
    }

    /// The definition of a system chaincode of this peer.
    pub fn definition(&self, name: &str) -> ChaincodeDefinition {
        use peer_support::ChaincodeDefinitions;
        self.definitions.definition("", name).unwrap()
    }
}

impl Default for TestPeer {
    fn default() -> Self {
        Self::new()
    }
}

/// The id of the example key/value system chaincode.
pub fn kvscc() -> Ccid {
    Ccid::new("kvscc", scc_examples::VERSION)
}

/// The payload of a successful response as text, or a panic with the response.
pub fn ok_text(result: &ExecuteResult) -> String {
    assert_eq!(
        result.response.status, 200,
        "expected success, got {:?}",
        result.response
    );
    String::from_utf8_lossy(&result.response.payload).into_owned()
}
