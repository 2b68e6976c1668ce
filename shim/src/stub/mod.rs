//! The stub: what a transaction sees of the peer.
//!
//! One [`ChaincodeStub`] per transaction. Its calls go to the peer on the transaction's
//! stream; calls made concurrently from one transaction (with `join!`, say) are sent one at a
//! time, since the protocol routes replies by transaction.

mod query;
mod state;

pub use state::VALIDATION_PARAMETER;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use prost::Message;
use proto::msp::SerializedIdentity;
use proto::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec, Response,
    SignedProposal, WriteBatchState, WriteRecord,
};
use proto::{MessageType, Timestamp, TxKey};

use crate::handler::Handler;
use crate::proposal::ProposalParts;
use crate::{Error, Result};

/// What one transaction owns: its key, its stream, its request lock and its batched writes.
pub(crate) struct TxContext {
    handler: Arc<Handler>,
    key: TxKey,
    /// One request at a time per transaction: replies are routed by transaction.
    lock: tokio::sync::Mutex<()>,
    /// Writes held back for one WRITE_BATCH_STATE, when the peer accepts batches.
    batch: Option<Mutex<Vec<WriteRecord>>>,
}

impl TxContext {
    /// Sends one request and returns the RESPONSE payload.
    pub(crate) async fn call(&self, kind: MessageType, payload: &impl Message) -> Result<Bytes> {
        let _one_at_a_time = self.lock.lock().await;
        self.handler
            .request(&self.key, kind, payload.encode_to_vec())
            .await
    }

    /// Sends a request whose RESPONSE payload is an encoded `T`.
    pub(crate) async fn call_decode<T: Message + Default>(
        &self,
        kind: MessageType,
        payload: &impl Message,
        what: &'static str,
    ) -> Result<T> {
        let bytes = self.call(kind, payload).await?;
        T::decode(bytes).map_err(|e| Error::decode(what, e))
    }

    /// Queues a write when batching; returns it back when the write must be sent now.
    fn batch(&self, record: WriteRecord) -> Option<WriteRecord> {
        match &self.batch {
            Some(batch) => {
                batch.lock().unwrap_or_else(|e| e.into_inner()).push(record);
                None
            }
            None => Some(record),
        }
    }
}

/// The API a chaincode uses during one transaction: its arguments and proposal, the ledger
/// state, queries, events and calls to other chaincodes.
pub struct ChaincodeStub {
    tx: Arc<TxContext>,
    input: ChaincodeInput,
    signed_proposal: Option<SignedProposal>,
    proposal: OnceLock<std::result::Result<ProposalParts, String>>,
    event: Mutex<Option<ChaincodeEvent>>,
}

impl std::fmt::Debug for ChaincodeStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeStub")
            .field("tx", &self.tx.key)
            .field("args", &self.input.args.len())
            .finish_non_exhaustive()
    }
}

impl ChaincodeStub {
    pub(crate) fn new(
        handler: Arc<Handler>,
        key: TxKey,
        input: ChaincodeInput,
        signed_proposal: Option<SignedProposal>,
    ) -> Self {
        let batch = handler.params().write_batch.map(|_| Mutex::new(Vec::new()));
        Self {
            tx: Arc::new(TxContext {
                handler,
                key,
                lock: tokio::sync::Mutex::new(()),
                batch,
            }),
            input,
            signed_proposal,
            proposal: OnceLock::new(),
            event: Mutex::new(None),
        }
    }

    /// The invocation's arguments, the function name first.
    pub fn args(&self) -> &[Bytes] {
        &self.input.args
    }

    /// The arguments as text (invalid UTF-8 replaced).
    pub fn string_args(&self) -> Vec<String> {
        self.input
            .args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// The first argument as the function name and the rest as its parameters (Fabric's
    /// `GetFunctionAndParameters`); an empty function when there are no arguments.
    pub fn function_and_parameters(&self) -> (String, Vec<String>) {
        let mut args = self.string_args().into_iter();
        let function = args.next().unwrap_or_default();
        (function, args.collect())
    }

    /// Whether the invocation was marked as the chaincode's init (`ChaincodeInput.is_init`).
    pub fn is_init(&self) -> bool {
        self.input.is_init
    }

    /// Values the peer's decorators added to the input.
    pub fn decorations(&self) -> &BTreeMap<String, Bytes> {
        &self.input.decorations
    }

    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx.key.txid
    }

    /// The channel id.
    pub fn channel_id(&self) -> &str {
        &self.tx.key.channel_id
    }

    /// The client's signed proposal, if the peer sent one.
    pub fn signed_proposal(&self) -> Option<&SignedProposal> {
        self.signed_proposal.as_ref()
    }

    fn proposal(&self) -> Result<&ProposalParts> {
        self.proposal
            .get_or_init(|| ProposalParts::decode(self.signed_proposal.as_ref()))
            .as_ref()
            .map_err(|e| Error::InvalidArgument(format!("transaction {}: {e}", self.tx.key)))
    }

    /// The creator of the transaction: an encoded `msp.SerializedIdentity`.
    pub fn creator(&self) -> Result<&Bytes> {
        Ok(&self.proposal()?.creator)
    }

    /// The creator of the transaction, decoded: its MSP id and PEM certificate.
    pub fn creator_identity(&self) -> Result<SerializedIdentity> {
        SerializedIdentity::decode(self.creator()?.clone())
            .map_err(|e| Error::decode("the creator's SerializedIdentity", e))
    }

    /// The transient map: private inputs that are not recorded on the ledger.
    pub fn transient(&self) -> Result<&BTreeMap<String, Bytes>> {
        Ok(&self.proposal()?.transient)
    }

    /// When the client created the transaction (the channel header's timestamp).
    pub fn tx_timestamp(&self) -> Result<Timestamp> {
        self.proposal()?
            .timestamp
            .ok_or_else(|| Error::InvalidArgument("the channel header has no timestamp".into()))
    }

    /// The binding of the proposal: SHA-256 over nonce, creator and epoch (Fabric's
    /// `GetBinding`), which ties other data to this proposal.
    pub fn binding(&self) -> Result<&[u8]> {
        Ok(&self.proposal()?.binding)
    }

    /// Sets the event delivered with this transaction's result; a later call replaces it.
    pub fn set_event(&self, name: &str, payload: impl Into<Bytes>) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "event name must not be empty".into(),
            ));
        }
        let event = ChaincodeEvent {
            event_name: name.to_owned(),
            payload: payload.into(),
            ..ChaincodeEvent::default()
        };
        *self.event.lock().unwrap_or_else(|e| e.into_inner()) = Some(event);
        Ok(())
    }

    /// Invokes chaincode `name` (or `name:version`) with `args` in this transaction, on
    /// `channel` (empty for this transaction's channel).
    ///
    /// The callee's failure comes back as a response with its status and message; an error is
    /// returned only when the call itself could not be made.
    pub async fn invoke_chaincode<A: AsRef<[u8]>>(
        &self,
        name: &str,
        args: &[A],
        channel: &str,
    ) -> Result<Response> {
        let target = if channel.is_empty() {
            name.to_owned()
        } else {
            format!("{name}/{channel}")
        };
        let spec = ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name: target,
                ..ChaincodeId::default()
            }),
            input: Some(ChaincodeInput {
                args: args
                    .iter()
                    .map(|a| Bytes::copy_from_slice(a.as_ref()))
                    .collect(),
                ..ChaincodeInput::default()
            }),
            ..ChaincodeSpec::default()
        };
        let reply: ChaincodeMessage = self
            .tx
            .call_decode(MessageType::InvokeChaincode, &spec, "the callee's reply")
            .await?;
        match reply.kind() {
            Some(MessageType::Completed) => Response::decode(reply.payload)
                .map_err(|e| Error::decode("the callee's Response", e)),
            Some(MessageType::Error) => Ok(Response::error(reply.payload_text())),
            _ => Err(Error::Protocol(format!(
                "the callee replied with {}",
                reply.kind_name()
            ))),
        }
    }

    /// Sends batched writes and returns the event, once the chaincode returned.
    pub(crate) async fn finish(&self) -> Result<Option<ChaincodeEvent>> {
        if let Some(batch) = &self.tx.batch {
            let records = std::mem::take(&mut *batch.lock().unwrap_or_else(|e| e.into_inner()));
            let max = match self.tx.handler.params().write_batch {
                Some(0) | None => usize::MAX,
                Some(n) => n as usize,
            };
            for chunk in records.chunks(max) {
                let batch = WriteBatchState {
                    rec: chunk.to_vec(),
                };
                self.tx.call(MessageType::WriteBatchState, &batch).await?;
            }
        }
        Ok(self.event.lock().unwrap_or_else(|e| e.into_inner()).take())
    }
}
