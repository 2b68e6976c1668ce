//! Iterators over query results, fetching further batches from the peer as they go.

use std::marker::PhantomData;
use std::sync::Arc;

use prost::Message;
use proto::MessageType;
use proto::protos::{
    QueryResponse, QueryResponseMetadata, QueryResultBytes, QueryStateClose, QueryStateNext,
};
use proto::queryresult::{KeyModification, Kv};

use crate::stub::TxContext;
use crate::{Error, Result};

/// Results of a range, partial composite key or rich query.
pub type StateQueryIterator = QueryIterator<Kv>;
/// Results of a history query, newest first.
pub type HistoryQueryIterator = QueryIterator<KeyModification>;

/// Iterates over a query's results. The peer sends them in batches; when a batch is used up
/// and the peer said it has more, [`next`](Self::next) asks for the next one
/// (QUERY_STATE_NEXT).
///
/// Call [`close`](Self::close) when done early, so the peer frees the query at once; the peer
/// frees every query of a transaction when the transaction ends in any case.
pub struct QueryIterator<T> {
    tx: Arc<TxContext>,
    id: String,
    batch: std::vec::IntoIter<QueryResultBytes>,
    has_more: bool,
    _record: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for QueryIterator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryIterator")
            .field("id", &self.id)
            .field("buffered", &self.batch.len())
            .field("has_more", &self.has_more)
            .finish()
    }
}

impl<T: Message + Default> QueryIterator<T> {
    pub(crate) fn new(tx: Arc<TxContext>, response: QueryResponse) -> Self {
        Self {
            tx,
            id: response.id,
            batch: response.results.into_iter(),
            has_more: response.has_more,
            _record: PhantomData,
        }
    }

    /// Reads a whole page: every batch until the peer has no more, then the page's metadata.
    pub(crate) async fn page(
        tx: Arc<TxContext>,
        mut response: QueryResponse,
    ) -> Result<(Self, QueryResponseMetadata)> {
        let mut results = std::mem::take(&mut response.results);
        while response.has_more {
            response = next_batch(&tx, &response.id).await?;
            results.append(&mut response.results);
        }
        let metadata = QueryResponseMetadata::decode(response.metadata.clone())
            .map_err(|e| Error::decode("QueryResponseMetadata", e))?;
        response.results = results;
        Ok((Self::new(tx, response), metadata))
    }

    /// The next result, `None` after the last one.
    pub async fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(record) = self.batch.next() {
                return Some(
                    T::decode(record.result_bytes).map_err(|e| Error::decode("a query result", e)),
                );
            }
            if !self.has_more {
                return None;
            }
            match next_batch(&self.tx, &self.id).await {
                Ok(response) => {
                    self.batch = response.results.into_iter();
                    self.has_more = response.has_more;
                }
                Err(e) => {
                    self.has_more = false;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Every remaining result.
    pub async fn collect(mut self) -> Result<Vec<T>> {
        let mut all = Vec::with_capacity(self.batch.len());
        while let Some(record) = self.next().await {
            all.push(record?);
        }
        Ok(all)
    }

    /// Tells the peer the query is no longer needed. Nothing is sent when the peer already
    /// delivered the last batch (it has freed the query then).
    pub async fn close(self) -> Result<()> {
        if self.has_more {
            let req = QueryStateClose { id: self.id };
            self.tx.call(MessageType::QueryStateClose, &req).await?;
        }
        Ok(())
    }
}

async fn next_batch(tx: &TxContext, id: &str) -> Result<QueryResponse> {
    let req = QueryStateNext { id: id.to_owned() };
    tx.call_decode(MessageType::QueryStateNext, &req, "QueryResponse")
        .await
}
