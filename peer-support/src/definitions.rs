//! Which chaincodes exist: their versions, where they run and where their code is
//! (the part of Fabric's lifecycle the chaincode support needs).

use std::collections::HashMap;
use std::sync::RwLock;

use vm_api::{Ccid, CodePackage};

use crate::config::SYSTEM;
use crate::{Error, Result};

/// What the peer knows of one chaincode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeDefinition {
    /// Name and version.
    pub ccid: Ccid,
    /// The backend that runs it (`SYSTEM`, `PROCESS`, `DOCKER`, …).
    pub container_type: String,
    /// The installed code, for user chaincodes.
    pub package: Option<CodePackage>,
}

impl ChaincodeDefinition {
    /// A system chaincode, run in the peer.
    pub fn system(ccid: Ccid) -> Self {
        Self {
            ccid,
            container_type: SYSTEM.to_owned(),
            package: None,
        }
    }

    /// A user chaincode run by `container_type` from `package`.
    pub fn user(ccid: Ccid, container_type: impl Into<String>, package: CodePackage) -> Self {
        Self {
            ccid,
            container_type: container_type.into(),
            package: Some(package),
        }
    }

    /// Whether it runs inside the peer.
    pub fn is_system(&self) -> bool {
        self.container_type == SYSTEM
    }

    /// The ledger namespace of its state: its name.
    pub fn namespace(&self) -> &str {
        self.ccid.name()
    }
}

/// Looks chaincodes up by channel and name.
pub trait ChaincodeDefinitions: Send + Sync {
    /// The definition of `name` on `channel`.
    fn definition(&self, channel: &str, name: &str) -> Result<ChaincodeDefinition>;
}

/// Definitions kept in memory: a set valid on every channel, plus per-channel ones.
#[derive(Debug, Default)]
pub struct DefinitionMap {
    everywhere: RwLock<HashMap<String, ChaincodeDefinition>>,
    per_channel: RwLock<HashMap<(String, String), ChaincodeDefinition>>,
}

impl DefinitionMap {
    /// No definitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines a chaincode on every channel (system chaincodes, typically), replacing an
    /// earlier definition of the same name.
    pub fn define(&self, definition: ChaincodeDefinition) {
        self.everywhere
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(definition.ccid.name().to_owned(), definition);
    }

    /// Defines a chaincode on one channel.
    pub fn define_on(&self, channel: &str, definition: ChaincodeDefinition) {
        self.per_channel
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (channel.to_owned(), definition.ccid.name().to_owned()),
                definition,
            );
    }

    /// Removes the definitions of `name` (everywhere and per channel).
    pub fn remove(&self, name: &str) {
        self.everywhere
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.per_channel
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, n), _| n != name);
    }
}

impl ChaincodeDefinitions for DefinitionMap {
    fn definition(&self, channel: &str, name: &str) -> Result<ChaincodeDefinition> {
        let per_channel = self.per_channel.read().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = per_channel.get(&(channel.to_owned(), name.to_owned())) {
            return Ok(d.clone());
        }
        drop(per_channel);
        self.everywhere
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownChaincode {
                name: name.to_owned(),
                channel: channel.to_owned(),
            })
    }
}

/// A chaincode named by a caller: `name`, `name:version` and/or `name/channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChaincodeRef<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub channel: Option<&'a str>,
}

impl<'a> ChaincodeRef<'a> {
    pub(crate) fn parse(text: &'a str) -> Self {
        let (rest, channel) = match text.split_once('/') {
            Some((rest, channel)) if !channel.is_empty() => (rest, Some(channel)),
            Some((rest, _)) => (rest, None),
            None => (text, None),
        };
        let (name, version) = match rest.split_once(':') {
            Some((name, version)) if !version.is_empty() => (name, Some(version)),
            Some((name, _)) => (name, None),
            None => (rest, None),
        };
        Self {
            name,
            version,
            channel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_in_every_form() {
        let r = ChaincodeRef::parse("kv");
        assert_eq!((r.name, r.version, r.channel), ("kv", None, None));
        let r = ChaincodeRef::parse("kv:1.0");
        assert_eq!((r.name, r.version, r.channel), ("kv", Some("1.0"), None));
        let r = ChaincodeRef::parse("kv/other");
        assert_eq!((r.name, r.version, r.channel), ("kv", None, Some("other")));
        let r = ChaincodeRef::parse("kv:2/ch");
        assert_eq!(
            (r.name, r.version, r.channel),
            ("kv", Some("2"), Some("ch"))
        );
    }

    #[test]
    fn channel_definitions_shadow_global_ones() {
        let defs = DefinitionMap::new();
        defs.define(ChaincodeDefinition::system(Ccid::new("kv", "1")));
        defs.define_on("ch2", ChaincodeDefinition::system(Ccid::new("kv", "2")));
        assert_eq!(defs.definition("ch1", "kv").unwrap().ccid.version(), "1");
        assert_eq!(defs.definition("ch2", "kv").unwrap().ccid.version(), "2");
        let e = defs.definition("ch1", "nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "chaincode nope is not defined on channel \"ch1\""
        );
    }
}
