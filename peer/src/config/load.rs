//! Reading the configuration: defaults, then the file, then the environment; then the
//! file's relative paths resolved and image placeholders expanded, and the file's keys
//! checked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;
use vm_api::Settings;
use yaml_rust2::{Yaml, YamlLoader};

use super::{KEYS, PEER_SECTIONS, STRUCTURED_KEYS, env_name, images, known_keys, paths};

/// A YAML document as JSON: maps keep their keys (as text), scalars become text.
fn to_json(node: &Yaml) -> Value {
    match node {
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((key, to_json(v)))
                })
                .collect(),
        ),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::String(i.to_string()),
        Yaml::Boolean(b) => Value::String(b.to_string()),
        _ => Value::Null,
    }
}

/// Parses `text` as YAML (JSON is YAML too) into one value.
fn parse_yaml(text: &str) -> std::result::Result<Value, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    Ok(docs.first().map_or(Value::Null, to_json))
}

/// The configuration as read: the settings, the file they came from, and what its keys mean.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Every setting: defaults, the file, the environment; paths resolved, images expanded.
    pub settings: Settings,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// The file's keys that neither the peer nor Fabric knows, and those only Fabric knows.
    pub keys: known_keys::KeyReport,
}

impl Loaded {
    /// Logs the file read, a warning for each unknown key, and (at DEBUG) the Fabric keys the
    /// peer accepts without using them.
    pub fn log(&self) {
        let Some(file) = &self.file else {
            return;
        };
        tracing::info!(target: "peer::config", file = %file.display(), "configuration read");
        for key in &self.keys.unknown {
            tracing::warn!(
                target: "peer::config",
                key = %key,
                file = %file.display(),
                "unknown configuration key, ignored: neither this peer nor Fabric's core.yaml has it (a typo?)"
            );
        }
        if !self.keys.fabric_only.is_empty() {
            tracing::debug!(
                target: "peer::config",
                keys = %self.keys.fabric_only.join(", "),
                "Fabric settings this peer does not use, accepted"
            );
        }
    }
}

/// The peer's own keys and sections, for the check of a file's keys: [`KEYS`],
/// [`STRUCTURED_KEYS`], [`PEER_SECTIONS`], and `vm.<type>` of each linked backend whose keys
/// the peer does not list (a third party's backend reads its own).
fn peer_keys() -> known_keys::PeerKeys {
    let listed = |section: &str| {
        KEYS.iter()
            .any(|(k, _)| k.to_ascii_lowercase().starts_with(&format!("{section}.")))
    };
    let backends = vm_api::providers()
        .map(|r| r.keys())
        .unwrap_or_default()
        .into_iter()
        .map(|t| format!("vm.{}", t.to_ascii_lowercase()))
        .filter(|s| !listed(s));
    known_keys::PeerKeys::new(
        KEYS.iter()
            .map(|(k, _)| *k)
            .chain(STRUCTURED_KEYS.iter().copied()),
        PEER_SECTIONS
            .iter()
            .map(|s| (*s).to_owned())
            .chain(backends),
    )
}

/// Reads the configuration: the file (`file`, else `core.yaml` in `FABRIC_CFG_PATH`, else
/// none) over the defaults, then `env` over both; relative paths resolved against the
/// file's folder (see [`paths`]) and image placeholders expanded. The environment can set
/// every key the peer knows or the file names; a structured key's variable holds JSON or
/// YAML.
pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Loaded> {
    let file = paths::locate(file, &env)?;
    let mut settings = Settings::new();
    for (key, default) in KEYS {
        if !default.is_empty() {
            settings.set(*key, *default);
        }
    }
    let mut keys = known_keys::KeyReport::default();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let docs = YamlLoader::load_from_str(&text)
            .with_context(|| format!("{} is not valid YAML", path.display()))?;
        let peer = peer_keys();
        for doc in &docs {
            let tree = to_json(doc);
            peer.check(&tree, &mut keys);
            settings.merge(&Settings::from_json(&tree));
        }
    }
    let known: Vec<String> = KEYS
        .iter()
        .map(|(k, _)| (*k).to_owned())
        .chain(settings.paths())
        .collect();
    for key in known {
        let Some(value) = env(&env_name(&key)) else {
            continue;
        };
        let structured = STRUCTURED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&key))
            || settings
                .value(&key)
                .is_some_and(|v| v.is_array() || v.is_object());
        if structured {
            let parsed = parse_yaml(&value).map_err(|e| {
                anyhow::anyhow!(
                    "invalid configuration {key}: {} is neither JSON nor YAML: {e}",
                    env_name(&key)
                )
            })?;
            settings.set_json(&key, &parsed);
        } else {
            settings.set(&key, value);
        }
    }
    if let Some(path) = &file {
        paths::resolve(&mut settings, &paths::base_of(path));
    }
    images::expand_all(&mut settings)?;
    Ok(Loaded {
        settings,
        file,
        keys,
    })
}

/// The settings of [`load`].
pub fn settings(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
    load(file, env).map(|loaded| loaded.settings)
}
