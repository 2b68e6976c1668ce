//! The external builders the peer is configured with (`chaincode.externalBuilders`), and
//! where their durable builds live.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;
use vm_api::{Error, Result, Settings};

/// The names always passed to builders when the peer has them set (Fabric's list).
pub const ALWAYS_PROPAGATED: [&str; 4] = ["LD_LIBRARY_PATH", "LIBPATH", "PATH", "TMPDIR"];

const KEY: &str = "chaincode.externalBuilders";

/// One entry of `chaincode.externalBuilders`, as written in `core.yaml`, its keys read without
/// regard to case as Fabric reads them (see [`lowercase_keys`]).
#[derive(Debug, Clone, Default, Deserialize)]
struct Entry {
    #[serde(default)]
    name: String,
    #[serde(default)]
    path: String,
    #[serde(default, rename = "propagateenvironment")]
    propagate_environment: Vec<String>,
    /// Fabric's deprecated name, used when `propagateEnvironment` is empty.
    #[serde(default, rename = "environmentwhitelist")]
    environment_whitelist: Vec<String>,
}

/// The builder entries with their keys in lower case (`PropagateEnvironment` is
/// `propagateEnvironment`, as in Fabric).
fn lowercase_keys(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(lowercase_keys).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One configured external builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderConfig {
    /// Its name (in logs and in `build-info.json`).
    pub name: String,
    /// Its folder, holding `bin/detect`, `bin/build` and optionally `bin/release`, `bin/run`.
    pub path: PathBuf,
    /// The variables of the peer's environment its programs get, besides
    /// [`ALWAYS_PROPAGATED`].
    pub propagate_environment: Vec<String>,
}

/// How the external builders backend works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalConfig {
    /// The builders, in the order they are tried.
    pub builders: Vec<BuilderConfig>,
    /// Where durable builds are kept: `<peer.fileSystemPath>/externalbuilder/builds`; `None`
    /// when the peer has no file system path (then nothing is built).
    pub builds_dir: Option<PathBuf>,
    /// Output lines kept per build or chaincode for error messages
    /// (`vm.external.outputLines`, 50).
    pub output_lines: usize,
}

fn invalid(index: usize, message: String) -> Error {
    Error::Config {
        key: format!("{KEY}[{index}]"),
        message,
    }
}

/// A name of an environment variable: no `=`, no NUL, not empty.
fn valid_variable(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

impl ExternalConfig {
    /// Reads `chaincode.externalBuilders` (a list of `{name, path, propagateEnvironment}`),
    /// `peer.fileSystemPath` and `vm.external.outputLines`, and checks them: every builder
    /// needs a name (unique, printable) and an absolute path.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let entries: Vec<Entry> = match settings.value(KEY) {
            None => Vec::new(),
            // An empty value in a file or the environment: no builders.
            Some(v) if v.as_str().is_some_and(|s| s.trim().is_empty()) => Vec::new(),
            Some(value) => {
                serde_json::from_value(lowercase_keys(value)).map_err(|e| Error::Config {
                    key: KEY.into(),
                    message: e.to_string(),
                })?
            }
        };
        let mut names = BTreeSet::new();
        let mut builders = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let name = entry.name.trim().to_owned();
            if name.is_empty() {
                return Err(invalid(i, "a builder needs a name".into()));
            }
            if name.len() > 255 || name.chars().any(char::is_control) {
                return Err(invalid(
                    i,
                    format!(
                        "builder name {name:?} is longer than 255 bytes or holds control characters"
                    ),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(invalid(i, format!("builder name {name:?} is used twice")));
            }
            let path = PathBuf::from(entry.path.trim());
            if !path.is_absolute() {
                return Err(invalid(
                    i,
                    format!(
                        "builder {name:?} needs an absolute path, not {:?}",
                        entry.path
                    ),
                ));
            }
            let propagate = if entry.propagate_environment.is_empty() {
                entry.environment_whitelist
            } else {
                entry.propagate_environment
            };
            if let Some(bad) = propagate.iter().find(|v| !valid_variable(v)) {
                return Err(invalid(
                    i,
                    format!("builder {name:?}: {bad:?} is not the name of an environment variable"),
                ));
            }
            builders.push(BuilderConfig {
                name,
                path,
                propagate_environment: propagate,
            });
        }
        let builds_dir = settings
            .get("peer.fileSystemPath")
            .filter(|p| !p.trim().is_empty())
            .map(|p| PathBuf::from(p).join("externalbuilder").join("builds"));
        if !builders.is_empty() && builds_dir.is_none() {
            return Err(Error::Config {
                key: "peer.fileSystemPath".into(),
                message: "external builders keep their builds under it: set it".into(),
            });
        }
        Ok(Self {
            builders,
            builds_dir,
            output_lines: settings.parse("vm.external.outputLines")?.unwrap_or(50),
        })
    }

    /// The builder named `name`, if it is configured.
    pub fn builder(&self, name: &str) -> Option<&BuilderConfig> {
        self.builders.iter().find(|b| b.name == name)
    }
}

impl BuilderConfig {
    /// The environment its programs get: the names it propagates and
    /// [`ALWAYS_PROPAGATED`], those the peer has set (`env` reads the peer's environment).
    pub fn environment(&self, env: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        let mut names: Vec<&str> = self
            .propagate_environment
            .iter()
            .map(String::as_str)
            .chain(ALWAYS_PROPAGATED)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| env(n).map(|v| (n.to_owned(), v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(builders: serde_json::Value) -> Settings {
        let mut s = Settings::new().with("peer.fileSystemPath", "/var/peer");
        s.set_json(KEY, &builders);
        s
    }

    #[test]
    fn builders_in_order_with_their_environment() {
        let c = ExternalConfig::from_settings(&settings(json!([
            {"name": "ccaas", "path": "/opt/ccaas", "propagateEnvironment": ["HOME", "CORE_X"]},
            {"name": "old", "path": "/opt/old", "environmentWhitelist": ["GOPATH"]},
            {"name": "both", "path": "/opt/both", "propagateEnvironment": ["A"], "environmentWhitelist": ["B"]},
            {"Name": "cased", "PATH": "/opt/cased", "PropagateEnvironment": ["C"]},
        ])))
        .unwrap();
        let names: Vec<&str> = c.builders.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["ccaas", "old", "both", "cased"]);
        assert_eq!(
            c.builders[3].propagate_environment,
            ["C"],
            "keys without regard to case"
        );
        assert_eq!(
            c.builders[1].propagate_environment,
            ["GOPATH"],
            "the deprecated list"
        );
        assert_eq!(
            c.builders[2].propagate_environment,
            ["A"],
            "propagateEnvironment wins"
        );
        assert_eq!(
            c.builds_dir.as_deref(),
            Some(std::path::Path::new("/var/peer/externalbuilder/builds"))
        );
        let env = c.builders[0].environment(|k| match k {
            "HOME" => Some("/root".into()),
            "PATH" => Some("/bin".into()),
            "SECRET" => Some("no".into()),
            _ => None,
        });
        assert_eq!(
            env,
            [
                ("HOME".into(), "/root".into()),
                ("PATH".into(), "/bin".into())
            ],
            "only the listed names and the four always passed, when set"
        );
    }

    #[test]
    fn bad_entries_name_their_place_in_the_list() {
        for (builders, needle) in [
            (json!([{"path": "/opt/x"}]), "[0]: a builder needs a name"),
            (
                json!([{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}]),
                "[1]: builder name \"a\" is used twice",
            ),
            (
                json!([{"name": "a", "path": "relative/dir"}]),
                "needs an absolute path",
            ),
            (json!([{"name": "a"}]), "needs an absolute path"),
            (
                json!([{"name": "a\nb", "path": "/a"}]),
                "control characters",
            ),
            (
                json!([{"name": "a", "path": "/a", "propagateEnvironment": ["X=1"]}]),
                "not the name of an environment variable",
            ),
            (
                json!({"name": "a", "path": "/a"}),
                "chaincode.externalBuilders",
            ),
        ] {
            let e = ExternalConfig::from_settings(&settings(builders.clone())).unwrap_err();
            assert!(e.to_string().contains(needle), "{builders}: {e}");
        }
        let mut no_path = Settings::new();
        no_path.set_json(KEY, &json!([{"name": "a", "path": "/a"}]));
        let e = ExternalConfig::from_settings(&no_path).unwrap_err();
        assert!(e.to_string().contains("peer.fileSystemPath"), "{e}");
    }

    #[test]
    fn none_configured() {
        let c = ExternalConfig::from_settings(&Settings::new().with(KEY, "")).unwrap();
        assert!(c.builders.is_empty() && c.builds_dir.is_none());
    }
}
