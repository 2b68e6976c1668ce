//! Transaction contexts: what the peer knows of each transaction a chaincode is running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashMap;
use proto::protos::{ChaincodeMessage, SignedProposal};
use proto::{TxKey, TxKeyRef};
use tokio::sync::oneshot;

use crate::definitions::collection_allowed;
use crate::ledger::{HistoryQueryExecutor, QueryExecutor, TxSimulator};
use crate::query::OpenQueries;
use crate::{Error, Result};

/// What a transaction may do with state.
#[derive(Clone)]
pub(crate) enum StateAccess {
    /// Read and write through the transaction's simulator.
    Simulator(Arc<dyn TxSimulator>),
    /// Read only (a call into another channel).
    ReadOnly(Arc<dyn QueryExecutor>),
    /// No state at all (the caller gave none).
    None,
}

impl StateAccess {
    pub(crate) fn reader(&self) -> Result<&dyn QueryExecutor> {
        match self {
            StateAccess::Simulator(s) => Ok(s.as_ref()),
            StateAccess::ReadOnly(q) => Ok(q.as_ref()),
            StateAccess::None => Err(Error::Ledger(
                "no ledger context: this transaction has no state to read".into(),
            )),
        }
    }

    pub(crate) fn writer(&self) -> Result<&dyn TxSimulator> {
        match self {
            StateAccess::Simulator(s) => Ok(s.as_ref()),
            StateAccess::ReadOnly(_) => Err(Error::Ledger(
                "cannot write state: a chaincode called on another channel may only read".into(),
            )),
            StateAccess::None => Err(Error::Ledger(
                "no ledger context: this transaction has no state to write".into(),
            )),
        }
    }
}

/// The peer's side of one transaction on one chaincode.
pub(crate) struct TransactionContext {
    /// Channel and transaction id.
    pub key: TxKey,
    /// The chaincode's namespace.
    pub namespace: String,
    /// The private data collections of the executing definition (`None`: not checked).
    collections: Option<Arc<[String]>>,
    /// The client's proposal, passed on to called chaincodes.
    pub signed_proposal: Option<SignedProposal>,
    /// State access.
    pub state: StateAccess,
    /// History access.
    pub history: Option<Arc<dyn HistoryQueryExecutor>>,
    /// Open range, rich and history queries.
    queries: Mutex<OpenQueries>,
    /// Where the chaincode's COMPLETED or ERROR goes.
    response: Mutex<Option<oneshot::Sender<ChaincodeMessage>>>,
    /// Set once the chaincode answered: later requests of the transaction are refused, so
    /// nothing changes its state after its result.
    done: AtomicBool,
}

impl TransactionContext {
    pub(crate) fn queries(&self) -> MutexGuard<'_, OpenQueries> {
        self.queries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the chaincode already answered the transaction.
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Refuses a private data request (read, write, range or rich query, metadata) naming a
    /// collection the executing definition does not declare, with the error Fabric's peer
    /// returns there (its collection store's `NoSuchCollectionError`, met when it checks the
    /// creator's access). An empty name is public state: not checked.
    pub(crate) fn check_collection(&self, collection: &str) -> Result<()> {
        if collection.is_empty() || collection_allowed(self.collections.as_deref(), collection) {
            return Ok(());
        }
        Err(Error::Ledger(format!(
            "collection {}/{}/{collection} could not be found",
            self.key.channel_id, self.namespace
        )))
    }

    /// Refuses GET_PRIVATE_DATA_HASH on a collection the executing definition does not
    /// declare, with the error Fabric's ledger returns there (`InvalidCollNameError`: this
    /// request skips the access check).
    pub(crate) fn check_collection_for_hash(&self, collection: &str) -> Result<()> {
        if collection_allowed(self.collections.as_deref(), collection) {
            return Ok(());
        }
        Err(Error::Ledger(format!(
            "collection [{collection}] not defined in the collection config for chaincode [{}]",
            self.namespace
        )))
    }
}

/// Why a context could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A transaction with the same key runs.
    Duplicate,
    /// The stream ended.
    Closed,
}

#[derive(Default)]
struct Contexts {
    map: HashMap<TxKey, Arc<TransactionContext>>,
    /// Set when the stream ended: no new transaction may start.
    closed: bool,
}

/// The transactions running on one chaincode, by channel and transaction id.
#[derive(Default)]
pub(crate) struct TransactionContexts {
    inner: Mutex<Contexts>,
}

/// The parts of a new context.
pub(crate) struct NewContext {
    pub key: TxKey,
    pub namespace: String,
    pub collections: Option<Arc<[String]>>,
    pub signed_proposal: Option<SignedProposal>,
    pub state: StateAccess,
    pub history: Option<Arc<dyn HistoryQueryExecutor>>,
}

impl TransactionContexts {
    fn lock(&self) -> MutexGuard<'_, Contexts> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the context of a new transaction, unless one with the same key runs or the
    /// stream ended.
    pub(crate) fn create(
        &self,
        new: NewContext,
    ) -> Result<(Arc<TransactionContext>, oneshot::Receiver<ChaincodeMessage>), Refused> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        if inner.closed {
            return Err(Refused::Closed);
        }
        if inner.map.contains_key(&new.key) {
            return Err(Refused::Duplicate);
        }
        let ctx = Arc::new(TransactionContext {
            key: new.key.clone(),
            namespace: new.namespace,
            collections: new.collections,
            signed_proposal: new.signed_proposal,
            state: new.state,
            history: new.history,
            queries: Mutex::new(OpenQueries::default()),
            response: Mutex::new(Some(tx)),
            done: AtomicBool::new(false),
        });
        inner.map.insert(new.key, Arc::clone(&ctx));
        Ok((ctx, rx))
    }

    pub(crate) fn get(&self, key: TxKeyRef<'_>) -> Option<Arc<TransactionContext>> {
        self.lock().map.get(&key).cloned()
    }

    /// Removes a context; its open queries are dropped with it.
    pub(crate) fn remove(&self, key: &TxKey) {
        self.lock().map.remove(key);
    }

    /// Hands a COMPLETED or ERROR to its transaction; false when no transaction waits for it.
    pub(crate) fn complete(&self, msg: ChaincodeMessage) -> bool {
        let ctx = self.lock().map.get(&msg.tx_key()).cloned();
        let Some(ctx) = ctx else { return false };
        ctx.done.store(true, Ordering::Release);
        let waiter = ctx
            .response
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match waiter {
            Some(w) => w.send(msg).is_ok(),
            None => false,
        }
    }

    /// Ends every transaction and refuses new ones: their callers see the stream terminated.
    pub(crate) fn close_all(&self) {
        let all: Vec<_> = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.map.drain().map(|(_, c)| c).collect()
        };
        for ctx in all {
            ctx.done.store(true, Ordering::Release);
            ctx.response
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
    }

    /// How many transactions are running.
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }
}
