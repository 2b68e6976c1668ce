//! Open queries of a transaction and the batches they are returned in.
//!
//! Results go out in batches of at most `query_batch_size` records (Fabric: 100); `has_more`
//! says whether QUERY_STATE_NEXT will find more. A paginated query reads its whole page when
//! it is opened, so every batch can carry the page's metadata (record count and the bookmark
//! of the next page): shims that read the metadata from the first batch (Fabric's do) get the
//! right answer for pages larger than one batch too.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use prost::Message;
use proto::protos::{QueryResponse, QueryResponseMetadata, QueryResultBytes};

use crate::ledger::{HistoryIterator, StateIterator};
use crate::{Error, Result};

/// Where a query's records come from.
pub(crate) enum QuerySource {
    State(Box<dyn StateIterator>),
    History(Box<dyn HistoryIterator>),
    /// A page read in full when the query was opened.
    Page(VecDeque<Bytes>),
}

impl QuerySource {
    /// The next record, encoded.
    fn next(&mut self) -> Result<Option<Bytes>> {
        Ok(match self {
            QuerySource::State(it) => it.next()?.map(|kv| kv.encode_to_vec().into()),
            QuerySource::History(it) => it.next()?.map(|m| m.encode_to_vec().into()),
            QuerySource::Page(records) => records.pop_front(),
        })
    }
}

/// One open query.
pub(crate) struct OpenQuery {
    source: QuerySource,
    /// A record read ahead to learn whether there are more.
    peeked: Option<Bytes>,
    /// Records returned so far.
    returned: usize,
    /// Most records to return.
    limit: usize,
    /// The encoded page metadata, for paginated queries.
    metadata: Bytes,
}

impl OpenQuery {
    /// An unpaginated query returning at most `limit` records.
    pub(crate) fn new(source: QuerySource, limit: usize) -> Self {
        Self {
            source,
            peeked: None,
            returned: 0,
            limit,
            metadata: Bytes::new(),
        }
    }

    /// A paginated query: reads up to `page_size` records of `source` now, skipping records
    /// whose key is before `skip_before` (a bookmark the source could not start at), and
    /// notes the key of the record after the page as the next bookmark.
    pub(crate) fn page(
        mut source: Box<dyn StateIterator>,
        page_size: usize,
        skip_before: &str,
    ) -> Result<Self> {
        let mut records = VecDeque::with_capacity(page_size.min(1024));
        let mut bookmark = String::new();
        while let Some(kv) = source.next()? {
            if kv.key.as_str() < skip_before {
                continue;
            }
            if records.len() == page_size {
                bookmark = kv.key;
                break;
            }
            records.push_back(kv.encode_to_vec().into());
        }
        let metadata = QueryResponseMetadata {
            fetched_records_count: i32::try_from(records.len()).unwrap_or(i32::MAX),
            bookmark,
        };
        Ok(Self {
            limit: records.len(),
            source: QuerySource::Page(records),
            peeked: None,
            returned: 0,
            metadata: metadata.encode_to_vec().into(),
        })
    }

    fn pull(&mut self) -> Result<Option<Bytes>> {
        match self.peeked.take() {
            Some(r) => Ok(Some(r)),
            None => self.source.next(),
        }
    }

    fn has_more(&mut self) -> Result<bool> {
        if self.returned >= self.limit {
            return Ok(false);
        }
        if self.peeked.is_none() {
            self.peeked = self.source.next()?;
        }
        Ok(self.peeked.is_some())
    }

    /// The next batch of at most `batch_size` records.
    pub(crate) fn next_batch(&mut self, id: &str, batch_size: usize) -> Result<QueryResponse> {
        let mut results = Vec::with_capacity(batch_size.min(self.limit - self.returned));
        while results.len() < batch_size && self.returned < self.limit {
            match self.pull()? {
                Some(record) => {
                    results.push(QueryResultBytes {
                        result_bytes: record,
                    });
                    self.returned += 1;
                }
                None => break,
            }
        }
        let has_more = self.has_more()?;
        if !has_more
            && self.returned >= self.limit
            && self.metadata.is_empty()
            && (self.peeked.is_some() || self.source.next()?.is_some())
        {
            tracing::warn!(
                query = id,
                limit = self.limit,
                "query stopped at the total query limit"
            );
        }
        Ok(QueryResponse {
            results,
            has_more,
            id: id.to_owned(),
            metadata: self.metadata.clone(),
        })
    }
}

/// The open queries of one transaction, by id.
#[derive(Default)]
pub(crate) struct OpenQueries {
    next_id: u64,
    open: HashMap<String, OpenQuery>,
}

impl OpenQueries {
    /// Registers `query`, returns its first batch and keeps it open if it has more.
    pub(crate) fn open(
        &mut self,
        mut query: OpenQuery,
        batch_size: usize,
    ) -> Result<QueryResponse> {
        self.next_id += 1;
        let id = format!("q{}", self.next_id);
        let batch = query.next_batch(&id, batch_size)?;
        if batch.has_more {
            self.open.insert(id, query);
        }
        Ok(batch)
    }

    /// The next batch of query `id`; the query is closed after its last batch.
    pub(crate) fn next(&mut self, id: &str, batch_size: usize) -> Result<QueryResponse> {
        let query = self
            .open
            .get_mut(id)
            .ok_or_else(|| Error::Ledger(format!("query {id} is not open in this transaction")))?;
        let batch = query.next_batch(id, batch_size);
        if !matches!(batch, Ok(ref b) if b.has_more) {
            self.open.remove(id);
        }
        batch
    }

    /// Closes query `id` (nothing happens if it is not open).
    pub(crate) fn close(&mut self, id: &str) -> QueryResponse {
        self.open.remove(id);
        QueryResponse {
            id: id.to_owned(),
            ..QueryResponse::default()
        }
    }

    /// How many queries are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::queryresult::Kv;

    fn source(n: usize) -> Box<dyn StateIterator> {
        let records: VecDeque<Result<Kv>> = (0..n)
            .map(|i| {
                Ok(Kv {
                    key: format!("k{i:03}"),
                    ..Kv::default()
                })
            })
            .collect();
        Box::new(records)
    }

    fn keys(batch: &QueryResponse) -> Vec<String> {
        batch
            .results
            .iter()
            .map(|r| Kv::decode(r.result_bytes.clone()).unwrap().key)
            .collect()
    }

    #[test]
    fn batches_of_at_most_the_batch_size() {
        let mut open = OpenQueries::default();
        let first = open
            .open(
                OpenQuery::new(QuerySource::State(source(250)), usize::MAX),
                100,
            )
            .unwrap();
        assert_eq!((first.results.len(), first.has_more), (100, true));
        let second = open.next(&first.id, 100).unwrap();
        assert_eq!((second.results.len(), second.has_more), (100, true));
        let third = open.next(&first.id, 100).unwrap();
        assert_eq!((third.results.len(), third.has_more), (50, false));
        assert_eq!(open.len(), 0, "closed after the last batch");
        assert!(open.next(&first.id, 100).is_err());
    }

    #[test]
    fn exact_multiple_says_no_more_on_the_last_full_batch() {
        let mut open = OpenQueries::default();
        let first = open
            .open(
                OpenQuery::new(QuerySource::State(source(100)), usize::MAX),
                100,
            )
            .unwrap();
        assert_eq!((first.results.len(), first.has_more), (100, false));
        assert_eq!(open.len(), 0);
    }

    #[test]
    fn pages_carry_count_and_next_bookmark_in_every_batch() {
        let mut open = OpenQueries::default();
        let page = OpenQuery::page(source(300), 150, "k010").unwrap();
        let first = open.open(page, 100).unwrap();
        let meta = QueryResponseMetadata::decode(first.metadata.clone()).unwrap();
        assert_eq!(meta.fetched_records_count, 150);
        assert_eq!(meta.bookmark, "k160");
        assert_eq!(keys(&first)[0], "k010");
        assert!(first.has_more);
        let second = open.next(&first.id, 100).unwrap();
        assert_eq!((second.results.len(), second.has_more), (50, false));
        assert_eq!(second.metadata, first.metadata);
        // The last page has no bookmark.
        let last = OpenQuery::page(source(300), 1000, "k290").unwrap();
        let b = OpenQueries::default().open(last, 100).unwrap();
        let meta = QueryResponseMetadata::decode(b.metadata).unwrap();
        assert_eq!(
            (meta.fetched_records_count, meta.bookmark.as_str()),
            (10, "")
        );
    }

    #[test]
    fn total_limit_stops_unpaginated_queries() {
        let mut open = OpenQueries::default();
        let first = open
            .open(OpenQuery::new(QuerySource::State(source(50)), 30), 100)
            .unwrap();
        assert_eq!((first.results.len(), first.has_more), (30, false));
    }
}
