//! Prometheus metrics of the chaincode support, with Fabric's names and labels, so that
//! Fabric's dashboards and alerts work unchanged.
//!
//! The embedding program owns the [`prometheus::Registry`] and serves it (the peer at
//! `/metrics`); it hands it to [`ChaincodeSupportBuilder::metrics`](crate::ChaincodeSupportBuilder::metrics).
//! Without one, nothing is measured: every hook is behind an `Option`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `chaincode_launch_duration` (histogram) | `chaincode`, `success` | a launch, from its start to the registration or the failure |
//! | `chaincode_launch_failures` | `chaincode` | launches that failed (a timeout counts only below) |
//! | `chaincode_launch_timeouts` | `chaincode` | launches that passed `chaincode.startuptimeout` |
//! | `chaincode_shim_requests_received` | `type`, `channel`, `chaincode` | requests from chaincodes (`GET_STATE`, `PUT_STATE`, …) |
//! | `chaincode_shim_requests_completed` | `type`, `channel`, `chaincode`, `success` | requests answered (`success`: a RESPONSE, not an ERROR) |
//! | `chaincode_shim_request_duration` (histogram) | `type`, `channel`, `chaincode`, `success` | the time to answer one |
//! | `chaincode_execute_timeouts` | `chaincode` | Init or Invoke calls that passed `chaincode.executetimeout` |
//! | `dockercontroller_chaincode_container_build_duration` (histogram) | `chaincode`, `success` | builds on the `DOCKER` backend |
//! | `chaincode_build_duration` (histogram, ours) | `chaincode`, `backend`, `success` | builds on any backend (external builders included); declined packages are not counted |
//! | `chaincode_running` (gauge, ours) | `backend` | chaincodes this peer launched that are running |
//!
//! `chaincode` is the chaincode's id as it registers: `name:version`, or the package ID of a
//! Fabric 2.x package. Durations are in seconds.
//!
//! ```
//! let registry = prometheus::Registry::new();
//! let metrics = peer_support::Metrics::register(&registry).unwrap();
//! # drop(metrics);
//! let names: Vec<String> = registry.gather().iter().map(|f| f.name().to_owned()).collect();
//! // Families without samples are not gathered yet.
//! assert!(names.is_empty());
//! ```

use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use proto::MessageType;

use crate::{Error, Result};

/// The chaincode support's collectors, registered in the embedding program's registry.
#[derive(Clone)]
pub struct Metrics {
    launch_duration: HistogramVec,
    launch_failures: IntCounterVec,
    launch_timeouts: IntCounterVec,
    shim_requests_received: IntCounterVec,
    shim_requests_completed: IntCounterVec,
    shim_request_duration: HistogramVec,
    execute_timeouts: IntCounterVec,
    container_build_duration: HistogramVec,
    build_duration: HistogramVec,
    running: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter(
    registry: &Registry,
    ns: &str,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help).namespace(ns), labels).map_err(config)?;
    registry.register(Box::new(c.clone())).map_err(config)?;
    Ok(c)
}

fn histogram(
    registry: &Registry,
    ns: &str,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<HistogramVec> {
    let h =
        HistogramVec::new(HistogramOpts::new(name, help).namespace(ns), labels).map_err(config)?;
    registry.register(Box::new(h.clone())).map_err(config)?;
    Ok(h)
}

fn config(e: prometheus::Error) -> Error {
    Error::Config {
        key: "metrics".into(),
        message: format!("cannot register the chaincode metrics: {e}"),
    }
}

fn success(ok: bool) -> &'static str {
    if ok { "true" } else { "false" }
}

impl Metrics {
    /// Creates the collectors and registers them in `registry`; fails if the registry holds
    /// collectors of the same names already.
    pub fn register(registry: &Registry) -> Result<Self> {
        let r = registry;
        let shim = ["type", "channel", "chaincode"];
        let shim_done = ["type", "channel", "chaincode", "success"];
        let running = IntGaugeVec::new(
            Opts::new(
                "running",
                "The number of chaincodes this peer launched that are running.",
            )
            .namespace("chaincode"),
            &["backend"],
        )
        .map_err(config)?;
        r.register(Box::new(running.clone())).map_err(config)?;
        Ok(Self {
            launch_duration: histogram(
                r,
                "chaincode",
                "launch_duration",
                "The time to launch a chaincode.",
                &["chaincode", "success"],
            )?,
            launch_failures: counter(
                r,
                "chaincode",
                "launch_failures",
                "The number of chaincode launches that have failed.",
                &["chaincode"],
            )?,
            launch_timeouts: counter(
                r,
                "chaincode",
                "launch_timeouts",
                "The number of chaincode launches that have timed out.",
                &["chaincode"],
            )?,
            shim_requests_received: counter(
                r,
                "chaincode",
                "shim_requests_received",
                "The number of chaincode shim requests received.",
                &shim,
            )?,
            shim_requests_completed: counter(
                r,
                "chaincode",
                "shim_requests_completed",
                "The number of chaincode shim requests completed.",
                &shim_done,
            )?,
            shim_request_duration: histogram(
                r,
                "chaincode",
                "shim_request_duration",
                "The time to complete chaincode shim requests.",
                &shim_done,
            )?,
            execute_timeouts: counter(
                r,
                "chaincode",
                "execute_timeouts",
                "The number of chaincode executions (Init or Invoke) that have timed out.",
                &["chaincode"],
            )?,
            container_build_duration: histogram(
                r,
                "dockercontroller",
                "chaincode_container_build_duration",
                "The time to build a chaincode image in seconds.",
                &["chaincode", "success"],
            )?,
            build_duration: histogram(
                r,
                "chaincode",
                "build_duration",
                "The time to build a chaincode package on a backend, in seconds.",
                &["chaincode", "backend", "success"],
            )?,
            running,
        })
    }

    /// A launch of `chaincode` ended after `elapsed`, with `error` if it failed.
    pub(crate) fn launch_finished(
        &self,
        chaincode: &str,
        elapsed: Duration,
        error: Option<&Error>,
    ) {
        self.launch_duration
            .with_label_values(&[chaincode, success(error.is_none())])
            .observe(elapsed.as_secs_f64());
        match error {
            None => {}
            Some(Error::StartupTimeout { .. }) => {
                self.launch_timeouts.with_label_values(&[chaincode]).inc();
            }
            Some(_) => self.launch_failures.with_label_values(&[chaincode]).inc(),
        }
    }

    /// An Init or Invoke of `chaincode` passed the execute timeout.
    pub(crate) fn execute_timeout(&self, chaincode: &str) {
        self.execute_timeouts.with_label_values(&[chaincode]).inc();
    }

    /// A request of type `kind` arrived from `chaincode`; the meter records its completion.
    pub(crate) fn shim_request(
        &self,
        kind: MessageType,
        channel: &str,
        chaincode: &str,
    ) -> ShimRequest {
        let labels = [
            kind.as_str_name().to_owned(),
            channel.to_owned(),
            chaincode.to_owned(),
        ];
        self.shim_requests_received
            .with_label_values(&[&labels[0], &labels[1], &labels[2]])
            .inc();
        ShimRequest {
            metrics: self.clone(),
            labels,
            started: Instant::now(),
        }
    }

    /// A build of `chaincode` on `backend` ended after `elapsed`.
    pub(crate) fn build_finished(
        &self,
        chaincode: &str,
        backend: &str,
        elapsed: Duration,
        ok: bool,
    ) {
        let seconds = elapsed.as_secs_f64();
        self.build_duration
            .with_label_values(&[chaincode, backend, success(ok)])
            .observe(seconds);
        if backend == "DOCKER" {
            self.container_build_duration
                .with_label_values(&[chaincode, success(ok)])
                .observe(seconds);
        }
    }

    /// A chaincode launched on `backend` registered.
    pub(crate) fn chaincode_started(&self, backend: &str) {
        self.running.with_label_values(&[backend]).inc();
    }

    /// A chaincode launched on `backend` that had registered ended.
    pub(crate) fn chaincode_ended(&self, backend: &str) {
        self.running.with_label_values(&[backend]).dec();
    }
}

/// One shim request being served; [`done`](Self::done) records its outcome and duration.
pub(crate) struct ShimRequest {
    metrics: Metrics,
    labels: [String; 3],
    started: Instant,
}

impl ShimRequest {
    /// The request was answered: `ok` for a RESPONSE, not for an ERROR.
    pub(crate) fn done(self, ok: bool) {
        let [kind, channel, chaincode] = &self.labels;
        let labels = [kind.as_str(), channel, chaincode, success(ok)];
        self.metrics
            .shim_requests_completed
            .with_label_values(&labels)
            .inc();
        self.metrics
            .shim_request_duration
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn text(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fabric_names_and_labels_without_a_total_suffix() {
        let registry = Registry::new();
        let m = Metrics::register(&registry).unwrap();
        m.shim_request(MessageType::PutState, "mychannel", "kv:1")
            .done(true);
        m.shim_request(MessageType::GetState, "mychannel", "kv:1")
            .done(false);
        m.launch_finished("kv:1", Duration::from_millis(5), None);
        m.launch_finished(
            "bad:1",
            Duration::from_millis(5),
            Some(&Error::Protocol("exited".into())),
        );
        m.execute_timeout("kv:1");
        m.build_finished("kv:1", "DOCKER", Duration::from_secs(1), true);
        m.chaincode_started("PROCESS");
        let text = text(&registry);
        for line in [
            r#"chaincode_shim_requests_received{chaincode="kv:1",channel="mychannel",type="PUT_STATE"} 1"#,
            r#"chaincode_shim_requests_completed{chaincode="kv:1",channel="mychannel",success="true",type="PUT_STATE"} 1"#,
            r#"chaincode_shim_requests_completed{chaincode="kv:1",channel="mychannel",success="false",type="GET_STATE"} 1"#,
            r#"chaincode_shim_request_duration_count{chaincode="kv:1",channel="mychannel",success="true",type="PUT_STATE"} 1"#,
            r#"chaincode_launch_duration_count{chaincode="kv:1",success="true"} 1"#,
            r#"chaincode_launch_duration_count{chaincode="bad:1",success="false"} 1"#,
            r#"chaincode_launch_failures{chaincode="bad:1"} 1"#,
            r#"chaincode_execute_timeouts{chaincode="kv:1"} 1"#,
            r#"dockercontroller_chaincode_container_build_duration_count{chaincode="kv:1",success="true"} 1"#,
            r#"chaincode_build_duration_count{backend="DOCKER",chaincode="kv:1",success="true"} 1"#,
            r#"chaincode_running{backend="PROCESS"} 1"#,
            "# TYPE chaincode_launch_failures counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(!text.contains("_total"), "{text}");
    }

    #[test]
    fn a_timeout_is_not_a_failure() {
        let registry = Registry::new();
        let m = Metrics::register(&registry).unwrap();
        let timeout = Error::StartupTimeout {
            ccid: vm_api::Ccid::new("kv", "1"),
            timeout: Duration::from_secs(1),
            output: Vec::new(),
        };
        m.launch_finished("kv:1", Duration::from_secs(1), Some(&timeout));
        let text = text(&registry);
        assert!(
            text.contains(r#"chaincode_launch_timeouts{chaincode="kv:1"} 1"#),
            "{text}"
        );
        assert!(!text.contains("chaincode_launch_failures{"), "{text}");
    }

    #[test]
    fn registering_twice_is_an_error() {
        let registry = Registry::new();
        Metrics::register(&registry).unwrap();
        let e = Metrics::register(&registry).unwrap_err();
        assert!(e.to_string().contains("metrics"), "{e}");
    }
}
