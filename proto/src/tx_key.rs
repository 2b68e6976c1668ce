//! The key of a transaction on a chaincode stream.

use std::hash::{Hash, Hasher};

/// Names a transaction on a chaincode stream: its channel id and transaction id.
///
/// Both sides of the protocol route replies by this pair. Maps keyed by `TxKey` can be
/// searched with a borrowed `(&str, &str)` (through [`hashbrown::Equivalent`]), so routing a
/// reply allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxKey {
    /// The channel id (may be empty).
    pub channel_id: String,
    /// The transaction id.
    pub txid: String,
}

impl TxKey {
    /// A key for `txid` on `channel_id`.
    pub fn new(channel_id: impl Into<String>, txid: impl Into<String>) -> Self {
        Self {
            channel_id: channel_id.into(),
            txid: txid.into(),
        }
    }

    /// The borrowed form, for lookups.
    pub fn as_ref(&self) -> TxKeyRef<'_> {
        TxKeyRef {
            channel_id: &self.channel_id,
            txid: &self.txid,
        }
    }
}

impl Hash for TxKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl std::fmt::Display for TxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_ref().fmt(f)
    }
}

/// A borrowed [`TxKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxKeyRef<'a> {
    /// The channel id.
    pub channel_id: &'a str,
    /// The transaction id.
    pub txid: &'a str,
}

impl<'a> TxKeyRef<'a> {
    /// A borrowed key for `txid` on `channel_id`.
    pub fn new(channel_id: &'a str, txid: &'a str) -> Self {
        Self { channel_id, txid }
    }

    /// The owned form.
    pub fn to_owned(self) -> TxKey {
        TxKey::new(self.channel_id, self.txid)
    }
}

impl std::fmt::Display for TxKeyRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Fabric prints transactions as `[channel]txid`, shortened; we print them whole.
        write!(f, "[{}]{}", self.channel_id, self.txid)
    }
}

impl hashbrown::Equivalent<TxKey> for TxKeyRef<'_> {
    fn equivalent(&self, key: &TxKey) -> bool {
        self.channel_id == key.channel_id && self.txid == key.txid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_lookup_finds_owned_key() {
        let mut map = hashbrown::HashMap::new();
        map.insert(TxKey::new("ch", "tx"), 7);
        assert_eq!(map.get(&TxKeyRef::new("ch", "tx")), Some(&7));
        assert_eq!(map.get(&TxKeyRef::new("ch", "other")), None);
        // The pair is compared field by field: no concatenation ambiguity.
        map.insert(TxKey::new("a", "bc"), 1);
        assert_eq!(map.get(&TxKeyRef::new("ab", "c")), None);
    }

    #[test]
    fn display_names_channel_and_txid() {
        assert_eq!(TxKey::new("ch1", "tx1").to_string(), "[ch1]tx1");
    }
}
