//! The runtime launcher: starts a chaincode and waits for it to register, once, however many
//! callers ask at the same time (Fabric's `RuntimeLauncher`).
//!
//! A launch ends in one of four ways: the chaincode registers (success), its process or
//! container exits first, the startup timeout passes, or its registration is refused. On any
//! failure the launcher stops what it started and removes the launch from the registry, so the
//! next launch starts clean; every caller that waited sees the same error.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;

use crate::handler::Handler;
use crate::handler_registry::LaunchState;
use crate::{ChaincodeDefinition, ContainerRuntime, Error, HandlerRegistry, Result, SupportConfig};

/// Launches chaincodes and remembers which it launched.
pub(crate) struct RuntimeLauncher {
    config: Arc<SupportConfig>,
    registry: Arc<HandlerRegistry>,
    runtime: Arc<ContainerRuntime>,
    /// What this peer started, by registered name, so shutdown can stop it.
    launched: Mutex<HashMap<String, ChaincodeDefinition>>,
}

impl RuntimeLauncher {
    pub(crate) fn new(
        config: Arc<SupportConfig>,
        registry: Arc<HandlerRegistry>,
        runtime: Arc<ContainerRuntime>,
    ) -> Self {
        Self {
            config,
            registry,
            runtime,
            launched: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn runtime(&self) -> &Arc<ContainerRuntime> {
        &self.runtime
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
        self.launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), def.clone());
        let outcome = AssertUnwindSafe(self.start_and_wait(&def, &state))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Arc::new(Error::Protocol("the launch panicked".into()))));
        let Err(error) = outcome else {
            tracing::info!(chaincode = %name, "launched");
            return;
        };
        tracing::warn!(chaincode = %name, error = %error.report(), "launch failed");
        self.launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        // Forget the launch first, so a registration arriving while we stop is refused; then
        // stop what was started; then tell the waiters, who find nothing left running and the
        // launch gone (a new launch starts afresh).
        self.registry.remove_launch(&name, &state);
        if let Err(e) = self.runtime.stop(&def).await {
            tracing::debug!(chaincode = %name, error = %e.report(), "stopping after a failed launch");
        }
        state.notify(Err(error));
    }

    async fn start_and_wait(
        self: &Arc<Self>,
        def: &ChaincodeDefinition,
        state: &Arc<LaunchState>,
    ) -> Result<(), Arc<Error>> {
        // The startup timeout covers starting too: an image build or a daemon that hangs.
        let deadline = tokio::time::Instant::now() + self.config.startup_timeout;
        let timed_out = || async {
            Arc::new(Error::StartupTimeout {
                ccid: def.ccid.clone(),
                timeout: self.config.startup_timeout,
                output: self.runtime.recent_output(def).await,
            })
        };
        match tokio::time::timeout_at(deadline, self.runtime.start(def)).await {
            Ok(started) => started.map_err(Arc::new)?,
            Err(_) => return Err(timed_out().await),
        }
        let mut exited = {
            let runtime = Arc::clone(&self.runtime);
            let def = def.clone();
            tokio::spawn(async move { runtime.wait(&def).await })
        };
        enum First {
            Registered(Result<(), Arc<Error>>),
            Exited(Result<Result<i64>, tokio::task::JoinError>),
            TimedOut,
        }
        let first = tokio::select! {
            outcome = state.wait() => First::Registered(outcome),
            code = &mut exited => First::Exited(code),
            () = tokio::time::sleep_until(deadline) => First::TimedOut,
        };
        match first {
            First::Registered(outcome) => {
                // Registered (or refused). Keep watching the exit, for the log.
                let name = def.ccid.registered_name();
                tokio::spawn(async move {
                    match exited.await {
                        Ok(Ok(code)) => tracing::info!(chaincode = %name, code, "chaincode exited"),
                        Ok(Err(e)) => {
                            tracing::info!(chaincode = %name, error = %e.report(), "chaincode ended")
                        }
                        Err(_) => {}
                    }
                });
                outcome
            }
            First::Exited(code) => {
                let output = self.runtime.recent_output(def).await;
                Err(Arc::new(match code {
                    Ok(Ok(code)) => vm_api::Error::Exited {
                        ccid: def.ccid.clone(),
                        code,
                        output,
                    }
                    .into(),
                    Ok(Err(e)) => e,
                    Err(join) => {
                        Error::Protocol(format!("waiting for the chaincode failed: {join}"))
                    }
                }))
            }
            First::TimedOut => {
                exited.abort();
                Err(timed_out().await)
            }
        }
    }

    /// Stops `def`'s chaincode and forgets it.
    pub(crate) async fn stop(&self, def: &ChaincodeDefinition) -> Result<()> {
        let name = def.ccid.registered_name();
        self.launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        // The handler of the instance being stopped: a new instance registering meanwhile
        // keeps its own.
        let handler = self.registry.handler(&name);
        let result = self.runtime.stop(def).await;
        if let Some(handler) = handler {
            self.registry.deregister(&name, &handler);
        }
        result
    }

    /// Stops every chaincode this peer launched.
    pub(crate) async fn stop_all(&self) {
        let all: Vec<ChaincodeDefinition> = self
            .launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let stops = all.iter().map(|def| async move {
            if let Err(e) = self.stop(def).await {
                tracing::warn!(chaincode = %def.ccid, error = %e.report(), "stopping at shutdown");
            }
        });
        futures::future::join_all(stops).await;
    }
}
