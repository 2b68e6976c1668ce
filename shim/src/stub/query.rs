//! Queries: ranges, partial composite keys, rich queries and history, with pagination.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use proto::MessageType;
use proto::protos::{
    GetHistoryForKey, GetQueryResult, GetStateByRange, QueryMetadata, QueryResponse,
    QueryResponseMetadata,
};

use super::ChaincodeStub;
use crate::composite::{self, EMPTY_KEY_SUBSTITUTE, MAX_UNICODE_RUNE};
use crate::{Error, HistoryQueryIterator, Result, StateQueryIterator};

/// A page request.
fn page_metadata(page_size: i32, bookmark: &str) -> Result<Bytes> {
    if page_size <= 0 {
        return Err(Error::InvalidArgument(format!(
            "page size must be positive, got {page_size}"
        )));
    }
    Ok(QueryMetadata {
        page_size,
        bookmark: bookmark.to_owned(),
    }
    .encode_to_vec()
    .into())
}

fn partial_key_range(object_type: &str, attributes: &[&str]) -> Result<(String, String)> {
    let start = composite::create_composite_key(object_type, attributes)?;
    let mut end = start.clone();
    end.push(MAX_UNICODE_RUNE);
    Ok((start, end))
}

impl ChaincodeStub {
    /// The keys in `[start, end)` with their values, in key order. An empty `start` means
    /// from the first key and an empty `end` past the last; composite keys are left out.
    pub async fn get_state_by_range(&self, start: &str, end: &str) -> Result<StateQueryIterator> {
        composite::check_simple_keys(&[start, end])?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        self.range(start, end, "", Bytes::new()).await
    }

    /// One page of at most `page_size` keys of `[start, end)`, starting at `bookmark` when it
    /// is not empty; the metadata holds the count and the bookmark of the next page.
    pub async fn get_state_by_range_with_pagination(
        &self,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(StateQueryIterator, QueryResponseMetadata)> {
        composite::check_simple_keys(&[start, end])?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        self.range_page(start, end, "", page_metadata(page_size, bookmark)?)
            .await
    }

    /// The keys made by [`create_composite_key`](crate::create_composite_key) with
    /// `object_type` and the leading `attributes`.
    pub async fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<StateQueryIterator> {
        let (start, end) = partial_key_range(object_type, attributes)?;
        self.range(&start, &end, "", Bytes::new()).await
    }

    /// One page of [`get_state_by_partial_composite_key`](Self::get_state_by_partial_composite_key).
    pub async fn get_state_by_partial_composite_key_with_pagination(
        &self,
        object_type: &str,
        attributes: &[&str],
        page_size: i32,
        bookmark: &str,
    ) -> Result<(StateQueryIterator, QueryResponseMetadata)> {
        let (start, end) = partial_key_range(object_type, attributes)?;
        self.range_page(&start, &end, "", page_metadata(page_size, bookmark)?)
            .await
    }

    /// Runs a rich query (a CouchDB selector, for instance), passed to the state database as
    /// it is.
    pub async fn get_query_result(&self, query: &str) -> Result<StateQueryIterator> {
        let response = self.rich_query(query, "", Bytes::new()).await?;
        Ok(StateQueryIterator::new(Arc::clone(&self.tx), response))
    }

    /// One page of a rich query.
    pub async fn get_query_result_with_pagination(
        &self,
        query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(StateQueryIterator, QueryResponseMetadata)> {
        let response = self
            .rich_query(query, "", page_metadata(page_size, bookmark)?)
            .await?;
        StateQueryIterator::page(Arc::clone(&self.tx), response).await
    }

    /// Every value `key` had, newest first, with the transaction that wrote it.
    pub async fn get_history_for_key(&self, key: &str) -> Result<HistoryQueryIterator> {
        if key.is_empty() {
            return Err(Error::InvalidArgument(
                "key must not be an empty string".into(),
            ));
        }
        let req = GetHistoryForKey {
            key: key.to_owned(),
        };
        let response: QueryResponse = self
            .tx
            .call_decode(MessageType::GetHistoryForKey, &req, "QueryResponse")
            .await?;
        Ok(HistoryQueryIterator::new(Arc::clone(&self.tx), response))
    }

    /// The keys of private data `collection` in `[start, end)`.
    pub async fn get_private_data_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<StateQueryIterator> {
        if collection.is_empty() {
            return Err(Error::InvalidArgument(
                "collection must not be an empty string".into(),
            ));
        }
        composite::check_simple_keys(&[start, end])?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        self.range(start, end, collection, Bytes::new()).await
    }

    /// The composite keys of private data `collection` with the given prefix.
    pub async fn get_private_data_by_partial_composite_key(
        &self,
        collection: &str,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<StateQueryIterator> {
        if collection.is_empty() {
            return Err(Error::InvalidArgument(
                "collection must not be an empty string".into(),
            ));
        }
        let (start, end) = partial_key_range(object_type, attributes)?;
        self.range(&start, &end, collection, Bytes::new()).await
    }

    /// Runs a rich query on private data `collection`.
    pub async fn get_private_data_query_result(
        &self,
        collection: &str,
        query: &str,
    ) -> Result<StateQueryIterator> {
        if collection.is_empty() {
            return Err(Error::InvalidArgument(
                "collection must not be an empty string".into(),
            ));
        }
        let response = self.rich_query(query, collection, Bytes::new()).await?;
        Ok(StateQueryIterator::new(Arc::clone(&self.tx), response))
    }

    async fn range(
        &self,
        start: &str,
        end: &str,
        collection: &str,
        metadata: Bytes,
    ) -> Result<StateQueryIterator> {
        let response = self.range_request(start, end, collection, metadata).await?;
        Ok(StateQueryIterator::new(Arc::clone(&self.tx), response))
    }

    async fn range_page(
        &self,
        start: &str,
        end: &str,
        collection: &str,
        metadata: Bytes,
    ) -> Result<(StateQueryIterator, QueryResponseMetadata)> {
        let response = self.range_request(start, end, collection, metadata).await?;
        StateQueryIterator::page(Arc::clone(&self.tx), response).await
    }

    async fn range_request(
        &self,
        start: &str,
        end: &str,
        collection: &str,
        metadata: Bytes,
    ) -> Result<QueryResponse> {
        let req = GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            collection: collection.to_owned(),
            metadata,
        };
        self.tx
            .call_decode(MessageType::GetStateByRange, &req, "QueryResponse")
            .await
    }

    async fn rich_query(
        &self,
        query: &str,
        collection: &str,
        metadata: Bytes,
    ) -> Result<QueryResponse> {
        let req = GetQueryResult {
            query: query.to_owned(),
            collection: collection.to_owned(),
            metadata,
        };
        self.tx
            .call_decode(MessageType::GetQueryResult, &req, "QueryResponse")
            .await
    }
}
