//! The runtime launcher: builds and starts a chaincode and waits for it to register, once,
//! however many callers ask at the same time (Fabric's `RuntimeLauncher`).
//!
//! A launch builds the package (on the definition's backend, or the one the router picks),
//! starts it, then either waits for the chaincode to dial in, or dials the chaincode server
//! the backend names (chaincode as a service). It ends in one of four ways: the chaincode
//! registers (success); its process, container or connection ends first; the startup timeout
//! passes; or its registration is refused. On any failure the launcher stops what it started
//! and removes the launch from the registry, so the next launch starts clean; every caller
//! that waited sees the same error.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use vm_api::{ChaincodeServer, ChaincodeStreamHandler, Started, StreamOrigin};

use crate::handler::Handler;
use crate::handler_registry::LaunchState;
use crate::{
    ChaincodeDefinition, ContainerRuntime, Error, HandlerRegistry, Metrics, Result, SupportConfig,
};

/// A chaincode this peer launched, and the backend that runs it.
#[derive(Clone)]
struct Launched {
    def: ChaincodeDefinition,
    container_type: String,
    /// Which launch this is: a chaincode that ends after a stop (its entry gone, or taken by a
    /// later launch) was stopped; one that ends while its entry stands ended on its own.
    launch: u64,
}

/// Numbers launches.
static LAUNCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Completes when the started chaincode ended (its process exited, its connection closed),
/// with the error that says so.
type Ended = Pin<Box<dyn Future<Output = Arc<Error>> + Send>>;

/// Launches chaincodes and remembers which it launched.
pub(crate) struct RuntimeLauncher {
    config: Arc<SupportConfig>,
    registry: Arc<HandlerRegistry>,
    runtime: Arc<ContainerRuntime>,
    /// Where streams the peer dials go (chaincode servers).
    streams: Arc<dyn ChaincodeStreamHandler>,
    /// What this peer started, by registered name, so stop and shutdown find it.
    launched: Arc<Mutex<HashMap<String, Launched>>>,
    metrics: Option<Arc<Metrics>>,
}

impl RuntimeLauncher {
    pub(crate) fn new(
        config: Arc<SupportConfig>,
        registry: Arc<HandlerRegistry>,
        runtime: Arc<ContainerRuntime>,
        streams: Arc<dyn ChaincodeStreamHandler>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            config,
            registry,
            runtime,
            streams,
            launched: Arc::new(Mutex::new(HashMap::new())),
            metrics,
        }
    }

    pub(crate) fn runtime(&self) -> &Arc<ContainerRuntime> {
        &self.runtime
    }

    fn launched(&self) -> std::sync::MutexGuard<'_, HashMap<String, Launched>> {
        self.launched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handler of `def`'s chaincode, launching it first if it is not registered.
    pub(crate) async fn launch(
        self: &Arc<Self>,
        def: &ChaincodeDefinition,
    ) -> Result<Arc<Handler>> {
        let name = def.ccid.registered_name();
        if let Some(handler) = self.registry.handler(&name) {
            return Ok(handler);
        }
        if self.config.dev_mode && !def.is_system() {
            return Err(Error::NotRunningInDevMode { name });
        }
        let (state, someone_else) = self.registry.launching(&name);
        if !someone_else {
            // The launch runs on its own task, so a caller that gives up does not cut it
            // short and leave a half-started chaincode behind.
            let this = Arc::clone(self);
            let (def, state) = (def.clone(), Arc::clone(&state));
            tokio::spawn(async move { this.run_launch(def, state).await });
        }
        let launch_error = |cause| Error::Launch {
            ccid: def.ccid.clone(),
            cause,
        };
        state.wait().await.map_err(launch_error)?;
        self.registry.handler(&name).ok_or_else(|| {
            launch_error(Arc::new(Error::StreamTerminated {
                ccid: name.clone(),
                reason: Some("the chaincode went away right after it registered".into()),
            }))
        })
    }

    async fn run_launch(self: Arc<Self>, def: ChaincodeDefinition, state: Arc<LaunchState>) {
        let name = def.ccid.registered_name();
        let started = std::time::Instant::now();
        let outcome = AssertUnwindSafe(self.build_start_and_wait(&def, &state))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Arc::new(Error::Protocol("the launch panicked".into()))));
        if let Some(metrics) = &self.metrics {
            let error = outcome.as_ref().err().map(|e| &**e);
            metrics.launch_finished(&name, started.elapsed(), error);
        }
        let Err(error) = outcome else {
            tracing::info!(chaincode = %name, "launched");
            return;
        };
        tracing::warn!(chaincode = %name, error = %error.report(), "launch failed");
        let started = self.launched().remove(&name);
        // Forget the launch first, so a registration arriving while we stop is refused; then
        // stop what was started; then tell the waiters, who find nothing left running and the
        // launch gone (a new launch starts afresh).
        self.registry.remove_launch(&name, &state);
        if let Some(started) = started
            && let Err(e) = self.runtime.stop(&def, &started.container_type).await
        {
            tracing::debug!(chaincode = %name, error = %e.report(), "stopping after a failed launch");
        }
        state.notify(Err(error));
    }

    async fn build_start_and_wait(
        self: &Arc<Self>,
        def: &ChaincodeDefinition,
        state: &Arc<LaunchState>,
    ) -> Result<(), Arc<Error>> {
        // Building has its own bound, chaincode.installTimeout.
        let container_type = self.runtime.build(def).await.map_err(Arc::new)?;
        let launch = LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.launched().insert(
            def.ccid.registered_name(),
            Launched {
                def: def.clone(),
                container_type: container_type.clone(),
                launch,
            },
        );
        // The startup timeout covers starting too: a daemon that hangs, a server to dial.
        let deadline = tokio::time::Instant::now() + self.config.startup_timeout;
        let timed_out = || async {
            Arc::new(Error::StartupTimeout {
                ccid: def.ccid.clone(),
                timeout: self.config.startup_timeout,
                output: self.runtime.recent_output(def, &container_type).await,
            })
        };
        let started =
            match tokio::time::timeout_at(deadline, self.runtime.start(def, &container_type)).await
            {
                Ok(started) => started.map_err(Arc::new)?,
                Err(_) => return Err(timed_out().await),
            };
        let mut ended = match started {
            Started::Dialing => self.watch_exit(def, &container_type),
            Started::Serving(server) => {
                match tokio::time::timeout_at(deadline, self.dial(def, &server)).await {
                    Ok(ended) => ended?,
                    Err(_) => return Err(timed_out().await),
                }
            }
        };
        tokio::select! {
            outcome = state.wait() => {
                // Registered (or refused). Keep watching the end, for the log.
                let name = def.ccid.registered_name();
                let running = self.metrics.clone().filter(|_| outcome.is_ok());
                if let Some(metrics) = &running {
                    metrics.chaincode_started(&container_type);
                }
                let launched = Arc::clone(&self.launched);
                tokio::spawn(async move {
                    let why = ended.await;
                    if let Some(metrics) = running {
                        metrics.chaincode_ended(&container_type);
                    }
                    let stopped = launched
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&name)
                        .is_none_or(|l| l.launch != launch);
                    if stopped {
                        tracing::info!(chaincode = %name, "chaincode stopped");
                    } else {
                        // Exited on its own or killed: its exit code and last output say why.
                        tracing::warn!(chaincode = %name, reason = %why.report(), "chaincode ended on its own");
                    }
                });
                outcome
            }
            why = &mut ended => Err(why),
            () = tokio::time::sleep_until(deadline) => Err(timed_out().await),
        }
    }

    /// Completes when the backend says the chaincode exited, with that exit as the error.
    fn watch_exit(&self, def: &ChaincodeDefinition, container_type: &str) -> Ended {
        let runtime = Arc::clone(&self.runtime);
        let (def, container_type) = (def.clone(), container_type.to_owned());
        let task = tokio::spawn(async move {
            let code = runtime.wait(&def, &container_type).await;
            let output = runtime.recent_output(&def, &container_type).await;
            Arc::new(match code {
                Ok(code) => vm_api::Error::Exited {
                    ccid: def.ccid.clone(),
                    code,
                    output,
                }
                .into(),
                Err(e) => e,
            })
        });
        Box::pin(async move {
            task.await.unwrap_or_else(|join| {
                Arc::new(Error::Protocol(format!(
                    "waiting for the chaincode failed: {join}"
                )))
            })
        })
    }

    /// Dials the chaincode server and serves its stream; the returned future completes when
    /// the connection ends.
    async fn dial(
        &self,
        def: &ChaincodeDefinition,
        server: &ChaincodeServer,
    ) -> Result<Ended, Arc<Error>> {
        let stream = crate::caas::connect(server).await.map_err(Arc::new)?;
        tracing::info!(chaincode = %def.ccid, address = %server.address, "connected to the chaincode server");
        let streams = Arc::clone(&self.streams);
        let origin = StreamOrigin {
            expected: Some(def.ccid.clone()),
            client_cert_hash: None,
        };
        let task =
            tokio::spawn(async move { streams.handle_chaincode_stream(stream, origin).await });
        let address = server.address.clone();
        Ok(Box::pin(async move {
            let _ = task.await;
            Arc::new(Error::ChaincodeServer {
                address,
                message: "the connection ended".into(),
            })
        }))
    }

    /// Stops `def`'s chaincode and forgets it.
    pub(crate) async fn stop(&self, def: &ChaincodeDefinition) -> Result<()> {
        let name = def.ccid.registered_name();
        let launched = self.launched().remove(&name);
        let container_type = match (launched, &def.container_type) {
            (Some(l), _) => l.container_type,
            (None, Some(t)) => t.clone(),
            (None, None) => {
                return Err(vm_api::Error::NotRunning {
                    ccid: def.ccid.clone(),
                }
                .into());
            }
        };
        // The handler of the instance being stopped: a new instance registering meanwhile
        // keeps its own.
        let handler = self.registry.handler(&name);
        let result = self.runtime.stop(def, &container_type).await;
        if let Some(handler) = handler {
            // A chaincode server the peer dialed has nothing to stop but its stream.
            handler.close();
            self.registry.deregister(&name, &handler);
        }
        result
    }

    /// Stops every chaincode this peer launched.
    pub(crate) async fn stop_all(&self) {
        let all: Vec<ChaincodeDefinition> =
            self.launched().values().map(|l| l.def.clone()).collect();
        let stops = all.iter().map(|def| async move {
            if let Err(e) = self.stop(def).await {
                tracing::warn!(chaincode = %def.ccid, error = %e.report(), "stopping at shutdown");
            }
        });
        futures::future::join_all(stops).await;
    }
}
