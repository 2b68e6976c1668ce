//! The process backend: a chaincode is a child process in its own process group.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::watch;
use vm_api::{
    BuildOutcome, BuildRequest, Builder, Ccid, Error, ProcessCommand, RecentOutput, Result,
    Settings, StartRequest, Started, StopRequest, Vm,
};

use crate::output::capture;

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

/// One started chaincode process.
struct Instance {
    /// Process id, which is also its process group id.
    pid: Pid,
    /// The exit code, once it exited (and its output was read).
    exited: watch::Receiver<Option<i64>>,
    /// Set the moment the leader is reaped: from then on its id may be reused.
    reaped: Arc<AtomicBool>,
    output: RecentOutput,
    /// Private folder with the TLS files; removed with the instance.
    _files: tempfile::TempDir,
}

impl Instance {
    fn is_running(&self) -> bool {
        self.exited.borrow().is_none()
    }

    /// Signals the whole process group while its leader runs. Once the leader is reaped the
    /// group id may be reused by an unrelated process, so it is not signalled then (the
    /// waiter swept the group when the leader exited).
    fn signal(&self, signal: Signal) {
        if !self.reaped.load(Ordering::Acquire) {
            let _ = killpg(self.pid, signal);
        }
    }

    async fn wait(&self) -> i64 {
        let mut exited = self.exited.clone();
        match exited.wait_for(Option::is_some).await {
            Ok(code) => code.unwrap_or(-1),
            Err(_) => -1,
        }
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
    instances: Mutex<HashMap<Ccid, Arc<Instance>>>,
}

impl std::fmt::Debug for ProcessVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessVm")
            .field("config", &self.config)
            .field("instances", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
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

    fn lock(&self) -> MutexGuard<'_, HashMap<Ccid, Arc<Instance>>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process id of `ccid`'s chaincode while it runs.
    pub fn pid(&self, ccid: &Ccid) -> Option<u32> {
        self.lock()
            .get(ccid)
            .filter(|i| i.is_running())
            .and_then(|i| u32::try_from(i.pid.as_raw()).ok())
    }

    /// The process ids of every chaincode running.
    pub fn pids(&self) -> Vec<u32> {
        self.lock()
            .values()
            .filter(|i| i.is_running())
            .filter_map(|i| u32::try_from(i.pid.as_raw()).ok())
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

    async fn spawn(&self, req: &StartRequest) -> Result<Instance> {
        let io =
            |what: &str, e: std::io::Error| Error::io(format!("chaincode {}: {what}", req.ccid), e);
        let (run, files) = Self::prepare(req).await?;
        let mut cmd = Command::new(&run.program);
        cmd.args(&run.args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
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
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| io(&format!("cannot start {}", run.program.display()), e))?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| Error::Backend {
                backend: "process",
                message: format!("chaincode {} exited before it could be tracked", req.ccid),
                source: None,
            })?;
        let output = RecentOutput::new(self.config.output_lines);
        let name = req.ccid.registered_name();
        let readers = [
            child
                .stdout
                .take()
                .map(|p| capture(&output, name.clone(), "stdout", p)),
            child
                .stderr
                .take()
                .map(|p| capture(&output, name.clone(), "stderr", p)),
        ];
        let (exited_tx, exited) = watch::channel(None);
        let reaped = Arc::new(AtomicBool::new(false));
        let reaped_flag = Arc::clone(&reaped);
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => exit_code(status),
                Err(e) => {
                    tracing::warn!(chaincode = %name, error = %e, "cannot wait for the chaincode");
                    -1
                }
            };
            reaped_flag.store(true, Ordering::Release);
            // What the chaincode left running in its group goes with it. Right after the
            // leader is reaped its group id cannot belong to anyone else yet: it is still in
            // use by the remaining members, or there are none and the signal finds nothing.
            let _ = killpg(pid, Signal::SIGKILL);
            // Let the readers take in the last lines (a grandchild may hold the pipes open).
            for reader in readers.into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_millis(200), reader).await;
            }
            let _ = exited_tx.send(Some(code));
        });
        tracing::info!(chaincode = %req.ccid, pid = pid.as_raw(), program = %run.program.display(), "chaincode process started");
        Ok(Instance {
            pid,
            exited,
            reaped,
            output,
            _files: files,
        })
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

/// Asks the kernel to kill the child when the peer dies, so no chaincode outlives it.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; prctl(2) and getppid(2) are plain system calls.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The peer may have died before the call above: then we were re-parented.
            if nix::unistd::getppid() == Pid::from_raw(1) {
                return Err(std::io::Error::other(
                    "the peer exited while starting the chaincode",
                ));
            }
            Ok(())
        });
    }
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
        if instance.is_running() {
            instance.signal(Signal::SIGTERM);
            let ended = tokio::time::timeout(req.timeout, instance.wait())
                .await
                .is_ok();
            if !ended && !req.dont_kill {
                instance.signal(Signal::SIGKILL);
                instance.wait().await;
            }
        }
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
            .map(|i| i.output.snapshot())
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
