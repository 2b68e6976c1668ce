//! The peer's configuration as backends see it: a tree of `core.yaml`'s keys, read by dotted
//! path.
//!
//! Values are text, lists and maps, as in `core.yaml`: `chaincode.externalBuilders` is a list of
//! maps, `vm.docker.hostConfig.Dns` a list of text. Keys match without regard to case, as
//! Fabric's reader (viper) matches them, so `chaincode.executeTimeout` and
//! `chaincode.executetimeout` name the same setting; the case a key was written in is kept.
//!
//! ```
//! use vm_api::Settings;
//! let mut s = Settings::new().with("chaincode.executeTimeout", "5s");
//! s.set_json(
//!     "chaincode.externalBuilders",
//!     &serde_json::json!([{ "name": "ccaas", "path": "/builders/ccaas" }]),
//! );
//! assert_eq!(s.duration("chaincode.executetimeout").unwrap(), Some(std::time::Duration::from_secs(5)));
//! let builders = s.value("chaincode.externalBuilders").unwrap();
//! assert_eq!(builders[0]["name"], "ccaas");
//! ```

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Configuration values by dotted path (`vm.endpoint`, `chaincode.externalBuilders`, …).
///
/// Scalars are kept as text (`5s`, `true`, `100000`); getters parse on demand and fail with an
/// [`Error::Config`] that names the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    root: Map<String, Value>,
}

/// The entry of `map` named `segment`: the exact key first, else one equal without regard to
/// case.
fn entry<'a>(map: &'a Map<String, Value>, segment: &str) -> Option<(&'a String, &'a Value)> {
    map.get_key_value(segment)
        .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(segment)))
}

/// The key under which `segment` is stored in `map` (its existing spelling, if any).
fn stored_key(map: &Map<String, Value>, segment: &str) -> String {
    entry(map, segment).map_or_else(|| segment.to_owned(), |(k, _)| k.clone())
}

/// Scalars become text and nulls disappear, so every value reads the same way whether it came
/// from a YAML file, JSON in an environment variable or code.
fn normalise(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(Value::String(b.to_string())),
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::String(s) => Some(Value::String(s.clone())),
        Value::Array(items) => Some(Value::Array(items.iter().filter_map(normalise).collect())),
        Value::Object(map) => Some(Value::Object(
            map.iter()
                .filter_map(|(k, v)| normalise(v).map(|v| (k.clone(), v)))
                .collect(),
        )),
    }
}

/// Merges `from` into `into`: maps merge key by key (without regard to case), anything else
/// replaces.
fn merge_into(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        let key = stored_key(into, k);
        match (into.get_mut(&key), v) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_into(existing, incoming);
            }
            _ => {
                into.insert(key, v.clone());
            }
        }
    }
}

fn flatten<'a>(prefix: &str, value: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            flatten(&join(prefix, k), v, out);
        }
    } else {
        out.push((prefix.to_owned(), value));
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

impl Settings {
    /// No settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings holding the map `value` (scalars become text, nulls are left out); anything
    /// but a JSON object gives no settings.
    pub fn from_json(value: &Value) -> Self {
        match normalise(value) {
            Some(Value::Object(root)) => Self { root },
            _ => Self::default(),
        }
    }

    /// Sets `key` to the text `value`, replacing an earlier value.
    pub fn set(&mut self, key: impl AsRef<str>, value: impl Into<String>) -> &mut Self {
        self.put(key.as_ref(), Value::String(value.into()));
        self
    }

    /// Sets `key` to a structured `value` (a list, a map, …); scalars inside become text.
    /// `null` removes the key.
    pub fn set_json(&mut self, key: impl AsRef<str>, value: &Value) -> &mut Self {
        match normalise(value) {
            Some(v) => self.put(key.as_ref(), v),
            None => self.remove(key.as_ref()),
        }
        self
    }

    /// These settings with `key` set to `value`.
    pub fn with(mut self, key: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    fn put(&mut self, key: &str, value: Value) {
        let mut segments: Vec<&str> = key.split('.').collect();
        let last = segments.pop().unwrap_or_default();
        let mut map = &mut self.root;
        for segment in segments {
            let k = stored_key(map, segment);
            let slot = map.entry(k).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            map = match slot {
                Value::Object(inner) => inner,
                _ => unreachable!("made an object just above"),
            };
        }
        let k = stored_key(map, last);
        map.insert(k, value);
    }

    /// Removes `key` and everything under it.
    pub fn remove(&mut self, key: &str) {
        let mut segments: Vec<&str> = key.split('.').collect();
        let last = segments.pop().unwrap_or_default();
        let mut map = &mut self.root;
        for segment in segments {
            let k = stored_key(map, segment);
            match map.get_mut(&k) {
                Some(Value::Object(inner)) => map = inner,
                _ => return,
            }
        }
        let k = stored_key(map, last);
        map.remove(&k);
    }

    /// Merges `other` over these settings: maps merge key by key, other values replace.
    pub fn merge(&mut self, other: &Settings) {
        merge_into(&mut self.root, &other.root);
    }

    /// The value at `key`: text, a list or a map.
    pub fn value(&self, key: &str) -> Option<&Value> {
        let mut segments = key.split('.');
        let first = segments.next()?;
        let mut value = entry(&self.root, first)?.1;
        for segment in segments {
            value = entry(value.as_object()?, segment)?.1;
        }
        Some(value)
    }

    /// The text at `key` (`None` for a list or a map).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(Value::as_str)
    }

    /// The value of `key` parsed as `T`.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(key)
            .map(|v| {
                v.trim().parse().map_err(|e: T::Err| Error::Config {
                    key: key.to_owned(),
                    message: format!("{v:?}: {e}"),
                })
            })
            .transpose()
    }

    /// The value of `key` as a boolean (`true`/`false`, any case).
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::Config {
                    key: key.to_owned(),
                    message: format!("{v:?} is not true or false"),
                }),
            })
            .transpose()
    }

    /// The value of `key` as a duration in Go's notation (`300s`, `1m30s`, `250ms`); a bare
    /// number is seconds.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>> {
        self.get(key)
            .map(|v| {
                parse_duration(v).map_err(|message| Error::Config {
                    key: key.to_owned(),
                    message: format!("{v:?}: {message}"),
                })
            })
            .transpose()
    }

    /// The value of `key` as a number of bytes: digits with an optional `k`, `m` or `g` suffix
    /// (powers of 1024; `kb`, `mib` and the like read the same) or `b`.
    pub fn byte_size(&self, key: &str) -> Result<Option<u64>> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        let bad = |why: &str| Error::Config {
            key: key.to_owned(),
            message: format!("{text:?} {why}"),
        };
        let t = text.trim().to_ascii_lowercase();
        let unit_at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(unit_at);
        let scale: u64 = match unit.trim() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => return Err(bad("is not a size in bytes (like 2147483648 or 2g)")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| bad("is not a size in bytes (like 2147483648 or 2g)"))?;
        n.checked_mul(scale)
            .map(Some)
            .ok_or_else(|| bad("is too large"))
    }

    /// The value of `key` as a list of text: a list's items, or text split at commas; empty
    /// parts are left out.
    pub fn list(&self, key: &str) -> Vec<String> {
        let items: Vec<String> = match self.value(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(text)) => text.split(',').map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The value of `key` read into `T` through serde (`chaincode.externalBuilders` into a
    /// list of structs, say); scalars are text, so `T`'s scalar fields are `String`s.
    pub fn deserialize<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.value(key)
            .map(|v| {
                serde_json::from_value(v.clone()).map_err(|e| Error::Config {
                    key: key.to_owned(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// Every `(key, text)` below `prefix` (dotted, as stored), sorted by key. Lists and maps
    /// below are walked into; list items are left out.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if let Some(value) = self.value(prefix) {
            flatten(prefix, value, &mut out);
        }
        out.into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v)))
            .collect()
    }

    /// The dotted path of every value, maps included (`chaincode`, `chaincode.mode`, …).
    pub fn paths(&self) -> Vec<String> {
        fn walk(prefix: &str, map: &Map<String, Value>, out: &mut Vec<String>) {
            for (k, v) in map {
                let path = join(prefix, k);
                out.push(path.clone());
                if let Value::Object(inner) = v {
                    walk(&path, inner, out);
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.root, &mut out);
        out
    }

    /// The whole tree, as JSON.
    pub fn to_json(&self) -> Value {
        Value::Object(self.root.clone())
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut settings = Self::new();
        for (k, v) in iter {
            settings.set(k, v);
        }
        settings
    }
}

/// Parses Go's duration notation: a sequence of numbers with units `ns`, `us`, `µs`, `ms`,
/// `s`, `m`, `h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("missing unit")?;
        if digits == 0 {
            return Err("expected a number".into());
        }
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("bad number {number:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?}")),
        };
        total = total
            .checked_add(Duration::try_from_secs_f64(number * scale).map_err(|e| e.to_string())?)
            .ok_or("too long")?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_in_go_notation() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn errors_name_the_key() {
        let s = Settings::new()
            .with("chaincode.executetimeout", "soon")
            .with("peer.tls.enabled", "yes")
            .with("vm.docker.hostConfig.CpuShares", "many");
        let e = s.duration("chaincode.executetimeout").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid configuration chaincode.executetimeout:"),
            "{e}"
        );
        let e = s.bool("peer.tls.enabled").unwrap_err();
        assert!(e.to_string().contains("peer.tls.enabled"), "{e}");
        let e = s
            .parse::<i64>("vm.docker.hostConfig.CpuShares")
            .unwrap_err();
        assert!(
            e.to_string().contains("vm.docker.hostConfig.CpuShares"),
            "{e}"
        );
        assert_eq!(s.parse::<i64>("absent").unwrap(), None);
    }

    #[test]
    fn prefix_and_list() {
        let mut s = Settings::new()
            .with("vm.docker.hostConfig.Dns", "1.1.1.1, 8.8.8.8,")
            .with("vm.docker.hostConfig.Memory", "1")
            .with("vm.docker.hostConfig.LogConfig.Config.max-size", "50m")
            .with("vm.endpoint", "unix:///x");
        assert_eq!(
            s.with_prefix("vm.docker.hostConfig.LogConfig.Config"),
            vec![(
                "vm.docker.hostConfig.LogConfig.Config.max-size".to_owned(),
                "50m"
            )]
        );
        assert_eq!(s.with_prefix("vm.docker").len(), 3);
        assert_eq!(
            s.list("vm.docker.hostConfig.Dns"),
            vec!["1.1.1.1", "8.8.8.8"]
        );
        s.set_json("vm.docker.hostConfig.Dns", &json!(["9.9.9.9", " ", 7]));
        assert_eq!(s.list("vm.docker.hostConfig.Dns"), vec!["9.9.9.9", "7"]);
    }

    #[test]
    fn byte_sizes_with_suffixes() {
        let s = Settings::new()
            .with("a", "2g")
            .with("b", "512")
            .with("c", "100 MiB")
            .with("d", "lots")
            .with("e", "99999999999999999g");
        assert_eq!(s.byte_size("a").unwrap(), Some(2 << 30));
        assert_eq!(s.byte_size("b").unwrap(), Some(512));
        assert_eq!(s.byte_size("c").unwrap(), Some(100 << 20));
        assert_eq!(s.byte_size("none").unwrap(), None);
        assert!(
            s.byte_size("d")
                .unwrap_err()
                .to_string()
                .contains("invalid configuration d")
        );
        assert!(
            s.byte_size("e")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn keys_match_without_regard_to_case_and_keep_their_spelling() {
        let mut s = Settings::new().with("chaincode.executeTimeout", "5s");
        assert_eq!(s.get("chaincode.executetimeout"), Some("5s"));
        assert_eq!(s.get("CHAINCODE.EXECUTETIMEOUT"), Some("5s"));
        s.set("chaincode.executetimeout", "7s");
        assert_eq!(s.paths(), ["chaincode", "chaincode.executeTimeout"]);
        assert_eq!(s.get("chaincode.executeTimeout"), Some("7s"));
    }

    #[test]
    fn structured_values_keep_their_shape_with_text_scalars() {
        let mut s = Settings::new().with("peer.id", "peer0");
        s.set_json(
            "chaincode.externalBuilders",
            &json!([
                {"name": "ccaas", "path": "/b/ccaas", "propagateEnvironment": ["HOME", "X"]},
                {"name": "bin", "path": "/b/bin", "extra": 5, "nothing": null}
            ]),
        );
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Builder {
            name: String,
            path: String,
            #[serde(default, rename = "propagateEnvironment")]
            propagate: Vec<String>,
            #[serde(default)]
            extra: Option<String>,
        }
        let builders: Vec<Builder> = s
            .deserialize("chaincode.externalbuilders")
            .unwrap()
            .unwrap();
        assert_eq!(builders.len(), 2);
        assert_eq!(builders[0].propagate, ["HOME", "X"]);
        assert_eq!(
            builders[1].extra.as_deref(),
            Some("5"),
            "numbers become text"
        );
        let e = s
            .deserialize::<Vec<u8>>("chaincode.externalBuilders")
            .unwrap_err();
        assert!(e.to_string().contains("chaincode.externalBuilders"), "{e}");
        // A map replaces text and text replaces a map.
        s.set("peer.id.sub", "x");
        assert_eq!(s.get("peer.id.sub"), Some("x"));
        s.set("peer", "flat");
        assert_eq!(s.get("peer"), Some("flat"));
    }

    #[test]
    fn merging_layers_maps_and_replaces_the_rest() {
        let mut base = Settings::new()
            .with("peer.id", "peer0")
            .with("peer.networkId", "dev")
            .with("vm.endpoint", "");
        let mut file = Settings::from_json(&json!({
            "Peer": {"ID": "peer7"},
            "chaincode": {"externalBuilders": [{"name": "a", "path": "/a"}]},
            "vm": {"endpoint": null}
        }));
        file.set("vm.docker.attachStdout", "true");
        base.merge(&file);
        assert_eq!(base.get("peer.id"), Some("peer7"));
        assert_eq!(base.get("peer.networkid"), Some("dev"));
        assert_eq!(
            base.get("vm.endpoint"),
            Some(""),
            "a null in the file sets nothing"
        );
        assert!(base.value("chaincode.externalBuilders").unwrap().is_array());
        base.remove("chaincode.externalBuilders");
        assert!(base.value("chaincode.externalBuilders").is_none());
    }
}
