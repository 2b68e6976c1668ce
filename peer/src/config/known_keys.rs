//! Which keys of a `core.yaml` mean something: to this peer, to Fabric 2.5, or to nobody.
//!
//! Inside the sections the peer reads (`peer`, `chaincode`, `vm`, `ledger`, `operations`,
//! `metrics`), a key that neither knows is most likely a typo (`executeTimout`): the peer warns
//! about it by name at start. Keys Fabric knows and the peer does not use (`peer.gossip.*`,
//! `peer.BCCSP.*`, …) are accepted quietly, so Fabric's own `core.yaml` starts the peer
//! without a wall of warnings. Keys match without regard to case, as everywhere in the file.

use serde_json::Value;

/// The top-level sections whose keys are checked.
pub const CHECKED_SECTIONS: &[&str] =
    &["peer", "chaincode", "vm", "ledger", "operations", "metrics"];

/// The keys of Fabric 2.5's `sampleconfig/core.yaml` in the checked sections (plus the few
/// Fabric reads that the sample leaves commented out, such as `peer.chaincodeListenAddress`),
/// as dotted names. Whole sections Fabric reads as a block are in [`FABRIC_SECTIONS`].
pub const FABRIC_KEYS: &[&str] = &[
    "peer.id",
    "peer.networkId",
    "peer.listenAddress",
    "peer.chaincodeListenAddress",
    "peer.chaincodeAddress",
    "peer.address",
    "peer.addressAutoDetect",
    "peer.connectiontimeout",
    "peer.gateway.enabled",
    "peer.gateway.endorsementTimeout",
    "peer.gateway.broadcastTimeout",
    "peer.gateway.dialTimeout",
    "peer.keepalive.interval",
    "peer.keepalive.timeout",
    "peer.keepalive.minInterval",
    "peer.keepalive.client.interval",
    "peer.keepalive.client.timeout",
    "peer.keepalive.deliveryClient.interval",
    "peer.keepalive.deliveryClient.timeout",
    "peer.tls.enabled",
    "peer.tls.clientAuthRequired",
    "peer.tls.cert.file",
    "peer.tls.key.file",
    "peer.tls.rootcert.file",
    "peer.tls.clientRootCAs.files",
    "peer.tls.clientKey.file",
    "peer.tls.clientCert.file",
    "peer.tls.serverhostoverride",
    "peer.authentication.timewindow",
    "peer.fileSystemPath",
    "peer.mspConfigPath",
    "peer.localMspId",
    "peer.localMspType",
    "peer.client.connTimeout",
    "peer.profile.enabled",
    "peer.profile.listenAddress",
    "peer.validatorPoolSize",
    "peer.discovery.enabled",
    "peer.discovery.authCacheEnabled",
    "peer.discovery.authCacheMaxSize",
    "peer.discovery.authCachePurgeRetentionRatio",
    "peer.discovery.orgMembersAllowedAccess",
    "peer.limits.concurrency.endorserService",
    "peer.limits.concurrency.deliverService",
    "peer.limits.concurrency.gatewayService",
    "peer.limits.concurrency.qscc",
    "peer.maxRecvMsgSize",
    "peer.maxSendMsgSize",
    "vm.endpoint",
    "vm.docker.tls.enabled",
    "vm.docker.tls.ca.file",
    "vm.docker.tls.cert.file",
    "vm.docker.tls.key.file",
    "vm.docker.attachStdout",
    "vm.docker.hostConfig.NetworkMode",
    "vm.docker.hostConfig.Dns",
    "vm.docker.hostConfig.LogConfig.Type",
    "vm.docker.hostConfig.Memory",
    "chaincode.id.path",
    "chaincode.id.name",
    "chaincode.builder",
    "chaincode.pull",
    "chaincode.golang.runtime",
    "chaincode.golang.dynamicLink",
    "chaincode.java.runtime",
    "chaincode.node.runtime",
    "chaincode.externalBuilders",
    "chaincode.installTimeout",
    "chaincode.startuptimeout",
    "chaincode.executetimeout",
    "chaincode.mode",
    "chaincode.keepalive",
    "chaincode.logging.level",
    "chaincode.logging.shim",
    "chaincode.logging.format",
    "ledger.state.stateDatabase",
    "ledger.state.totalQueryLimit",
    "ledger.history.enableHistoryDatabase",
    "ledger.snapshots.rootDir",
    "operations.listenAddress",
    "operations.tls.enabled",
    "operations.tls.cert.file",
    "operations.tls.key.file",
    "operations.tls.clientAuthRequired",
    "operations.tls.clientRootCAs.files",
    "metrics.provider",
    "metrics.statsd.network",
    "metrics.statsd.address",
    "metrics.statsd.writeInterval",
    "metrics.statsd.prefix",
];

/// Sections of Fabric 2.5's `core.yaml` accepted whole: whatever they hold is Fabric's
/// (gossip, the crypto provider, the delivery client, handler plugins, CouchDB, …).
pub const FABRIC_SECTIONS: &[&str] = &[
    "peer.gossip",
    "peer.BCCSP",
    "peer.deliveryclient",
    "peer.handlers",
    "vm.docker.hostConfig.LogConfig.Config",
    "chaincode.system",
    "ledger.blockchain",
    "ledger.state.couchDBConfig",
    "ledger.pvtdataStore",
];

/// Whom a key means something to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// The peer reads it (or everything under it).
    Peer,
    /// A map holding keys the peer reads.
    PeerAncestor,
    /// Fabric knows it; the peer does not read it.
    Fabric,
    /// A map holding only keys Fabric knows.
    FabricAncestor,
    /// Nobody.
    Unknown,
}

/// What the keys of a file mean, by dotted name as written in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Keys neither the peer nor Fabric knows (the topmost such key of a map).
    pub unknown: Vec<String>,
    /// Keys and sections Fabric knows and the peer does not use.
    pub fabric_only: Vec<String>,
}

/// Whether `name` is `section` or lies below it (both in lower case).
fn covers(section: &str, name: &str) -> bool {
    name == section
        || name
            .strip_prefix(section)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether `name` is a map above `key` (both in lower case).
fn above(name: &str, key: &str) -> bool {
    key.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// The peer's own keys and sections, in lower case.
pub struct PeerKeys {
    keys: Vec<String>,
    sections: Vec<String>,
}

impl PeerKeys {
    /// The peer's `keys` (each read as one value) and `sections` (everything under each is
    /// the peer's).
    pub fn new<'a>(
        keys: impl IntoIterator<Item = &'a str>,
        sections: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            keys: keys.into_iter().map(str::to_ascii_lowercase).collect(),
            sections: sections
                .into_iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
        }
    }

    fn classify(&self, path: &str) -> Known {
        let name = path.to_ascii_lowercase();
        let lower = |k: &&str| k.to_ascii_lowercase();
        if self.keys.contains(&name) || self.sections.iter().any(|s| covers(s, &name)) {
            Known::Peer
        } else if self
            .keys
            .iter()
            .chain(&self.sections)
            .any(|k| above(&name, k))
        {
            Known::PeerAncestor
        } else if FABRIC_KEYS.iter().map(lower).any(|k| k == name)
            || FABRIC_SECTIONS.iter().map(lower).any(|s| covers(&s, &name))
        {
            Known::Fabric
        } else if FABRIC_KEYS
            .iter()
            .chain(FABRIC_SECTIONS)
            .map(lower)
            .any(|k| above(&name, &k))
        {
            Known::FabricAncestor
        } else {
            Known::Unknown
        }
    }

    /// Checks a file's tree (its first level the sections) and adds what it finds to
    /// `report`. Sections other than [`CHECKED_SECTIONS`] are not looked at.
    pub fn check(&self, tree: &Value, report: &mut KeyReport) {
        let Value::Object(root) = tree else {
            return;
        };
        for (section, value) in root {
            if CHECKED_SECTIONS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(section))
            {
                self.walk(section, value, report);
            }
        }
    }

    fn walk(&self, path: &str, value: &Value, report: &mut KeyReport) {
        let kind = self.classify(path);
        match (kind, value) {
            (Known::Peer, _) => {}
            (Known::Fabric, _) => report.fabric_only.push(path.to_owned()),
            (Known::Unknown, _) => report.unknown.push(path.to_owned()),
            (Known::PeerAncestor | Known::FabricAncestor, Value::Object(map)) => {
                let mut inner = KeyReport::default();
                for (key, child) in map {
                    self.walk(&format!("{path}.{key}"), child, &mut inner);
                }
                // A section that holds only Fabric's keys is listed once, by its name.
                if kind == Known::FabricAncestor && inner.unknown.is_empty() {
                    report.fabric_only.push(path.to_owned());
                } else {
                    report.unknown.extend(inner.unknown);
                    report.fabric_only.extend(inner.fabric_only);
                }
            }
            // An empty section (`ledger.blockchain:`), or a value where a map was expected,
            // which the key's reader reports.
            (Known::PeerAncestor, _) => {}
            (Known::FabricAncestor, _) => report.fabric_only.push(path.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(yaml: serde_json::Value) -> KeyReport {
        let peer = PeerKeys::new(
            ["chaincode.executetimeout", "peer.keepalive.interval"],
            ["vm.docker.hostConfig".to_owned(), "vm.mine".to_owned()],
        );
        let mut r = KeyReport::default();
        peer.check(&yaml, &mut r);
        r
    }

    #[test]
    fn typos_are_unknown_and_fabric_keys_are_not() {
        let r = report(serde_json::json!({
            "chaincode": {"executeTimeout": "2s", "executeTimout": "2s", "pull": false},
            "peer": {
                "gossip": {"bootstrap": "127.0.0.1:7051", "anything": {"deep": 1}},
                "keepalive": {"interval": "1s", "client": {"interval": "60s", "timeout": "20s"}},
                "discovery": {"enabled": true, "authCacheEnabled": true},
                "tls": {"enabeld": true},
            },
            "vm": {"docker": {"hostConfig": {"Ulimits": []}}, "mine": {"slots": 3}},
            "logging": {"whatever": 1},
        }));
        assert_eq!(r.unknown, ["chaincode.executeTimout", "peer.tls.enabeld"]);
        let mut quiet = r.fabric_only.clone();
        quiet.sort();
        assert_eq!(
            quiet,
            [
                "chaincode.pull",
                "peer.discovery",
                "peer.gossip",
                "peer.keepalive.client"
            ]
        );
    }

    #[test]
    fn an_unknown_map_is_named_once_as_written() {
        let r = report(serde_json::json!({"Ledger": {"Stat": {"totalQueryLimit": 1}}}));
        assert_eq!(r.unknown, ["Ledger.Stat"]);
    }
}
