//! The peer's chaincodes: Fabric 2.x definitions (approved for the peer's organisation,
//! committed per channel, each with a sequence), Fabric 1.4 installs and instantiations, and
//! the system chaincodes, defined on every channel.
//!
//! Packages of both kinds are kept by package ID in one [`PackageStore`]
//! (`<peer.fileSystemPath>/lifecycle/chaincodes/<label>.<hash>.tar.gz`), so no two chaincodes
//! can ever share a folder. Records live in the state database; every method that writes
//! one blocks (call it from a blocking thread), lookups read memory only.
//!
//! Which definition a channel runs for a name: a system chaincode, else a committed 2.x
//! definition (which takes over from a 1.4 instantiation of the same name, Fabric's
//! migration rule), else the 1.4 instantiation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
use base64::Engine;
use bytes::Bytes;
use chaincode_package::{PackageId, PackageStore};
use peer_support::{ChaincodeDefinition, ChaincodeDefinitions};
use serde::{Deserialize, Serialize};
use vm_api::{Ccid, ChaincodePackage};

use crate::store::Store;

/// The parameters of a Fabric 2.x chaincode definition that organisations agree on (all but
/// the package, which each organisation picks for itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// The chaincode's name.
    pub name: String,
    /// Its version (a label for people; the sequence orders definitions).
    pub version: String,
    /// 1 for the first definition, one more for each upgrade.
    pub sequence: i64,
    /// Whether the first transaction must be an `--isInit` one.
    pub init_required: bool,
    /// The endorsement plugin (`escc`).
    pub endorsement_plugin: String,
    /// The validation plugin (`vscc`).
    pub validation_plugin: String,
    /// The encoded `protos.ApplicationPolicy` (the endorsement policy).
    #[serde(with = "b64")]
    pub validation_parameter: Bytes,
    /// The encoded `protos.CollectionConfigPackage`.
    #[serde(with = "b64")]
    pub collections: Bytes,
    /// The collections' names, for the checks on private data calls.
    pub collection_names: Vec<String>,
}

mod b64 {
    use base64::Engine;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

/// The peer's organisation's approval of a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// What was approved.
    pub params: Params,
    /// The package this peer runs for it (`None`: approved without one, as an organisation
    /// that endorses nothing does).
    pub package_id: Option<PackageId>,
}

/// A definition committed on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The definition.
    pub params: Params,
    /// The organisations' approvals when it was committed.
    pub approvals: BTreeMap<String, bool>,
}

/// A chaincode installed the Fabric 1.4 way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Name and version.
    pub ccid: Ccid,
    /// Platform (`binary`, `node`, …).
    pub platform: String,
    /// Backend (container type) that built it.
    pub vm: String,
    /// Where its code is: the package it was uploaded as, or (records of earlier releases)
    /// a folder the peer copied it to.
    pub code: LegacyCode,
}

/// Where a Fabric 1.4 install's code is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyCode {
    /// An uploaded package, by ID.
    Package(PackageId),
    /// A folder or executable the peer copied (records written before packages).
    Path(PathBuf),
}

#[derive(Serialize, Deserialize)]
struct LegacyRecord {
    name: String,
    version: String,
    platform: String,
    vm: String,
    #[serde(default)]
    package_id: Option<PackageId>,
    #[serde(default)]
    path: Option<PathBuf>,
}

/// A committed definition that runs a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The channel.
    pub channel: String,
    /// The chaincode's name there.
    pub name: String,
    /// The definition's version.
    pub version: String,
}

/// The launch package of an installed 2.x package.
pub fn launch_package(installed: &chaincode_package::Installed) -> ChaincodePackage {
    ChaincodePackage {
        id: installed.id.to_string(),
        kind: installed.metadata.kind.clone(),
        code: installed.code_dir.clone(),
        metadata_json: installed.metadata_json.clone(),
    }
}

#[derive(Default)]
struct State {
    legacy: BTreeMap<(String, String), Installed>,
    instantiated: BTreeMap<(String, String), String>,
    approved: BTreeMap<(String, String, i64), Approval>,
    committed: BTreeMap<(String, String), Committed>,
    /// Installed 2.x packages, as backends see them.
    packages: BTreeMap<PackageId, ChaincodePackage>,
    /// Where the code of every stored package is (1.4 uploads included).
    code: BTreeMap<PackageId, PathBuf>,
}

/// The peer's chaincodes.
pub struct Lifecycle {
    store: Store,
    packages: Arc<PackageStore>,
    system: BTreeMap<String, ChaincodeDefinition>,
    state: RwLock<State>,
    /// Serialises the writes of 1.4 install records (check, write, insert).
    legacy_writes: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("system", &self.system.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// How `passed` differs from `expected`, in Fabric's words; `None` when it does not.
fn differences(expected: &Params, passed: &Params) -> Option<String> {
    if expected.version != passed.version {
        return Some(format!(
            "expected Version '{}' does not match passed Version '{}'",
            expected.version, passed.version
        ));
    }
    if expected.endorsement_plugin != passed.endorsement_plugin {
        return Some(format!(
            "expected EndorsementPlugin '{}' does not match passed EndorsementPlugin '{}'",
            expected.endorsement_plugin, passed.endorsement_plugin
        ));
    }
    if expected.init_required != passed.init_required {
        return Some(format!(
            "expected InitRequired '{}' does not match passed InitRequired '{}'",
            expected.init_required, passed.init_required
        ));
    }
    if expected.validation_plugin != passed.validation_plugin {
        return Some(format!(
            "expected ValidationPlugin '{}' does not match passed ValidationPlugin '{}'",
            expected.validation_plugin, passed.validation_plugin
        ));
    }
    if expected.validation_parameter != passed.validation_parameter {
        return Some(format!(
            "expected ValidationParameter '{}' does not match passed ValidationParameter '{}'",
            hex::encode(&expected.validation_parameter),
            hex::encode(&passed.validation_parameter)
        ));
    }
    if expected.collections != passed.collections {
        return Some("Collections do not match".into());
    }
    None
}

fn sequence_error(requested: i64, next: i64) -> anyhow::Error {
    anyhow::anyhow!("requested sequence is {requested}, but new definition must be sequence {next}")
}

impl Lifecycle {
    /// Loads the records of `store` and the packages of `packages`. `system` are the system
    /// chaincodes, defined on every channel. Blocking.
    pub fn load(store: Store, packages: Arc<PackageStore>, system: Vec<Ccid>) -> Result<Self> {
        let mut state = State::default();
        let stored = packages
            .list()
            .context("cannot list the installed packages")?;
        for (key, value) in store.records()? {
            let corrupt = || format!("chaincode record {key} is corrupt");
            let mut parts = key.split('/');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("installed"), Some(_), None, None) => {
                    let r: LegacyRecord = serde_json::from_slice(&value).with_context(corrupt)?;
                    let code = match (r.package_id, r.path) {
                        (Some(id), _) => LegacyCode::Package(id),
                        (None, Some(path)) => LegacyCode::Path(path),
                        (None, None) => bail!("{}: it names no code", corrupt()),
                    };
                    let ccid = Ccid::new(r.name, r.version);
                    state.legacy.insert(
                        (ccid.name().to_owned(), ccid.version().to_owned()),
                        Installed {
                            ccid,
                            platform: r.platform,
                            vm: r.vm,
                            code,
                        },
                    );
                }
                (Some("instantiated"), Some(channel), Some(name), None) => {
                    state.instantiated.insert(
                        (channel.to_owned(), name.to_owned()),
                        String::from_utf8_lossy(&value).into_owned(),
                    );
                }
                (Some("approved"), Some(channel), Some(name), Some(seq)) => {
                    let approval: Approval =
                        serde_json::from_slice(&value).with_context(corrupt)?;
                    let seq: i64 = seq.parse().with_context(corrupt)?;
                    state
                        .approved
                        .insert((channel.to_owned(), name.to_owned(), seq), approval);
                }
                (Some("committed"), Some(channel), Some(name), None) => {
                    let committed: Committed =
                        serde_json::from_slice(&value).with_context(corrupt)?;
                    state
                        .committed
                        .insert((channel.to_owned(), name.to_owned()), committed);
                }
                _ => tracing::warn!(record = %key, "unknown chaincode record ignored"),
            }
        }
        // A stored package is a 2.x install unless only 1.4 installs name it (the same bytes
        // may be both when an approval names it too).
        for installed in stored {
            let id = installed.id.clone();
            state.code.insert(id.clone(), installed.code_dir.clone());
            let legacy = state
                .legacy
                .values()
                .any(|i| i.code == LegacyCode::Package(id.clone()));
            let approved = state
                .approved
                .values()
                .any(|a| a.package_id.as_ref() == Some(&id));
            if !legacy || approved {
                state.packages.insert(id, launch_package(&installed));
            }
        }
        Ok(Self {
            store,
            packages,
            system: system
                .into_iter()
                .map(|c| (c.name().to_owned(), ChaincodeDefinition::system(c)))
                .collect(),
            state: RwLock::new(state),
            legacy_writes: std::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The package store.
    pub fn package_store(&self) -> &Arc<PackageStore> {
        &self.packages
    }

    /// Whether `name` is a system chaincode's.
    pub fn is_system(&self, name: &str) -> bool {
        self.system.contains_key(name)
    }

    // ---- Fabric 2.x packages -------------------------------------------------------------

    /// Notes an installed 2.x package.
    pub fn add_package(&self, package: ChaincodePackage) -> Result<()> {
        let id: PackageId = package.id.parse()?;
        let mut state = self.write();
        state.code.insert(id.clone(), package.code.clone());
        state.packages.insert(id, package);
        Ok(())
    }

    /// Notes the code of a package uploaded by a 1.4 install (not a 2.x install: it is not
    /// listed by `queryinstalled`).
    pub fn add_legacy_code(&self, id: PackageId, code: PathBuf) {
        self.write().code.insert(id, code);
    }

    /// Whether package `id` is kept for any install, of either kind.
    pub fn is_stored(&self, id: &PackageId) -> bool {
        self.read().code.contains_key(id)
    }

    /// Forgets package `id` (removed from the store after a failed install).
    pub fn forget_package(&self, id: &PackageId) {
        let mut state = self.write();
        state.code.remove(id);
        state.packages.remove(id);
    }

    /// Every installed 2.x package with the committed definitions that run it.
    pub fn packages(&self) -> Vec<(PackageId, Vec<Reference>)> {
        let state = self.read();
        state
            .packages
            .keys()
            .map(|id| {
                let users = state
                    .committed
                    .iter()
                    .filter(|((channel, name), c)| {
                        Self::package_of(&state, channel, name, c.params.sequence) == Some(id)
                    })
                    .map(|((channel, name), c)| Reference {
                        channel: channel.clone(),
                        name: name.clone(),
                        version: c.params.version.clone(),
                    })
                    .collect();
                (id.clone(), users)
            })
            .collect()
    }

    /// The installed package `id`, as backends see it.
    pub fn packages_by_id(&self, id: &PackageId) -> Option<ChaincodePackage> {
        self.read().packages.get(id).cloned()
    }

    /// Whether package `id` is installed.
    pub fn has_package(&self, id: &PackageId) -> bool {
        self.read().packages.contains_key(id)
    }

    fn package_of<'a>(
        state: &'a State,
        channel: &str,
        name: &str,
        sequence: i64,
    ) -> Option<&'a PackageId> {
        state
            .approved
            .get(&(channel.to_owned(), name.to_owned(), sequence))
            .and_then(|a| a.package_id.as_ref())
    }

    // ---- Fabric 2.x definitions ----------------------------------------------------------

    /// The sequence committed for `name` on `channel` (0: none).
    pub fn committed_sequence(&self, channel: &str, name: &str) -> i64 {
        self.read()
            .committed
            .get(&(channel.to_owned(), name.to_owned()))
            .map_or(0, |c| c.params.sequence)
    }

    /// Records the organisation's approval of `approval` on `channel`, as Fabric allows it:
    /// for the next sequence, or for the committed one with the same parameters (to pick
    /// another package, which need not be installed yet). Returns the package IDs that no
    /// committed definition uses any more (to stop). Blocking.
    pub fn approve(&self, channel: &str, approval: Approval) -> Result<Vec<PackageId>> {
        let params = &approval.params;
        if self.is_system(&params.name) {
            bail!("{} is the name of a system chaincode", params.name);
        }
        let committed = self
            .read()
            .committed
            .get(&(channel.to_owned(), params.name.clone()))
            .cloned();
        let current = committed.as_ref().map_or(0, |c| c.params.sequence);
        let (seq, name) = (params.sequence, &params.name);
        if seq < 1 {
            bail!("requested sequence is {seq}, but first definable sequence number is 1");
        }
        if seq < current {
            bail!("currently defined sequence {current} is larger than requested sequence {seq}");
        }
        if seq > current + 1 {
            bail!(
                "requested sequence {seq} is larger than the next available sequence number {}",
                current + 1
            );
        }
        if let Some(committed) = committed.filter(|_| seq == current) {
            if let Some(diff) = differences(&committed.params, params) {
                bail!(
                    "attempted to redefine the current committed sequence ({current}) for namespace {name} with different parameters: {diff}"
                );
            }
            if self.approved(channel, name, seq).as_ref() == Some(&approval) {
                bail!(
                    "attempted to redefine the current committed sequence ({current}) for namespace {name}"
                );
            }
        } else if self.approved(channel, name, seq).as_ref() == Some(&approval) {
            bail!(
                "attempted to redefine uncommitted sequence ({seq}) for namespace {name} with unchanged content"
            );
        }
        let key = format!("approved/{channel}/{}/{}", params.name, params.sequence);
        let before = self.used_packages();
        self.store
            .put_record(&key, &serde_json::to_vec(&approval)?)?;
        self.write().approved.insert(
            (channel.to_owned(), params.name.clone(), params.sequence),
            approval,
        );
        Ok(self.unused_since(before))
    }

    /// Which of `before` no committed definition uses now.
    fn unused_since(&self, before: Vec<PackageId>) -> Vec<PackageId> {
        let after = self.used_packages();
        before
            .into_iter()
            .filter(|id| !after.contains(id))
            .collect()
    }

    /// The organisation's approval of `name` at `sequence` (0: the latest) on `channel`.
    pub fn approved(&self, channel: &str, name: &str, sequence: i64) -> Option<Approval> {
        let state = self.read();
        if sequence > 0 {
            return state
                .approved
                .get(&(channel.to_owned(), name.to_owned(), sequence))
                .cloned();
        }
        state
            .approved
            .range((channel.to_owned(), name.to_owned(), i64::MIN)..)
            .take_while(|((c, n, _), _)| c == channel && n == name)
            .last()
            .map(|(_, a)| a.clone())
    }

    /// Which organisations approved exactly `params` on `channel`: this peer's one org.
    pub fn approvals(&self, channel: &str, params: &Params, mspid: &str) -> BTreeMap<String, bool> {
        let agreed = self
            .approved(channel, &params.name, params.sequence)
            .is_some_and(|a| &a.params == params);
        BTreeMap::from([(mspid.to_owned(), agreed)])
    }

    /// Checks that `params` could be committed on `channel` now (the next sequence); the
    /// approvals.
    pub fn check_commit_readiness(
        &self,
        channel: &str,
        params: &Params,
        mspid: &str,
    ) -> Result<BTreeMap<String, bool>> {
        let next = self.committed_sequence(channel, &params.name) + 1;
        if params.sequence != next {
            return Err(sequence_error(params.sequence, next));
        }
        Ok(self.approvals(channel, params, mspid))
    }

    /// Commits `params` on `channel` if the peer's organisation approved exactly it; returns
    /// the package IDs that no committed definition uses any more (to stop). Blocking.
    pub fn commit(&self, channel: &str, params: Params, mspid: &str) -> Result<Vec<PackageId>> {
        let approvals = self.check_commit_readiness(channel, &params, mspid)?;
        if !approvals.values().all(|agreed| *agreed) {
            bail!("chaincode definition not agreed to by this org ({mspid})");
        }
        let before = self.used_packages();
        let committed = Committed {
            params: params.clone(),
            approvals,
        };
        self.store.put_record(
            &format!("committed/{channel}/{}", params.name),
            &serde_json::to_vec(&committed)?,
        )?;
        self.write()
            .committed
            .insert((channel.to_owned(), params.name.clone()), committed);
        Ok(self.unused_since(before))
    }

    fn used_packages(&self) -> Vec<PackageId> {
        let state = self.read();
        state
            .committed
            .iter()
            .filter_map(|((channel, name), c)| {
                Self::package_of(&state, channel, name, c.params.sequence).cloned()
            })
            .collect()
    }

    /// The committed definition of `name` on `channel`.
    pub fn committed(&self, channel: &str, name: &str) -> Option<Committed> {
        self.read()
            .committed
            .get(&(channel.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every definition committed on `channel`, by name.
    pub fn committed_on(&self, channel: &str) -> Vec<Committed> {
        self.read()
            .committed
            .iter()
            .filter(|((c, _), _)| c == channel)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// The launch definition of a committed 2.x chaincode, if `name` has one on `channel`.
    fn packaged_definition(
        &self,
        channel: &str,
        name: &str,
    ) -> Option<peer_support::Result<ChaincodeDefinition>> {
        let state = self.read();
        let committed = state
            .committed
            .get(&(channel.to_owned(), name.to_owned()))?;
        let package = Self::package_of(&state, channel, name, committed.params.sequence)
            .and_then(|id| state.packages.get(id));
        Some(match package {
            Some(package) => {
                let mut def = ChaincodeDefinition::packaged(name, package.clone())
                    .with_collections(committed.params.collection_names.clone());
                if committed.params.init_required {
                    def = def.with_init_required(committed.params.version.clone());
                }
                Ok(def)
            }
            None => Err(peer_support::Error::NotInstalled {
                name: name.to_owned(),
            }),
        })
    }

    /// The definitions (one per channel and name) that run package `id`.
    pub fn definitions_running(&self, id: &PackageId) -> Vec<ChaincodeDefinition> {
        let users: Vec<(String, String)> = {
            let state = self.read();
            state
                .committed
                .iter()
                .filter(|((channel, name), c)| {
                    Self::package_of(&state, channel, name, c.params.sequence) == Some(id)
                })
                .map(|(key, _)| key.clone())
                .collect()
        };
        users
            .into_iter()
            .filter_map(|(channel, name)| self.packaged_definition(&channel, &name)?.ok())
            .collect()
    }

    // ---- Fabric 1.4 ------------------------------------------------------------------------

    /// Records `ccid` as installed from package `id`: of `platform`, built by `vm`. Blocking.
    pub fn record_legacy(
        &self,
        ccid: Ccid,
        platform: &str,
        vm: &str,
        id: PackageId,
    ) -> Result<Installed> {
        if self.is_system(ccid.name()) {
            bail!("{} is the name of a system chaincode", ccid.name());
        }
        let record = LegacyRecord {
            name: ccid.name().to_owned(),
            version: ccid.version().to_owned(),
            platform: platform.to_owned(),
            vm: vm.to_owned(),
            package_id: Some(id.clone()),
            path: None,
        };
        let installed = Installed {
            ccid: ccid.clone(),
            platform: platform.to_owned(),
            vm: vm.to_owned(),
            code: LegacyCode::Package(id),
        };
        let key = (ccid.name().to_owned(), ccid.version().to_owned());
        // One 1.4 record written at a time; lookups are not held up by the write.
        let _writing = self.legacy_writes.lock().unwrap_or_else(|e| e.into_inner());
        if self.read().legacy.contains_key(&key) {
            bail!("chaincode {ccid} is installed already");
        }
        self.store
            .put_record(&format!("installed/{ccid}"), &serde_json::to_vec(&record)?)?;
        self.write().legacy.insert(key, installed.clone());
        Ok(installed)
    }

    /// Whether some 1.4 install uses package `id`.
    pub fn legacy_uses(&self, id: &PackageId) -> bool {
        self.read()
            .legacy
            .values()
            .any(|i| i.code == LegacyCode::Package(id.clone()))
    }

    /// The 1.4 definition of an install.
    pub fn legacy_definition(
        &self,
        installed: &Installed,
    ) -> peer_support::Result<ChaincodeDefinition> {
        let code = match &installed.code {
            LegacyCode::Path(path) => path.clone(),
            LegacyCode::Package(id) => self.read().code.get(id).cloned().ok_or_else(|| {
                peer_support::Error::NotInstalled {
                    name: installed.ccid.name().to_owned(),
                }
            })?,
        };
        let package = ChaincodePackage::legacy(&installed.ccid, &installed.platform, code);
        Ok(ChaincodeDefinition::user(
            installed.ccid.clone(),
            installed.vm.clone(),
            package,
        ))
    }

    /// The installed 1.4 `name:version`.
    pub fn installed(&self, name: &str, version: &str) -> Option<Installed> {
        self.read()
            .legacy
            .get(&(name.to_owned(), version.to_owned()))
            .cloned()
    }

    /// Every 1.4 install.
    pub fn all_installed(&self) -> Vec<Installed> {
        self.read().legacy.values().cloned().collect()
    }

    /// Every installed 1.4 version of `name`.
    pub fn versions_of(&self, name: &str) -> Vec<Installed> {
        self.read()
            .legacy
            .values()
            .filter(|i| i.ccid.name() == name)
            .cloned()
            .collect()
    }

    /// Records that `channel` runs the 1.4 `name` at `version`. Blocking.
    pub fn instantiate(&self, channel: &str, name: &str, version: &str) -> Result<()> {
        self.store.put_record(
            &format!("instantiated/{channel}/{name}"),
            version.as_bytes(),
        )?;
        self.write()
            .instantiated
            .insert((channel.to_owned(), name.to_owned()), version.to_owned());
        Ok(())
    }

    /// The 1.4 chaincodes instantiated on `channel`, with their versions.
    pub fn instantiated_on(&self, channel: &str) -> Vec<(String, String)> {
        self.read()
            .instantiated
            .iter()
            .filter(|((c, _), _)| c == channel)
            .map(|((_, n), v)| (n.clone(), v.clone()))
            .collect()
    }

    /// The channels the 1.4 `name:version` is instantiated on.
    pub fn channels_of(&self, ccid: &Ccid) -> Vec<String> {
        self.read()
            .instantiated
            .iter()
            .filter(|((_, n), v)| n == ccid.name() && v.as_str() == ccid.version())
            .map(|((c, _), _)| c.clone())
            .collect()
    }
}

impl ChaincodeDefinitions for Lifecycle {
    fn definition(&self, channel: &str, name: &str) -> peer_support::Result<ChaincodeDefinition> {
        if let Some(def) = self.system.get(name) {
            return Ok(def.clone());
        }
        if let Some(def) = self.packaged_definition(channel, name) {
            return def;
        }
        let version = self
            .read()
            .instantiated
            .get(&(channel.to_owned(), name.to_owned()))
            .cloned();
        let unknown = || peer_support::Error::UnknownChaincode {
            name: name.to_owned(),
            channel: channel.to_owned(),
        };
        let installed = version
            .and_then(|v| self.installed(name, &v))
            .ok_or_else(unknown)?;
        self.legacy_definition(&installed)
    }
}

/// Encodes `bytes` as the base64 Fabric's JSON outputs use.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
