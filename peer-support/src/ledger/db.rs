//! The storage a [`Ledger`](super::Ledger) is built on.

use bytes::Bytes;
use proto::Timestamp;
use proto::queryresult::KeyModification;

use super::Metadata;
use crate::Result;

/// A committed value with its metadata and the version (commit height) that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value.
    pub value: Bytes,
    /// The key's metadata entries.
    pub metadata: Metadata,
    /// The height of the commit that last changed the key.
    pub version: u64,
}

/// One key changed by a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUpdate {
    /// The namespace.
    pub ns: String,
    /// The key.
    pub key: String,
    /// The new value; `None` deletes the key.
    pub value: Option<Bytes>,
    /// The key's metadata after the commit.
    pub metadata: Metadata,
    /// Also forget the key's history (private data purge).
    pub purge: bool,
}

/// Everything one transaction changes, applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateBatch {
    /// The height this commit creates (the previous height + 1).
    pub height: u64,
    /// The transaction.
    pub txid: String,
    /// When the client created the transaction, for history records.
    pub timestamp: Option<Timestamp>,
    /// The changed keys.
    pub updates: Vec<KeyUpdate>,
}

/// Versioned key/value storage with history, by namespace.
///
/// `apply` must be atomic: after a crash, either all of a batch is visible or none of it.
pub trait VersionedDb: Send + Sync + 'static {
    /// The committed value of `key`.
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>>;

    /// At most `limit` keys of `ns` in `[start, end)` in key order (`end` empty: no bound).
    fn scan(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>>;

    /// The history of `key`, newest first.
    fn history(&self, ns: &str, key: &str) -> Result<Vec<KeyModification>>;

    /// The height of the last commit (0 for an empty database).
    fn height(&self) -> Result<u64>;

    /// Applies one commit atomically.
    fn apply(&self, batch: &UpdateBatch) -> Result<()>;
}
