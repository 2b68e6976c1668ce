//! The peer's configuration as backends see it: `core.yaml`'s dotted keys and string values.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

/// Configuration values by dotted key (`vm.endpoint`, `vm.docker.hostConfig.Memory`, …).
///
/// Getters parse on demand and fail with an [`Error::Config`] that names the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// No settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(key.into(), value.into());
        self
    }

    /// These settings with `key` set to `value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
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

    /// The value of `key` split at commas, trimmed, empty parts left out.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every `(key, value)` whose key starts with `prefix`, sorted by key.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.values
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every `(key, value)`, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
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
        total += Duration::try_from_secs_f64(number * scale).map_err(|e| e.to_string())?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
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
        let s = Settings::new()
            .with("vm.docker.hostConfig.Dns", "1.1.1.1, 8.8.8.8,")
            .with("vm.docker.hostConfig.Memory", "1")
            .with("vm.endpoint", "unix:///x");
        assert_eq!(s.with_prefix("vm.docker.").count(), 2);
        assert_eq!(
            s.list("vm.docker.hostConfig.Dns"),
            vec!["1.1.1.1", "8.8.8.8"]
        );
    }
}
