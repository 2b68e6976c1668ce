//! A [`VersionedDb`] in memory.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use proto::queryresult::KeyModification;

use super::{UpdateBatch, VersionedDb, VersionedValue};
use crate::Result;

#[derive(Default)]
struct Inner {
    /// Values by (namespace, key).
    state: BTreeMap<(String, String), VersionedValue>,
    /// Past values by (namespace, key), oldest first.
    history: HashMap<(String, String), Vec<KeyModification>>,
    height: u64,
}

/// Keeps state and history in memory; for tests, examples and peers that need no durability.
#[derive(Default)]
pub struct MemoryDb {
    inner: RwLock<Inner>,
}

impl MemoryDb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl VersionedDb for MemoryDb {
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>> {
        // The tuple key needs owned strings; a two-level map would avoid it but makes scans
        // across a namespace boundary awkward. Reads are not the bottleneck here.
        Ok(self
            .read()
            .state
            .get(&(ns.to_owned(), key.to_owned()))
            .cloned())
    }

    fn scan(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>> {
        if !end.is_empty() && start >= end {
            // An empty (or inverted) range: BTreeMap::range would panic on the latter.
            return Ok(Vec::new());
        }
        let inner = self.read();
        let lower = Bound::Included((ns.to_owned(), start.to_owned()));
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded((ns.to_owned(), end.to_owned()))
        };
        Ok(inner
            .state
            .range((lower, upper))
            .take_while(|((n, _), _)| n == ns)
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    fn history(&self, ns: &str, key: &str) -> Result<Vec<KeyModification>> {
        let inner = self.read();
        Ok(inner
            .history
            .get(&(ns.to_owned(), key.to_owned()))
            .map(|h| h.iter().rev().cloned().collect())
            .unwrap_or_default())
    }

    fn height(&self) -> Result<u64> {
        Ok(self.read().height)
    }

    fn apply(&self, batch: &UpdateBatch) -> Result<()> {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for update in &batch.updates {
            let id = (update.ns.clone(), update.key.clone());
            if update.purge {
                inner.history.remove(&id);
            } else {
                inner
                    .history
                    .entry(id.clone())
                    .or_default()
                    .push(KeyModification {
                        tx_id: batch.txid.clone(),
                        value: update.value.clone().unwrap_or_default(),
                        timestamp: batch.timestamp,
                        is_delete: update.value.is_none(),
                    });
            }
            match &update.value {
                Some(value) => {
                    inner.state.insert(
                        id,
                        VersionedValue {
                            value: value.clone(),
                            metadata: update.metadata.clone(),
                            version: batch.height,
                        },
                    );
                }
                None => {
                    inner.state.remove(&id);
                }
            }
        }
        inner.height = batch.height;
        Ok(())
    }
}
