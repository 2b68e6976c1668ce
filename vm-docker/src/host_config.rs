//! The host configuration of chaincode containers, from the peer's settings
//! (`vm.docker.hostConfig.*`, Fabric's `core.yaml` names).
//!
//! | key | meaning |
//! |---|---|
//! | `NetworkMode` | default `host`, so chaincodes reach the peer on 127.0.0.1 |
//! | `Memory` | bytes, or with a `k`/`m`/`g` suffix |
//! | `CpuShares`, `CpuQuota`, `CpuPeriod` | integers |
//! | `LogConfig.Type`, `LogConfig.Config.<option>` | the log driver and its options |
//! | `Dns`, `ExtraHosts`, `CapAdd`, `CapDrop` | comma-separated lists |
//! | `ReadonlyRootfs`, `Privileged` | `true`/`false` |

use std::collections::HashMap;

use bollard::models::{HostConfig, HostConfigLogConfig};
use vm_api::{Error, Result, Settings};

const PREFIX: &str = "vm.docker.hostConfig.";

fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// A byte size (`2147483648`, `2g`) as Docker takes it.
fn byte_size(settings: &Settings, name: &str) -> Result<Option<i64>> {
    let k = key(name);
    settings
        .byte_size(&k)?
        .map(|n| {
            i64::try_from(n).map_err(|_| Error::Config {
                key: k.clone(),
                message: format!("{n} is too large"),
            })
        })
        .transpose()
}

fn list(settings: &Settings, name: &str) -> Option<Vec<String>> {
    let items = settings.list(&key(name));
    (!items.is_empty()).then_some(items)
}

/// The host configuration for chaincode containers.
pub fn host_config(settings: &Settings) -> Result<HostConfig> {
    let log_options: HashMap<String, String> = settings
        .with_prefix(&key("LogConfig.Config"))
        .into_iter()
        .map(|(k, v)| (k[key("LogConfig.Config.").len()..].to_owned(), v.to_owned()))
        .collect();
    let log_type = settings.get(&key("LogConfig.Type")).map(str::to_owned);
    let log_config = (log_type.is_some() || !log_options.is_empty()).then(|| HostConfigLogConfig {
        typ: log_type,
        config: (!log_options.is_empty()).then_some(log_options),
    });
    Ok(HostConfig {
        network_mode: Some(
            settings
                .get(&key("NetworkMode"))
                .unwrap_or("host")
                .to_owned(),
        ),
        memory: byte_size(settings, "Memory")?,
        cpu_shares: settings.parse(&key("CpuShares"))?,
        cpu_quota: settings.parse(&key("CpuQuota"))?,
        cpu_period: settings.parse(&key("CpuPeriod"))?,
        log_config,
        dns: list(settings, "Dns"),
        extra_hosts: list(settings, "ExtraHosts"),
        cap_add: list(settings, "CapAdd"),
        cap_drop: list(settings, "CapDrop"),
        readonly_rootfs: settings.bool(&key("ReadonlyRootfs"))?,
        privileged: settings.bool(&key("Privileged"))?,
        ..HostConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_host_networking_and_nothing_else() {
        let hc = host_config(&Settings::new()).unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("host"));
        assert_eq!(hc.memory, None);
        assert!(hc.log_config.is_none());
        assert!(hc.dns.is_none());
    }

    #[test]
    fn every_key_maps() {
        let s = Settings::new()
            .with("vm.docker.hostConfig.NetworkMode", "bridge")
            .with("vm.docker.hostConfig.Memory", "2g")
            .with("vm.docker.hostConfig.CpuShares", "512")
            .with("vm.docker.hostConfig.CpuQuota", "50000")
            .with("vm.docker.hostConfig.CpuPeriod", "100000")
            .with("vm.docker.hostConfig.LogConfig.Type", "json-file")
            .with("vm.docker.hostConfig.LogConfig.Config.max-size", "50m")
            .with("vm.docker.hostConfig.LogConfig.Config.max-file", "5")
            .with("vm.docker.hostConfig.Dns", "1.1.1.1, 8.8.8.8")
            .with("vm.docker.hostConfig.ExtraHosts", "peer0:10.0.0.2")
            .with("vm.docker.hostConfig.ReadonlyRootfs", "true")
            .with("vm.docker.hostConfig.CapDrop", "ALL")
            .with("vm.docker.hostConfig.CapAdd", "NET_BIND_SERVICE");
        let hc = host_config(&s).unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
        assert_eq!(hc.memory, Some(2 << 30));
        assert_eq!(hc.cpu_shares, Some(512));
        assert_eq!(hc.cpu_quota, Some(50000));
        assert_eq!(hc.cpu_period, Some(100000));
        let log = hc.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let opts = log.config.unwrap();
        assert_eq!(
            (opts["max-size"].as_str(), opts["max-file"].as_str()),
            ("50m", "5")
        );
        assert_eq!(hc.dns.unwrap(), ["1.1.1.1", "8.8.8.8"]);
        assert_eq!(hc.extra_hosts.unwrap(), ["peer0:10.0.0.2"]);
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.cap_drop.unwrap(), ["ALL"]);
        assert_eq!(hc.cap_add.unwrap(), ["NET_BIND_SERVICE"]);
    }

    #[test]
    fn sizes_and_bad_values() {
        let size = |v: &str| {
            byte_size(
                &Settings::new().with("vm.docker.hostConfig.Memory", v),
                "Memory",
            )
        };
        assert_eq!(size("2147483648").unwrap(), Some(2147483648));
        assert_eq!(size("512m").unwrap(), Some(512 << 20));
        assert_eq!(size("64K").unwrap(), Some(64 << 10));
        let e = size("lots").unwrap_err();
        assert!(e.to_string().contains("vm.docker.hostConfig.Memory"), "{e}");
        let e = host_config(&Settings::new().with("vm.docker.hostConfig.CpuShares", "half"))
            .unwrap_err();
        assert!(
            e.to_string().contains("vm.docker.hostConfig.CpuShares"),
            "{e}"
        );
        let e = host_config(&Settings::new().with("vm.docker.hostConfig.ReadonlyRootfs", "maybe"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("vm.docker.hostConfig.ReadonlyRootfs"),
            "{e}"
        );
    }
}
