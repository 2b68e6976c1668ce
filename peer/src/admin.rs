//! The administration service the CLI talks to. Every call is a client's signed proposal: its
//! creator is authenticated against the peer's MSPs (an identity no configured CA issued is
//! refused, whatever it signs) and authorized by role: installs, approvals, commits, stops and
//! 1.4 instantiations only for the peer's administrators; transactions and queries of
//! definitions for members of the peer's organisation or of a trusted one.
//!
//! Errors become gRPC statuses here, in one place. Nothing that touches a file or the
//! database runs on the async workers: it goes to the blocking pool.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use chaincode_package::PackageId;
use futures::Stream;
use peer_support::ledger::{Ledgers, TxSimulator};
use peer_support::{ChaincodeDefinition, ChaincodeDefinitions, ChaincodeSupport, TxParams};
use prost::Message;
use proto::admin::admin_server::Admin;
use proto::admin::execute_request::Kind;
use proto::admin::{
    ChaincodeInfo, ExecuteEvent, ExecuteRequest, ExecuteResult, LegacyInstallArgs, LifecycleEvent,
    ListRequest, ListResponse, Progress, StopRequest, StopResponse, execute_event, lifecycle_event,
};
use proto::lifecycle as lc;
use proto::protos::{CollectionConfigPackage, SignedProposal};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use vm_api::Ccid;

use crate::lifecycle::{Approval, INITIALIZED_KEY, Installed, LegacyCode, Lifecycle, Params};
use crate::msp::{MspManager, Principal, Role};
use crate::names;
use crate::store::Store;
use crate::transaction::{self, Transaction};

/// The name clients address administrative functions to, as in Fabric.
pub const LIFECYCLE: &str = "_lifecycle";

/// What the service works with.
pub struct Node {
    /// Chaincode support.
    pub support: ChaincodeSupport,
    /// The peer's chaincodes.
    pub lifecycle: Arc<Lifecycle>,
    /// The channels' ledgers.
    pub ledgers: Arc<Ledgers>,
    /// The state database.
    pub store: Store,
    /// The MSPs callers are authenticated against.
    pub msps: Arc<MspManager>,
    /// The peer's organisation.
    pub mspid: String,
    /// Serialises changes to definitions (approve, commit).
    pub changes: tokio::sync::Mutex<()>,
}

/// The admin service.
#[derive(Clone)]
pub struct AdminService {
    node: Arc<Node>,
}

impl AdminService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

/// The one place chaincode-support errors become statuses.
fn status(e: &peer_support::Error) -> Status {
    use peer_support::Error as E;
    let text = e.report();
    match e {
        E::UnknownChaincode { .. } | E::WrongVersion { .. } | E::NotInstalled { .. } => {
            Status::not_found(text)
        }
        E::MvccConflict { .. } => Status::aborted(text),
        E::DuplicateTransaction { .. } => Status::already_exists(text),
        E::ExecuteTimeout { .. } | E::StartupTimeout { .. } | E::BuildTimeout { .. } => {
            Status::deadline_exceeded(text)
        }
        E::ShuttingDown => Status::unavailable(text),
        E::Config { .. } => Status::invalid_argument(text),
        E::Vm(vm_api::Error::UnknownContainerType { .. }) => Status::invalid_argument(text),
        _ => Status::failed_precondition(text),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn refused(e: impl std::fmt::Display) -> Status {
    Status::failed_precondition(format!("{e:#}"))
}

fn bad(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Runs `work` on the blocking pool; its error is a FAILED_PRECONDITION with its message.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(internal)?
        .map_err(refused)
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Sends progress messages to the client.
struct ProgressSink<E> {
    tx: mpsc::Sender<Result<E, Status>>,
    wrap: fn(Progress) -> E,
}

impl<E> ProgressSink<E> {
    async fn show(&self, message: String) {
        let _ = self.tx.send(Ok((self.wrap)(Progress { message }))).await;
    }
}

/// The parameters of any of Fabric's definition messages (approve, readiness, commit: the
/// same fields 1 to 8).
macro_rules! definition_params {
    ($a:expr) => {{
        let a = $a;
        params(
            a.name,
            a.version,
            a.sequence,
            a.endorsement_plugin,
            a.validation_plugin,
            a.validation_parameter,
            a.collections,
            a.init_required,
        )
    }};
}

/// A definition's parameters from what a client sent, with Fabric's defaults.
#[allow(clippy::too_many_arguments)]
fn params(
    name: String,
    version: String,
    sequence: i64,
    endorsement_plugin: String,
    validation_plugin: String,
    validation_parameter: Bytes,
    collections: Option<CollectionConfigPackage>,
    init_required: bool,
) -> Result<Params, Status> {
    names::chaincode(&name).map_err(bad)?;
    names::version(&version).map_err(bad)?;
    if sequence < 1 {
        return Err(bad(format!(
            "requested sequence is {sequence}, but first definable sequence number is 1"
        )));
    }
    let validation_parameter = if validation_parameter.is_empty() {
        peer_support::policy::application_policy(None, None)
            .map_err(bad)?
            .encode_to_vec()
            .into()
    } else {
        proto::protos::ApplicationPolicy::decode(validation_parameter.clone()).map_err(|e| {
            bad(format!(
                "the endorsement policy is not an ApplicationPolicy: {e}"
            ))
        })?;
        validation_parameter
    };
    let collections = collections.unwrap_or_default();
    let collection_names = peer_support::collections::names(&collections);
    let mut seen = std::collections::BTreeSet::new();
    for name in &collection_names {
        if name.is_empty() || !seen.insert(name.as_str()) {
            return Err(bad(format!(
                "invalid collection configuration: collection name {name:?} is empty or defined twice"
            )));
        }
    }
    let or = |text: String, default: &str| {
        if text.is_empty() {
            default.to_owned()
        } else {
            text
        }
    };
    Ok(Params {
        name,
        version,
        sequence,
        init_required,
        endorsement_plugin: or(endorsement_plugin, "escc"),
        validation_plugin: or(validation_plugin, "vscc"),
        validation_parameter,
        collections: collections.encode_to_vec().into(),
        collection_names,
    })
}

fn collections_of(params: &Params) -> Option<CollectionConfigPackage> {
    CollectionConfigPackage::decode(params.collections.clone()).ok()
}

fn decode<M: Message + Default>(bytes: Bytes, what: &str) -> Result<M, Status> {
    M::decode(bytes).map_err(|e| bad(format!("cannot decode {what}: {e}")))
}

impl Node {
    /// Authenticates the creator of `signed`.
    fn authenticate(&self, signed: &SignedProposal, tx: &Transaction) -> Result<Principal, Status> {
        self.msps
            .authenticate(&tx.creator, &signed.proposal_bytes, &signed.signature)
            .map_err(|e| Status::unauthenticated(e.to_string()))
    }

    /// Refuses `who` unless they hold `role` for `action`.
    fn authorize(&self, who: &Principal, role: Role, action: &str) -> Result<(), Status> {
        let allowed = match role {
            Role::Admin => who.role == Role::Admin && who.mspid == self.mspid,
            Role::Member => true,
        };
        if allowed {
            Ok(())
        } else {
            tracing::warn!(identity = %who.id, mspid = %who.mspid, action, "refused: not an administrator");
            Err(Status::permission_denied(format!(
                "{action} needs an administrator of {}; {} of {} is not one",
                self.mspid, who.id, who.mspid
            )))
        }
    }

    fn info(&self, cc: &Installed) -> ChaincodeInfo {
        let package_id = match &cc.code {
            LegacyCode::Package(id) => id.to_string(),
            LegacyCode::Path(path) => path.display().to_string(),
        };
        ChaincodeInfo {
            name: cc.ccid.name().to_owned(),
            version: cc.ccid.version().to_owned(),
            platform: cc.platform.clone(),
            vm: cc.vm.clone(),
            package_id,
            channels: self.lifecycle.channels_of(&cc.ccid),
            running: self
                .support
                .registry()
                .registered()
                .contains(&cc.ccid.registered_name()),
        }
    }

    /// The backend asked for by `--vm`, checked; `None` when none was asked for (the peer
    /// picks one when it builds the package).
    fn asked_vm(&self, asked: &str) -> Result<Option<String>, Status> {
        if asked.is_empty() {
            return Ok(None);
        }
        let types = self.support.controller().container_types();
        let asked = asked.to_uppercase();
        let builtin: Vec<String> = self
            .support
            .builtin_chaincodes()
            .into_iter()
            .filter_map(|d| d.container_type)
            .collect();
        if !types.contains(&asked) || builtin.contains(&asked) {
            return Err(Status::invalid_argument(format!(
                "unknown container type {:?}; user chaincodes run on: {}",
                asked.chars().take(64).collect::<String>(),
                types
                    .iter()
                    .filter(|t| !builtin.contains(t))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Some(asked))
    }

    // ---- transactions ------------------------------------------------------------------

    async fn execute(
        &self,
        req: ExecuteRequest,
        progress: ProgressSink<ExecuteEvent>,
    ) -> Result<ExecuteResult, Status> {
        let kind = Kind::try_from(req.kind)
            .map_err(|_| Status::invalid_argument(format!("unknown request kind {}", req.kind)))?;
        let signed = req
            .signed_proposal
            .ok_or_else(|| Status::invalid_argument("no signed proposal"))?;
        let tx = transaction::check(&signed).map_err(bad)?;
        let who = self.authenticate(&signed, &tx)?;
        names::channel(&tx.channel).map_err(bad)?;
        if kind == Kind::Instantiate {
            self.authorize(&who, Role::Admin, "instantiate")?;
        }
        let committed = {
            let (store, channel, id) = (self.store.clone(), tx.channel.clone(), tx.tx_id.clone());
            blocking(move || store.is_committed(&channel, &id)).await?
        };
        if committed {
            return Err(Status::already_exists(format!(
                "transaction {} was committed already",
                tx.tx_id
            )));
        }
        let def: ChaincodeDefinition = match kind {
            Kind::Instantiate => {
                let installed = self
                    .lifecycle
                    .installed(&tx.chaincode, &tx.version)
                    .ok_or_else(|| {
                        Status::not_found(format!(
                            "chaincode {}:{} is not installed",
                            tx.chaincode, tx.version
                        ))
                    })?;
                if self
                    .lifecycle
                    .committed(&tx.channel, &tx.chaincode)
                    .is_some()
                {
                    return Err(Status::failed_precondition(format!(
                        "chaincode {} has a Fabric 2.x definition on channel {}: upgrade it with a new sequence",
                        tx.chaincode, tx.channel
                    )));
                }
                self.lifecycle
                    .legacy_definition(&installed)
                    .map_err(|e| status(&e))?
            }
            Kind::Invoke | Kind::Query => self
                .lifecycle
                .definition(&tx.channel, &tx.chaincode)
                .map_err(|e| status(&e))?,
        };
        if !self
            .support
            .registry()
            .registered()
            .contains(&def.ccid.registered_name())
        {
            progress
                .show(format!(
                    "starting chaincode {} ({})",
                    def.ccid,
                    def.container_type.as_deref().unwrap_or("any backend")
                ))
                .await;
        }
        let ledger = self
            .ledgers
            .get_or_create(&tx.channel)
            .map_err(|e| status(&e))?;
        let simulator = ledger.new_tx_simulator();
        // Fabric 2.x's Init rule, checked inside the transaction so that two competing
        // `--isInit`s conflict and one fails.
        let run_init = match kind {
            Kind::Instantiate => true,
            _ => self.init_rule(&tx, kind, &def, &*simulator)?,
        };
        let params = TxParams {
            tx_id: tx.tx_id.clone(),
            channel_id: tx.channel.clone(),
            signed_proposal: Some(signed),
            simulator: Some(simulator.clone()),
            history: Some(ledger.clone()),
        };
        let outcome = self
            .support
            .execute_definition(&params, &def, tx.input, run_init)
            .await
            .map_err(|e| status(&e))?;
        let mut result = ExecuteResult {
            response: Some(outcome.response.clone()),
            event: outcome.event,
            tx_id: tx.tx_id.clone(),
            height: 0,
            committed: false,
        };
        if kind == Kind::Query || outcome.response.is_error() {
            let ledger = ledger.clone();
            result.height = blocking(move || ledger.height().map_err(anyhow::Error::from)).await?;
            return Ok(result);
        }
        let rwset = simulator.rwset();
        let (id, timestamp) = (tx.tx_id.clone(), tx.timestamp);
        let committed = tokio::task::spawn_blocking(move || ledger.commit(&id, timestamp, &rwset))
            .await
            .map_err(internal)?;
        result.height = committed.map_err(|e| status(&e))?;
        result.committed = true;
        if kind == Kind::Instantiate {
            let (lifecycle, channel, ccid) = (
                Arc::clone(&self.lifecycle),
                tx.channel.clone(),
                def.ccid.clone(),
            );
            blocking(move || lifecycle.instantiate(&channel, ccid.name(), ccid.version())).await?;
            tracing::info!(chaincode = %def.ccid, channel = %tx.channel, "instantiated");
        }
        Ok(result)
    }

    /// Whether this transaction runs Init, by Fabric 2.x's rule: with `--init-required`, the
    /// first transaction of a version must be an `--isInit` one (which records the version
    /// as initialized, in the same transaction), and no later one may be.
    fn init_rule(
        &self,
        tx: &Transaction,
        kind: Kind,
        def: &ChaincodeDefinition,
        simulator: &dyn TxSimulator,
    ) -> Result<bool, Status> {
        let is_init = tx.input.is_init;
        let committed = (!def.is_system())
            .then(|| self.lifecycle.committed(&tx.channel, &tx.chaincode))
            .flatten();
        let Some(committed) = committed.filter(|c| c.params.init_required) else {
            if is_init {
                return Err(Status::failed_precondition(format!(
                    "chaincode '{}' does not require initialization but called as init",
                    tx.chaincode
                )));
            }
            return Ok(false);
        };
        if is_init && kind == Kind::Query {
            return Err(bad(
                "--isInit runs Init and commits it: use invoke, not query",
            ));
        }
        let version = committed.params.version;
        let done = simulator
            .get_state(&tx.chaincode, INITIALIZED_KEY)
            .map_err(|e| status(&e))?;
        match (done.as_deref() == Some(version.as_bytes()), is_init) {
            (false, false) => Err(Status::failed_precondition(format!(
                "chaincode '{}' has not been initialized for this version, must call as init first",
                tx.chaincode
            ))),
            (false, true) => {
                simulator
                    .set_state(&tx.chaincode, INITIALIZED_KEY, Bytes::from(version))
                    .map_err(|e| status(&e))?;
                Ok(true)
            }
            (true, true) => Err(Status::failed_precondition(format!(
                "chaincode '{}' is already initialized but called as init",
                tx.chaincode
            ))),
            (true, false) => Ok(false),
        }
    }

    // ---- administrative functions --------------------------------------------------------

    async fn lifecycle(
        &self,
        signed: SignedProposal,
        progress: ProgressSink<LifecycleEvent>,
    ) -> Result<Bytes, Status> {
        let tx = transaction::check(&signed).map_err(bad)?;
        let who = self.authenticate(&signed, &tx)?;
        if tx.chaincode != LIFECYCLE {
            return Err(bad(format!(
                "administrative calls go to {LIFECYCLE}, not {:?}",
                tx.chaincode
            )));
        }
        let mut args = tx.input.args.iter().cloned();
        let function = args.next().unwrap_or_default();
        let function = std::str::from_utf8(&function)
            .map_err(|_| bad("the function name is not UTF-8"))?
            .to_owned();
        let arg = args.next().unwrap_or_default();
        let on_channel = || {
            names::channel(&tx.channel)
                .map_err(bad)
                .map(|()| tx.channel.clone())
        };
        let result: Vec<u8> = match function.as_str() {
            "InstallChaincode" => {
                self.authorize(&who, Role::Admin, "install")?;
                let args: lc::InstallChaincodeArgs = decode(arg, "InstallChaincodeArgs")?;
                self.install(args.chaincode_install_package, &progress)
                    .await?
                    .encode_to_vec()
            }
            "QueryInstalledChaincodes" => {
                self.authorize(&who, Role::Admin, "queryinstalled")?;
                self.query_installed().encode_to_vec()
            }
            "GetInstalledChaincodePackage" => {
                self.authorize(&who, Role::Admin, "getinstalledpackage")?;
                let args: lc::GetInstalledChaincodePackageArgs =
                    decode(arg, "GetInstalledChaincodePackageArgs")?;
                let id: PackageId = args.package_id.parse().map_err(bad)?;
                let store = Arc::clone(self.lifecycle.package_store());
                let bytes = blocking(move || Ok(store.package_bytes(&id)?)).await?;
                lc::GetInstalledChaincodePackageResult {
                    chaincode_install_package: bytes.into(),
                }
                .encode_to_vec()
            }
            "ApproveChaincodeDefinitionForMyOrg" => {
                self.authorize(&who, Role::Admin, "approveformyorg")?;
                let channel = on_channel()?;
                let mut a: lc::ApproveChaincodeDefinitionForMyOrgArgs =
                    decode(arg, "ApproveChaincodeDefinitionForMyOrgArgs")?;
                let package_id = match a.source.take().and_then(|s| s.r#type) {
                    Some(lc::chaincode_source::Type::LocalPackage(local)) => {
                        Some(local.package_id.parse::<PackageId>().map_err(bad)?)
                    }
                    _ => None,
                };
                let params = definition_params!(a)?;
                let _changes = self.changes.lock().await;
                let lifecycle = Arc::clone(&self.lifecycle);
                let approval = Approval { params, package_id };
                let logged = format!(
                    "{} version {} sequence {}",
                    approval.params.name, approval.params.version, approval.params.sequence
                );
                blocking(move || lifecycle.approve(&channel, approval)).await?;
                tracing::info!(channel = %tx.channel, definition = %logged, by = %who.id, "approved for {}", self.mspid);
                lc::ApproveChaincodeDefinitionForMyOrgResult::default().encode_to_vec()
            }
            "QueryApprovedChaincodeDefinition" => {
                self.authorize(&who, Role::Member, "queryapproved")?;
                let channel = on_channel()?;
                let a: lc::QueryApprovedChaincodeDefinitionArgs =
                    decode(arg, "QueryApprovedChaincodeDefinitionArgs")?;
                names::chaincode(&a.name).map_err(bad)?;
                let approval = self
                    .lifecycle
                    .approved(&channel, &a.name, a.sequence)
                    .ok_or_else(|| {
                        Status::not_found(format!(
                            "could not fetch approved chaincode definition (name: '{}', sequence: '{}') on channel '{channel}'",
                            a.name, a.sequence
                        ))
                    })?;
                let p = &approval.params;
                let source = lc::ChaincodeSource {
                    r#type: Some(match &approval.package_id {
                        Some(id) => {
                            lc::chaincode_source::Type::LocalPackage(lc::chaincode_source::Local {
                                package_id: id.to_string(),
                            })
                        }
                        None => lc::chaincode_source::Type::Unavailable(
                            lc::chaincode_source::Unavailable::default(),
                        ),
                    }),
                };
                lc::QueryApprovedChaincodeDefinitionResult {
                    sequence: p.sequence,
                    version: p.version.clone(),
                    endorsement_plugin: p.endorsement_plugin.clone(),
                    validation_plugin: p.validation_plugin.clone(),
                    validation_parameter: p.validation_parameter.clone(),
                    collections: collections_of(p),
                    init_required: p.init_required,
                    source: Some(source),
                }
                .encode_to_vec()
            }
            "CheckCommitReadiness" => {
                self.authorize(&who, Role::Member, "checkcommitreadiness")?;
                let channel = on_channel()?;
                let a: lc::CheckCommitReadinessArgs = decode(arg, "CheckCommitReadinessArgs")?;
                let params = definition_params!(a)?;
                let approvals = self
                    .lifecycle
                    .check_commit_readiness(&channel, &params, &self.mspid)
                    .map_err(refused)?;
                lc::CheckCommitReadinessResult {
                    approvals,
                    ..Default::default()
                }
                .encode_to_vec()
            }
            "CommitChaincodeDefinition" => {
                self.authorize(&who, Role::Admin, "commit")?;
                let channel = on_channel()?;
                let a: lc::CommitChaincodeDefinitionArgs =
                    decode(arg, "CommitChaincodeDefinitionArgs")?;
                let params = definition_params!(a)?;
                self.commit(&channel, params, &who).await?;
                lc::CommitChaincodeDefinitionResult::default().encode_to_vec()
            }
            "QueryChaincodeDefinition" => {
                self.authorize(&who, Role::Member, "querycommitted")?;
                let channel = on_channel()?;
                let a: lc::QueryChaincodeDefinitionArgs =
                    decode(arg, "QueryChaincodeDefinitionArgs")?;
                names::chaincode(&a.name).map_err(bad)?;
                let c = self.lifecycle.committed(&channel, &a.name).ok_or_else(|| {
                    Status::not_found(format!("namespace {} is not defined", a.name))
                })?;
                let p = &c.params;
                lc::QueryChaincodeDefinitionResult {
                    sequence: p.sequence,
                    version: p.version.clone(),
                    endorsement_plugin: p.endorsement_plugin.clone(),
                    validation_plugin: p.validation_plugin.clone(),
                    validation_parameter: p.validation_parameter.clone(),
                    collections: collections_of(p),
                    init_required: p.init_required,
                    approvals: c.approvals.clone(),
                }
                .encode_to_vec()
            }
            "QueryChaincodeDefinitions" => {
                self.authorize(&who, Role::Member, "querycommitted")?;
                let channel = on_channel()?;
                let chaincode_definitions = self
                    .lifecycle
                    .committed_on(&channel)
                    .into_iter()
                    .map(|c| {
                        let collections = collections_of(&c.params);
                        let p = c.params;
                        lc::query_chaincode_definitions_result::ChaincodeDefinition {
                            name: p.name,
                            sequence: p.sequence,
                            version: p.version,
                            endorsement_plugin: p.endorsement_plugin,
                            validation_plugin: p.validation_plugin,
                            validation_parameter: p.validation_parameter,
                            collections,
                            init_required: p.init_required,
                        }
                    })
                    .collect();
                lc::QueryChaincodeDefinitionsResult {
                    chaincode_definitions,
                }
                .encode_to_vec()
            }
            "InstallLegacy" => {
                self.authorize(&who, Role::Admin, "install")?;
                let args: LegacyInstallArgs = decode(arg, "LegacyInstallArgs")?;
                self.install_legacy(args, &progress).await?.encode_to_vec()
            }
            "ListChaincodes" => {
                let req: ListRequest = decode(arg, "ListRequest")?;
                self.list(req, &who)?.encode_to_vec()
            }
            "StopChaincode" => {
                self.authorize(&who, Role::Admin, "stop")?;
                let req: StopRequest = decode(arg, "StopRequest")?;
                self.stop(req).await?.encode_to_vec()
            }
            other => {
                return Err(Status::unimplemented(format!(
                    "{LIFECYCLE} has no function {:?}",
                    other.chars().take(64).collect::<String>()
                )));
            }
        };
        Ok(result.into())
    }

    /// Fabric 2.x install: the package is checked, kept by ID and built now; a package that
    /// does not build is not kept.
    async fn install(
        &self,
        package: Bytes,
        progress: &ProgressSink<LifecycleEvent>,
    ) -> Result<lc::InstallChaincodeResult, Status> {
        progress
            .show("checking and building the package".into())
            .await;
        let installed = self
            .support
            .install_package(package)
            .await
            .map_err(|e| status(&e))?;
        let id: PackageId = installed.package.id.parse().map_err(internal)?;
        if installed.already {
            return Err(Status::already_exists(format!(
                "chaincode already successfully installed (package ID '{id}')"
            )));
        }
        self.lifecycle
            .add_package(installed.package.clone())
            .map_err(internal)?;
        tracing::info!(package = %id, backend = %installed.container_type, "installed");
        Ok(lc::InstallChaincodeResult {
            package_id: id.to_string(),
            label: id.label().to_owned(),
        })
    }

    fn query_installed(&self) -> lc::QueryInstalledChaincodesResult {
        use lc::query_installed_chaincodes_result as q;
        let installed_chaincodes = self
            .lifecycle
            .packages()
            .into_iter()
            .map(|(id, users)| {
                let mut references: std::collections::BTreeMap<String, q::References> =
                    Default::default();
                for user in users {
                    references
                        .entry(user.channel)
                        .or_default()
                        .chaincodes
                        .push(q::Chaincode {
                            name: user.name,
                            version: user.version,
                        });
                }
                q::InstalledChaincode {
                    package_id: id.to_string(),
                    label: id.label().to_owned(),
                    references,
                }
            })
            .collect();
        lc::QueryInstalledChaincodesResult {
            installed_chaincodes,
        }
    }

    /// Commits `params` on `channel`, launches its chaincode (without waiting for a first
    /// transaction) and stops packages no definition uses any more.
    async fn commit(&self, channel: &str, params: Params, who: &Principal) -> Result<(), Status> {
        let _changes = self.changes.lock().await;
        let name = params.name.clone();
        let logged = format!(
            "{} version {} sequence {}",
            name, params.version, params.sequence
        );
        let unused = {
            let (lifecycle, channel, mspid) = (
                Arc::clone(&self.lifecycle),
                channel.to_owned(),
                self.mspid.clone(),
            );
            blocking(move || lifecycle.commit(&channel, params, &mspid)).await?
        };
        tracing::info!(channel, definition = %logged, by = %who.id, "committed");
        match self.lifecycle.definition(channel, &name) {
            Ok(def) => {
                let support = self.support.clone();
                tokio::spawn(async move {
                    if let Err(e) = support.launch(&def).await {
                        tracing::warn!(chaincode = %def.ccid, error = %e.report(), "launch after commit failed; the next transaction tries again");
                    }
                });
            }
            Err(e) => {
                tracing::info!(channel, chaincode = %name, reason = %e.report(), "committed definition not launched")
            }
        }
        for id in unused {
            let package = self.lifecycle.packages_by_id(&id);
            if let Some(package) = package {
                let def = ChaincodeDefinition::packaged(id.label(), package);
                match self.support.stop(&def).await {
                    Ok(()) => tracing::info!(package = %id, "stopped: no definition uses it"),
                    Err(peer_support::Error::Vm(vm_api::Error::NotRunning { .. })) => {}
                    Err(e) => {
                        tracing::warn!(package = %id, error = %e.report(), "cannot stop the unused package")
                    }
                }
            }
        }
        Ok(())
    }

    /// Fabric 1.4 install: the package the client made and uploaded, kept by package ID
    /// (so two chaincodes never share a folder), built now on the backend asked for or the one
    /// the peer picks; a failed build keeps nothing.
    async fn install_legacy(
        &self,
        args: LegacyInstallArgs,
        progress: &ProgressSink<LifecycleEvent>,
    ) -> Result<ChaincodeInfo, Status> {
        names::chaincode(&args.name).map_err(bad)?;
        names::version(&args.version).map_err(bad)?;
        if self.lifecycle.is_system(&args.name) {
            return Err(bad(format!(
                "{} is the name of a system chaincode",
                args.name
            )));
        }
        let asked = self.asked_vm(&args.vm)?;
        let ccid = Ccid::new(args.name, args.version);
        // Installs are not serialised (a build may take minutes): the record is checked again
        // when it is written.
        if self
            .lifecycle
            .installed(ccid.name(), ccid.version())
            .is_some()
        {
            return Err(Status::already_exists(format!(
                "chaincode {ccid} is installed already"
            )));
        }
        let store = Arc::clone(self.lifecycle.package_store());
        let package = args.package;
        let stored = blocking(move || Ok(store.install(&package)?)).await?;
        let platform = stored.metadata.kind.clone();
        progress.show(format!("building {ccid}")).await;
        let package = vm_api::ChaincodePackage::legacy(&ccid, &platform, &stored.code_dir);
        let mut def = ChaincodeDefinition::user(ccid.clone(), "", package);
        def.container_type = asked;
        let vm = match self.support.runtime().rebuild(&def).await {
            Ok(vm) => vm,
            Err(e) => {
                let in_use = self.lifecycle.has_package(&stored.id)
                    || self.lifecycle.legacy_uses(&stored.id);
                if !stored.already && !in_use {
                    let (store, id) = (
                        Arc::clone(self.lifecycle.package_store()),
                        stored.id.clone(),
                    );
                    if let Err(remove) = blocking(move || Ok(store.remove(&id)?)).await {
                        tracing::warn!(package = %stored.id, error = %remove.message(), "cannot remove the package whose build failed");
                    }
                }
                return Err(status(&e));
            }
        };
        self.lifecycle
            .add_package(crate::lifecycle::launch_package(&stored))
            .map_err(internal)?;
        let installed = {
            let (lifecycle, ccid, vm2, id) = (
                Arc::clone(&self.lifecycle),
                ccid.clone(),
                vm.clone(),
                stored.id.clone(),
            );
            blocking(move || lifecycle.record_legacy(ccid, &platform, &vm2, id)).await?
        };
        tracing::info!(chaincode = %ccid, vm, package = %stored.id, "installed (Fabric 1.4)");
        Ok(self.info(&installed))
    }

    fn list(&self, req: ListRequest, who: &Principal) -> Result<ListResponse, Status> {
        let chaincodes = if req.installed {
            self.authorize(who, Role::Admin, "list --installed")?;
            self.lifecycle
                .all_installed()
                .iter()
                .map(|cc| self.info(cc))
                .collect()
        } else {
            names::channel(&req.channel).map_err(bad)?;
            self.lifecycle
                .instantiated_on(&req.channel)
                .into_iter()
                .filter_map(|(name, version)| self.lifecycle.installed(&name, &version))
                .map(|cc| self.info(&cc))
                .collect()
        };
        Ok(ListResponse { chaincodes })
    }

    async fn stop(&self, req: StopRequest) -> Result<StopResponse, Status> {
        let name = req.name;
        names::chaincode(&name).map_err(bad)?;
        let mut defs: Vec<ChaincodeDefinition> = Vec::new();
        for cc in self.lifecycle.versions_of(&name) {
            defs.push(
                self.lifecycle
                    .legacy_definition(&cc)
                    .map_err(|e| status(&e))?,
            );
        }
        for (id, users) in self.lifecycle.packages() {
            if users.iter().any(|u| u.name == name)
                && let Some(package) = self.lifecycle.packages_by_id(&id)
            {
                defs.push(ChaincodeDefinition::packaged(name.clone(), package));
            }
        }
        if defs.is_empty() {
            return Err(Status::not_found(format!(
                "chaincode {name} is not installed"
            )));
        }
        let launched = self.support.registry().launched();
        let registered = self.support.registry().registered();
        let mut stopped = Vec::new();
        for def in defs {
            let id = def.ccid.registered_name();
            if launched.contains(&id) || registered.contains(&id) {
                match self.support.stop(&def).await {
                    Ok(()) | Err(peer_support::Error::Vm(vm_api::Error::NotRunning { .. })) => {
                        stopped.push(id)
                    }
                    Err(e) => return Err(status(&e)),
                }
            }
        }
        Ok(StopResponse { stopped })
    }

    /// Launches every committed chaincode whose package is installed (as Fabric's custodian
    /// does at start), in the background.
    pub fn launch_committed(self: &Arc<Self>) {
        for (id, users) in self.lifecycle.packages() {
            if users.is_empty() {
                continue;
            }
            let Some(def) = self.lifecycle.definitions_running(&id).into_iter().next() else {
                continue;
            };
            let support = self.support.clone();
            tokio::spawn(async move {
                if let Err(e) = support.launch(&def).await {
                    tracing::warn!(chaincode = %def.ccid, error = %e.report(), "launch at start failed; the next transaction tries again");
                }
            });
        }
    }
}

/// Runs `work` with a progress channel and streams its events, then its result.
fn stream_of<E, R, F, Fut>(
    node: Arc<Node>,
    progress: fn(Progress) -> E,
    work: F,
    wrap: fn(R) -> E,
) -> EventStream<E>
where
    E: Send + 'static,
    R: Send + 'static,
    F: FnOnce(Arc<Node>, ProgressSink<E>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, Status>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let sink = ProgressSink {
            tx: tx.clone(),
            wrap: progress,
        };
        let outcome = work(node, sink).await;
        let _ = tx.send(outcome.map(wrap)).await;
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl Admin for AdminService {
    type ExecuteStream = EventStream<ExecuteEvent>;
    type LifecycleStream = EventStream<LifecycleEvent>;

    async fn execute(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        let req = request.into_inner();
        Ok(Response::new(stream_of(
            self.node.clone(),
            |p| ExecuteEvent {
                event: Some(execute_event::Event::Progress(p)),
            },
            move |node, progress| async move { node.execute(req, progress).await },
            |result| ExecuteEvent {
                event: Some(execute_event::Event::Result(result)),
            },
        )))
    }

    async fn lifecycle(
        &self,
        request: Request<SignedProposal>,
    ) -> Result<Response<Self::LifecycleStream>, Status> {
        let signed = request.into_inner();
        Ok(Response::new(stream_of(
            self.node.clone(),
            |p| LifecycleEvent {
                event: Some(lifecycle_event::Event::Progress(p)),
            },
            move |node, progress| async move { node.lifecycle(signed, progress).await },
            |result| LifecycleEvent {
                event: Some(lifecycle_event::Event::Result(result)),
            },
        )))
    }
}
