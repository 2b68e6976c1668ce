//! State access for chaincodes: the traits the handler calls (Fabric's query executor,
//! transaction simulator and history query executor) and a ledger that implements them on any
//! [`VersionedDb`], with an in-memory database.
//!
//! A transaction's reads and writes go through a [`TxSimulator`], which records them in a
//! read/write set ([`RwSet`]); [`Ledger::commit`] validates the reads against the current
//! state (MVCC) and applies the writes atomically. Like Fabric, reads see committed state only,
//! not the transaction's own writes.
//!
//! Private data lives in its own namespace per collection (`<ns>$$p<collection>`), as in
//! Fabric's state database, so it takes part in the same versioning and validation.

mod db;
mod memory;
mod rich_query;
mod rwset;
mod simulator;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use proto::queryresult::{KeyModification, Kv};

pub use db::{KeyUpdate, UpdateBatch, VersionedDb, VersionedValue};
pub use memory::MemoryDb;
pub use rwset::{RangeRead, RwSet};
pub use simulator::Simulator;
pub use store::{DbFactory, Ledger, Ledgers};

use crate::Result;

/// Metadata entries of a key, by name.
pub type Metadata = BTreeMap<String, Bytes>;

/// Reads committed state (Fabric's `QueryExecutor`).
///
/// Implementations are called from async tasks and must not block for long; a database that
/// answers slowly belongs behind a cache or a blocking pool.
pub trait QueryExecutor: Send + Sync {
    /// The value of `key` in namespace `ns`.
    fn get_state(&self, ns: &str, key: &str) -> Result<Option<Bytes>>;

    /// The values of several keys, in order.
    fn get_state_multiple(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get_state(ns, k)).collect()
    }

    /// The metadata of `key`.
    fn get_state_metadata(&self, ns: &str, key: &str) -> Result<Metadata>;

    /// The keys in `[start, end)` in key order; an empty `end` means past the last key.
    fn get_state_range(&self, ns: &str, start: &str, end: &str) -> Result<Box<dyn StateIterator>>;

    /// Runs a rich query; results in key order.
    fn execute_query(&self, ns: &str, query: &str) -> Result<Box<dyn StateIterator>>;

    /// The value of `key` in private data `collection`.
    fn get_private_data(&self, ns: &str, collection: &str, key: &str) -> Result<Option<Bytes>>;

    /// The SHA-256 of the value of `key` in private data `collection`.
    fn get_private_data_hash(&self, ns: &str, collection: &str, key: &str)
    -> Result<Option<Bytes>>;

    /// The metadata of `key` in private data `collection`.
    fn get_private_data_metadata(&self, ns: &str, collection: &str, key: &str) -> Result<Metadata>;

    /// The keys of private data `collection` in `[start, end)`.
    fn get_private_data_range(
        &self,
        ns: &str,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<Box<dyn StateIterator>>;

    /// Runs a rich query on private data `collection`.
    fn execute_query_on_private_data(
        &self,
        ns: &str,
        collection: &str,
        query: &str,
    ) -> Result<Box<dyn StateIterator>>;
}

/// Simulates a transaction: reads like a [`QueryExecutor`] and records writes (Fabric's
/// `TxSimulator`).
pub trait TxSimulator: QueryExecutor {
    /// Writes `value` to `key`.
    fn set_state(&self, ns: &str, key: &str, value: Bytes) -> Result<()>;
    /// Deletes `key`.
    fn delete_state(&self, ns: &str, key: &str) -> Result<()>;
    /// Sets one metadata entry of `key`, keeping its other entries.
    fn set_state_metadata(&self, ns: &str, key: &str, metakey: &str, value: Bytes) -> Result<()>;
    /// Writes `value` to `key` of private data `collection`.
    fn set_private_data(&self, ns: &str, collection: &str, key: &str, value: Bytes) -> Result<()>;
    /// Deletes `key` of private data `collection`.
    fn delete_private_data(&self, ns: &str, collection: &str, key: &str) -> Result<()>;
    /// Sets one metadata entry of `key` of private data `collection`.
    fn set_private_data_metadata(
        &self,
        ns: &str,
        collection: &str,
        key: &str,
        metakey: &str,
        value: Bytes,
    ) -> Result<()>;
    /// Deletes `key` of private data `collection` with its history.
    fn purge_private_data(&self, ns: &str, collection: &str, key: &str) -> Result<()>;
}

/// Reads the history of keys (Fabric's `HistoryQueryExecutor`).
pub trait HistoryQueryExecutor: Send + Sync {
    /// Every value `key` had, newest first.
    fn get_history_for_key(&self, ns: &str, key: &str) -> Result<Box<dyn HistoryIterator>>;
}

/// Results of a range or rich query.
pub trait StateIterator: Send {
    /// The next record, `None` after the last.
    fn next(&mut self) -> Result<Option<Kv>>;
}

/// Results of a history query.
pub trait HistoryIterator: Send {
    /// The next record, `None` after the last.
    fn next(&mut self) -> Result<Option<KeyModification>>;
}

/// Finds the ledger of a channel, for chaincode calls that cross channels.
pub trait LedgerProvider: Send + Sync {
    /// A query executor on `channel`'s committed state, `None` when the peer has no such channel.
    fn query_executor(&self, channel: &str) -> Option<Arc<dyn QueryExecutor>>;
}

/// The namespace holding private data `collection` of chaincode `ns` (Fabric's layout).
pub fn private_namespace(ns: &str, collection: &str) -> String {
    format!("{ns}$$p{collection}")
}
