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
use peer_support::ledger::Ledgers;
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

use crate::lifecycle::{Approval, Installed, LegacyCode, Lifecycle, Params};
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
    peer_support::collections::check(&collections)
        .map_err(|e| bad(format!("invalid collection configuration: {e}")))?;
    let collection_names = peer_support::collections::names(&collections);
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

    /// Accepts the signed proposal `tx_id` once: a replay of a call that changes something is
    /// refused.
    async fn claim(&self, tx_id: &str) -> Result<(), Status> {
        let (store, id) = (self.store.clone(), tx_id.to_owned());
        if blocking(move || store.claim_admin_tx(&id)).await? {
            Ok(())
        } else {
            Err(Status::already_exists(format!(
                "proposal {tx_id} was accepted before: a signed proposal is used once"
            )))
        }
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

    /// Runs a transaction and logs one INFO line for it: channel, short transaction id (its
    /// first 8 characters, as Fabric logs it), chaincode, duration and outcome.
    async fn execute(
        &self,
        req: ExecuteRequest,
        progress: ProgressSink<ExecuteEvent>,
    ) -> Result<ExecuteResult, Status> {
        let started = std::time::Instant::now();
        let mut seen = None;
        let outcome = self.execute_tx(req, progress, &mut seen).await;
        let Some((channel, tx_id, chaincode)) = seen else {
            // Not even a readable proposal: the caller gets why; nothing to name in a log.
            return outcome;
        };
        let text = match &outcome {
            Ok(r) => match &r.response {
                Some(resp) if resp.is_error() => {
                    format!("chaincode error {}: {}", resp.status, resp.message)
                }
                _ if r.committed => format!("committed at height {}", r.height),
                _ => "evaluated".to_owned(),
            },
            Err(status) => format!("failed: {}", status.message()),
        };
        // What the client named is quoted (escaped): a name cannot forge a log line.
        tracing::info!(
            channel = ?channel,
            txid = %tx_id.get(..8).unwrap_or(&tx_id),
            chaincode = ?chaincode,
            duration_ms = started.elapsed().as_millis() as u64,
            outcome = %text,
            "transaction"
        );
        outcome
    }

    async fn execute_tx(
        &self,
        req: ExecuteRequest,
        progress: ProgressSink<ExecuteEvent>,
        seen: &mut Option<(String, String, String)>,
    ) -> Result<ExecuteResult, Status> {
        let kind = Kind::try_from(req.kind)
            .map_err(|_| Status::invalid_argument(format!("unknown request kind {}", req.kind)))?;
        let signed = req
            .signed_proposal
            .ok_or_else(|| Status::invalid_argument("no signed proposal"))?;
        let tx = transaction::check(&signed).map_err(bad)?;
        *seen = Some((tx.channel.clone(), tx.tx_id.clone(), tx.chaincode.clone()));
        let who = self.authenticate(&signed, &tx)?;
        names::channel(&tx.channel).map_err(bad)?;
        if kind == Kind::Instantiate {
            self.authorize(&who, Role::Admin, "instantiate")?;
            // Its Init may write nothing, and a read-only commit records no transaction id.
            self.claim(&tx.tx_id).await?;
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
        // A 1.4 instantiate runs Init; otherwise Fabric 2.x's Init rule decides (in the
        // chaincode support, for chaincode-to-chaincode calls too).
        let run_init = kind == Kind::Instantiate;
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
        crate::operations::record_transaction(&tx.channel, &def, &committed);
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
        let changes_something = matches!(
            function.as_str(),
            "InstallChaincode"
                | "ApproveChaincodeDefinitionForMyOrg"
                | "CommitChaincodeDefinition"
                | "InstallLegacy"
                | "StopChaincode"
        );
        if changes_something {
            self.claim(&tx.tx_id).await?;
        }
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
                let sequence = params.sequence;
                let approval = Approval { params, package_id };
                let logged = format!(
                    "{} version {} sequence {}",
                    approval.params.name, approval.params.version, approval.params.sequence
                );
                let name = approval.params.name.clone();
                let unused = {
                    let channel = channel.clone();
                    blocking(move || lifecycle.approve(&channel, approval)).await?
                };
                tracing::info!(channel = %tx.channel, definition = %logged, by = %who.id, "approved for {}", self.mspid);
                // Approving the committed sequence again picks another package: it runs now.
                if self.lifecycle.committed_sequence(&channel, &name) == sequence {
                    self.settle(&channel, &name, unused).await;
                }
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
        if changes_something {
            tracing::info!(function, by = %who.id, mspid = %who.mspid, txid = %tx.tx_id, "administrative call done");
        }
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
        // The same bytes uploaded by a 1.4 install before are a new 2.x install now.
        if installed.already && self.lifecycle.has_package(&id) {
            return Err(Status::already_exists(format!(
                "chaincode already successfully installed (package ID '{id}')"
            )));
        }
        self.lifecycle
            .add_package(installed.package.clone())
            .map_err(internal)?;
        tracing::info!(package = %id, backend = %installed.container_type, "installed");
        // A committed definition approved with this package before it was installed runs now.
        if let Some(def) = self.lifecycle.definitions_running(&id).into_iter().next() {
            self.launch_in_background(def, "at install");
        }
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
        self.settle(channel, &name, unused).await;
        Ok(())
    }

    /// After a definition of `name` on `channel` changed: launches its chaincode (without
    /// waiting for a first transaction) and stops the packages in `unused`, which no
    /// committed definition runs any more.
    async fn settle(&self, channel: &str, name: &str, unused: Vec<PackageId>) {
        match self.lifecycle.definition(channel, name) {
            Ok(def) => self.launch_in_background(def, "after a definition changed"),
            Err(e) => {
                tracing::info!(channel, chaincode = %name, reason = %e.report(), "definition not launched")
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
    }

    /// Launches `def`'s chaincode on its own task; a failure is logged (the next transaction
    /// tries again).
    fn launch_in_background(&self, def: ChaincodeDefinition, when: &'static str) {
        let support = self.support.clone();
        tokio::spawn(async move {
            if let Err(e) = support.launch(&def).await {
                tracing::warn!(chaincode = %def.ccid, error = %e.report(), when, "launch failed; the next transaction tries again");
            }
        });
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
                self.discard_failed(&stored).await;
                return Err(status(&e));
            }
        };
        let fresh = !self.lifecycle.is_stored(&stored.id);
        self.lifecycle
            .add_legacy_code(stored.id.clone(), stored.code_dir.clone());
        let installed = {
            let (lifecycle, ccid, vm2, id) = (
                Arc::clone(&self.lifecycle),
                ccid.clone(),
                vm.clone(),
                stored.id.clone(),
            );
            let recorded =
                blocking(move || lifecycle.record_legacy(ccid, &platform, &vm2, id)).await;
            match recorded {
                Ok(installed) => installed,
                Err(e) => {
                    // Another install of this name and version won: keep nothing of this one.
                    if fresh {
                        self.discard_failed(&stored).await;
                    }
                    return Err(e);
                }
            }
        };
        tracing::info!(chaincode = %ccid, vm, package = %stored.id, "installed (Fabric 1.4)");
        Ok(self.info(&installed))
    }

    /// Removes a package stored for an install that failed, unless another install uses it.
    async fn discard_failed(&self, stored: &chaincode_package::Installed) {
        let id = &stored.id;
        if stored.already || self.lifecycle.has_package(id) || self.lifecycle.legacy_uses(id) {
            return;
        }
        self.lifecycle.forget_package(id);
        let (store, id) = (Arc::clone(self.lifecycle.package_store()), id.clone());
        if let Err(remove) = blocking(move || Ok(store.remove(&id)?)).await {
            tracing::warn!(package = %stored.id, error = %remove.message(), "cannot remove the package of a failed install");
        }
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
            self.launch_in_background(def, "at start");
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
