//! The VM controller: picks the backend for a container type and runs requests against it,
//! one build, start or stop at a time per chaincode (Fabric's `VMController`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use vm_api::{ChaincodeStreamHandler, Create, Vm, VmContext, VmRequest};

use crate::Result;

/// Makes a backend whose chaincodes reach the peer from outside.
pub type StandaloneFactory = Arc<dyn Fn(&VmContext) -> vm_api::Result<Arc<dyn Vm>> + Send + Sync>;

/// Makes a backend that runs chaincodes inside the peer, given the peer's side of streams.
pub type InProcessFactory = Arc<
    dyn Fn(&VmContext, Arc<dyn ChaincodeStreamHandler>) -> vm_api::Result<Arc<dyn Vm>>
        + Send
        + Sync,
>;

/// Makes a backend given explicitly by the embedding program, instead of through `inventory`.
#[derive(Clone)]
pub enum VmFactory {
    /// A backend whose chaincodes reach the peer from outside.
    Standalone(StandaloneFactory),
    /// A backend that runs chaincodes inside the peer; it gets the peer's side of streams.
    InProcess(InProcessFactory),
}

impl std::fmt::Debug for VmFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VmFactory::Standalone(_) => "Standalone",
            VmFactory::InProcess(_) => "InProcess",
        })
    }
}

/// Runs VM requests against the backend registered for each container type.
pub struct VmController {
    context: VmContext,
    /// The peer's side of chaincode streams, for in-process backends only.
    streams: Arc<dyn ChaincodeStreamHandler>,
    /// Backends given by the embedding program; they take precedence over `inventory`.
    factories: HashMap<String, VmFactory>,
    /// Backends created so far, by container type.
    vms: Mutex<HashMap<String, Arc<dyn Vm>>>,
    /// One lock per chaincode with a build, start or stop under way.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for VmController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmController")
            .field("explicit", &self.factories.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Checks the configuration of every backend linked into the program against `context`,
/// without creating any: a bad value is an error naming its key.
pub fn check_backends(context: &VmContext) -> Result<()> {
    for (_, provider) in vm_api::providers()?.iter() {
        provider.check(context)?;
    }
    Ok(())
}

/// The chaincodes built into the backends linked into the program (system chaincodes), with
/// the container type of the backend that runs each.
pub fn builtin_chaincodes() -> Result<Vec<(&'static str, vm_api::Ccid)>> {
    let mut all = Vec::new();
    for (container_type, provider) in vm_api::providers()?.iter() {
        all.extend(provider.builtin()?.into_iter().map(|c| (container_type, c)));
    }
    Ok(all)
}

impl VmController {
    /// A controller whose backends are created with `context`, preferring `factories` over the
    /// providers registered with `inventory`; in-process backends get `streams`.
    pub fn new(
        context: VmContext,
        streams: Arc<dyn ChaincodeStreamHandler>,
        factories: HashMap<String, VmFactory>,
    ) -> Self {
        Self {
            context,
            streams,
            factories,
            vms: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// What backends are created with.
    pub fn context(&self) -> &VmContext {
        &self.context
    }

    /// Every container type this controller can serve, sorted.
    pub fn container_types(&self) -> Vec<String> {
        let mut types: BTreeSet<String> = self.factories.keys().cloned().collect();
        if let Ok(registry) = vm_api::providers() {
            types.extend(registry.keys().into_iter().map(str::to_owned));
        }
        types.into_iter().collect()
    }

    /// The container types that take user chaincodes of their own accord under this peer's
    /// settings, highest priority first (see [`vm_api::VmProvider::user_chaincodes`]). A
    /// backend given explicitly ranks as the registered provider of its type does.
    pub fn candidates(&self) -> Vec<String> {
        let Ok(registry) = vm_api::providers() else {
            return Vec::new();
        };
        let mut ranked: Vec<(u32, &str)> = registry
            .iter()
            .filter_map(|(t, p)| p.priority(&self.context.settings).map(|rank| (rank, t)))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        ranked.into_iter().map(|(_, t)| t.to_owned()).collect()
    }

    /// Whether `container_type`'s backend runs chaincodes inside the peer (they need no TLS
    /// identity: their stream never leaves the process).
    pub fn is_in_process(&self, container_type: &str) -> bool {
        match self.factories.get(container_type) {
            Some(factory) => matches!(factory, VmFactory::InProcess(_)),
            None => vm_api::providers().is_ok_and(|r| {
                r.get(container_type)
                    .is_some_and(|p| matches!(p.create(), Create::InProcess(_)))
            }),
        }
    }

    /// The backend for `container_type`, created on first use. A creation failure is not
    /// remembered: the next call tries again.
    pub fn vm(&self, container_type: &str) -> Result<Arc<dyn Vm>> {
        if let Some(vm) = self
            .vms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(container_type)
        {
            return Ok(Arc::clone(vm));
        }
        let streams = || Arc::clone(&self.streams);
        let vm = match self.factories.get(container_type) {
            Some(VmFactory::Standalone(make)) => make(&self.context)?,
            Some(VmFactory::InProcess(make)) => make(&self.context, streams())?,
            None => match vm_api::providers()?.get(container_type) {
                Some(provider) => match provider.create() {
                    Create::Standalone(make) => make(&self.context)?,
                    Create::InProcess(make) => make(&self.context, streams())?,
                },
                None => {
                    return Err(vm_api::Error::UnknownContainerType {
                        requested: container_type.to_owned(),
                        registered: self.container_types(),
                    }
                    .into());
                }
            },
        };
        let mut vms = self.vms.lock().unwrap_or_else(|e| e.into_inner());
        // Another caller may have created it meanwhile; keep the first.
        Ok(Arc::clone(
            vms.entry(container_type.to_owned()).or_insert(vm),
        ))
    }

    /// The backends created so far.
    pub fn created(&self) -> Vec<(String, Arc<dyn Vm>)> {
        self.vms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Runs `req` on the backend of `container_type` and hands back what it produced.
    /// Exclusive requests (build, start, stop) for one chaincode run one at a time; waits run
    /// beside them.
    pub async fn process<R: VmRequest>(&self, container_type: &str, req: &R) -> Result<R::Output> {
        let vm = self.vm(container_type)?;
        if !req.is_exclusive() {
            return Ok(req.run(vm.as_ref()).await?);
        }
        let id = format!("{container_type}/{}", req.ccid());
        let lock = Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id.clone())
                .or_default(),
        );
        let outcome = {
            let _serialised = lock.lock().await;
            req.run(vm.as_ref()).await
        };
        drop(lock);
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.get(&id).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(&id);
        }
        Ok(outcome?)
    }
}
