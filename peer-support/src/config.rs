//! Configuration of the chaincode support, with Fabric's defaults.

use std::time::Duration;

use vm_api::Settings;

use crate::{Error, Result};

/// The container type of system chaincodes, which run inside the peer and are launched even
/// in dev mode.
pub const SYSTEM: &str = "SYSTEM";

/// Whether chaincodes the peer launches must use mutual TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChaincodeTls {
    /// On, except in dev mode (where users start chaincodes by hand).
    #[default]
    Auto,
    /// Always on.
    On,
    /// Always off.
    Off,
}

/// How the peer launches and talks to chaincodes. `Default` gives Fabric's `core.yaml`
/// defaults.
#[derive(Debug, Clone)]
pub struct SupportConfig {
    /// The peer's id (`peer.id`).
    pub peer_id: String,
    /// The network's id (`peer.networkId`).
    pub network_id: String,
    /// The address launched chaincodes dial (`host:port` of the chaincode listener).
    pub peer_address: String,
    /// How long a launched chaincode has to register (`chaincode.startuptimeout`, 300 s).
    pub startup_timeout: Duration,
    /// How long building a package may take (`chaincode.installTimeout`, 300 s): an image
    /// build, an external builder's `detect`, `build` and `release`.
    pub install_timeout: Duration,
    /// How long a transaction may run (`chaincode.executetimeout`, 30 s).
    pub execute_timeout: Duration,
    /// Interval of the peer's KEEPALIVE messages; zero for none (`chaincode.keepalive`).
    pub keepalive: Duration,
    /// Dev mode: chaincodes are started by the user and register themselves; the peer
    /// launches only system chaincodes (`chaincode.mode = dev`).
    pub dev_mode: bool,
    /// Mutual TLS between the peer and chaincodes (`peer.tls.enabled`; on by default, off in
    /// dev mode unless set).
    pub tls: ChaincodeTls,
    /// How long a stopped chaincode may take to end before it is killed.
    pub stop_timeout: Duration,
    /// `CORE_CHAINCODE_LOGGING_LEVEL` given to chaincodes (`chaincode.logging.level`).
    pub chaincode_log_level: String,
    /// `CORE_CHAINCODE_LOGGING_SHIM` (`chaincode.logging.shim`).
    pub shim_log_level: String,
    /// `CORE_CHAINCODE_LOGGING_FORMAT` (`chaincode.logging.format`).
    pub log_format: String,
    /// `CORE_PEER_LOCALMSPID` given to chaincodes, when set (`peer.localMspId`).
    pub local_msp_id: Option<String>,
    /// Results per QueryResponse batch (Fabric: 100).
    pub query_batch_size: usize,
    /// Most results of one unpaginated query (`ledger.state.totalQueryLimit`, 100000).
    pub total_query_limit: usize,
    /// Offer WRITE_BATCH_STATE with at most this many writes per batch (Fabric 3.1's
    /// `chaincode.runtimeParams.maxSizeWriteBatch`); `None` to not offer it.
    pub write_batch: Option<u32>,
    /// Offer GET_STATE_MULTIPLE with at most this many keys (`maxSizeGetMultipleKeys`).
    pub get_multiple: Option<u32>,
    /// Most chaincode-to-chaincode calls of one chaincode running at once; further messages
    /// wait in the stream. (State requests are served in order as they arrive.)
    pub max_concurrent_requests: usize,
    /// Everything else, for backends (`vm.*`, runtime images, …).
    pub settings: Settings,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            peer_id: String::new(),
            network_id: String::new(),
            peer_address: "127.0.0.1:7052".into(),
            startup_timeout: Duration::from_secs(300),
            install_timeout: Duration::from_secs(300),
            execute_timeout: Duration::from_secs(30),
            keepalive: Duration::ZERO,
            dev_mode: false,
            tls: ChaincodeTls::Auto,
            stop_timeout: Duration::from_secs(10),
            chaincode_log_level: "info".into(),
            shim_log_level: "warning".into(),
            log_format: "%{color}%{time:2006-01-02 15:04:05.000 MST} [%{module}] %{shortfunc} -> %{level:.4s} %{id:03x}%{color:reset} %{message}".into(),
            local_msp_id: None,
            query_batch_size: 100,
            total_query_limit: 100_000,
            write_batch: Some(1000),
            get_multiple: Some(1000),
            max_concurrent_requests: 64,
            settings: Settings::default(),
        }
    }
}

/// Fabric refuses startup timeouts below this.
pub const MIN_STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

impl SupportConfig {
    /// Whether launched chaincodes use mutual TLS.
    pub fn tls_enabled(&self) -> bool {
        match self.tls {
            ChaincodeTls::On => true,
            ChaincodeTls::Off => false,
            ChaincodeTls::Auto => !self.dev_mode,
        }
    }

    /// Reads the keys of `core.yaml` this crate uses from `settings` over the defaults, and
    /// keeps `settings` for the backends. Enforces Fabric's minimum startup timeout.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let mut c = Self::default();
        let set = |key: &str, into: &mut String| {
            if let Some(v) = settings.get(key) {
                *into = v.to_owned();
            }
        };
        set("peer.id", &mut c.peer_id);
        set("peer.networkId", &mut c.network_id);
        set("peer.chaincodeAddress", &mut c.peer_address);
        set("chaincode.logging.level", &mut c.chaincode_log_level);
        set("chaincode.logging.shim", &mut c.shim_log_level);
        set("chaincode.logging.format", &mut c.log_format);
        c.local_msp_id = settings.get("peer.localMspId").map(str::to_owned);
        if let Some(t) = settings.duration("chaincode.startuptimeout")? {
            if t < MIN_STARTUP_TIMEOUT {
                return Err(Error::Config {
                    key: "chaincode.startuptimeout".into(),
                    message: format!("{t:?} is below the minimum of {MIN_STARTUP_TIMEOUT:?}"),
                });
            }
            c.startup_timeout = t;
        }
        if let Some(t) = settings.duration("chaincode.installTimeout")? {
            c.install_timeout = t;
        }
        if let Some(t) = settings.duration("chaincode.executetimeout")? {
            c.execute_timeout = t;
        }
        if let Some(t) = settings.duration("chaincode.keepalive")? {
            c.keepalive = t;
        }
        if let Some(mode) = settings.get("chaincode.mode") {
            c.dev_mode = match mode.trim() {
                "dev" => true,
                "net" => false,
                other => {
                    return Err(Error::Config {
                        key: "chaincode.mode".into(),
                        message: format!("{other:?} is neither \"dev\" nor \"net\""),
                    });
                }
            };
        }
        c.tls = match settings.bool("peer.tls.enabled")? {
            Some(true) => ChaincodeTls::On,
            Some(false) => ChaincodeTls::Off,
            None => ChaincodeTls::Auto,
        };
        if let Some(n) = settings.parse::<usize>("ledger.state.totalQueryLimit")? {
            c.total_query_limit = n;
        }
        if settings.bool("chaincode.runtimeParams.useWriteBatch")? == Some(false) {
            c.write_batch = None;
        } else if let Some(n) = settings.parse("chaincode.runtimeParams.maxSizeWriteBatch")? {
            c.write_batch = Some(n);
        }
        if settings.bool("chaincode.runtimeParams.useGetMultipleKeys")? == Some(false) {
            c.get_multiple = None;
        } else if let Some(n) = settings.parse("chaincode.runtimeParams.maxSizeGetMultipleKeys")? {
            c.get_multiple = Some(n);
        }
        c.settings = settings.clone();
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_defaults() {
        let c = SupportConfig::default();
        assert_eq!(c.startup_timeout, Duration::from_secs(300));
        assert_eq!(c.execute_timeout, Duration::from_secs(30));
        assert_eq!(c.keepalive, Duration::ZERO);
        assert!(!c.dev_mode);
        assert_eq!(c.query_batch_size, 100);
    }

    #[test]
    fn settings_override_and_bad_values_name_their_key() {
        let s = Settings::new()
            .with("chaincode.mode", "dev")
            .with("chaincode.executetimeout", "2s")
            .with("peer.id", "peer0");
        let c = SupportConfig::from_settings(&s).unwrap();
        assert!(c.dev_mode);
        assert!(!c.tls_enabled(), "TLS is off in dev mode unless configured");
        assert_eq!(c.execute_timeout, Duration::from_secs(2));
        assert!(SupportConfig::default().tls_enabled(), "on by default");
        let forced =
            SupportConfig::from_settings(&s.clone().with("peer.tls.enabled", "true")).unwrap();
        assert!(forced.tls_enabled());
        assert_eq!(c.peer_id, "peer0");

        let e =
            SupportConfig::from_settings(&Settings::new().with("chaincode.startuptimeout", "1s"))
                .unwrap_err();
        assert!(e.to_string().contains("chaincode.startuptimeout"), "{e}");
        let e = SupportConfig::from_settings(&Settings::new().with("chaincode.mode", "prod"))
            .unwrap_err();
        assert!(e.to_string().contains("chaincode.mode"), "{e}");
    }
}
