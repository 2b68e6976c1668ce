//! Which chaincodes exist: their versions, where they run and where their code is
//! (the part of Fabric's lifecycle the chaincode support needs).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use vm_api::{Ccid, ChaincodePackage};

use crate::config::SYSTEM;
use crate::{Error, Result};

/// What the peer knows of one chaincode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeDefinition {
    /// The name callers use and the ledger namespace of its state.
    pub name: String,
    /// What runs: `name:version` (system chaincodes, Fabric 1.4 installs) or the package ID
    /// (Fabric 2.x). The chaincode registers with it.
    pub ccid: Ccid,
    /// The version a chaincode-to-chaincode call may name (`name:version`), for a Fabric 1.4
    /// chaincode; `None` for a Fabric 2.x one, whose calls name no version (Fabric ignores it).
    pub version: Option<String>,
    /// The backend that runs it (`SYSTEM`, `PROCESS`, `DOCKER`, …), or `None` to let the peer
    /// pick one: the first, by the backends' registered priority, whose builder takes the
    /// package (Fabric 2.x's routing: external builders, then the platform's own path).
    pub container_type: Option<String>,
    /// The installed package, for user chaincodes.
    pub package: Option<ChaincodePackage>,
    /// The private data collections the definition declares. `None`: the definition says
    /// nothing about collections (definitions made by an embedding program, Fabric 1.4
    /// installs), and private data requests are not checked. `Some(names)`: a Fabric 2.x
    /// definition; a private data request (get, put, delete, purge, range, rich query, hash,
    /// metadata, also in write batches and GET_STATE_MULTIPLE) naming a collection not among
    /// them fails with Fabric's error for an undefined collection. Implicit per-organisation
    /// collections (`_implicit_org_<MSPID>`), which every Fabric 2.x chaincode has, pass.
    pub collections: Option<Arc<[String]>>,
    /// `Some(version)` for a Fabric 2.x definition with `--init-required`: the first call of
    /// each version must be an `is_init` one, which runs Init and records the version in the
    /// chaincode's namespace (under [`crate::INITIALIZED_KEY`]); later `is_init` calls are
    /// refused, and so are `is_init` calls of a definition that requires no Init (`None`).
    pub init_required: Option<String>,
}

impl ChaincodeDefinition {
    /// A system chaincode, run in the peer.
    pub fn system(ccid: Ccid) -> Self {
        Self::builtin(ccid, SYSTEM)
    }

    /// A chaincode built into the backend `container_type` (no package).
    pub fn builtin(ccid: Ccid, container_type: impl Into<String>) -> Self {
        Self {
            name: ccid.name().to_owned(),
            version: Some(ccid.version().to_owned()),
            ccid,
            container_type: Some(container_type.into()),
            package: None,
            collections: None,
            init_required: None,
        }
    }

    /// A user chaincode installed the Fabric 1.4 way (`name:version`), run by
    /// `container_type` from `package`.
    pub fn user(ccid: Ccid, container_type: impl Into<String>, package: ChaincodePackage) -> Self {
        Self {
            name: ccid.name().to_owned(),
            version: Some(ccid.version().to_owned()),
            ccid,
            container_type: Some(container_type.into()),
            package: Some(package),
            collections: None,
            init_required: None,
        }
    }

    /// Chaincode `name` running a Fabric 2.x package (its ccid is the package ID), on the
    /// backend the peer picks for the package.
    pub fn packaged(name: impl Into<String>, package: ChaincodePackage) -> Self {
        Self {
            name: name.into(),
            version: None,
            ccid: Ccid::parse(&package.id),
            container_type: None,
            package: Some(package),
            collections: None,
            init_required: None,
        }
    }

    /// This definition, run by `container_type` instead of the one the peer would pick.
    pub fn on(mut self, container_type: impl Into<String>) -> Self {
        self.container_type = Some(container_type.into());
        self
    }

    /// This definition, declaring the private data collections `names` (a Fabric 2.x
    /// definition): requests naming other collections fail. See
    /// [`collections`](Self::collections).
    pub fn with_collections<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.collections = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// This definition, requiring Init first for `version` (Fabric 2.x `--init-required`).
    /// See [`init_required`](Self::init_required).
    pub fn with_init_required(mut self, version: impl Into<String>) -> Self {
        self.init_required = Some(version.into());
        self
    }

    /// Whether a private data request may name `collection`: always when the definition
    /// declares no collections (`None`); otherwise when it declares it, or it is an implicit
    /// per-organisation collection (`_implicit_org_<MSPID>`).
    pub fn allows_collection(&self, collection: &str) -> bool {
        collection_allowed(self.collections.as_deref(), collection)
    }

    /// Whether it runs inside the peer.
    pub fn is_system(&self) -> bool {
        self.container_type.as_deref() == Some(SYSTEM)
    }

    /// The ledger namespace of its state: its name.
    pub fn namespace(&self) -> &str {
        &self.name
    }
}

/// The prefix of Fabric's implicit per-organisation collections.
const IMPLICIT_COLLECTION_PREFIX: &str = "_implicit_org_";

/// See [`ChaincodeDefinition::allows_collection`].
pub(crate) fn collection_allowed(declared: Option<&[String]>, collection: &str) -> bool {
    match declared {
        None => true,
        Some(names) => {
            names.iter().any(|n| n == collection)
                || collection
                    .strip_prefix(IMPLICIT_COLLECTION_PREFIX)
                    .is_some_and(|msp| !msp.is_empty())
        }
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
            .insert(definition.name.clone(), definition);
    }

    /// Defines a chaincode on one channel.
    pub fn define_on(&self, channel: &str, definition: ChaincodeDefinition) {
        self.per_channel
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((channel.to_owned(), definition.name.clone()), definition);
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

/// The embedding program's definitions behind the chaincodes built into the linked backends
/// (system chaincodes): linking a system chaincode's crate is enough to define it on every
/// channel, and no other definition can take its name.
pub(crate) struct WithBuiltins {
    builtin: HashMap<String, ChaincodeDefinition>,
    user: std::sync::Arc<dyn ChaincodeDefinitions>,
}

impl WithBuiltins {
    pub(crate) fn new(user: std::sync::Arc<dyn ChaincodeDefinitions>) -> Result<Self> {
        let builtin = crate::vm_controller::builtin_chaincodes()?
            .into_iter()
            .map(|(container_type, ccid)| {
                let def = ChaincodeDefinition::builtin(ccid, container_type);
                (def.name.clone(), def)
            })
            .collect();
        Ok(Self { builtin, user })
    }

    pub(crate) fn user(&self) -> &std::sync::Arc<dyn ChaincodeDefinitions> {
        &self.user
    }

    /// The system chaincode that registers as `registered_name` (`kvscc:0.1.0`), if any: one
    /// built into a linked backend, or one the embedding program defined on every channel to
    /// run in the peer ([`SYSTEM`]). Only the peer may start a chaincode under such a name.
    pub(crate) fn system_chaincode(&self, registered_name: &str) -> Option<ChaincodeDefinition> {
        let name = Ccid::parse(registered_name).name().to_owned();
        let def = match self.builtin.get(&name) {
            Some(def) => def.clone(),
            None => self
                .user
                .definition("", &name)
                .ok()
                .filter(ChaincodeDefinition::is_system)?,
        };
        (def.ccid.registered_name() == registered_name).then_some(def)
    }

    /// The built-in chaincodes, sorted by name.
    pub(crate) fn builtins(&self) -> Vec<ChaincodeDefinition> {
        let mut all: Vec<ChaincodeDefinition> = self.builtin.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

impl ChaincodeDefinitions for WithBuiltins {
    fn definition(&self, channel: &str, name: &str) -> Result<ChaincodeDefinition> {
        match self.builtin.get(name) {
            Some(def) => Ok(def.clone()),
            None => self.user.definition(channel, name),
        }
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
