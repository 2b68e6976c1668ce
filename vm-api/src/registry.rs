//! Registries of things linked into the program with `inventory`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::{Error, Result};

/// Entries of one kind, keyed by a static name; built once from `inventory`, refusing
/// duplicate keys.
#[derive(Debug)]
pub struct Registry<T: 'static> {
    entries: BTreeMap<&'static str, &'static T>,
}

impl<T: 'static> Registry<T> {
    /// Builds a registry of `kind` (used in errors) from `items`, keyed by `key`. Two items
    /// with the same key are an [`Error::DuplicateRegistration`].
    pub fn build(
        kind: &'static str,
        items: impl IntoIterator<Item = &'static T>,
        key: impl Fn(&T) -> &'static str,
    ) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for item in items {
            let k = key(item);
            if entries.insert(k, item).is_some() {
                return Err(Error::DuplicateRegistration {
                    kind,
                    key: k.to_owned(),
                });
            }
        }
        Ok(Self { entries })
    }

    /// The entry registered under `key`.
    pub fn get(&self, key: &str) -> Option<&'static T> {
        self.entries.get(key).copied()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<&'static str> {
        self.entries.keys().copied().collect()
    }

    /// Every entry, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'static T)> + '_ {
        self.entries.iter().map(|(k, v)| (*k, *v))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Builds (once) and returns the registry of every `T` submitted with `inventory`.
///
/// `cell` caches the outcome, including a duplicate-key failure, so every caller sees the
/// same answer.
pub fn collected<T: inventory::Collect>(
    cell: &'static OnceLock<std::result::Result<Registry<T>, String>>,
    kind: &'static str,
    key: fn(&T) -> &'static str,
) -> Result<&'static Registry<T>> {
    cell.get_or_init(|| {
        Registry::build(kind, inventory::iter::<T>(), key).map_err(|e| match e {
            Error::DuplicateRegistration { key, .. } => key,
            other => other.to_string(),
        })
    })
    .as_ref()
    .map_err(|key| Error::DuplicateRegistration {
        kind,
        key: key.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Item(&'static str);
    static A: Item = Item("a");
    static B: Item = Item("b");
    static A2: Item = Item("a");

    #[test]
    fn refuses_duplicates_and_lists_sorted() {
        let r = Registry::build("thing", [&B, &A], |i: &Item| i.0).unwrap();
        assert_eq!(r.keys(), vec!["a", "b"]);
        assert!(r.get("a").is_some());
        assert!(r.get("c").is_none());
        let err = Registry::build("thing", [&A, &A2], |i: &Item| i.0).unwrap_err();
        assert_eq!(err.to_string(), "thing \"a\" is registered twice");
    }
}
