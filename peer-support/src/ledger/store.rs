//! A channel's ledger: simulators, history, and MVCC-validated atomic commits.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use proto::Timestamp;
use proto::queryresult::KeyModification;

use super::simulator::successor;
use super::{
    HistoryIterator, HistoryQueryExecutor, KeyUpdate, LedgerProvider, MemoryDb, QueryExecutor,
    RwSet, Simulator, UpdateBatch, VersionedDb,
};
use crate::{Error, Result};

/// The state of one channel: hands out simulators and commits their results.
pub struct Ledger {
    channel: String,
    db: Arc<dyn VersionedDb>,
    /// Validation and apply happen under this lock, so no two commits interleave.
    commit: Mutex<()>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// A ledger for `channel` on `db`.
    pub fn new(channel: impl Into<String>, db: Arc<dyn VersionedDb>) -> Self {
        Self {
            channel: channel.into(),
            db,
            commit: Mutex::new(()),
        }
    }

    /// A ledger for `channel` in memory.
    pub fn in_memory(channel: impl Into<String>) -> Self {
        Self::new(channel, Arc::new(MemoryDb::new()))
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// A simulator for a new transaction.
    pub fn new_tx_simulator(&self) -> Arc<Simulator> {
        Arc::new(Simulator::new(Arc::clone(&self.db), true))
    }

    /// Reads committed state without recording anything; writes are refused.
    pub fn query_executor(&self) -> Arc<Simulator> {
        Arc::new(Simulator::new(Arc::clone(&self.db), false))
    }

    /// The height of the last commit.
    pub fn height(&self) -> Result<u64> {
        self.db.height()
    }

    /// Validates `rwset` against the current state and, if every read is still current,
    /// applies its writes atomically. Returns the new height, or the current one for a
    /// read-only set (nothing is written).
    ///
    /// Fails with [`Error::MvccConflict`] when another commit changed a key or range the
    /// transaction read; nothing is applied then, and the client may retry.
    pub fn commit(&self, txid: &str, timestamp: Option<Timestamp>, rwset: &RwSet) -> Result<u64> {
        let _one_at_a_time = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        self.validate(txid, rwset)?;
        let height = self.db.height()?;
        if rwset.is_read_only() {
            return Ok(height);
        }
        let mut updates: BTreeMap<(String, String), KeyUpdate> = BTreeMap::new();
        for ((ns, key), value) in &rwset.writes {
            let metadata = match (value, rwset.metadata_writes.get(&(ns.clone(), key.clone()))) {
                (None, _) => BTreeMap::new(),
                (Some(_), Some(written)) => written.clone(),
                // A value written without metadata keeps the key's metadata.
                (Some(_), None) => self
                    .db
                    .get(ns, key)?
                    .map(|v| v.metadata)
                    .unwrap_or_default(),
            };
            updates.insert(
                (ns.clone(), key.clone()),
                KeyUpdate {
                    ns: ns.clone(),
                    key: key.clone(),
                    value: value.clone(),
                    metadata,
                    purge: rwset.purges.contains(&(ns.clone(), key.clone())),
                },
            );
        }
        for ((ns, key), metadata) in &rwset.metadata_writes {
            if updates.contains_key(&(ns.clone(), key.clone())) {
                continue;
            }
            // Metadata of a key that does not exist is dropped, as in Fabric.
            if let Some(current) = self.db.get(ns, key)? {
                updates.insert(
                    (ns.clone(), key.clone()),
                    KeyUpdate {
                        ns: ns.clone(),
                        key: key.clone(),
                        value: Some(current.value),
                        metadata: metadata.clone(),
                        purge: false,
                    },
                );
            }
        }
        let batch = UpdateBatch {
            height: height + 1,
            txid: txid.to_owned(),
            timestamp,
            updates: updates.into_values().collect(),
        };
        self.db.apply(&batch)?;
        Ok(batch.height)
    }

    fn validate(&self, txid: &str, rwset: &RwSet) -> Result<()> {
        let conflict = |ns: &str, key: &str| Error::MvccConflict {
            txid: txid.to_owned(),
            key: format!("{ns}/{key}"),
        };
        for ((ns, key), seen) in &rwset.reads {
            let now = self.db.get(ns, key)?.map(|v| v.version);
            if now != *seen {
                return Err(conflict(ns, key));
            }
        }
        for range in &rwset.range_reads {
            // Re-read what the transaction covered: the whole range if it read to the end,
            // else up to and including the last key it saw.
            let end = match (range.exhausted, range.seen.last()) {
                (true, _) => range.end.clone(),
                (false, Some((last, _))) => successor(last),
                (false, None) => continue,
            };
            let now = self
                .db
                .scan(&range.ns, &range.start, &end, range.seen.len() + 1)?;
            let changed = now.len() != range.seen.len()
                || now
                    .iter()
                    .zip(&range.seen)
                    .any(|((k, v), (sk, sv))| k != sk || v.version != *sv);
            if changed {
                let key = now
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .zip(
                        range
                            .seen
                            .iter()
                            .map(|(k, _)| k.as_str())
                            .chain(std::iter::repeat("")),
                    )
                    .find(|(a, b)| a != b)
                    .map_or(range.start.as_str(), |(a, _)| a);
                return Err(conflict(&range.ns, key));
            }
        }
        Ok(())
    }
}

impl HistoryQueryExecutor for Ledger {
    fn get_history_for_key(&self, ns: &str, key: &str) -> Result<Box<dyn HistoryIterator>> {
        Ok(Box::new(VecDeque::from(self.db.history(ns, key)?)))
    }
}

impl HistoryIterator for VecDeque<KeyModification> {
    fn next(&mut self) -> Result<Option<KeyModification>> {
        Ok(self.pop_front())
    }
}

/// Makes the database of a channel's ledger.
pub type DbFactory = dyn Fn(&str) -> Result<Arc<dyn VersionedDb>> + Send + Sync;

/// The ledgers of a peer, one per channel, created on first use.
pub struct Ledgers {
    ledgers: RwLock<HashMap<String, Arc<Ledger>>>,
    factory: Box<DbFactory>,
}

impl std::fmt::Debug for Ledgers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledgers").finish_non_exhaustive()
    }
}

impl Ledgers {
    /// Ledgers whose databases `factory` makes per channel.
    pub fn new(
        factory: impl Fn(&str) -> Result<Arc<dyn VersionedDb>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            ledgers: RwLock::new(HashMap::new()),
            factory: Box::new(factory),
        }
    }

    /// Ledgers kept in memory.
    pub fn in_memory() -> Self {
        Self::new(|_| Ok(Arc::new(MemoryDb::new()) as Arc<dyn VersionedDb>))
    }

    /// The ledger of `channel`, created if needed.
    pub fn get_or_create(&self, channel: &str) -> Result<Arc<Ledger>> {
        if let Some(l) = self.get(channel) {
            return Ok(l);
        }
        let mut map = self.ledgers.write().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = map.get(channel) {
            return Ok(Arc::clone(l));
        }
        let ledger = Arc::new(Ledger::new(channel, (self.factory)(channel)?));
        map.insert(channel.to_owned(), Arc::clone(&ledger));
        Ok(ledger)
    }

    /// The ledger of `channel`, if it exists.
    pub fn get(&self, channel: &str) -> Option<Arc<Ledger>> {
        self.ledgers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned()
    }
}

impl LedgerProvider for Ledgers {
    fn query_executor(&self, channel: &str) -> Option<Arc<dyn QueryExecutor>> {
        self.get(channel)
            .map(|l| l.query_executor() as Arc<dyn QueryExecutor>)
    }
}
