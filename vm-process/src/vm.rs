//! The process backend: a chaincode is a child process in its own process group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tokio::process::Command;
use vm_api::process::{Spawn, Supervised};
use vm_api::{
    BuildOutcome, BuildRequest, Builder, Ccid, Error, ProcessCommand, Result, Settings,
    StartRequest, Started, StopRequest, Vm,
};

/// How the process backend runs chaincodes.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Output lines kept per chaincode for error messages (`vm.process.outputLines`, 50).
    pub output_lines: usize,
    /// Variables passed on from the peer's environment, besides Fabric's contract
    /// (`vm.process.inheritEnv`, comma-separated).
    pub inherit_env: Vec<String>,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            output_lines: 50,
            inherit_env: [
                "PATH",
                "HOME",
                "LANG",
                "LC_ALL",
                "TZ",
                "TMPDIR",
                "RUST_LOG",
                "RUST_BACKTRACE",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl ProcessConfig {
    /// Reads `vm.process.*` from the peer's settings over the defaults.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let mut c = Self::default();
        if let Some(n) = settings.parse("vm.process.outputLines")? {
            c.output_lines = n;
        }
        let extra = settings.list("vm.process.inheritEnv");
        c.inherit_env.extend(extra);
        Ok(c)
    }
}

/// Runs user chaincodes as child processes (container type `PROCESS`).
///
/// Each chaincode gets Fabric's environment, its TLS files in a private folder (the
/// environment points there instead of `/etc/hyperledger/fabric`), and its own process group:
/// stopping sends SIGTERM to the group, then SIGKILL after the grace period. Children die with
/// the peer (`PR_SET_PDEATHSIG`), and dropping the backend kills every process it started.
pub struct ProcessVm {
    config: ProcessConfig,
    instances: Mutex<HashMap<Ccid, Arc<Supervised>>>,
}

impl std::fmt::Debug for ProcessVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessVm")
            .field("config", &self.config)
            .field("instances", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProcessVm {
    /// A backend with `config`.
    pub fn new(config: ProcessConfig) -> Self {
        Self {
            config,
            instances: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Ccid, Arc<Supervised>>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process id of `ccid`'s chaincode while it runs.
    pub fn pid(&self, ccid: &Ccid) -> Option<u32> {
        self.lock()
            .get(ccid)
            .filter(|i| i.is_running())
            .map(|i| i.pid())
    }

    /// The process ids of every chaincode running.
    pub fn pids(&self) -> Vec<u32> {
        self.lock()
            .values()
            .filter(|i| i.is_running())
            .map(|i| i.pid())
            .collect()
    }

    /// Works out the command line and writes the TLS files into a private folder: file
    /// system work, run off the async workers.
    async fn prepare(req: &StartRequest) -> Result<(ProcessCommand, tempfile::TempDir)> {
        let (package, platform) = req.package_and_platform()?;
        let (code, address) = (package.code.clone(), req.peer.address.clone());
        let files = req.tls_files();
        let prefix = format!("ccrt-{}-", req.ccid.dashed().replace(['/', ':'], "-"));
        let ccid = req.ccid.clone();
        tokio::task::spawn_blocking(move || {
            let io = |what: String, e| Error::io(format!("chaincode {ccid}: {what}"), e);
            let run = platform.process_command(&code, &address)?;
            let dir = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir()
                .map_err(|e| io("cannot make its private folder".into(), e))?;
            for (name, bytes) in files {
                let path = dir.path().join(name);
                write_private(&path, &bytes)
                    .map_err(|e| io(format!("cannot write {}", path.display()), e))?;
            }
            Ok((run, dir))
        })
        .await
        .map_err(|e| Error::Backend {
            backend: "process",
            message: format!("preparing chaincode {} failed: {e}", req.ccid),
            source: None,
        })?
    }

    async fn spawn(&self, req: &StartRequest) -> Result<Supervised> {
        let (run, files) = Self::prepare(req).await?;
        let mut cmd = Command::new(&run.program);
        cmd.args(&run.args).env_clear();
        for key in &self.config.inherit_env {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        if let Some(prefix) = &run.path_prefix {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut joined = prefix.clone().into_os_string();
            joined.push(":");
            joined.push(path);
            cmd.env("PATH", joined);
        }
        // Fabric's environment, pointing at the TLS files in the private folder.
        cmd.envs(req.environment(&files.path().display().to_string()));
        cmd.current_dir(&run.cwd);
        let name = req.ccid.registered_name();
        let sink = Arc::new(move |stream: &'static str, line: &str| {
            tracing::info!(target: "chaincode", chaincode = %name, stream, "{line}");
        });
        let child = Supervised::spawn(
            cmd,
            Spawn {
                // The TLS files go when the process does.
                cleanup: Some(Box::new(files)),
                ..Spawn::new(self.config.output_lines, sink)
            },
        )
        .map_err(|e| {
            Error::io(
                format!(
                    "chaincode {}: cannot start {}",
                    req.ccid,
                    run.program.display()
                ),
                e,
            )
        })?;
        tracing::info!(chaincode = %req.ccid, pid = child.pid(), program = %run.program.display(), "chaincode process started");
        Ok(child)
    }
}

/// Writes `bytes` readable by the owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Takes packages whose type has a platform, and checks them: the process runs the installed
/// files in place, so there is nothing to build.
#[async_trait]
impl Builder for ProcessVm {
    async fn build(&self, req: &BuildRequest) -> Result<BuildOutcome> {
        let Some(platform) = req.platform else {
            return Ok(BuildOutcome::Declined {
                reason: format!("no platform runs packages of type {:?}", req.package.kind),
            });
        };
        let code = req.package.code.clone();
        tokio::task::spawn_blocking(move || platform.validate(&code))
            .await
            .map_err(|e| Error::Backend {
                backend: "process",
                message: format!("checking chaincode {} failed: {e}", req.ccid),
                source: None,
            })??;
        Ok(BuildOutcome::Built {
            detail: format!(
                "{} package {} runs in place",
                platform.name(),
                req.package.code.display()
            ),
        })
    }
}

#[async_trait]
impl Vm for ProcessVm {
    fn builder(&self) -> Option<&dyn Builder> {
        Some(self)
    }

    async fn start(&self, req: &StartRequest) -> Result<Started> {
        // Like Fabric's Docker backend, replace whatever is left of an earlier instance.
        let old = self.lock().remove(&req.ccid);
        if let Some(old) = old
            && old.is_running()
        {
            tracing::info!(chaincode = %req.ccid, "stopping the previous instance");
            old.signal(Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(5), old.wait()).await;
        }
        let instance = self.spawn(req).await?;
        self.lock().insert(req.ccid.clone(), Arc::new(instance));
        Ok(Started::Dialing)
    }

    async fn stop(&self, req: &StopRequest) -> Result<()> {
        let instance = self.lock().get(&req.ccid).cloned();
        let Some(instance) = instance else {
            return Err(Error::NotRunning {
                ccid: req.ccid.clone(),
            });
        };
        instance.stop(req.timeout, !req.dont_kill).await;
        if !req.dont_remove {
            let mut instances = self.lock();
            if instances
                .get(&req.ccid)
                .is_some_and(|i| Arc::ptr_eq(i, &instance))
            {
                instances.remove(&req.ccid);
            }
        }
        Ok(())
    }

    async fn wait(&self, ccid: &Ccid) -> Result<i64> {
        let instance = self.lock().get(ccid).cloned();
        match instance {
            Some(instance) => Ok(instance.wait().await),
            None => Err(Error::NotRunning { ccid: ccid.clone() }),
        }
    }

    async fn health_check(&self) -> Result<()> {
        if std::path::Path::new("/bin/sh").exists() {
            Ok(())
        } else {
            Err(Error::Backend {
                backend: "process",
                message: "/bin/sh is missing: Node chaincodes cannot start".into(),
                source: None,
            })
        }
    }

    async fn recent_output(&self, ccid: &Ccid) -> Vec<String> {
        self.lock()
            .get(ccid)
            .map(|i| i.output().snapshot())
            .unwrap_or_default()
    }
}

impl Drop for ProcessVm {
    fn drop(&mut self) {
        for instance in self.lock().values() {
            if instance.is_running() {
                instance.signal(Signal::SIGKILL);
            }
        }
    }
}
