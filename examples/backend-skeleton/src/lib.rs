//! A complete backend, as a separate crate would write one: container type `SKELETON` runs
//! each chaincode as a plain child process of the peer. Linking this crate is enough for a
//! peer to run chaincodes that name `SKELETON` (`use backend_skeleton as _;`).
//!
//! What the seam hands a backend, and what this one does with it:
//! - a [`BuildRequest`] before the first start: take packages whose type has a platform
//!   (checking them), decline the others so the peer can route them elsewhere;
//! - a [`StartRequest`]: the platform's command line for the installed files, Fabric's
//!   environment from the launch data, the TLS files in a private folder;
//! - stop, wait, health check and the last output lines, through `vm_api::process`.
//!
//! ```
//! use backend_skeleton as _;
//! assert!(vm_api::providers().unwrap().get("SKELETON").is_some());
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vm_api::process::{Signal, Spawn, Supervised};
use vm_api::{
    BuildOutcome, BuildRequest, Builder, Ccid, Error, Result, StartRequest, Started, StopRequest,
    Vm, VmContext, VmProvider, async_trait,
};

/// The container type chaincodes name to run here.
pub const CONTAINER_TYPE: &str = "SKELETON";

/// The running chaincodes, by id.
#[derive(Default)]
pub struct Skeleton {
    running: Mutex<HashMap<Ccid, Arc<Supervised>>>,
}

impl Skeleton {
    fn get(&self, ccid: &Ccid) -> Result<Arc<Supervised>> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .get(ccid)
            .cloned()
            .ok_or_else(|| Error::NotRunning { ccid: ccid.clone() })
    }
}

#[async_trait]
impl Builder for Skeleton {
    async fn build(&self, req: &BuildRequest) -> Result<BuildOutcome> {
        let Some(platform) = req.platform else {
            let reason = format!("no platform runs packages of type {:?}", req.package.kind);
            return Ok(BuildOutcome::Declined { reason });
        };
        let code = req.package.code.clone();
        // Reading files blocks: off the async workers.
        tokio::task::spawn_blocking(move || platform.validate(&code))
            .await
            .map_err(|e| Error::io("checking the package", std::io::Error::other(e)))??;
        let detail = format!("{} package, run in place", platform.name());
        Ok(BuildOutcome::Built { detail })
    }
}

#[async_trait]
impl Vm for Skeleton {
    fn builder(&self) -> Option<&dyn Builder> {
        Some(self)
    }

    async fn start(&self, req: &StartRequest) -> Result<Started> {
        let (package, platform) = req.package_and_platform()?;
        let (code, address, tls) = (
            package.code.clone(),
            req.peer.address.clone(),
            req.tls_files(),
        );
        // The command line (Node's reads package.json) and a private folder with the TLS
        // files: file system work, off the async workers.
        let (run, files) = tokio::task::spawn_blocking(move || {
            let run = platform.process_command(&code, &address)?;
            let io = |e| Error::io("writing the TLS files", e);
            let files = tempfile::tempdir().map_err(io)?;
            for (name, bytes) in tls {
                std::fs::write(files.path().join(name), bytes).map_err(io)?;
            }
            Ok::<_, Error>((run, files))
        })
        .await
        .map_err(|e| Error::io("preparing the start", std::io::Error::other(e)))??;
        let io = |e| Error::io(format!("starting chaincode {}", req.ccid), e);
        let mut cmd = tokio::process::Command::new(&run.program);
        // Fabric's environment and a PATH (the platform's prefix first), none of the peer's.
        let mut path: Vec<_> = run.path_prefix.iter().cloned().collect();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        cmd.args(&run.args)
            .current_dir(&run.cwd)
            .env_clear()
            .env("PATH", std::env::join_paths(path).unwrap_or_default())
            .envs(req.environment(&files.path().display().to_string()));
        let name = req.ccid.registered_name();
        let log = Arc::new(move |_, line: &str| tracing::info!(chaincode = %name, "{line}"));
        let spawn = Spawn {
            cleanup: Some(Box::new(files)),
            ..Spawn::new(20, log)
        };
        let child = Supervised::spawn(cmd, spawn).map_err(io)?;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = running.insert(req.ccid.clone(), Arc::new(child)) {
            old.signal(Signal::SIGKILL); // an instance that was left behind
        }
        Ok(Started::Dialing)
    }

    async fn stop(&self, req: &StopRequest) -> Result<()> {
        let child = self.get(&req.ccid)?;
        child.stop(req.timeout, !req.dont_kill).await;
        if !req.dont_remove {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.remove(&req.ccid);
        }
        Ok(())
    }

    async fn wait(&self, ccid: &Ccid) -> Result<i64> {
        Ok(self.get(ccid)?.wait().await)
    }

    async fn health_check(&self) -> Result<()> {
        Ok(())
    }

    async fn recent_output(&self, ccid: &Ccid) -> Vec<String> {
        self.get(ccid)
            .map(|c| c.output().snapshot())
            .unwrap_or_default()
    }
}

fn create(_: &VmContext) -> Result<Arc<dyn Vm>> {
    Ok(Arc::new(Skeleton::default()))
}

inventory::submit! {
    VmProvider::new(CONTAINER_TYPE, "chaincodes as plain child processes (the skeleton example)", create)
}
