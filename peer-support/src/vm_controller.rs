//! The VM controller: picks the backend for a container type and runs requests against it,
//! one start or stop at a time per chaincode (Fabric's `VMController`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use vm_api::{Vm, VmContext, VmOutcome, VmRequest};

use crate::Result;

/// Creates a backend; used for backends given explicitly instead of through `inventory`.
pub type VmFactory = Arc<dyn Fn(&VmContext) -> vm_api::Result<Arc<dyn Vm>> + Send + Sync>;

/// Runs VM requests against the backend registered for each container type.
pub struct VmController {
    context: VmContext,
    /// Backends given by the embedding program; they take precedence over `inventory`.
    factories: HashMap<String, VmFactory>,
    /// Backends created so far, by container type.
    vms: Mutex<HashMap<String, Arc<dyn Vm>>>,
    /// One lock per chaincode container with a start or stop under way.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for VmController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmController")
            .field("explicit", &self.factories.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl VmController {
    /// A controller whose backends are created with `context`, preferring `factories` over
    /// the providers registered with `inventory`.
    pub fn new(context: VmContext, factories: HashMap<String, VmFactory>) -> Self {
        Self {
            context,
            factories,
            vms: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Every container type this controller can serve, sorted.
    pub fn container_types(&self) -> Vec<String> {
        let mut types: BTreeSet<String> = self.factories.keys().cloned().collect();
        if let Ok(registry) = vm_api::providers() {
            types.extend(registry.keys().into_iter().map(str::to_owned));
        }
        types.into_iter().collect()
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
        let vm = if let Some(factory) = self.factories.get(container_type) {
            factory(&self.context)?
        } else {
            let registry = vm_api::providers()?;
            match registry.get(container_type) {
                Some(provider) => (provider.create)(&self.context)?,
                None => {
                    return Err(vm_api::Error::UnknownContainerType {
                        requested: container_type.to_owned(),
                        registered: self.container_types(),
                    }
                    .into());
                }
            }
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

    /// Runs `req` on the backend of `container_type`. Exclusive requests (start, stop) for
    /// one chaincode run one at a time; waits run beside them.
    pub async fn process(&self, container_type: &str, req: &dyn VmRequest) -> Result<VmOutcome> {
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
