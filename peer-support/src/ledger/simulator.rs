//! A transaction simulator over a [`VersionedDb`], recording reads and writes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use proto::queryresult::Kv;
use sha2::{Digest, Sha256};

use super::rich_query::Selector;
use super::{
    Metadata, QueryExecutor, RangeRead, RwSet, StateIterator, TxSimulator, VersionedDb,
    VersionedValue, private_namespace,
};
use crate::{Error, Result};

/// Keys fetched from the database per scan while iterating.
const SCAN_CHUNK: usize = 128;

/// Reads committed state and records a transaction's reads and writes; read-only when made
/// by [`Ledger::query_executor`](super::Ledger::query_executor).
pub struct Simulator {
    db: Arc<dyn VersionedDb>,
    /// `None` for read-only executors: nothing is recorded and writes are refused.
    rwset: Option<Arc<Mutex<RwSet>>>,
}

impl Simulator {
    pub(crate) fn new(db: Arc<dyn VersionedDb>, record: bool) -> Self {
        Self {
            db,
            rwset: record.then(|| Arc::new(Mutex::new(RwSet::default()))),
        }
    }

    /// A copy of what the transaction read and wrote so far.
    pub fn rwset(&self) -> RwSet {
        self.rwset
            .as_ref()
            .map(|r| lock(r).clone())
            .unwrap_or_default()
    }

    fn recorder(&self) -> Result<MutexGuard<'_, RwSet>> {
        self.rwset
            .as_ref()
            .map(|r| lock(r))
            .ok_or_else(|| Error::Ledger("this state is read-only: writes are not allowed".into()))
    }

    fn read(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>> {
        let value = self.db.get(ns, key)?;
        if let Some(rwset) = &self.rwset {
            lock(rwset)
                .reads
                .entry((ns.to_owned(), key.to_owned()))
                .or_insert(value.as_ref().map(|v| v.version));
        }
        Ok(value)
    }

    /// Iterates over `[start, end)` of namespace `ns`, labelling results with `report_ns`.
    fn range(&self, ns: &str, report_ns: &str, start: &str, end: &str) -> Box<dyn StateIterator> {
        let record = self.rwset.as_ref().map(|rwset| {
            let mut set = lock(rwset);
            set.range_reads.push(RangeRead {
                ns: ns.to_owned(),
                start: start.to_owned(),
                end: end.to_owned(),
                ..RangeRead::default()
            });
            (Arc::clone(rwset), set.range_reads.len() - 1)
        });
        Box::new(RangeIterator {
            db: Arc::clone(&self.db),
            namespace: ns.to_owned(),
            report_ns: report_ns.to_owned(),
            next_start: start.to_owned(),
            end: end.to_owned(),
            buffer: VecDeque::new(),
            db_exhausted: false,
            record,
        })
    }

    /// Runs a rich query lazily: the namespace is scanned in chunks and filtered as the
    /// results are read. Like Fabric's, rich query results are not re-validated at commit.
    fn query(&self, ns: &str, report_ns: &str, query: &str) -> Result<Box<dyn StateIterator>> {
        let selector = Selector::parse(query)?;
        Ok(Box::new(Filtered {
            inner: RangeIterator {
                db: Arc::clone(&self.db),
                namespace: ns.to_owned(),
                report_ns: report_ns.to_owned(),
                next_start: String::new(),
                end: String::new(),
                buffer: VecDeque::new(),
                db_exhausted: false,
                record: None,
            },
            selector,
        }))
    }

    fn write(&self, ns: &str, key: &str, value: Option<Bytes>) -> Result<()> {
        check_key(key)?;
        self.recorder()?
            .writes
            .insert((ns.to_owned(), key.to_owned()), value);
        Ok(())
    }

    fn write_metadata(&self, ns: &str, key: &str, metakey: &str, value: Bytes) -> Result<()> {
        check_key(key)?;
        let committed = self
            .db
            .get(ns, key)?
            .map(|v| v.metadata)
            .unwrap_or_default();
        let mut set = self.recorder()?;
        let entry = set
            .metadata_writes
            .entry((ns.to_owned(), key.to_owned()))
            .or_insert(committed);
        entry.insert(metakey.to_owned(), value);
        Ok(())
    }
}

fn lock(rwset: &Mutex<RwSet>) -> MutexGuard<'_, RwSet> {
    rwset.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        Err(Error::Ledger("key must not be an empty string".into()))
    } else {
        Ok(())
    }
}

/// The smallest key after `key`.
pub(crate) fn successor(key: &str) -> String {
    let mut next = String::with_capacity(key.len() + 1);
    next.push_str(key);
    next.push('\0');
    next
}

/// The records of a scan that a rich query selects.
struct Filtered {
    inner: RangeIterator,
    selector: Selector,
}

impl StateIterator for Filtered {
    fn next(&mut self) -> Result<Option<Kv>> {
        while let Some(kv) = self.inner.next()? {
            if self.selector.matches(&kv.value) {
                return Ok(Some(kv));
            }
        }
        Ok(None)
    }
}

impl StateIterator for VecDeque<Result<Kv>> {
    fn next(&mut self) -> Result<Option<Kv>> {
        self.pop_front().transpose()
    }
}

/// Iterates over a range in chunks, recording what it saw in the range read.
struct RangeIterator {
    db: Arc<dyn VersionedDb>,
    namespace: String,
    report_ns: String,
    next_start: String,
    end: String,
    buffer: VecDeque<(String, VersionedValue)>,
    db_exhausted: bool,
    record: Option<(Arc<Mutex<RwSet>>, usize)>,
}

impl StateIterator for RangeIterator {
    fn next(&mut self) -> Result<Option<Kv>> {
        if self.buffer.is_empty() && !self.db_exhausted {
            let chunk = self
                .db
                .scan(&self.namespace, &self.next_start, &self.end, SCAN_CHUNK)?;
            self.db_exhausted = chunk.len() < SCAN_CHUNK;
            if let Some((last, _)) = chunk.last() {
                self.next_start = successor(last);
            }
            self.buffer.extend(chunk);
        }
        let next = self.buffer.pop_front();
        if let Some((rwset, index)) = &self.record {
            let mut set = lock(rwset);
            let read = &mut set.range_reads[*index];
            match &next {
                Some((key, value)) => read.seen.push((key.clone(), value.version)),
                None => read.exhausted = true,
            }
        }
        Ok(next.map(|(key, v)| Kv {
            namespace: self.report_ns.clone(),
            key,
            value: v.value,
        }))
    }
}

impl QueryExecutor for Simulator {
    fn get_state(&self, ns: &str, key: &str) -> Result<Option<Bytes>> {
        Ok(self.read(ns, key)?.map(|v| v.value))
    }

    fn get_state_metadata(&self, ns: &str, key: &str) -> Result<Metadata> {
        Ok(self.read(ns, key)?.map(|v| v.metadata).unwrap_or_default())
    }

    fn get_state_range(&self, ns: &str, start: &str, end: &str) -> Result<Box<dyn StateIterator>> {
        Ok(self.range(ns, ns, start, end))
    }

    fn execute_query(&self, ns: &str, query: &str) -> Result<Box<dyn StateIterator>> {
        self.query(ns, ns, query)
    }

    fn get_private_data(&self, ns: &str, collection: &str, key: &str) -> Result<Option<Bytes>> {
        self.get_state(&private_namespace(ns, collection), key)
    }

    fn get_private_data_hash(
        &self,
        ns: &str,
        collection: &str,
        key: &str,
    ) -> Result<Option<Bytes>> {
        Ok(self
            .get_private_data(ns, collection, key)?
            .map(|v| Bytes::from(Sha256::digest(&v).to_vec())))
    }

    fn get_private_data_metadata(&self, ns: &str, collection: &str, key: &str) -> Result<Metadata> {
        self.get_state_metadata(&private_namespace(ns, collection), key)
    }

    fn get_private_data_range(
        &self,
        ns: &str,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<Box<dyn StateIterator>> {
        Ok(self.range(&private_namespace(ns, collection), ns, start, end))
    }

    fn execute_query_on_private_data(
        &self,
        ns: &str,
        collection: &str,
        query: &str,
    ) -> Result<Box<dyn StateIterator>> {
        self.query(&private_namespace(ns, collection), ns, query)
    }
}

impl TxSimulator for Simulator {
    fn set_state(&self, ns: &str, key: &str, value: Bytes) -> Result<()> {
        self.write(ns, key, Some(value))
    }

    fn delete_state(&self, ns: &str, key: &str) -> Result<()> {
        self.write(ns, key, None)
    }

    fn set_state_metadata(&self, ns: &str, key: &str, metakey: &str, value: Bytes) -> Result<()> {
        self.write_metadata(ns, key, metakey, value)
    }

    fn set_private_data(&self, ns: &str, collection: &str, key: &str, value: Bytes) -> Result<()> {
        self.write(&private_namespace(ns, collection), key, Some(value))
    }

    fn delete_private_data(&self, ns: &str, collection: &str, key: &str) -> Result<()> {
        self.write(&private_namespace(ns, collection), key, None)
    }

    fn set_private_data_metadata(
        &self,
        ns: &str,
        collection: &str,
        key: &str,
        metakey: &str,
        value: Bytes,
    ) -> Result<()> {
        self.write_metadata(&private_namespace(ns, collection), key, metakey, value)
    }

    fn purge_private_data(&self, ns: &str, collection: &str, key: &str) -> Result<()> {
        let pns = private_namespace(ns, collection);
        self.write(&pns, key, None)?;
        self.recorder()?.purges.insert((pns, key.to_owned()));
        Ok(())
    }
}
