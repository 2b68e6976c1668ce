//! The administration service the CLI talks to: install, execute signed proposals
//! (instantiate, invoke, query), list and stop. Errors become gRPC statuses here, in one place.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use peer_support::ledger::Ledgers;
use peer_support::{ChaincodeDefinition, ChaincodeDefinitions, ChaincodeSupport, TxParams};
use proto::admin::admin_server::Admin;
use proto::admin::execute_request::Kind;
use proto::admin::{
    ChaincodeInfo, ExecuteEvent, ExecuteRequest, ExecuteResult, InstallEvent, InstallRequest,
    ListRequest, ListResponse, Progress, StopRequest, StopResponse, execute_event, install_event,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use vm_api::Ccid;

use crate::lifecycle::{Installed, Lifecycle};
use crate::store::Store;
use crate::transaction;

/// What the service works with.
pub struct Node {
    /// Chaincode support.
    pub support: ChaincodeSupport,
    /// Installed and instantiated chaincodes.
    pub lifecycle: Arc<Lifecycle>,
    /// The channels' ledgers.
    pub ledgers: Arc<Ledgers>,
    /// The state database.
    pub store: Store,
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
        E::UnknownChaincode { .. } | E::WrongVersion { .. } => Status::not_found(text),
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

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl Node {
    fn info(&self, cc: &Installed) -> ChaincodeInfo {
        ChaincodeInfo {
            name: cc.ccid.name().to_owned(),
            version: cc.ccid.version().to_owned(),
            platform: cc.platform.clone(),
            vm: cc.vm.clone(),
            path: cc.path.display().to_string(),
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
                "unknown container type {asked:?}; user chaincodes run on: {}",
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

    async fn install(
        &self,
        req: InstallRequest,
        progress: &mpsc::Sender<Result<InstallEvent, Status>>,
    ) -> Result<ChaincodeInfo, Status> {
        if req.name.is_empty() || req.version.is_empty() {
            return Err(Status::invalid_argument(
                "a chaincode needs a name and a version",
            ));
        }
        if req.name.contains([':', '/']) || req.version.contains('/') {
            return Err(Status::invalid_argument(
                "chaincode names hold no ':' or '/', versions no '/'",
            ));
        }
        if req.platform.trim().is_empty() {
            return Err(Status::invalid_argument(
                "a chaincode needs a type (-l binary, node, or one an external builder takes)",
            ));
        }
        // Any type may do: an external builder may take it. The build says which backend
        // runs it, or why none does.
        let source = PathBuf::from(&req.path);
        if !source.exists() {
            return Err(Status::invalid_argument(format!(
                "the package {} does not exist",
                source.display()
            )));
        }
        let asked = self.asked_vm(&req.vm)?;
        let ccid = Ccid::new(req.name, req.version);
        // Copying a package is file system work: off the async workers.
        let copied = {
            let (lifecycle, ccid, source) = (Arc::clone(&self.lifecycle), ccid.clone(), source);
            tokio::task::spawn_blocking(move || lifecycle.copy_package(&ccid, &source))
                .await
                .map_err(internal)?
                .map_err(|e| Status::failed_precondition(format!("{e:#}")))?
        };
        let _ = progress
            .send(Ok(InstallEvent {
                event: Some(install_event::Event::Progress(Progress {
                    message: format!("building {ccid}"),
                })),
            }))
            .await;
        // Built on the backend asked for, or on the one the peer picks (external builders,
        // then Docker when configured and reachable, then processes).
        let package = vm_api::ChaincodePackage::legacy(&ccid, &req.platform, &copied);
        let mut def = ChaincodeDefinition::user(ccid.clone(), "", package);
        def.container_type = asked;
        let vm = match self.support.runtime().rebuild(&def).await {
            Ok(vm) => vm,
            Err(e) => {
                let (lifecycle, id) = (Arc::clone(&self.lifecycle), ccid.clone());
                let _ = tokio::task::spawn_blocking(move || lifecycle.discard_package(&id)).await;
                return Err(status(&e));
            }
        };
        let installed = self
            .lifecycle
            .record(ccid.clone(), &req.platform, &vm, copied)
            .map_err(|e| Status::failed_precondition(format!("{e:#}")))?;
        tracing::info!(chaincode = %ccid, vm, platform = %req.platform, "installed");
        Ok(self.info(&installed))
    }

    async fn execute(
        &self,
        req: ExecuteRequest,
        progress: &mpsc::Sender<Result<ExecuteEvent, Status>>,
    ) -> Result<ExecuteResult, Status> {
        let kind = Kind::try_from(req.kind)
            .map_err(|_| Status::invalid_argument(format!("unknown request kind {}", req.kind)))?;
        let signed = req
            .signed_proposal
            .ok_or_else(|| Status::invalid_argument("no signed proposal"))?;
        let tx = transaction::check(&signed).map_err(|e| Status::unauthenticated(e.to_string()))?;
        if self
            .store
            .is_committed(&tx.channel, &tx.tx_id)
            .map_err(internal)?
        {
            return Err(Status::already_exists(format!(
                "transaction {} was committed already",
                tx.tx_id
            )));
        }
        let def: ChaincodeDefinition = match kind {
            Kind::Instantiate => self
                .lifecycle
                .installed(&tx.chaincode, &tx.version)
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "chaincode {}:{} is not installed",
                        tx.chaincode, tx.version
                    ))
                })?
                .definition(),
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
            let message = format!(
                "starting chaincode {} ({})",
                def.ccid,
                def.container_type.as_deref().unwrap_or("any backend")
            );
            let _ = progress
                .send(Ok(ExecuteEvent {
                    event: Some(execute_event::Event::Progress(Progress { message })),
                }))
                .await;
        }
        let ledger = self
            .ledgers
            .get_or_create(&tx.channel)
            .map_err(|e| status(&e))?;
        let simulator = ledger.new_tx_simulator();
        let params = TxParams {
            tx_id: tx.tx_id.clone(),
            channel_id: tx.channel.clone(),
            signed_proposal: Some(signed),
            simulator: Some(simulator.clone()),
            history: Some(ledger.clone()),
        };
        let is_init = kind == Kind::Instantiate;
        let outcome = self
            .support
            .execute_definition(&params, &def, tx.input, is_init)
            .await
            .map_err(|e| status(&e))?;
        let mut result = ExecuteResult {
            response: Some(outcome.response.clone()),
            event: outcome.event,
            tx_id: tx.tx_id.clone(),
            height: ledger.height().map_err(|e| status(&e))?,
            committed: false,
        };
        if kind == Kind::Query || outcome.response.is_error() {
            return Ok(result);
        }
        result.height = ledger
            .commit(&tx.tx_id, tx.timestamp, &simulator.rwset())
            .map_err(|e| status(&e))?;
        result.committed = true;
        if is_init {
            self.lifecycle
                .instantiate(&tx.channel, def.ccid.name(), def.ccid.version())
                .map_err(internal)?;
            tracing::info!(chaincode = %def.ccid, channel = %tx.channel, "instantiated");
        }
        Ok(result)
    }
}

/// Runs `work` with a progress channel and streams its events, then its result.
fn stream_of<E, R, F, Fut>(node: Arc<Node>, work: F, wrap: fn(R) -> E) -> EventStream<E>
where
    E: Send + 'static,
    R: Send + 'static,
    F: FnOnce(Arc<Node>, mpsc::Sender<Result<E, Status>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, Status>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let outcome = work(node, tx.clone()).await;
        let _ = tx.send(outcome.map(wrap)).await;
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl Admin for AdminService {
    type InstallStream = EventStream<InstallEvent>;
    type ExecuteStream = EventStream<ExecuteEvent>;

    async fn install(
        &self,
        request: Request<InstallRequest>,
    ) -> Result<Response<Self::InstallStream>, Status> {
        let req = request.into_inner();
        Ok(Response::new(stream_of(
            self.node.clone(),
            move |node, progress| async move { node.install(req, &progress).await },
            |info| InstallEvent {
                event: Some(install_event::Event::Installed(info)),
            },
        )))
    }

    async fn execute(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        let req = request.into_inner();
        Ok(Response::new(stream_of(
            self.node.clone(),
            move |node, progress| async move { node.execute(req, &progress).await },
            |result| ExecuteEvent {
                event: Some(execute_event::Event::Result(result)),
            },
        )))
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let req = request.into_inner();
        let node = &self.node;
        let chaincodes = if req.installed {
            node.lifecycle
                .all_installed()
                .iter()
                .map(|cc| node.info(cc))
                .collect()
        } else {
            node.lifecycle
                .instantiated_on(&req.channel)
                .into_iter()
                .filter_map(|(name, version)| node.lifecycle.installed(&name, &version))
                .map(|cc| node.info(&cc))
                .collect()
        };
        Ok(Response::new(ListResponse { chaincodes }))
    }

    async fn stop(&self, request: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        let name = request.into_inner().name;
        let versions = self.node.lifecycle.versions_of(&name);
        if versions.is_empty() {
            return Err(Status::not_found(format!(
                "chaincode {name} is not installed"
            )));
        }
        let launched = self.node.support.registry().launched();
        let registered = self.node.support.registry().registered();
        let mut stopped = Vec::new();
        for cc in versions {
            let id = cc.ccid.registered_name();
            if launched.contains(&id) || registered.contains(&id) {
                match self.node.support.stop(&cc.definition()).await {
                    Ok(()) | Err(peer_support::Error::Vm(vm_api::Error::NotRunning { .. })) => {
                        stopped.push(id)
                    }
                    Err(e) => return Err(status(&e)),
                }
            }
        }
        Ok(Response::new(StopResponse { stopped }))
    }
}
