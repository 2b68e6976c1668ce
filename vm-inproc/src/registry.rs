//! The system chaincodes an in-process backend can run.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use shim::{Chaincode, SystemChaincode};
use vm_api::registry::{self, Registry};
use vm_api::{Ccid, Error, Result};

/// Makes a chaincode instance for each launch.
pub type ChaincodeFactory = Arc<dyn Fn() -> Arc<dyn Chaincode> + Send + Sync>;

/// Every system chaincode linked into the program (submitted with `inventory`).
pub fn linked() -> Result<&'static Registry<SystemChaincode>> {
    static REGISTRY: OnceLock<std::result::Result<Registry<SystemChaincode>, String>> =
        OnceLock::new();
    registry::collected(&REGISTRY, "system chaincode", |scc| scc.name)
}

/// The ids of the system chaincodes linked into the program, sorted by name.
pub fn system_chaincodes() -> Result<Vec<Ccid>> {
    Ok(linked()?
        .iter()
        .map(|(_, scc)| Ccid::new(scc.name, scc.version))
        .collect())
}

/// The chaincodes one backend runs: the linked ones plus any added by the embedding program.
#[derive(Clone, Default)]
pub struct SystemChaincodes {
    extra: BTreeMap<String, (String, ChaincodeFactory)>,
}

impl std::fmt::Debug for SystemChaincodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemChaincodes")
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SystemChaincodes {
    /// The linked chaincodes only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds chaincode `name` at `version`, made by `factory` for each launch. It shadows a
    /// linked chaincode of the same name.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        version: impl Into<String>,
        factory: impl Fn() -> Arc<dyn Chaincode> + Send + Sync + 'static,
    ) -> &mut Self {
        self.extra
            .insert(name.into(), (version.into(), Arc::new(factory)));
        self
    }

    /// An instance of chaincode `ccid`, if this backend knows it at that version.
    pub fn instantiate(&self, ccid: &Ccid) -> Result<Arc<dyn Chaincode>> {
        let unknown = || Error::UnknownChaincode { ccid: ccid.clone() };
        if let Some((version, factory)) = self.extra.get(ccid.name()) {
            return if version == ccid.version() {
                Ok(factory())
            } else {
                Err(unknown())
            };
        }
        match linked()?.get(ccid.name()) {
            Some(scc) if scc.version == ccid.version() => Ok((scc.create)()),
            _ => Err(unknown()),
        }
    }

    /// Every chaincode this backend can run, sorted by name.
    pub fn ids(&self) -> Result<Vec<Ccid>> {
        let mut ids: BTreeMap<String, Ccid> = linked()?
            .iter()
            .map(|(name, scc)| (name.to_owned(), Ccid::new(scc.name, scc.version)))
            .collect();
        for (name, (version, _)) in &self.extra {
            ids.insert(name.clone(), Ccid::new(name.clone(), version.clone()));
        }
        Ok(ids.into_values().collect())
    }
}
