//! The backend trait and the requests the VM controller sends to it (Fabric's VMCReq).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::{BuildOutcome, BuildRequest, Builder, Ccid, ChaincodeServer, Result, StartRequest};

/// How a started chaincode and its peer find each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The chaincode runs and dials the peer's chaincode listener itself (REGISTER).
    Dialing,
    /// The chaincode is served as a service (Fabric 2.x): the peer dials it
    /// (`protos.Chaincode/Connect`) and the chaincode then registers on that stream.
    Serving(ChaincodeServer),
}

/// Runs chaincodes: in containers, as processes, in the peer itself…
///
/// One `Vm` serves one container type (`DOCKER`, `PROCESS`, `SYSTEM`, …). The VM controller
/// serialises `build`, `start` and `stop` of one chaincode, but calls for different chaincodes
/// run concurrently and `wait` runs beside the others, so implementations must be safe for
/// concurrent use. Nothing blocking may run on the caller's task: file system and process
/// work goes to `tokio::task::spawn_blocking`.
#[async_trait]
pub trait Vm: Send + Sync {
    /// The builder that gets packages ready for this backend, if it runs packages at all
    /// (see [`Builder`]). The default, `None`, is a backend of built-in chaincodes only.
    fn builder(&self) -> Option<&dyn Builder> {
        None
    }

    /// Starts the chaincode described by `req` and returns once it is running (not once it
    /// registered: the caller waits for that), saying whether it dials the peer or the peer
    /// dials it.
    ///
    /// Must replace a previous instance of the same chaincode that has exited. Must fail with
    /// [`Error::AlreadyRunning`](crate::Error::AlreadyRunning) when one is still running, unless
    /// the backend replaces running instances as Fabric's Docker backend does (stop and remove
    /// the old container first). A failed start leaves nothing running.
    async fn start(&self, req: &StartRequest) -> Result<Started>;

    /// Stops the chaincode: asks it to end, and after `req.timeout` ends it by force unless
    /// `req.dont_kill`; removes what start created unless `req.dont_remove`. A backend that
    /// follows a platform's own rule says so (external builders' `run` gets Fabric's 5 s).
    ///
    /// Fails with [`Error::NotRunning`](crate::Error::NotRunning) when the backend has no
    /// instance of the chaincode at all; stopping an instance that already exited succeeds
    /// (and cleans it up). When several steps fail, the first failure is returned.
    async fn stop(&self, req: &StopRequest) -> Result<()>;

    /// Waits until the chaincode ends and returns its exit code (128 + signal number when a
    /// signal ended it). Returns at once when it already ended. Fails with
    /// [`Error::NotRunning`](crate::Error::NotRunning) when the backend never started it, and
    /// with the failure itself (a panic, for instance) when it ended abnormally without a code.
    /// For a chaincode the peer dials ([`Started::Serving`]) with nothing running here, it
    /// waits until the chaincode is stopped.
    async fn wait(&self, ccid: &Ccid) -> Result<i64>;

    /// Checks that the backend can work (its daemon answers, for instance).
    async fn health_check(&self) -> Result<()>;

    /// The last lines the chaincode printed (most recent last), for error messages such as a
    /// startup timeout. Backends that keep no output return nothing.
    async fn recent_output(&self, ccid: &Ccid) -> Vec<String> {
        let _ = ccid;
        Vec::new()
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

/// A request the VM controller runs against a backend (Fabric's `VMCReq`), with the type of
/// what it produces: the controller hands back exactly that, so no caller matches on outcomes
/// that cannot happen.
///
/// ```
/// use vm_api::{Ccid, VmRequest, WaitRequest};
/// fn exit_code_type<R: VmRequest<Output = i64>>(_: &R) {}
/// exit_code_type(&WaitRequest { ccid: Ccid::new("kv", "1") });
/// ```
#[async_trait]
pub trait VmRequest: Send + Sync + fmt::Debug {
    /// What the request produces.
    type Output: Send;

    /// The chaincode the request is about.
    fn ccid(&self) -> &Ccid;

    /// Whether the controller must run this request alone among the requests for the same
    /// chaincode. Build, start and stop are exclusive; wait is not (it lasts as long as the
    /// chaincode).
    fn is_exclusive(&self) -> bool {
        true
    }

    /// Runs the request against `vm`.
    async fn run(&self, vm: &dyn Vm) -> Result<Self::Output>;
}

#[async_trait]
impl VmRequest for BuildRequest {
    type Output = BuildOutcome;

    fn ccid(&self) -> &Ccid {
        &self.ccid
    }

    async fn run(&self, vm: &dyn Vm) -> Result<BuildOutcome> {
        match vm.builder() {
            Some(builder) => builder.build(self).await,
            None => Ok(BuildOutcome::Declined {
                reason: "it runs only the chaincodes built into it".into(),
            }),
        }
    }
}

#[async_trait]
impl VmRequest for StartRequest {
    type Output = Started;

    fn ccid(&self) -> &Ccid {
        &self.ccid
    }

    async fn run(&self, vm: &dyn Vm) -> Result<Started> {
        vm.start(self).await
    }
}

#[async_trait]
impl VmRequest for StopRequest {
    type Output = ();

    fn ccid(&self) -> &Ccid {
        &self.ccid
    }

    async fn run(&self, vm: &dyn Vm) -> Result<()> {
        vm.stop(self).await
    }
}

#[async_trait]
impl VmRequest for WaitRequest {
    type Output = i64;

    fn ccid(&self) -> &Ccid {
        &self.ccid
    }

    fn is_exclusive(&self) -> bool {
        false
    }

    async fn run(&self, vm: &dyn Vm) -> Result<i64> {
        vm.wait(&self.ccid).await
    }
}
