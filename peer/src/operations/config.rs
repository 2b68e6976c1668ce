//! The operations service's settings: `operations.*` and `metrics.provider`, read from the
//! configuration tree with Fabric's defaults (except `metrics.provider`: `prometheus` here).

use std::path::PathBuf;

use anyhow::Result;
use vm_api::Settings;

/// Where metrics go (`metrics.provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsProvider {
    /// Served at `/metrics` in Prometheus text format.
    Prometheus,
    /// Not collected.
    Disabled,
}

/// The operations service's TLS (`operations.tls.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsTls {
    /// The server certificate (`operations.tls.cert.file`).
    pub cert: PathBuf,
    /// Its key (`operations.tls.key.file`).
    pub key: PathBuf,
    /// Whether `/metrics` and `/logspec` need a client certificate
    /// (`operations.tls.clientAuthRequired`).
    pub client_auth_required: bool,
    /// The CAs client certificates must chain to (`operations.tls.clientRootCAs.files`).
    pub client_root_cas: Vec<PathBuf>,
}

/// The operations service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsConfig {
    /// Where it listens (`operations.listenAddress`; a host name is resolved).
    pub listen_address: String,
    /// HTTPS, when `operations.tls.enabled`.
    pub tls: Option<OperationsTls>,
    /// `metrics.provider`.
    pub metrics: MetricsProvider,
}

/// The keys read here, with their defaults (empty: none).
pub const KEYS: &[(&str, &str)] = &[
    ("operations.listenAddress", "127.0.0.1:9443"),
    ("operations.tls.enabled", "false"),
    ("operations.tls.cert.file", ""),
    ("operations.tls.key.file", ""),
    ("operations.tls.clientAuthRequired", "false"),
    ("operations.tls.clientRootCAs.files", ""),
    ("metrics.provider", "prometheus"),
];

impl OperationsConfig {
    /// Reads [`KEYS`] from `settings`; a key the settings lack is read from its `CORE_…`
    /// variable through `env` (the settings hold the environment's values only for keys the
    /// configuration reader knows or the file names), else its default.
    pub fn from_settings(
        settings: &Settings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let text = |key: &str| -> String {
            settings
                .get(key)
                .map(str::to_owned)
                .or_else(|| env(&crate::config::env_name(key)))
                .or_else(|| {
                    KEYS.iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, d)| (*d).to_owned())
                })
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let flag = |key: &str| -> Result<bool> {
            let value = text(key);
            match value.to_ascii_lowercase().as_str() {
                "" | "false" | "0" => Ok(false),
                "true" | "1" => Ok(true),
                _ => anyhow::bail!(
                    "invalid configuration {key}: {value:?} is neither true nor false"
                ),
            }
        };
        let list = |key: &str| -> Vec<PathBuf> {
            let items = if settings.value(key).is_some() {
                settings.list(key)
            } else {
                let value = text(key);
                serde_json::from_str::<Vec<String>>(&value)
                    .unwrap_or_else(|_| value.split(',').map(|s| s.trim().to_owned()).collect())
            };
            items
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        };
        let metrics = match text("metrics.provider").to_ascii_lowercase().as_str() {
            "prometheus" => MetricsProvider::Prometheus,
            "disabled" | "" => MetricsProvider::Disabled,
            "statsd" => anyhow::bail!(
                "invalid configuration metrics.provider: statsd is not supported by this peer; use prometheus (scraped at /metrics on operations.listenAddress) or disabled"
            ),
            other => anyhow::bail!(
                "invalid configuration metrics.provider: {other:?} is not one of prometheus, disabled"
            ),
        };
        let tls = if flag("operations.tls.enabled")? {
            let path = |key: &str| {
                let p = text(key);
                (!p.is_empty()).then(|| PathBuf::from(p))
            };
            let (Some(cert), Some(key)) = (
                path("operations.tls.cert.file"),
                path("operations.tls.key.file"),
            ) else {
                anyhow::bail!(
                    "invalid configuration operations.tls.enabled: it needs operations.tls.cert.file and operations.tls.key.file"
                );
            };
            let tls = OperationsTls {
                cert,
                key,
                client_auth_required: flag("operations.tls.clientAuthRequired")?,
                client_root_cas: list("operations.tls.clientRootCAs.files"),
            };
            if tls.client_auth_required && tls.client_root_cas.is_empty() {
                anyhow::bail!(
                    "invalid configuration operations.tls.clientAuthRequired: client certificates need a CA in operations.tls.clientRootCAs.files"
                );
            }
            Some(tls)
        } else {
            None
        };
        let listen_address = text("operations.listenAddress");
        if listen_address
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            anyhow::bail!(
                "invalid configuration operations.listenAddress: {listen_address:?} is not an address like 127.0.0.1:9443"
            );
        }
        Ok(Self {
            listen_address,
            tls,
            metrics,
        })
    }

    /// A registry for the metrics, when they are on: give it to the chaincode support and
    /// to [`start`](super::start).
    pub fn registry(&self) -> Option<prometheus::Registry> {
        (self.metrics == MetricsProvider::Prometheus).then(prometheus::Registry::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)], env: &[(&str, &str)]) -> Result<OperationsConfig> {
        let mut settings = Settings::new();
        for (k, v) in pairs {
            settings.set(*k, *v);
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OperationsConfig::from_settings(&settings, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_fabrics_with_prometheus_on() {
        let c = config(&[], &[]).unwrap();
        assert_eq!(c.listen_address, "127.0.0.1:9443");
        assert_eq!(c.metrics, MetricsProvider::Prometheus);
        assert!(c.tls.is_none());
        assert!(c.registry().is_some());
    }

    #[test]
    fn settings_win_over_the_environment_the_reader_did_not_know() {
        let c = config(&[], &[("CORE_OPERATIONS_LISTENADDRESS", "localhost:9555")]).unwrap();
        assert_eq!(c.listen_address, "localhost:9555");
        let c = config(
            &[("operations.listenAddress", "127.0.0.1:1")],
            &[("CORE_OPERATIONS_LISTENADDRESS", "127.0.0.1:2")],
        )
        .unwrap();
        assert_eq!(c.listen_address, "127.0.0.1:1");
    }

    #[test]
    fn providers() {
        let c = config(&[("metrics.provider", "disabled")], &[]).unwrap();
        assert_eq!(c.metrics, MetricsProvider::Disabled);
        assert!(c.registry().is_none());
        let e = config(&[("metrics.provider", "statsd")], &[]).unwrap_err();
        assert!(e.to_string().contains("statsd is not supported"), "{e}");
        assert!(config(&[("metrics.provider", "graphite")], &[]).is_err());
    }

    #[test]
    fn tls_needs_its_files() {
        let e = config(&[("operations.tls.enabled", "true")], &[]).unwrap_err();
        assert!(e.to_string().contains("operations.tls.cert.file"), "{e}");
        let e = config(
            &[
                ("operations.tls.enabled", "true"),
                ("operations.tls.cert.file", "/c"),
                ("operations.tls.key.file", "/k"),
                ("operations.tls.clientAuthRequired", "true"),
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("clientRootCAs"), "{e}");
        let c = config(
            &[
                ("operations.tls.enabled", "true"),
                ("operations.tls.cert.file", "/c"),
                ("operations.tls.key.file", "/k"),
            ],
            &[
                ("CORE_OPERATIONS_TLS_CLIENTAUTHREQUIRED", "true"),
                ("CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES", r#"["/a","/b"]"#),
            ],
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert!(tls.client_auth_required);
        assert_eq!(
            tls.client_root_cas,
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }

    #[test]
    fn a_bad_address_names_its_key() {
        let e = config(&[("operations.listenAddress", "nowhere")], &[]).unwrap_err();
        assert!(e.to_string().contains("operations.listenAddress"), "{e}");
    }
}
