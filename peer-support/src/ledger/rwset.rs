//! What a simulated transaction read and wrote.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::Metadata;

/// A range a transaction read, with the keys and versions it saw, so that commit can tell
/// whether a key appeared or changed in it since (phantom reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeRead {
    /// The namespace.
    pub ns: String,
    /// First key, inclusive.
    pub start: String,
    /// Last key, exclusive; empty for no bound.
    pub end: String,
    /// The keys seen, in order, with their versions.
    pub seen: Vec<(String, u64)>,
    /// Whether the whole range was read (otherwise only up to the last key seen counts).
    pub exhausted: bool,
}

/// The read/write set of one transaction, keyed by `(namespace, key)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RwSet {
    /// Keys read, with the version seen (`None`: absent).
    pub reads: BTreeMap<(String, String), Option<u64>>,
    /// Ranges read.
    pub range_reads: Vec<RangeRead>,
    /// Keys written (`None`: deleted).
    pub writes: BTreeMap<(String, String), Option<Bytes>>,
    /// Metadata written, the whole resulting map per key.
    pub metadata_writes: BTreeMap<(String, String), Metadata>,
    /// Private keys purged with their history.
    pub purges: BTreeSet<(String, String)>,
}

impl RwSet {
    /// Whether the transaction changes nothing.
    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty() && self.metadata_writes.is_empty() && self.purges.is_empty()
    }

    /// The value the transaction writes to `key` of `ns`: `None` when it does not write it,
    /// `Some(None)` when it deletes it.
    pub fn written(&self, ns: &str, key: &str) -> Option<Option<&Bytes>> {
        self.writes
            .get(&(ns.to_owned(), key.to_owned()))
            .map(Option::as_ref)
    }
}
