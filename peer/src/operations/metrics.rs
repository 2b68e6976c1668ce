//! The peer's own metrics, beside the chaincode support's (`peer_support::Metrics`):
//! `ledger_transaction_count{channel,transaction_type,chaincode,validation_code}`, Fabric's
//! name for the transactions a ledger processed, counted here at commit: `VALID` for each
//! committed transaction, `MVCC_READ_CONFLICT` for each one refused because another commit
//! changed what it read.
//!
//! The counter lives in a static so the admin service records it with one call and no state
//! of its own; without [`register`] (metrics disabled) recording does nothing.

use std::sync::OnceLock;

use anyhow::Result;
use peer_support::ChaincodeDefinition;
use prometheus::{IntCounterVec, Opts, Registry};

static TRANSACTIONS: OnceLock<IntCounterVec> = OnceLock::new();

/// Registers the peer's metrics in `registry`. Once per process: a second registry gets none.
pub fn register(registry: &Registry) -> Result<()> {
    let counter = IntCounterVec::new(
        Opts::new("transaction_count", "Number of transactions processed.").namespace("ledger"),
        &[
            "channel",
            "transaction_type",
            "chaincode",
            "validation_code",
        ],
    )?;
    if TRANSACTIONS.set(counter.clone()).is_ok() {
        registry.register(Box::new(counter))?;
    }
    Ok(())
}

/// Counts the commit of a transaction on `channel` to `def`'s chaincode: committed, or
/// refused by MVCC validation (other errors are the peer's, not a validation outcome).
pub fn record_transaction(
    channel: &str,
    def: &ChaincodeDefinition,
    outcome: &peer_support::Result<u64>,
) {
    let Some(counter) = TRANSACTIONS.get() else {
        return;
    };
    let code = match outcome {
        Ok(_) => "VALID",
        Err(peer_support::Error::MvccConflict { .. }) => "MVCC_READ_CONFLICT",
        Err(_) => return,
    };
    // Fabric labels the chaincode `name:version`.
    let chaincode = format!("{}:{}", def.name, def.version.as_deref().unwrap_or(""));
    counter
        .with_label_values(&[channel, "ENDORSER_TRANSACTION", &chaincode, code])
        .inc();
}
