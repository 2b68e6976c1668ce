//! Installed and instantiated chaincodes (Fabric 1.4's lifecycle, simplified): install copies
//! a package into the peer's data folder; instantiate makes a version the one a channel runs.
//! Records are kept in the state database; system chaincodes are defined on every channel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use anyhow::{Context, Result, bail};
use peer_support::{ChaincodeDefinition, ChaincodeDefinitions};
use serde_json::json;
use vm_api::{Ccid, ChaincodePackage};

use crate::store::Store;

/// An installed chaincode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Name and version.
    pub ccid: Ccid,
    /// Platform (`binary`, `node`, …).
    pub platform: String,
    /// Backend (container type).
    pub vm: String,
    /// The peer's copy of the package.
    pub path: PathBuf,
}

impl Installed {
    /// Its definition for the chaincode support.
    pub fn definition(&self) -> ChaincodeDefinition {
        ChaincodeDefinition::user(
            self.ccid.clone(),
            self.vm.clone(),
            ChaincodePackage::legacy(&self.ccid, &self.platform, &self.path),
        )
    }

    fn record(&self) -> Vec<u8> {
        json!({
            "name": self.ccid.name(),
            "version": self.ccid.version(),
            "platform": self.platform,
            "vm": self.vm,
            "path": self.path,
        })
        .to_string()
        .into_bytes()
    }

    fn from_record(bytes: &[u8]) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_slice(bytes)?;
        let field = |k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .with_context(|| format!("record lacks {k}"))
        };
        Ok(Self {
            ccid: Ccid::new(field("name")?, field("version")?),
            platform: field("platform")?,
            vm: field("vm")?,
            path: PathBuf::from(field("path")?),
        })
    }
}

/// The peer's chaincodes.
pub struct Lifecycle {
    store: Store,
    packages: PathBuf,
    system: BTreeMap<String, ChaincodeDefinition>,
    installed: RwLock<BTreeMap<(String, String), Installed>>,
    /// Version instantiated per (channel, name).
    instantiated: RwLock<BTreeMap<(String, String), String>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("packages", &self.packages)
            .finish_non_exhaustive()
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        return std::os::unix::fs::symlink(target, to);
    }
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ())
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Lifecycle {
    /// Loads the records of `store`; packages live under `packages`. `system` are the system
    /// chaincodes, defined on every channel.
    pub fn load(store: Store, packages: PathBuf, system: Vec<Ccid>) -> Result<Self> {
        let mut installed = BTreeMap::new();
        let mut instantiated = BTreeMap::new();
        for (key, value) in store.records()? {
            if key.starts_with("installed/") {
                let cc = Installed::from_record(&value)
                    .with_context(|| format!("chaincode record {key} is corrupt"))?;
                installed.insert(
                    (cc.ccid.name().to_owned(), cc.ccid.version().to_owned()),
                    cc,
                );
            } else if let Some(rest) = key.strip_prefix("instantiated/")
                && let Some((channel, name)) = rest.split_once('/')
            {
                instantiated.insert(
                    (channel.to_owned(), name.to_owned()),
                    String::from_utf8_lossy(&value).into_owned(),
                );
            }
        }
        Ok(Self {
            store,
            packages,
            system: system
                .into_iter()
                .map(|c| (c.name().to_owned(), ChaincodeDefinition::system(c)))
                .collect(),
            installed: RwLock::new(installed),
            instantiated: RwLock::new(instantiated),
        })
    }

    /// Copies the package of `name:version` from `source` (an executable or a folder) into
    /// the peer and returns where the copy is; [`record`](Self::record) makes it installed.
    pub fn copy_package(&self, ccid: &Ccid, source: &Path) -> Result<PathBuf> {
        let key = (ccid.name().to_owned(), ccid.version().to_owned());
        if self.system.contains_key(ccid.name()) {
            bail!("{} is the name of a system chaincode", ccid.name());
        }
        if read_lock(&self.installed).contains_key(&key) {
            bail!("chaincode {ccid} is installed already");
        }
        let meta = std::fs::metadata(source)
            .with_context(|| format!("cannot read the package {}", source.display()))?;
        let dir = self.packages.join(ccid.dashed());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        if meta.is_dir() {
            let to = dir.join("src");
            copy_tree(source, &to)
                .with_context(|| format!("cannot copy {} into the peer", source.display()))?;
            Ok(to)
        } else {
            let name = source.file_name().context("the package has no file name")?;
            let to = dir.join(name);
            std::fs::copy(source, &to)
                .with_context(|| format!("cannot copy {} into the peer", source.display()))?;
            Ok(to)
        }
    }

    /// Removes a copy [`copy_package`](Self::copy_package) made for a package that was not
    /// installed after all (its build failed).
    pub fn discard_package(&self, ccid: &Ccid) {
        let dir = self.packages.join(ccid.dashed());
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(chaincode = %ccid, error = %e, "cannot remove {}", dir.display());
        }
    }

    /// Records `name:version`, copied to `path`, as installed: of `platform`, run by `vm`.
    pub fn record(&self, ccid: Ccid, platform: &str, vm: &str, path: PathBuf) -> Result<Installed> {
        let key = (ccid.name().to_owned(), ccid.version().to_owned());
        let installed = Installed {
            ccid: ccid.clone(),
            platform: platform.to_owned(),
            vm: vm.to_owned(),
            path,
        };
        self.store
            .put_record(&format!("installed/{ccid}"), &installed.record())?;
        write_lock(&self.installed).insert(key, installed.clone());
        Ok(installed)
    }

    /// Installs `name:version` from `source`, run by `vm`: [`copy_package`](Self::copy_package)
    /// then [`record`](Self::record).
    pub fn install(
        &self,
        ccid: Ccid,
        platform: &str,
        vm: &str,
        source: &Path,
    ) -> Result<Installed> {
        let path = self.copy_package(&ccid, source)?;
        self.record(ccid, platform, vm, path)
    }

    /// The installed `name:version`.
    pub fn installed(&self, name: &str, version: &str) -> Option<Installed> {
        read_lock(&self.installed)
            .get(&(name.to_owned(), version.to_owned()))
            .cloned()
    }

    /// Every installed chaincode.
    pub fn all_installed(&self) -> Vec<Installed> {
        read_lock(&self.installed).values().cloned().collect()
    }

    /// Every installed version of `name`.
    pub fn versions_of(&self, name: &str) -> Vec<Installed> {
        read_lock(&self.installed)
            .values()
            .filter(|i| i.ccid.name() == name)
            .cloned()
            .collect()
    }

    /// Records that `channel` runs `name` at `version`.
    pub fn instantiate(&self, channel: &str, name: &str, version: &str) -> Result<()> {
        self.store.put_record(
            &format!("instantiated/{channel}/{name}"),
            version.as_bytes(),
        )?;
        write_lock(&self.instantiated)
            .insert((channel.to_owned(), name.to_owned()), version.to_owned());
        Ok(())
    }

    /// The chaincodes instantiated on `channel`, with their versions.
    pub fn instantiated_on(&self, channel: &str) -> Vec<(String, String)> {
        read_lock(&self.instantiated)
            .iter()
            .filter(|((c, _), _)| c == channel)
            .map(|((_, n), v)| (n.clone(), v.clone()))
            .collect()
    }

    /// The channels `name:version` is instantiated on.
    pub fn channels_of(&self, ccid: &Ccid) -> Vec<String> {
        read_lock(&self.instantiated)
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
        let version = read_lock(&self.instantiated)
            .get(&(channel.to_owned(), name.to_owned()))
            .cloned();
        let unknown = || peer_support::Error::UnknownChaincode {
            name: name.to_owned(),
            channel: channel.to_owned(),
        };
        let version = version.ok_or_else(unknown)?;
        self.installed(name, &version)
            .map(|i| i.definition())
            .ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_copies_and_records_and_instantiate_defines_per_channel() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("pkg");
        std::fs::create_dir_all(pkg.join("lib")).unwrap();
        std::fs::write(pkg.join("package.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/nonexistent/node_modules", pkg.join("node_modules")).unwrap();
        let db = dir.path().join("db.redb");
        {
            let life = Lifecycle::load(
                Store::open(&db).unwrap(),
                dir.path().join("packages"),
                vec![Ccid::new("kvscc", "1")],
            )
            .unwrap();
            let cc = life
                .install(Ccid::new("kv", "1"), "node", "PROCESS", &pkg)
                .unwrap();
            assert!(cc.path.join("package.json").is_file());
            assert!(
                std::fs::symlink_metadata(cc.path.join("node_modules"))
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert!(
                life.install(Ccid::new("kv", "1"), "node", "PROCESS", &pkg)
                    .unwrap_err()
                    .to_string()
                    .contains("installed already")
            );
            assert!(
                life.install(Ccid::new("kvscc", "2"), "node", "PROCESS", &pkg)
                    .is_err()
            );
            assert!(life.definition("ch", "kv").is_err(), "not instantiated yet");
            life.instantiate("ch", "kv", "1").unwrap();
        }
        let life = Lifecycle::load(
            Store::open(&db).unwrap(),
            dir.path().join("packages"),
            vec![Ccid::new("kvscc", "1")],
        )
        .unwrap();
        let def = life.definition("ch", "kv").unwrap();
        assert_eq!(
            (def.ccid.version(), def.container_type.as_deref()),
            ("1", Some("PROCESS"))
        );
        assert!(life.definition("other", "kv").is_err());
        assert!(life.definition("any", "kvscc").unwrap().is_system());
        assert_eq!(life.channels_of(&Ccid::new("kv", "1")), ["ch"]);
    }
}
