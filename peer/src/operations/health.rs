//! `/healthz`: the health checks of the backends this peer would route chaincodes to, in
//! Fabric's JSON.
//!
//! Each candidate backend (`VmController::candidates`: those that take chaincodes of their
//! own accord under the peer's settings) contributes its `Vm::health_check` (Docker: the
//! daemon answers), as component `<container type in lower case>`. Checks run at once, each
//! bounded by [`CHECK_TIMEOUT`].

use std::time::Duration;

use peer_support::ChaincodeSupport;
use serde::Serialize;

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Fabric's `/healthz` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthStatus {
    /// `OK`, or `Service Unavailable` when a check failed.
    pub status: &'static str,
    /// When the checks ran (RFC 3339, UTC).
    pub time: String,
    /// The checks that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<FailedCheck>,
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedCheck {
    /// The backend, in lower case (`docker`).
    pub component: String,
    /// Why it failed.
    pub reason: String,
}

/// Runs every check.
pub async fn check(support: &ChaincodeSupport) -> HealthStatus {
    let checks = support
        .controller()
        .candidates()
        .into_iter()
        .map(|backend| async move {
            let reason = match support.controller().vm(&backend) {
                Ok(vm) => match tokio::time::timeout(CHECK_TIMEOUT, vm.health_check()).await {
                    Ok(Ok(())) => return None,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
                },
                Err(e) => e.report(),
            };
            Some(FailedCheck {
                component: backend.to_ascii_lowercase(),
                reason,
            })
        });
    let failed_checks: Vec<FailedCheck> = futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    for failed in &failed_checks {
        tracing::debug!(component = %failed.component, reason = %failed.reason, "health check failed");
    }
    HealthStatus {
        status: if failed_checks.is_empty() {
            "OK"
        } else {
            "Service Unavailable"
        },
        time: now(),
        failed_checks,
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_shape() {
        let ok = HealthStatus {
            status: "OK",
            time: now(),
            failed_checks: Vec::new(),
        };
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 2);
        let time = json["time"].as_str().unwrap();
        assert!(
            time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "{time}"
        );
        let failed = HealthStatus {
            status: "Service Unavailable",
            time: now(),
            failed_checks: vec![FailedCheck {
                component: "docker".into(),
                reason: "no daemon".into(),
            }],
        };
        let text = serde_json::to_string(&failed).unwrap();
        assert!(
            text.starts_with(r#"{"status":"Service Unavailable","time":""#),
            "{text}"
        );
        assert!(
            text.ends_with(r#","failed_checks":[{"component":"docker","reason":"no daemon"}]}"#),
            "{text}"
        );
    }
}
