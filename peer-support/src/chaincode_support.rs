//! ChaincodeSupport: launch chaincodes, execute transactions on them, serve their streams.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use prost::Message;
use proto::MessageType;
use proto::protos::{ChaincodeEvent, ChaincodeInput, ChaincodeMessage, Response, SignedProposal};
use proto::stream::ChaincodeStream;
use tokio::sync::watch;
use vm_api::{ChaincodePackage, ChaincodeStreamHandler, StreamOrigin, VmContext};

use crate::chaincode_identity::{ClientCertIssuer, RegistrationCheck};
use crate::definitions::WithBuiltins;
use crate::ledger::{HistoryQueryExecutor, LedgerProvider, TxSimulator};
use crate::runtime_launcher::RuntimeLauncher;
use crate::tls::ChaincodeCa;
use crate::tx_context::StateAccess;
use crate::{
    ChaincodeDefinition, ChaincodeDefinitions, ContainerRuntime, DefinitionMap, Error,
    HandlerRegistry, Metrics, Result, SupportConfig, VmController, VmFactory,
};

/// What a transaction brings to a chaincode.
#[derive(Clone, Default)]
pub struct TxParams {
    /// The transaction id.
    pub tx_id: String,
    /// The channel.
    pub channel_id: String,
    /// The client's signed proposal; shims read the creator, timestamp and transient map
    /// from it.
    pub signed_proposal: Option<SignedProposal>,
    /// Where the transaction reads and writes state; without one, state requests fail.
    pub simulator: Option<Arc<dyn TxSimulator>>,
    /// Where history queries go; without one, they fail.
    pub history: Option<Arc<dyn HistoryQueryExecutor>>,
}

impl std::fmt::Debug for TxParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxParams")
            .field("tx_id", &self.tx_id)
            .field("channel_id", &self.channel_id)
            .field("signed_proposal", &self.signed_proposal.is_some())
            .field("simulator", &self.simulator.is_some())
            .field("history", &self.history.is_some())
            .finish()
    }
}

/// What a chaincode returned for a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteResult {
    /// The chaincode's response; status 400 or more is the chaincode's own error.
    pub response: Response,
    /// The event the chaincode set, if any.
    pub event: Option<ChaincodeEvent>,
}

pub(crate) struct SupportInner {
    pub config: Arc<SupportConfig>,
    pub registry: Arc<HandlerRegistry>,
    pub launcher: Arc<RuntimeLauncher>,
    /// The embedding program's definitions, behind the backends' built-in chaincodes.
    pub definitions: WithBuiltins,
    pub ledgers: Option<Arc<dyn LedgerProvider>>,
    /// Installed Fabric 2.x packages, when the embedding program keeps them.
    pub packages: Option<Arc<chaincode_package::PackageStore>>,
    pub registration_check: Option<Arc<dyn RegistrationCheck>>,
    /// The chaincode CA, when launched chaincodes use mutual TLS.
    pub ca: Option<Arc<ChaincodeCa>>,
    /// Set once the peer shuts down: streams end and nothing new starts.
    pub closing: watch::Sender<bool>,
    /// The metrics, when the embedding program gave a registry.
    pub metrics: Option<Arc<Metrics>>,
}

impl SupportInner {
    /// Completes once the peer shuts down.
    pub(crate) async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }

    pub(crate) fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Launches `def` if needed and runs one INIT or TRANSACTION on it.
    pub(crate) async fn execute_with_state(
        &self,
        params: &TxParams,
        def: &ChaincodeDefinition,
        input: ChaincodeInput,
        is_init: bool,
        state: StateAccess,
    ) -> Result<ChaincodeMessage> {
        if self.is_closing() {
            return Err(Error::ShuttingDown);
        }
        let is_init = check_invocation(def, &input, is_init, &state)?;
        let handler = self.launcher.launch(def).await?;
        let kind = if is_init {
            MessageType::Init
        } else {
            MessageType::Transaction
        };
        let msg = ChaincodeMessage {
            proposal: params.signed_proposal.clone(),
            ..ChaincodeMessage::with_payload(
                kind,
                params.channel_id.clone(),
                params.tx_id.clone(),
                input.encode_to_vec(),
            )
        };
        handler
            .execute(params, def, state, msg, self.config.execute_timeout)
            .await
    }
}

/// Launches chaincodes, runs transactions on them and serves their streams (Fabric's
/// `ChaincodeSupport`). Cheap to clone.
///
/// Build one with [`ChaincodeSupport::builder`].
#[derive(Clone)]
pub struct ChaincodeSupport {
    inner: Arc<SupportInner>,
}

impl std::fmt::Debug for ChaincodeSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeSupport")
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

impl ChaincodeSupport {
    /// Starts building a chaincode support with `config`.
    pub fn builder(config: SupportConfig) -> ChaincodeSupportBuilder {
        ChaincodeSupportBuilder {
            config,
            definitions: None,
            ledgers: None,
            factories: HashMap::new(),
            cert_issuer: None,
            registration_check: None,
            ca: None,
            packages: None,
            metrics: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SupportConfig {
        &self.inner.config
    }

    /// The handler registry.
    pub fn registry(&self) -> &HandlerRegistry {
        &self.inner.registry
    }

    /// The VM controller.
    pub fn controller(&self) -> &Arc<VmController> {
        self.inner.launcher.runtime().controller()
    }

    /// The container runtime.
    pub fn runtime(&self) -> &Arc<ContainerRuntime> {
        self.inner.launcher.runtime()
    }

    /// The chaincode definitions the embedding program gave (without the built-in ones).
    pub fn definitions(&self) -> &Arc<dyn ChaincodeDefinitions> {
        self.inner.definitions.user()
    }

    /// The definition of `name` on `channel`: a chaincode built into a backend (a system
    /// chaincode, which no other definition can shadow), else the embedding program's.
    pub fn definition(&self, channel: &str, name: &str) -> Result<ChaincodeDefinition> {
        self.inner.definitions.definition(channel, name)
    }

    /// The chaincodes built into the linked backends (system chaincodes), defined on every
    /// channel by linking their crates.
    pub fn builtin_chaincodes(&self) -> Vec<ChaincodeDefinition> {
        self.inner.definitions.builtins()
    }

    /// Installs a Fabric 2.x chaincode package: checks it (see
    /// [`chaincode_package::Package::parse`]), keeps it by package ID with its code unpacked,
    /// and builds it, so that a package no backend takes, or whose build fails, is refused
    /// now and not kept (as Fabric removes it). Installing the same package again builds
    /// nothing new. Needs a package store ([`ChaincodeSupportBuilder::packages`]).
    pub async fn install_package(&self, bytes: bytes::Bytes) -> Result<InstalledPackage> {
        let store = self.package_store()?;
        let installed = tokio::task::spawn_blocking(move || store.install(&bytes))
            .await
            .map_err(|e| Error::Protocol(format!("installing the package failed: {e}")))??;
        let package = package_of(&installed);
        let def = ChaincodeDefinition::packaged(installed.metadata.label.clone(), package.clone());
        let container_type = match self.runtime().rebuild(&def).await {
            Ok(container_type) => container_type,
            Err(e) => {
                // As Fabric does: a package that does not build is not installed.
                if !installed.already {
                    let (store, id) = (self.package_store()?, installed.id.clone());
                    let removed = tokio::task::spawn_blocking(move || store.remove(&id)).await;
                    if let Ok(Err(remove)) = removed {
                        tracing::warn!(package = %installed.id, error = %remove, "cannot remove the package whose build failed");
                    }
                }
                return Err(e);
            }
        };
        tracing::info!(package = %installed.id, backend = %container_type, "package installed");
        Ok(InstalledPackage {
            package,
            container_type,
            already: installed.already,
        })
    }

    /// The installed package `id` (`label:hash`), ready for
    /// [`ChaincodeDefinition::packaged`].
    pub async fn package(&self, id: &str) -> Result<ChaincodePackage> {
        let store = self.package_store()?;
        let id: chaincode_package::PackageId = id.parse()?;
        let installed = tokio::task::spawn_blocking(move || store.get(&id))
            .await
            .map_err(|e| Error::Protocol(format!("reading the package failed: {e}")))??;
        Ok(package_of(&installed))
    }

    fn package_store(&self) -> Result<Arc<chaincode_package::PackageStore>> {
        self.inner.packages.clone().ok_or_else(|| Error::Config {
            key: "packages".into(),
            message: "this peer keeps no chaincode packages (no package store was given)".into(),
        })
    }

    /// The chaincode CA, when launched chaincodes use mutual TLS; the gRPC server takes its
    /// identity from it.
    pub fn chaincode_ca(&self) -> Option<&Arc<ChaincodeCa>> {
        self.inner.ca.as_ref()
    }

    /// Launches `def`'s chaincode unless it is registered already, and waits until it is
    /// ready. Concurrent launches of one chaincode share one launch.
    pub async fn launch(&self, def: &ChaincodeDefinition) -> Result<()> {
        if self.inner.is_closing() {
            return Err(Error::ShuttingDown);
        }
        self.inner.launcher.launch(def).await.map(|_| ())
    }

    /// Runs a transaction (Invoke) on chaincode `name` of `params.channel_id`, launching it
    /// if needed.
    pub async fn execute(
        &self,
        params: &TxParams,
        name: &str,
        input: ChaincodeInput,
    ) -> Result<ExecuteResult> {
        self.execute_named(params, name, input, false).await
    }

    /// Runs a chaincode's Init on chaincode `name` of `params.channel_id`.
    pub async fn init(
        &self,
        params: &TxParams,
        name: &str,
        input: ChaincodeInput,
    ) -> Result<ExecuteResult> {
        self.execute_named(params, name, input, true).await
    }

    async fn execute_named(
        &self,
        params: &TxParams,
        name: &str,
        input: ChaincodeInput,
        is_init: bool,
    ) -> Result<ExecuteResult> {
        let def = self.definition(&params.channel_id, name)?;
        self.execute_definition(params, &def, input, is_init).await
    }

    /// Runs INIT (`is_init`) or TRANSACTION on `def`'s chaincode.
    ///
    /// A chaincode that answers ERROR (a failed Init, a panic) gives [`Error::Chaincode`]; an
    /// Invoke that returns an error status comes back as a response with that status.
    pub async fn execute_definition(
        &self,
        params: &TxParams,
        def: &ChaincodeDefinition,
        input: ChaincodeInput,
        is_init: bool,
    ) -> Result<ExecuteResult> {
        let state = match &params.simulator {
            Some(sim) => StateAccess::Simulator(Arc::clone(sim)),
            None => StateAccess::None,
        };
        let reply = self
            .inner
            .execute_with_state(params, def, input, is_init, state)
            .await?;
        match reply.kind() {
            Some(MessageType::Completed) => Ok(ExecuteResult {
                response: Response::decode(reply.payload)
                    .map_err(|e| Error::decode("the chaincode's Response", e))?,
                event: reply.chaincode_event,
            }),
            Some(MessageType::Error) => Err(Error::Chaincode {
                ccid: def.ccid.registered_name(),
                txid: params.tx_id.clone(),
                message: reply.payload_text(),
            }),
            _ => Err(Error::Protocol(format!(
                "chaincode {} answered transaction {} with {}",
                def.ccid,
                params.tx_id,
                reply.kind_name()
            ))),
        }
    }

    /// Stops `def`'s chaincode.
    pub async fn stop(&self, def: &ChaincodeDefinition) -> Result<()> {
        self.inner.launcher.stop(def).await
    }

    /// Stops every chaincode this peer launched; they are launched again when next needed.
    pub async fn stop_all(&self) {
        self.inner.launcher.stop_all().await;
    }

    /// Shuts down: refuses new launches, transactions and registrations, stops every
    /// chaincode this peer launched, and ends the streams of the others (dev mode), so their
    /// processes see the peer go away.
    pub async fn shutdown(&self) {
        self.inner.closing.send_replace(true);
        self.inner.launcher.stop_all().await;
    }

    /// Completes once [`shutdown`](Self::shutdown) was called.
    pub async fn closed(&self) {
        self.inner.closed().await;
    }

    /// Serves one chaincode stream until it ends.
    pub async fn handle_chaincode_stream(&self, stream: ChaincodeStream, origin: StreamOrigin) {
        crate::handler::handle_stream(&self.inner, stream, origin).await;
    }

    /// A stream handler for backends and servers, which does not keep the support alive.
    pub fn stream_handler(&self) -> Arc<dyn ChaincodeStreamHandler> {
        Arc::new(WeakStreamHandler(Arc::downgrade(&self.inner)))
    }
}

/// The key, in a chaincode's own namespace, holding the version its Init ran for (Fabric's: a
/// NUL, the largest code point, `initialized`; chaincodes may not write keys that start with
/// the first two).
pub const INITIALIZED_KEY: &str = "\u{0}\u{10FFFF}initialized";

/// Fabric 2.x's Init rule, for a call and for a chaincode-to-chaincode call alike: a definition
/// with `--init-required` runs `input.is_init` first for each version (recorded in the same
/// transaction, so two competing Inits conflict), then never again; a definition without it is
/// never called as init. Returns whether the chaincode gets INIT (`run_init`: the caller asks
/// for it regardless, as a Fabric 1.4 instantiate does).
fn check_invocation(
    def: &ChaincodeDefinition,
    input: &ChaincodeInput,
    run_init: bool,
    state: &StateAccess,
) -> Result<bool> {
    let name = &def.name;
    let Some(version) = &def.init_required else {
        if input.is_init {
            return Err(Error::InvalidInvocation(format!(
                "chaincode '{name}' does not require initialization but called as init"
            )));
        }
        return Ok(run_init);
    };
    let done = state
        .reader()?
        .get_state(def.namespace(), INITIALIZED_KEY)?;
    match (done.as_deref() == Some(version.as_bytes()), input.is_init) {
        (false, false) => Err(Error::InvalidInvocation(format!(
            "chaincode '{name}' has not been initialized for this version, must call as init first"
        ))),
        (false, true) => {
            state.writer()?.set_state(
                def.namespace(),
                INITIALIZED_KEY,
                bytes::Bytes::from(version.clone()),
            )?;
            Ok(true)
        }
        (true, true) => Err(Error::InvalidInvocation(format!(
            "chaincode '{name}' is already initialized but called as init"
        ))),
        (true, false) => Ok(run_init),
    }
}

/// A package as backends see it.
fn package_of(installed: &chaincode_package::Installed) -> ChaincodePackage {
    ChaincodePackage {
        id: installed.id.to_string(),
        kind: installed.metadata.kind.clone(),
        code: installed.code_dir.clone(),
        metadata_json: installed.metadata_json.clone(),
    }
}

/// An installed Fabric 2.x package and the backend that built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The package, for [`ChaincodeDefinition::packaged`].
    pub package: ChaincodePackage,
    /// The backend that took it.
    pub container_type: String,
    /// Whether it was installed already.
    pub already: bool,
}

/// Hands streams to the support while it exists; backends hold this, so that the support
/// (which owns the backends) is not kept alive by them.
struct WeakStreamHandler(Weak<SupportInner>);

#[async_trait::async_trait]
impl ChaincodeStreamHandler for WeakStreamHandler {
    async fn handle_chaincode_stream(&self, stream: ChaincodeStream, origin: StreamOrigin) {
        match self.0.upgrade() {
            Some(inner) => crate::handler::handle_stream(&inner, stream, origin).await,
            None => tracing::warn!("chaincode stream arrived after the peer shut down"),
        }
    }
}

/// Builds a [`ChaincodeSupport`].
pub struct ChaincodeSupportBuilder {
    config: SupportConfig,
    definitions: Option<Arc<dyn ChaincodeDefinitions>>,
    ledgers: Option<Arc<dyn LedgerProvider>>,
    factories: HashMap<String, VmFactory>,
    cert_issuer: Option<Arc<dyn ClientCertIssuer>>,
    registration_check: Option<Arc<dyn RegistrationCheck>>,
    ca: Option<Arc<ChaincodeCa>>,
    packages: Option<Arc<chaincode_package::PackageStore>>,
    metrics: Option<prometheus::Registry>,
}

impl std::fmt::Debug for ChaincodeSupportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeSupportBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ChaincodeSupportBuilder {
    /// Where chaincodes are looked up (default: an empty [`DefinitionMap`]).
    pub fn definitions(mut self, definitions: Arc<dyn ChaincodeDefinitions>) -> Self {
        self.definitions = Some(definitions);
        self
    }

    /// The channels' ledgers, for calls between chaincodes on different channels.
    pub fn ledgers(mut self, ledgers: Arc<dyn LedgerProvider>) -> Self {
        self.ledgers = Some(ledgers);
        self
    }

    /// Serves `container_type` with the backend `factory` makes, instead of the provider
    /// registered with `inventory` (if any).
    pub fn vm(
        mut self,
        container_type: impl Into<String>,
        factory: impl Fn(&VmContext) -> vm_api::Result<Arc<dyn vm_api::Vm>> + Send + Sync + 'static,
    ) -> Self {
        self.factories.insert(
            container_type.into(),
            VmFactory::Standalone(Arc::new(factory)),
        );
        self
    }

    /// Serves `container_type` with an in-process backend `factory` makes; it gets the peer's
    /// side of chaincode streams.
    pub fn in_process_vm(
        mut self,
        container_type: impl Into<String>,
        factory: impl Fn(
            &VmContext,
            Arc<dyn ChaincodeStreamHandler>,
        ) -> vm_api::Result<Arc<dyn vm_api::Vm>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.factories.insert(
            container_type.into(),
            VmFactory::InProcess(Arc::new(factory)),
        );
        self
    }

    /// Keeps Fabric 2.x packages in `store`, for [`ChaincodeSupport::install_package`].
    pub fn packages(mut self, store: Arc<chaincode_package::PackageStore>) -> Self {
        self.packages = Some(store);
        self
    }

    /// The chaincode CA to use when TLS is on (default: a new one, made at build time).
    pub fn chaincode_ca(mut self, ca: Arc<ChaincodeCa>) -> Self {
        self.ca = Some(ca);
        self
    }

    /// Issue client certificates with `issuer` instead of the chaincode CA (the gRPC server
    /// then needs its TLS identity given explicitly).
    pub fn cert_issuer(mut self, issuer: Arc<dyn ClientCertIssuer>) -> Self {
        self.cert_issuer = Some(issuer);
        self
    }

    /// Measures launches, shim requests, timeouts and builds into `registry` (see
    /// [`Metrics`]); without a registry nothing is measured.
    pub fn metrics(mut self, registry: &prometheus::Registry) -> Self {
        self.metrics = Some(registry.clone());
        self
    }

    /// Check every registration (against the client certificate, for instance).
    pub fn registration_check(mut self, check: Arc<dyn RegistrationCheck>) -> Self {
        self.registration_check = Some(check);
        self
    }

    /// Builds the support. With TLS on (see [`SupportConfig::tls_enabled`]) and no issuer
    /// given, it makes the chaincode CA that issues launched chaincodes their certificates and
    /// checks their registrations.
    pub fn build(self) -> Result<ChaincodeSupport> {
        let ca = match (self.config.tls_enabled(), self.ca) {
            (false, _) => None,
            (true, Some(ca)) => Some(ca),
            (true, None) => {
                let ca = ChaincodeCa::new()?;
                Some(Arc::new(if self.config.dev_mode {
                    ca.without_name_binding()
                } else {
                    ca
                }))
            }
        };
        let cert_issuer = self
            .cert_issuer
            .or_else(|| ca.clone().map(|ca| ca as Arc<dyn ClientCertIssuer>));
        let registration_check = self
            .registration_check
            .or_else(|| ca.clone().map(|ca| ca as Arc<dyn RegistrationCheck>));
        let metrics = match &self.metrics {
            Some(registry) => Some(Arc::new(Metrics::register(registry)?)),
            None => None,
        };
        let config = Arc::new(self.config);
        let definitions = WithBuiltins::new(
            self.definitions
                .unwrap_or_else(|| Arc::new(DefinitionMap::new())),
        )?;
        let inner = Arc::new_cyclic(|weak: &Weak<SupportInner>| {
            let context = VmContext {
                peer_id: config.peer_id.clone(),
                network_id: config.network_id.clone(),
                settings: config.settings.clone(),
            };
            let streams: Arc<dyn ChaincodeStreamHandler> =
                Arc::new(WeakStreamHandler(weak.clone()));
            let controller = Arc::new(VmController::new(
                context,
                Arc::clone(&streams),
                self.factories,
            ));
            let runtime = Arc::new(
                ContainerRuntime::new(Arc::clone(&config), controller, cert_issuer)
                    .with_metrics(metrics.clone()),
            );
            let registry = Arc::new(HandlerRegistry::new(config.dev_mode));
            SupportInner {
                launcher: Arc::new(RuntimeLauncher::new(
                    Arc::clone(&config),
                    Arc::clone(&registry),
                    runtime,
                    streams,
                    metrics.clone(),
                )),
                config,
                registry,
                definitions,
                ledgers: self.ledgers,
                packages: self.packages,
                registration_check,
                ca,
                closing: watch::Sender::new(false),
                metrics,
            }
        });
        Ok(ChaincodeSupport { inner })
    }
}
