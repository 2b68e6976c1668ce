//! Example chaincodes written only against [`shim`]'s public API, registered as system
//! chaincodes: linking this crate (`use scc_examples as _;`) is enough for a peer with the
//! `SYSTEM` backend to run them.
//!
//! - `kvscc` ([`KvChaincode`]): a key/value store with ranges, composite keys, pagination,
//!   history, metadata, events and calls to other chaincodes.
//! - `callerscc` ([`CallerChaincode`]): calls other chaincodes, on this channel or another.
//!
//! ```
//! use scc_examples as _;
//! let names: Vec<_> = shim::system_chaincodes().map(|scc| scc.name).collect();
//! assert!(names.contains(&"kvscc") && names.contains(&"callerscc"));
//! ```

mod caller;
mod kv;

use std::sync::Arc;

pub use caller::CallerChaincode;
pub use kv::KvChaincode;

/// The version both system chaincodes register with.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn kv() -> Arc<dyn shim::Chaincode> {
    Arc::new(KvChaincode)
}

fn caller() -> Arc<dyn shim::Chaincode> {
    Arc::new(CallerChaincode)
}

shim::inventory::submit! {
    shim::SystemChaincode {
        name: "kvscc",
        version: VERSION,
        description: "key/value store with ranges, composite keys, pagination and history",
        create: kv,
    }
}

shim::inventory::submit! {
    shim::SystemChaincode {
        name: "callerscc",
        version: VERSION,
        description: "calls other chaincodes",
        create: caller,
    }
}
