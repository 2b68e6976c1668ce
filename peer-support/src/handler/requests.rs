//! State requests from a chaincode: each gets a RESPONSE or an ERROR for its transaction.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use proto::MessageType;
use proto::protos::{
    ChaincodeMessage, DelState, GetHistoryForKey, GetQueryResult, GetState, GetStateByRange,
    GetStateMetadata, GetStateMultiple, GetStateMultipleResult, PurgePrivateState, PutState,
    PutStateMetadata, QueryMetadata, QueryStateClose, QueryStateNext, StateMetadata,
    StateMetadataResult, WriteBatchState, WriteRecord, write_record,
};

use super::Handler;
use crate::ledger::Metadata;
use crate::query::{OpenQuery, QuerySource};
use crate::tx_context::TransactionContext;
use crate::{Error, Result};

/// Whether `kind` is a request a chaincode sends during a transaction.
pub(super) fn is_request(kind: MessageType) -> bool {
    use MessageType as T;
    matches!(
        kind,
        T::GetState
            | T::GetStateMultiple
            | T::PutState
            | T::DelState
            | T::GetStateMetadata
            | T::PutStateMetadata
            | T::GetPrivateDataHash
            | T::PurgePrivateData
            | T::WriteBatchState
            | T::GetStateByRange
            | T::GetQueryResult
            | T::QueryStateNext
            | T::QueryStateClose
            | T::GetHistoryForKey
            | T::InvokeChaincode
    )
}

fn decode<T: Message + Default>(payload: &Bytes, what: &'static str) -> Result<T> {
    T::decode(payload.clone()).map_err(|e| Error::decode(what, e))
}

fn metadata_result(metadata: Metadata) -> Bytes {
    StateMetadataResult {
        entries: metadata
            .into_iter()
            .map(|(metakey, value)| StateMetadata { metakey, value })
            .collect(),
    }
    .encode_to_vec()
    .into()
}

/// Decodes an optional QueryMetadata: `Some((page_size, bookmark))` for a paginated query.
fn pagination(metadata: &Bytes) -> Result<Option<(usize, String)>> {
    if metadata.is_empty() {
        return Ok(None);
    }
    let m: QueryMetadata = decode(metadata, "QueryMetadata")?;
    if m.page_size < 0 {
        return Err(Error::Ledger(format!(
            "page size must not be negative, got {}",
            m.page_size
        )));
    }
    if m.page_size == 0 && m.bookmark.is_empty() {
        return Ok(None);
    }
    let size = if m.page_size == 0 {
        usize::MAX
    } else {
        m.page_size as usize
    };
    Ok(Some((size, m.bookmark)))
}

/// Keys a chaincode may not write: the peer's own entries in a chaincode's namespace start
/// so ([`crate::INITIALIZED_KEY`]); composite keys (U+0000 then an object type) never do,
/// since Fabric's shims refuse U+10FFFF in their parts.
const RESERVED_KEY_PREFIX: &str = "\u{0}\u{10FFFF}";

impl Handler {
    /// The reply to a state request: RESPONSE with its result, or ERROR.
    pub(super) fn reply_to_state(&self, msg: &ChaincodeMessage) -> ChaincodeMessage {
        let outcome = self.context_of(msg).and_then(|ctx| {
            let kind = msg
                .kind()
                .ok_or_else(|| Error::Protocol("unknown message type".into()))?;
            self.serve_state(&ctx, kind, &msg.payload)
        });
        self.answer(msg, outcome)
    }

    /// The reply to INVOKE_CHAINCODE, once the callee answered.
    pub(super) async fn reply_to_invoke(&self, msg: &ChaincodeMessage) -> ChaincodeMessage {
        let outcome = match self.context_of(msg) {
            Ok(ctx) => self.invoke_chaincode(&ctx, &msg.payload).await,
            Err(e) => Err(e),
        };
        self.answer(msg, outcome)
    }

    fn context_of(&self, msg: &ChaincodeMessage) -> Result<Arc<TransactionContext>> {
        let ctx = self.contexts.get(msg.tx_key()).ok_or_else(|| {
            Error::Protocol(format!(
                "no transaction context for {}: the transaction is not running on chaincode {}",
                msg.tx_key(),
                self.name()
            ))
        })?;
        if ctx.is_done() {
            return Err(Error::Protocol(format!(
                "transaction {} already has its result: no more requests",
                msg.tx_key()
            )));
        }
        Ok(ctx)
    }

    /// RESPONSE with the result, or ERROR with the failure, for request `msg`.
    fn answer(&self, msg: &ChaincodeMessage, outcome: Result<Bytes>) -> ChaincodeMessage {
        match outcome {
            Ok(payload) => ChaincodeMessage::with_payload(
                MessageType::Response,
                msg.channel_id.clone(),
                msg.txid.clone(),
                payload,
            ),
            Err(e) => {
                let text = format!("{} failed: {}", msg.kind_name(), e.report());
                tracing::debug!(chaincode = self.name(), txid = %msg.txid, "{text}");
                ChaincodeMessage::error_reply(msg, text)
            }
        }
    }

    fn serve_state(
        &self,
        ctx: &TransactionContext,
        kind: MessageType,
        payload: &Bytes,
    ) -> Result<Bytes> {
        use MessageType as T;
        let ns = ctx.namespace.as_str();
        let empty = Bytes::new();
        match kind {
            T::GetState => {
                let r: GetState = decode(payload, "GetState")?;
                ctx.check_collection(&r.collection)?;
                let state = ctx.state.reader()?;
                let value = if r.collection.is_empty() {
                    state.get_state(ns, &r.key)?
                } else {
                    state.get_private_data(ns, &r.collection, &r.key)?
                };
                Ok(value.unwrap_or_default())
            }
            T::GetPrivateDataHash => {
                let r: GetState = decode(payload, "GetState")?;
                ctx.check_collection_for_hash(&r.collection)?;
                Ok(ctx
                    .state
                    .reader()?
                    .get_private_data_hash(ns, &r.collection, &r.key)?
                    .unwrap_or_default())
            }
            T::GetStateMultiple => {
                let r: GetStateMultiple = decode(payload, "GetStateMultiple")?;
                if let Some(max) = self.config.get_multiple.filter(|m| *m > 0)
                    && r.keys.len() > max as usize
                {
                    return Err(Error::Ledger(format!(
                        "{} keys asked for at once; the limit is {max}",
                        r.keys.len()
                    )));
                }
                ctx.check_collection(&r.collection)?;
                let state = ctx.state.reader()?;
                let values = if r.collection.is_empty() {
                    state.get_state_multiple(ns, &r.keys)?
                } else {
                    r.keys
                        .iter()
                        .map(|k| state.get_private_data(ns, &r.collection, k))
                        .collect::<Result<_>>()?
                };
                let result = GetStateMultipleResult {
                    values: values.into_iter().map(Option::unwrap_or_default).collect(),
                };
                Ok(result.encode_to_vec().into())
            }
            T::PutState => {
                let r: PutState = decode(payload, "PutState")?;
                self.apply_write(
                    ctx,
                    WriteRecord {
                        key: r.key,
                        value: r.value,
                        collection: r.collection,
                        r#type: write_record::Type::PutState as i32,
                        ..WriteRecord::default()
                    },
                )?;
                Ok(empty)
            }
            T::DelState => {
                let r: DelState = decode(payload, "DelState")?;
                self.apply_write(
                    ctx,
                    WriteRecord {
                        key: r.key,
                        collection: r.collection,
                        r#type: write_record::Type::DelState as i32,
                        ..WriteRecord::default()
                    },
                )?;
                Ok(empty)
            }
            T::PutStateMetadata => {
                let r: PutStateMetadata = decode(payload, "PutStateMetadata")?;
                self.apply_write(
                    ctx,
                    WriteRecord {
                        key: r.key,
                        collection: r.collection,
                        metadata: r.metadata,
                        r#type: write_record::Type::PutStateMetadata as i32,
                        ..WriteRecord::default()
                    },
                )?;
                Ok(empty)
            }
            T::PurgePrivateData => {
                let r: PurgePrivateState = decode(payload, "PurgePrivateState")?;
                self.apply_write(
                    ctx,
                    WriteRecord {
                        key: r.key,
                        collection: r.collection,
                        r#type: write_record::Type::PurgePrivateData as i32,
                        ..WriteRecord::default()
                    },
                )?;
                Ok(empty)
            }
            T::WriteBatchState => {
                let r: WriteBatchState = decode(payload, "WriteBatchState")?;
                if let Some(max) = self.config.write_batch.filter(|m| *m > 0)
                    && r.rec.len() > max as usize
                {
                    return Err(Error::Ledger(format!(
                        "{} writes in one batch; the limit is {max}",
                        r.rec.len()
                    )));
                }
                // A batch naming an undefined collection changes nothing.
                for record in &r.rec {
                    ctx.check_collection(&record.collection)?;
                }
                for record in r.rec {
                    self.apply_write(ctx, record)?;
                }
                Ok(empty)
            }
            T::GetStateMetadata => {
                let r: GetStateMetadata = decode(payload, "GetStateMetadata")?;
                ctx.check_collection(&r.collection)?;
                let state = ctx.state.reader()?;
                let metadata = if r.collection.is_empty() {
                    state.get_state_metadata(ns, &r.key)?
                } else {
                    state.get_private_data_metadata(ns, &r.collection, &r.key)?
                };
                Ok(metadata_result(metadata))
            }
            T::GetStateByRange => {
                let r: GetStateByRange = decode(payload, "GetStateByRange")?;
                ctx.check_collection(&r.collection)?;
                let state = ctx.state.reader()?;
                let page = pagination(&r.metadata)?;
                let start = match &page {
                    Some((_, bookmark)) if !bookmark.is_empty() => bookmark.as_str(),
                    _ => r.start_key.as_str(),
                };
                let source = if r.collection.is_empty() {
                    state.get_state_range(ns, start, &r.end_key)?
                } else {
                    state.get_private_data_range(ns, &r.collection, start, &r.end_key)?
                };
                self.open_query(ctx, source, page, false)
            }
            T::GetQueryResult => {
                let r: GetQueryResult = decode(payload, "GetQueryResult")?;
                ctx.check_collection(&r.collection)?;
                let state = ctx.state.reader()?;
                let source = if r.collection.is_empty() {
                    state.execute_query(ns, &r.query)?
                } else {
                    state.execute_query_on_private_data(ns, &r.collection, &r.query)?
                };
                self.open_query(ctx, source, pagination(&r.metadata)?, true)
            }
            T::GetHistoryForKey => {
                let r: GetHistoryForKey = decode(payload, "GetHistoryForKey")?;
                let history = ctx.history.as_ref().ok_or_else(|| {
                    Error::Ledger("history is not available for this transaction".into())
                })?;
                let query = OpenQuery::new(
                    QuerySource::History(history.get_history_for_key(ns, &r.key)?),
                    self.config.total_query_limit,
                );
                let batch = ctx.queries().open(query, self.config.query_batch_size)?;
                Ok(batch.encode_to_vec().into())
            }
            T::QueryStateNext => {
                let r: QueryStateNext = decode(payload, "QueryStateNext")?;
                let batch = ctx.queries().next(&r.id, self.config.query_batch_size)?;
                Ok(batch.encode_to_vec().into())
            }
            T::QueryStateClose => {
                let r: QueryStateClose = decode(payload, "QueryStateClose")?;
                Ok(ctx.queries().close(&r.id).encode_to_vec().into())
            }
            other => Err(Error::Protocol(format!(
                "{} is not a state request",
                other.as_str_name()
            ))),
        }
    }

    fn open_query(
        &self,
        ctx: &TransactionContext,
        source: Box<dyn crate::ledger::StateIterator>,
        page: Option<(usize, String)>,
        skip_to_bookmark: bool,
    ) -> Result<Bytes> {
        let query = match page {
            Some((size, bookmark)) => {
                // A page is read at once: never more than the total query limit.
                let size = size.min(self.config.total_query_limit);
                // A range starts at its bookmark; a rich query skips to it.
                let skip = if skip_to_bookmark {
                    bookmark.as_str()
                } else {
                    ""
                };
                OpenQuery::page(source, size, skip)?
            }
            None => OpenQuery::new(QuerySource::State(source), self.config.total_query_limit),
        };
        let batch = ctx.queries().open(query, self.config.query_batch_size)?;
        Ok(batch.encode_to_vec().into())
    }

    /// Applies one write (from a single request or a batch) to the transaction's simulator.
    fn apply_write(&self, ctx: &TransactionContext, record: WriteRecord) -> Result<()> {
        use write_record::Type as W;
        let ns = ctx.namespace.as_str();
        let sim = ctx.state.writer()?;
        let (key, coll) = (record.key.as_str(), record.collection.as_str());
        if key.is_empty() {
            return Err(Error::Ledger("key must not be an empty string".into()));
        }
        if coll.is_empty() && key.starts_with(RESERVED_KEY_PREFIX) {
            return Err(Error::Ledger(format!(
                "key {key:?} is reserved for the peer (it starts with U+0000 U+10FFFF)"
            )));
        }
        ctx.check_collection(coll)?;
        let private = !coll.is_empty();
        match W::try_from(record.r#type) {
            Ok(W::PutState) if private => sim.set_private_data(ns, coll, key, record.value),
            Ok(W::PutState) => sim.set_state(ns, key, record.value),
            Ok(W::DelState) if private => sim.delete_private_data(ns, coll, key),
            Ok(W::DelState) => sim.delete_state(ns, key),
            Ok(W::PutStateMetadata) => {
                let m = record.metadata.ok_or_else(|| {
                    Error::Ledger(format!("metadata write to {key} has no entry"))
                })?;
                if private {
                    sim.set_private_data_metadata(ns, coll, key, &m.metakey, m.value)
                } else {
                    sim.set_state_metadata(ns, key, &m.metakey, m.value)
                }
            }
            Ok(W::PurgePrivateData) if private => sim.purge_private_data(ns, coll, key),
            Ok(W::PurgePrivateData) => Err(Error::Ledger(
                "purging needs a private data collection".into(),
            )),
            Ok(W::Undefined) | Err(_) => Err(Error::Protocol(format!(
                "write record for {key} has no valid type ({})",
                record.r#type
            ))),
        }
    }
}
