//! The backend trait and the requests the VM controller sends to it (Fabric's VMCReq).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Builder, Ccid, Result};

/// Runs chaincodes: in containers, as processes, in the peer itself…
///
/// One `Vm` serves one container type (`DOCKER`, `PROCESS`, `SYSTEM`, …). The VM controller
/// serialises `start` and `stop` of one chaincode, but calls for different chaincodes run
/// concurrently and `wait` runs beside `start`/`stop`, so implementations must be safe for
/// concurrent use.
#[async_trait]
pub trait Vm: Send + Sync {
    /// Starts the chaincode described by `req` and returns once it is running (not once it
    /// registered: the caller waits for that).
    ///
    /// Must replace a previous instance of the same chaincode that has exited. Must fail with
    /// [`Error::AlreadyRunning`](crate::Error::AlreadyRunning) when one is still running, unless
    /// the backend replaces running instances as Fabric's Docker backend does (stop and remove
    /// the old container first). A failed start leaves nothing running.
    async fn start(&self, req: &StartRequest) -> Result<()>;

    /// Stops the chaincode: asks it to end, and after `req.timeout` ends it by force unless
    /// `req.dont_kill`; removes what start created unless `req.dont_remove`.
    ///
    /// Fails with [`Error::NotRunning`](crate::Error::NotRunning) when the backend has no
    /// instance of the chaincode at all; stopping an instance that already exited succeeds
    /// (and cleans it up). When several steps fail, the first failure is returned.
    async fn stop(&self, req: &StopRequest) -> Result<()>;

    /// Waits until the chaincode ends and returns its exit code (128 + signal number when a
    /// signal ended it). Returns at once when it already ended. Fails with
    /// [`Error::NotRunning`](crate::Error::NotRunning) when the backend never started it, and
    /// with the failure itself (a panic, for instance) when it ended abnormally without a code.
    async fn wait(&self, ccid: &Ccid) -> Result<i64>;

    /// Checks that the backend can work (its daemon answers, for instance).
    async fn health_check(&self) -> Result<()>;

    /// Gets ready to start the chaincode of `req` without starting it: the Docker backend
    /// builds a missing image, so that build errors show when a chaincode is installed and
    /// its first launch is fast. Only `req.ccid`, `req.package` and `req.builder` are set.
    /// The default does nothing.
    async fn prepare(&self, req: &StartRequest) -> Result<()> {
        let _ = req;
        Ok(())
    }

    /// The last lines the chaincode printed (most recent last), for error messages such as a
    /// startup timeout. Backends that keep no output return nothing.
    async fn recent_output(&self, ccid: &Ccid) -> Vec<String> {
        let _ = ccid;
        Vec::new()
    }
}

/// Where an installed chaincode's code lives on the peer's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePackage {
    /// The platform: `binary`, `node`, `golang`, … (the builder and the command line depend on it).
    pub platform: String,
    /// The executable (for `binary`) or the folder (for `node`).
    pub path: PathBuf,
}

/// Start a chaincode (Fabric's `StartContainerReq`).
#[derive(Clone)]
pub struct StartRequest {
    /// The chaincode.
    pub ccid: Ccid,
    /// The command line as Fabric runs it inside a container for the chaincode's platform
    /// (`chaincode -peer.address=…` for binaries, `/bin/sh -c "cd /usr/local/src; npm start -- …"`
    /// for Node).
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs in Fabric's order (see PROTOCOL.md).
    pub env: Vec<String>,
    /// Files to put in place before the chaincode starts, by absolute path inside its
    /// container (the TLS files under `/etc/hyperledger/fabric`).
    pub files: BTreeMap<String, Bytes>,
    /// The address the chaincode dials (`host:port`), for backends that build their own
    /// command line.
    pub peer_address: String,
    /// The installed code, for backends that run it in place.
    pub package: Option<CodePackage>,
    /// Produces a build context when the backend needs to build an image first.
    pub builder: Option<Arc<dyn Builder>>,
}

impl fmt::Debug for StartRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartRequest")
            .field("ccid", &self.ccid)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("peer_address", &self.peer_address)
            .field("package", &self.package)
            .field("builder", &self.builder.is_some())
            .finish()
    }
}

impl StartRequest {
    /// A request with no arguments, environment, files, package or builder.
    pub fn new(ccid: Ccid) -> Self {
        Self {
            ccid,
            args: Vec::new(),
            env: Vec::new(),
            files: BTreeMap::new(),
            peer_address: String::new(),
            package: None,
            builder: None,
        }
    }

    /// The value of `key` in [`env`](Self::env), if set.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }
}

/// Stop a chaincode (Fabric's `StopContainerReq`).
#[derive(Debug, Clone)]
pub struct StopRequest {
    /// The chaincode.
    pub ccid: Ccid,
    /// How long it may take to end by itself before it is killed.
    pub timeout: Duration,
    /// Do not kill it when the timeout passes.
    pub dont_kill: bool,
    /// Keep what was created for it (the container).
    pub dont_remove: bool,
}

impl StopRequest {
    /// Stop `ccid`, killing it after `timeout` and removing what was created for it.
    pub fn new(ccid: Ccid, timeout: Duration) -> Self {
        Self {
            ccid,
            timeout,
            dont_kill: false,
            dont_remove: false,
        }
    }
}

/// Wait for a chaincode to end (Fabric's `WaitContainerReq`).
#[derive(Debug, Clone)]
pub struct WaitRequest {
    /// The chaincode.
    pub ccid: Ccid,
}

/// Get ready to start a chaincode (build its image); see [`Vm::prepare`].
#[derive(Debug, Clone)]
pub struct PrepareRequest(pub StartRequest);

/// What a request produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmOutcome {
    /// The chaincode is ready to be started.
    Prepared,
    /// The chaincode was started.
    Started,
    /// The chaincode was stopped.
    Stopped,
    /// The chaincode ended with this exit code.
    Exited(i64),
}

/// A request the VM controller runs against a backend (Fabric's `VMCReq`).
#[async_trait]
pub trait VmRequest: Send + Sync + fmt::Debug {
    /// The chaincode the request is about.
    fn ccid(&self) -> &Ccid;

    /// Whether the controller must run this request alone among the requests for the same
    /// chaincode. Start and stop are exclusive; wait is not (it lasts as long as the chaincode).
    fn is_exclusive(&self) -> bool {
        true
    }

    /// Runs the request against `vm`.
    async fn run(&self, vm: &dyn Vm) -> Result<VmOutcome>;
}

#[async_trait]
impl VmRequest for StartRequest {
    fn ccid(&self) -> &Ccid {
        &self.ccid
    }

    async fn run(&self, vm: &dyn Vm) -> Result<VmOutcome> {
        vm.start(self).await.map(|()| VmOutcome::Started)
    }
}

#[async_trait]
impl VmRequest for PrepareRequest {
    fn ccid(&self) -> &Ccid {
        &self.0.ccid
    }

    async fn run(&self, vm: &dyn Vm) -> Result<VmOutcome> {
        vm.prepare(&self.0).await.map(|()| VmOutcome::Prepared)
    }
}

#[async_trait]
impl VmRequest for StopRequest {
    fn ccid(&self) -> &Ccid {
        &self.ccid
    }

    async fn run(&self, vm: &dyn Vm) -> Result<VmOutcome> {
        vm.stop(self).await.map(|()| VmOutcome::Stopped)
    }
}

#[async_trait]
impl VmRequest for WaitRequest {
    fn ccid(&self) -> &Ccid {
        &self.ccid
    }

    fn is_exclusive(&self) -> bool {
        false
    }

    async fn run(&self, vm: &dyn Vm) -> Result<VmOutcome> {
        vm.wait(&self.ccid).await.map(VmOutcome::Exited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_finds_exact_key() {
        let mut req = StartRequest::new(Ccid::new("a", "1"));
        req.env = vec![
            "CORE_PEER_TLS_ENABLED_X=no".into(),
            "CORE_PEER_TLS_ENABLED=true".into(),
        ];
        assert_eq!(req.env_var("CORE_PEER_TLS_ENABLED"), Some("true"));
        assert_eq!(req.env_var("CORE_PEER"), None);
    }
}
