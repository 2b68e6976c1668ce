//! The router: which backend builds and runs a package whose definition names none (Fabric
//! 2.x's `container.Router`: external builders first, then the platform's own path).

use vm_api::{BuildOutcome, BuildRequest};

use crate::{Error, Metrics, Result, VmController};

/// The backend that took a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routed {
    /// Its container type.
    pub container_type: String,
    /// What it built, for the log.
    pub detail: String,
}

/// Offers `req` to the candidate backends, highest priority first: a backend whose health
/// check fails is skipped (with a warning), one that declines the package passes it on, and
/// the first that builds it runs it. A backend that takes the package but fails to build it
/// ends the search with its error, as in Fabric.
pub(crate) async fn route(
    controller: &VmController,
    req: &BuildRequest,
    metrics: Option<&Metrics>,
) -> Result<Routed> {
    let mut tried = Vec::new();
    for container_type in controller.candidates() {
        let vm = match controller.vm(&container_type) {
            Ok(vm) => vm,
            Err(e) => {
                tried.push(format!("{container_type}: {}", e.report()));
                continue;
            }
        };
        if let Err(e) = vm.health_check().await {
            tracing::warn!(backend = %container_type, chaincode = %req.ccid, error = %e, "backend unavailable; trying the next");
            tried.push(format!("{container_type}: {e}"));
            continue;
        }
        match build_on(controller, &container_type, req, metrics).await? {
            BuildOutcome::Built { detail } => {
                return Ok(Routed {
                    container_type,
                    detail,
                });
            }
            BuildOutcome::Declined { reason } => {
                tracing::debug!(backend = %container_type, chaincode = %req.ccid, reason, "declined");
                tried.push(format!("{container_type}: {reason}"));
            }
        }
    }
    Err(Error::NoBackend {
        ccid: req.ccid.clone(),
        package_type: req.package.kind.clone(),
        tried,
    })
}

/// Builds `req` on `container_type`'s backend, measuring the build when it is not declined.
pub(crate) async fn build_on(
    controller: &VmController,
    container_type: &str,
    req: &BuildRequest,
    metrics: Option<&Metrics>,
) -> Result<BuildOutcome> {
    let started = metrics.map(|_| std::time::Instant::now());
    let outcome = controller.process(container_type, req).await;
    if let (Some(metrics), Some(started)) = (metrics, started) {
        let ok = match &outcome {
            Ok(BuildOutcome::Declined { .. }) => return outcome,
            Ok(BuildOutcome::Built { .. }) => true,
            Err(_) => false,
        };
        let ccid = req.ccid.registered_name();
        metrics.build_finished(&ccid, container_type, started.elapsed(), ok);
    }
    outcome
}
