//! The in-process backend: each system chaincode runs as a task, joined to the peer by a pair
//! of in-memory message streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use proto::stream::{DEFAULT_CAPACITY, in_memory_pair};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use vm_api::{
    Ccid, ChaincodeStreamHandler, Error, Result, StartRequest, Started, StopRequest, StreamOrigin,
    Vm,
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
    async fn start(&self, req: &StartRequest) -> Result<Started> {
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
        Ok(Started::Dialing)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proto::stream::ChaincodeStream;
    use shim::{Chaincode, ChaincodeStub, Response};

    use super::*;

    /// A peer that accepts every registration and then sends one transaction.
    struct OneShotPeer;

    #[async_trait]
    impl ChaincodeStreamHandler for OneShotPeer {
        async fn handle_chaincode_stream(&self, mut stream: ChaincodeStream, _: StreamOrigin) {
            use futures::StreamExt;
            use proto::MessageType as T;
            use proto::protos::ChaincodeMessage;
            let _register = stream.receiver.next().await;
            for kind in [T::Registered, T::Ready] {
                let _ = stream
                    .sender
                    .send(ChaincodeMessage::new(kind, "", ""))
                    .await;
            }
            let _ = stream
                .sender
                .send(ChaincodeMessage::new(T::Transaction, "ch", "tx1"))
                .await;
            while stream.receiver.next().await.is_some() {}
        }
    }

    struct Panics;

    #[async_trait]
    impl Chaincode for Panics {
        async fn invoke(&self, _: &ChaincodeStub) -> Response {
            panic!("on purpose")
        }
    }

    fn vm() -> InprocVm {
        let mut chaincodes = SystemChaincodes::new();
        chaincodes.add("panics", "1", || Arc::new(Panics) as Arc<dyn Chaincode>);
        InprocVm::new(Arc::new(OneShotPeer), chaincodes)
    }

    #[tokio::test]
    async fn errors_for_unknown_running_and_not_running() {
        let vm = vm();
        let unknown = Ccid::new("nope", "1");
        let e = vm
            .start(&StartRequest::new(unknown.clone()))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::UnknownChaincode { .. }), "{e}");
        let wrong_version = Ccid::new("panics", "2");
        assert!(vm.start(&StartRequest::new(wrong_version)).await.is_err());
        let e = vm
            .stop(&StopRequest::new(unknown.clone(), Duration::ZERO))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotRunning { .. }), "{e}");
        let e = vm.wait(&unknown).await.unwrap_err();
        assert!(matches!(e, Error::NotRunning { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_panic_ends_the_instance_with_an_error_and_it_can_start_again() {
        let vm = vm();
        let id = Ccid::new("panics", "1");
        vm.start(&StartRequest::new(id.clone())).await.unwrap();
        let e = tokio::time::timeout(Duration::from_secs(5), vm.wait(&id))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.to_string(), "chaincode panics:1 panicked: on purpose");
        assert_eq!(vm.running(), 0);
        // The ended instance is replaced by a new start.
        vm.start(&StartRequest::new(id.clone())).await.unwrap();
        vm.stop(&StopRequest::new(id, Duration::ZERO))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_running_instance_is_not_started_twice() {
        struct Quiet;
        #[async_trait]
        impl Chaincode for Quiet {
            async fn invoke(&self, _: &ChaincodeStub) -> Response {
                std::future::pending().await
            }
        }
        let mut chaincodes = SystemChaincodes::new();
        chaincodes.add("quiet", "1", || Arc::new(Quiet) as Arc<dyn Chaincode>);
        let vm = InprocVm::new(Arc::new(OneShotPeer), chaincodes);
        let id = Ccid::new("quiet", "1");
        vm.start(&StartRequest::new(id.clone())).await.unwrap();
        let e = vm.start(&StartRequest::new(id.clone())).await.unwrap_err();
        assert!(matches!(e, Error::AlreadyRunning { .. }), "{e}");
        vm.stop(&StopRequest::new(id.clone(), Duration::ZERO))
            .await
            .unwrap();
        assert!(matches!(vm.wait(&id).await, Err(Error::NotRunning { .. })));
    }
}
