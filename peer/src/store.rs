//! Persistent state on redb: world state and history per channel and namespace, ledger
//! heights, committed transaction ids, and chaincode records. Every commit is one redb write
//! transaction, durable when it returns: a crash never leaves half a transaction.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use peer_support::ledger::{Metadata, UpdateBatch, VersionedDb, VersionedValue};
use prost::Message;
use proto::queryresult::KeyModification;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// World state: `channel 0 namespace 0 key` → value record.
const STATE: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("state");
/// History: `channel 0 namespace 0 len(key) key height` → encoded KeyModification.
const HISTORY: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("history");
/// Ledger height per channel.
const HEIGHTS: TableDefinition<'static, &str, u64> = TableDefinition::new("heights");
/// Committed transaction ids: `channel 0 txid` → height.
const TXIDS: TableDefinition<'static, &[u8], u64> = TableDefinition::new("txids");
/// Chaincode records (JSON) by key.
const CHAINCODES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("chaincodes");

fn ledger_error(e: impl std::fmt::Display) -> peer_support::Error {
    peer_support::Error::Ledger(format!("state database: {e}"))
}

/// The peer's database.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = Database::create(path)
            .with_context(|| format!("cannot open the state database {}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(STATE)?;
        txn.open_table(HISTORY)?;
        txn.open_table(HEIGHTS)?;
        txn.open_table(TXIDS)?;
        txn.open_table(CHAINCODES)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The state of `channel`.
    pub fn channel(&self, channel: &str) -> peer_support::Result<Arc<dyn VersionedDb>> {
        if channel.contains('\0') || channel.is_empty() {
            return Err(ledger_error(format!("invalid channel name {channel:?}")));
        }
        Ok(Arc::new(ChannelDb {
            db: Arc::clone(&self.db),
            channel: channel.to_owned(),
        }))
    }

    /// Every chaincode record, by key.
    pub fn records(&self) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHAINCODES)?;
        let mut out = BTreeMap::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.insert(k.value().to_owned(), v.value().to_vec());
        }
        Ok(out)
    }

    /// Writes a chaincode record.
    pub fn put_record(&self, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(CHAINCODES)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }

    /// Records that the administrative call `txid` ran, so that the same signed proposal is
    /// never accepted twice; `false` when it was recorded before (a replay). Blocking.
    pub fn claim_admin_tx(&self, txid: &str) -> anyhow::Result<bool> {
        let key = txid_key("\u{0}admin", txid);
        let txn = self.db.begin_write()?;
        let fresh = {
            let mut table = txn.open_table(TXIDS)?;
            let fresh = table.get(key.as_slice())?.is_none();
            if fresh {
                table.insert(key.as_slice(), 0)?;
            }
            fresh
        };
        txn.commit()?;
        Ok(fresh)
    }

    /// Whether `txid` was committed on `channel`.
    pub fn is_committed(&self, channel: &str, txid: &str) -> anyhow::Result<bool> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(TXIDS)?
            .get(txid_key(channel, txid).as_slice())?
            .is_some())
    }
}

fn txid_key(channel: &str, txid: &str) -> Vec<u8> {
    [channel.as_bytes(), b"\0", txid.as_bytes()].concat()
}

/// One channel's state.
struct ChannelDb {
    db: Arc<Database>,
    channel: String,
}

impl ChannelDb {
    fn prefix(&self, ns: &str) -> Vec<u8> {
        [self.channel.as_bytes(), b"\0", ns.as_bytes(), b"\0"].concat()
    }

    fn state_key(&self, ns: &str, key: &str) -> Vec<u8> {
        [self.prefix(ns).as_slice(), key.as_bytes()].concat()
    }

    fn history_prefix(&self, ns: &str, key: &str) -> Vec<u8> {
        let len = u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes();
        [self.prefix(ns).as_slice(), &len, key.as_bytes()].concat()
    }
}

/// `[version u64][count u32]([len u32][metakey][len u32][value])*[value]`
fn encode_value(value: &[u8], metadata: &Metadata, version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + value.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(metadata.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for (k, v) in metadata {
        for part in [k.as_bytes(), v.as_ref()] {
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(value);
    out
}

fn decode_value(bytes: &[u8]) -> peer_support::Result<VersionedValue> {
    let corrupt = || ledger_error("a stored value is corrupt");
    let take = |at: &mut usize, n: usize| -> peer_support::Result<&[u8]> {
        let slice = bytes.get(*at..*at + n).ok_or_else(corrupt)?;
        *at += n;
        Ok(slice)
    };
    let mut at = 0;
    let version = u64::from_be_bytes(take(&mut at, 8)?.try_into().map_err(|_| corrupt())?);
    let count = u32::from_be_bytes(take(&mut at, 4)?.try_into().map_err(|_| corrupt())?);
    let mut metadata = Metadata::new();
    for _ in 0..count {
        let len = u32::from_be_bytes(take(&mut at, 4)?.try_into().map_err(|_| corrupt())?) as usize;
        let k = String::from_utf8(take(&mut at, len)?.to_vec()).map_err(|_| corrupt())?;
        let len = u32::from_be_bytes(take(&mut at, 4)?.try_into().map_err(|_| corrupt())?) as usize;
        let v = Bytes::copy_from_slice(take(&mut at, len)?);
        metadata.insert(k, v);
    }
    Ok(VersionedValue {
        value: Bytes::copy_from_slice(&bytes[at..]),
        metadata,
        version,
    })
}

/// The smallest byte string greater than every string starting with `prefix`.
fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

impl VersionedDb for ChannelDb {
    fn get(&self, ns: &str, key: &str) -> peer_support::Result<Option<VersionedValue>> {
        let txn = self.db.begin_read().map_err(ledger_error)?;
        let table = txn.open_table(STATE).map_err(ledger_error)?;
        match table
            .get(self.state_key(ns, key).as_slice())
            .map_err(ledger_error)?
        {
            Some(v) => decode_value(v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn scan(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> peer_support::Result<Vec<(String, VersionedValue)>> {
        let prefix = self.prefix(ns);
        let lower = [prefix.as_slice(), start.as_bytes()].concat();
        let upper = if end.is_empty() {
            after_prefix(&prefix)
        } else {
            [prefix.as_slice(), end.as_bytes()].concat()
        };
        let txn = self.db.begin_read().map_err(ledger_error)?;
        let table = txn.open_table(STATE).map_err(ledger_error)?;
        let mut out = Vec::new();
        for entry in table
            .range(lower.as_slice()..upper.as_slice())
            .map_err(ledger_error)?
            .take(limit)
        {
            let (k, v) = entry.map_err(ledger_error)?;
            let key = String::from_utf8(k.value()[prefix.len()..].to_vec())
                .map_err(|_| ledger_error("a stored key is not UTF-8"))?;
            out.push((key, decode_value(v.value())?));
        }
        Ok(out)
    }

    fn history(&self, ns: &str, key: &str) -> peer_support::Result<Vec<KeyModification>> {
        let prefix = self.history_prefix(ns, key);
        let txn = self.db.begin_read().map_err(ledger_error)?;
        let table = txn.open_table(HISTORY).map_err(ledger_error)?;
        let mut out = Vec::new();
        for entry in table
            .range(prefix.as_slice()..after_prefix(&prefix).as_slice())
            .map_err(ledger_error)?
        {
            let (_, v) = entry.map_err(ledger_error)?;
            out.push(KeyModification::decode(v.value()).map_err(ledger_error)?);
        }
        out.reverse();
        Ok(out)
    }

    fn height(&self) -> peer_support::Result<u64> {
        let txn = self.db.begin_read().map_err(ledger_error)?;
        let table = txn.open_table(HEIGHTS).map_err(ledger_error)?;
        Ok(table
            .get(self.channel.as_str())
            .map_err(ledger_error)?
            .map_or(0, |h| h.value()))
    }

    fn apply(&self, batch: &UpdateBatch) -> peer_support::Result<()> {
        let txn = self.db.begin_write().map_err(ledger_error)?;
        {
            let mut txids = txn.open_table(TXIDS).map_err(ledger_error)?;
            let id = txid_key(&self.channel, &batch.txid);
            if txids.get(id.as_slice()).map_err(ledger_error)?.is_some() {
                return Err(peer_support::Error::Ledger(format!(
                    "transaction {} was committed already on channel {}",
                    batch.txid, self.channel
                )));
            }
            txids
                .insert(id.as_slice(), batch.height)
                .map_err(ledger_error)?;
            let mut state = txn.open_table(STATE).map_err(ledger_error)?;
            let mut history = txn.open_table(HISTORY).map_err(ledger_error)?;
            for update in &batch.updates {
                let key = self.state_key(&update.ns, &update.key);
                match &update.value {
                    Some(value) => {
                        state
                            .insert(
                                key.as_slice(),
                                encode_value(value, &update.metadata, batch.height).as_slice(),
                            )
                            .map_err(ledger_error)?;
                    }
                    None => {
                        state.remove(key.as_slice()).map_err(ledger_error)?;
                    }
                }
                let prefix = self.history_prefix(&update.ns, &update.key);
                if update.purge {
                    let end = after_prefix(&prefix);
                    history
                        .retain_in(prefix.as_slice()..end.as_slice(), |_, _| false)
                        .map_err(ledger_error)?;
                } else {
                    let record = KeyModification {
                        tx_id: batch.txid.clone(),
                        value: update.value.clone().unwrap_or_default(),
                        timestamp: batch.timestamp,
                        is_delete: update.value.is_none(),
                    };
                    let hkey = [prefix.as_slice(), &batch.height.to_be_bytes()].concat();
                    history
                        .insert(hkey.as_slice(), record.encode_to_vec().as_slice())
                        .map_err(ledger_error)?;
                }
            }
            let mut heights = txn.open_table(HEIGHTS).map_err(ledger_error)?;
            heights
                .insert(self.channel.as_str(), batch.height)
                .map_err(ledger_error)?;
        }
        txn.commit().map_err(ledger_error)
    }
}

#[cfg(test)]
mod tests {
    use peer_support::ledger::{KeyUpdate, Ledger, QueryExecutor, TxSimulator};

    use super::*;

    #[test]
    fn values_round_trip_with_metadata() {
        let mut m = Metadata::new();
        m.insert("VALIDATION_PARAMETER".into(), Bytes::from_static(b"p"));
        let v = decode_value(&encode_value(b"hello", &m, 42)).unwrap();
        assert_eq!(
            (v.value.as_ref(), v.version, v.metadata),
            (&b"hello"[..], 42, m)
        );
        assert!(decode_value(b"short").is_err());
    }

    #[test]
    fn commits_survive_reopening_and_channels_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        {
            let store = Store::open(&path).unwrap();
            let ledger = Ledger::new("ch1", store.channel("ch1").unwrap());
            let sim = ledger.new_tx_simulator();
            sim.set_state("cc", "k", Bytes::from_static(b"v1")).unwrap();
            sim.set_state("cc", "\u{0}composite\u{0}x\u{0}", Bytes::from_static(b"c"))
                .unwrap();
            ledger.commit("tx1", None, &sim.rwset()).unwrap();
            let sim = ledger.new_tx_simulator();
            sim.set_state("cc", "k", Bytes::from_static(b"v2")).unwrap();
            ledger.commit("tx2", None, &sim.rwset()).unwrap();
            // A replayed transaction id is refused, and changes nothing.
            let sim = ledger.new_tx_simulator();
            sim.set_state("cc", "k", Bytes::from_static(b"v3")).unwrap();
            assert!(
                ledger
                    .commit("tx2", None, &sim.rwset())
                    .unwrap_err()
                    .to_string()
                    .contains("committed already")
            );
        }
        let store = Store::open(&path).unwrap();
        assert!(store.is_committed("ch1", "tx1").unwrap());
        let db = store.channel("ch1").unwrap();
        assert_eq!(db.height().unwrap(), 2);
        let ledger = Ledger::new("ch1", Arc::clone(&db));
        let q = ledger.query_executor();
        assert_eq!(q.get_state("cc", "k").unwrap().as_deref(), Some(&b"v2"[..]));
        let history = db.history("cc", "k").unwrap();
        assert_eq!(
            history.iter().map(|h| h.tx_id.as_str()).collect::<Vec<_>>(),
            ["tx2", "tx1"]
        );
        assert!(
            db.history("cc", "k\u{0}").unwrap().is_empty(),
            "no prefix confusion"
        );
        assert_eq!(store.channel("ch2").unwrap().get("cc", "k").unwrap(), None);
        let all = db.scan("cc", "", "", 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            db.scan("cc", "\u{1}", "", 10).unwrap().len(),
            1,
            "simple keys skip composite ones"
        );
    }

    #[test]
    fn purge_removes_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("l.redb")).unwrap();
        let db = store.channel("ch").unwrap();
        let put = |h: u64, purge: bool, value: Option<&'static [u8]>| UpdateBatch {
            height: h,
            txid: format!("t{h}"),
            timestamp: None,
            updates: vec![KeyUpdate {
                ns: "cc".into(),
                key: "k".into(),
                value: value.map(Bytes::from_static),
                metadata: Metadata::new(),
                purge,
            }],
        };
        db.apply(&put(1, false, Some(b"a"))).unwrap();
        db.apply(&put(2, false, Some(b"b"))).unwrap();
        assert_eq!(db.history("cc", "k").unwrap().len(), 2);
        db.apply(&put(3, true, None)).unwrap();
        assert!(db.history("cc", "k").unwrap().is_empty());
        assert_eq!(db.get("cc", "k").unwrap(), None);
    }
}
