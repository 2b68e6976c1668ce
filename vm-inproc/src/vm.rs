//! The in-process backend: each system chaincode runs as a task, joined to the peer by a pair
//! of in-memory message streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use proto::stream::{DEFAULT_CAPACITY, in_memory_pair};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use vm_api::{
    Ccid, ChaincodeStreamHandler, Error, Result, StartRequest, StopRequest, StreamOrigin, Vm,
};

use crate::SystemChaincodes;

/// How an instance ended.
type Outcome = std::result::Result<i64, InstanceFailure>;

#[derive(Debug, Clone)]
enum InstanceFailure {
    Panicked(String),
}

struct Instance {
    tasks: [AbortHandle; 2],
    ended: watch::Receiver<Option<Outcome>>,
}

impl Instance {
    fn is_running(&self) -> bool {
        self.ended.borrow().is_none()
    }
}

/// Runs system chaincodes inside the peer (container type `SYSTEM`).
pub struct InprocVm {
    peer: Arc<dyn ChaincodeStreamHandler>,
    chaincodes: SystemChaincodes,
    instances: Mutex<HashMap<Ccid, Instance>>,
}

impl std::fmt::Debug for InprocVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InprocVm")
            .field("chaincodes", &self.chaincodes)
            .field("instances", &self.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl InprocVm {
    /// A backend that hands the peer's end of each chaincode stream to `peer` and runs the
    /// chaincodes in `chaincodes`.
    pub fn new(peer: Arc<dyn ChaincodeStreamHandler>, chaincodes: SystemChaincodes) -> Self {
        Self {
            peer,
            chaincodes,
            instances: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Ccid, Instance>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many chaincode instances are running.
    pub fn running(&self) -> usize {
        self.lock().values().filter(|i| i.is_running()).count()
    }
}

#[async_trait]
impl Vm for InprocVm {
    async fn start(&self, req: &StartRequest) -> Result<()> {
        let ccid = req.ccid.clone();
        let chaincode = self.chaincodes.instantiate(&ccid)?;
        let mut instances = self.lock();
        if instances.get(&ccid).is_some_and(Instance::is_running) {
            return Err(Error::AlreadyRunning { ccid });
        }
        let (peer_end, chaincode_end) = in_memory_pair(DEFAULT_CAPACITY);
        let (ended_tx, ended) = watch::channel(None);

        let peer = Arc::clone(&self.peer);
        let origin = StreamOrigin {
            expected: Some(ccid.clone()),
            client_cert_hash: None,
        };
        let peer_task = tokio::spawn(async move {
            peer.handle_chaincode_stream(peer_end, origin).await;
        });

        let name = ccid.registered_name();
        let ccid_log = ccid.clone();
        let chaincode_task = tokio::spawn(async move {
            let outcome = match shim::inproc::serve(chaincode, &name, chaincode_end).await {
                Err(shim::Error::Panicked { message, .. }) => {
                    Err(InstanceFailure::Panicked(message))
                }
                Err(shim::Error::StreamClosed { .. }) | Ok(()) => Ok(0),
                Err(other) => {
                    tracing::warn!(chaincode = %ccid_log, error = %other, "system chaincode ended");
                    Ok(1)
                }
            };
            let _ = ended_tx.send(Some(outcome));
        });
        let instance = Instance {
            tasks: [peer_task.abort_handle(), chaincode_task.abort_handle()],
            ended,
        };
        instances.insert(ccid, instance);
        Ok(())
    }

    async fn stop(&self, req: &StopRequest) -> Result<()> {
        let instance = self.lock().remove(&req.ccid);
        let Some(instance) = instance else {
            return Err(Error::NotRunning {
                ccid: req.ccid.clone(),
            });
        };
        // In-process chaincodes hold nothing outside the peer: ending their tasks is a kill,
        // whatever `dont_kill` says, and there is nothing to remove.
        for task in &instance.tasks {
            task.abort();
        }
        Ok(())
    }

    async fn wait(&self, ccid: &Ccid) -> Result<i64> {
        let ended = match self.lock().get(ccid) {
            Some(instance) => instance.ended.clone(),
            None => return Err(Error::NotRunning { ccid: ccid.clone() }),
        };
        let mut ended = ended;
        let outcome = match ended.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The task was aborted (stopped) before it could report.
            Err(_) => Some(Ok(137)),
        };
        match outcome {
            Some(Ok(code)) => Ok(code),
            Some(Err(InstanceFailure::Panicked(message))) => Err(Error::Panicked {
                ccid: ccid.clone(),
                message,
            }),
            None => Ok(137),
        }
    }

    async fn health_check(&self) -> Result<()> {
        Ok(())
    }
}
