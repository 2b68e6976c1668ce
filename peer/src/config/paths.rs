//! Where `core.yaml` is, and what relative paths in the configuration mean, as Fabric reads
//! them.
//!
//! - The file: `--config FILE` (or `FABRIC_CFG_FILE`) when given; otherwise `core.yaml` in the
//!   folder `FABRIC_CFG_PATH` names (Fabric's variable; a folder without `core.yaml` is an
//!   error); otherwise none, and the defaults and `CORE_…` variables alone apply. (Fabric
//!   also looks in the working directory and `/etc/hyperledger/fabric` when
//!   `FABRIC_CFG_PATH` is unset; this peer does not, so a stray file never changes it.)
//! - Relative paths: Fabric's `config.GetPath` resolves a relative value against the folder
//!   of the configuration file, whichever source the value came from (`CORE_PEER_MSPCONFIGPATH=msp`
//!   with `FABRIC_CFG_PATH=/etc/hyperledger/fabric` is `/etc/hyperledger/fabric/msp`), and
//!   without a file against the working directory. The same here, for [`PATH_KEYS`],
//!   [`PATH_LIST_KEYS`], each `chaincode.externalBuilders[].path` and each folder of
//!   `peer.trustedMSPs`. (Fabric itself takes a builder's `path` as written, relative to its
//!   working directory; resolving it against the file is what the file's author means.)

use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};
use serde_json::Value;
use vm_api::Settings;

/// Fabric's variable naming the folder that holds `core.yaml`.
pub const CONFIG_PATH_VAR: &str = "FABRIC_CFG_PATH";

/// Keys holding one path, resolved against the configuration file's folder: those Fabric reads
/// through `config.GetPath`.
pub const PATH_KEYS: &[&str] = &[
    "peer.fileSystemPath",
    "peer.mspConfigPath",
    "peer.tls.cert.file",
    "peer.tls.key.file",
    "peer.tls.rootcert.file",
    "peer.tls.clientCert.file",
    "peer.tls.clientKey.file",
    "operations.tls.cert.file",
    "operations.tls.key.file",
    "vm.docker.tls.ca.file",
    "vm.docker.tls.cert.file",
    "vm.docker.tls.key.file",
];

/// Keys holding a list of paths, each resolved the same way (Fabric's `TranslatePath` over
/// the list).
pub const PATH_LIST_KEYS: &[&str] = &[
    "peer.tls.clientRootCAs.files",
    "operations.tls.clientRootCAs.files",
];

/// The configuration file to read: `explicit` when given, else `core.yaml` in the folder
/// `FABRIC_CFG_PATH` names, else none.
pub fn locate(
    explicit: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<PathBuf>> {
    if let Some(file) = explicit {
        return Ok(Some(file.to_owned()));
    }
    let Some(dir) = env(CONFIG_PATH_VAR).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        bail!(
            "{CONFIG_PATH_VAR} {} is not a folder: it names the folder that holds core.yaml",
            dir.display()
        );
    }
    let file = dir.join("core.yaml");
    if !file.is_file() {
        bail!(
            "{CONFIG_PATH_VAR} {} holds no core.yaml: put core.yaml there, point {CONFIG_PATH_VAR} \
             at the folder that holds it, or give the file with --config",
            dir.display()
        );
    }
    Ok(Some(file))
}

/// The folder relative paths in `file` are resolved against (absolute when it can be made so).
pub fn base_of(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())
}

/// `path` against `base` when relative, without `.` and with `..` applied to what precedes
/// it (as Go's `filepath.Join` cleans).
fn translate(base: &Path, path: &str) -> String {
    let path = Path::new(path);
    if path.is_absolute() {
        return path.display().to_string();
    }
    let mut out = PathBuf::new();
    for part in base.join(path).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.display().to_string()
}

/// How a key holds its paths.
#[derive(Debug, Clone, Copy)]
enum Holds {
    /// One path.
    One,
    /// A list of paths (or, from an environment variable, paths separated by commas).
    List,
    /// A list of maps, each with its path in this field.
    Field(&'static str),
    /// A map whose values are paths.
    Values,
}

/// `value` (a path) resolved against `base`, or `None` when it is empty or absolute.
fn relative(base: &Path, value: &Value) -> Option<Value> {
    match value.as_str() {
        Some(p) if !p.is_empty() && Path::new(p).is_relative() => {
            Some(Value::String(translate(base, p)))
        }
        _ => None,
    }
}

/// `value` with each path it holds resolved against `base`; `None` when it holds nothing to
/// resolve.
fn translated(value: &Value, base: &Path, holds: Holds) -> Option<Value> {
    let each = |v: &Value| relative(base, v).unwrap_or_else(|| v.clone());
    match (holds, value) {
        (Holds::One, _) => relative(base, value),
        (Holds::List, Value::String(text)) => Some(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| each(&Value::String(p.to_owned())))
                .collect(),
        )),
        (Holds::List, Value::Array(items)) => Some(Value::Array(items.iter().map(each).collect())),
        (Holds::Values, Value::Object(map)) => Some(Value::Object(
            map.iter().map(|(k, v)| (k.clone(), each(v))).collect(),
        )),
        (Holds::Field(field), Value::Array(items)) => Some(Value::Array(
            items
                .iter()
                .map(|item| {
                    let mut item = item.clone();
                    if let Value::Object(map) = &mut item
                        && let Some(key) =
                            map.keys().find(|k| k.eq_ignore_ascii_case(field)).cloned()
                        && let Some(path) = relative(base, &map[&key])
                    {
                        map.insert(key, path);
                    }
                    item
                })
                .collect(),
        )),
        _ => None,
    }
}

/// Resolves the relative paths of `settings` against `base`, the configuration file's folder.
pub fn resolve(settings: &mut Settings, base: &Path) {
    let keys = PATH_KEYS
        .iter()
        .map(|k| (*k, Holds::One))
        .chain(PATH_LIST_KEYS.iter().map(|k| (*k, Holds::List)))
        .chain([
            ("chaincode.externalBuilders", Holds::Field("path")),
            ("peer.trustedMSPs", Holds::Values),
        ]);
    for (key, holds) in keys {
        if let Some(value) = settings.value(key).and_then(|v| translated(v, base, holds)) {
            settings.set_json(key, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_folder_and_absolute_ones_stay() {
        let base = Path::new("/etc/fabric");
        assert_eq!(translate(base, "msp"), "/etc/fabric/msp");
        assert_eq!(translate(base, "./data/msp"), "/etc/fabric/data/msp");
        assert_eq!(translate(base, "../org2/msp"), "/etc/org2/msp");
        assert_eq!(translate(base, "/var/msp"), "/var/msp");
    }

    #[test]
    fn every_kind_of_path_key_is_resolved() {
        let mut s = Settings::new()
            .with("peer.mspConfigPath", "msp")
            .with("peer.fileSystemPath", "/var/data")
            .with("peer.tls.cert.file", "tls/server.crt")
            .with("operations.tls.clientRootCAs.files", "a.crt, /b.crt")
            .with("peer.id", "relative-looking");
        s.set_json(
            "peer.tls.clientRootCAs.files",
            &serde_json::json!(["tls/ca.crt"]),
        );
        s.set_json(
            "chaincode.externalBuilders",
            &serde_json::json!([{"name": "b", "path": "builders/b"}, {"name": "c", "path": "/c"}]),
        );
        s.set_json(
            "peer.trustedMSPs",
            &serde_json::json!({"Org2MSP": "org2/msp"}),
        );
        resolve(&mut s, Path::new("/cfg"));
        assert_eq!(s.get("peer.mspConfigPath"), Some("/cfg/msp"));
        assert_eq!(s.get("peer.fileSystemPath"), Some("/var/data"));
        assert_eq!(s.get("peer.tls.cert.file"), Some("/cfg/tls/server.crt"));
        assert_eq!(s.list("peer.tls.clientRootCAs.files"), ["/cfg/tls/ca.crt"]);
        assert_eq!(
            s.list("operations.tls.clientRootCAs.files"),
            ["/cfg/a.crt", "/b.crt"]
        );
        let builders = s.value("chaincode.externalBuilders").unwrap();
        assert_eq!(builders[0]["path"], "/cfg/builders/b");
        assert_eq!(builders[1]["path"], "/c");
        assert_eq!(
            s.value("peer.trustedMSPs").unwrap()["Org2MSP"],
            "/cfg/org2/msp"
        );
        assert_eq!(s.get("peer.id"), Some("relative-looking"));
    }

    #[test]
    fn fabric_cfg_path_names_a_folder_holding_core_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let env = |path: &Path| {
            let path = path.display().to_string();
            move |k: &str| (k == CONFIG_PATH_VAR).then(|| path.clone())
        };
        let e = locate(None, &env(dir.path())).unwrap_err();
        assert!(e.to_string().contains("holds no core.yaml"), "{e}");
        let e = locate(None, &env(&dir.path().join("nowhere"))).unwrap_err();
        assert!(e.to_string().contains("is not a folder"), "{e}");
        std::fs::write(dir.path().join("core.yaml"), "peer: {}\n").unwrap();
        assert_eq!(
            locate(None, &env(dir.path())).unwrap(),
            Some(dir.path().join("core.yaml"))
        );
        let explicit = dir.path().join("other.yaml");
        assert_eq!(
            locate(Some(&explicit), &env(dir.path())).unwrap(),
            Some(explicit),
            "--config wins"
        );
        assert_eq!(locate(None, &|_: &str| None).unwrap(), None);
    }
}
