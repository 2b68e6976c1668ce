//! INVOKE_CHAINCODE: a chaincode calling another within the same transaction.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use proto::protos::{ChaincodeMessage, ChaincodeSpec};

use super::Handler;
use crate::definitions::ChaincodeRef;
use crate::ledger::QueryExecutor;
use crate::tx_context::{StateAccess, TransactionContext};
use crate::{ChaincodeDefinitions, Error, Result, TxParams};

impl Handler {
    /// Runs the callee and returns its COMPLETED (or ERROR) message, encoded, as Fabric does.
    pub(super) async fn invoke_chaincode(
        &self,
        ctx: &TransactionContext,
        payload: &Bytes,
    ) -> Result<Bytes> {
        let spec = ChaincodeSpec::decode(payload.clone())
            .map_err(|e| Error::decode("the INVOKE_CHAINCODE payload (ChaincodeSpec)", e))?;
        let target = spec.chaincode_id.map(|id| id.name).unwrap_or_default();
        let callee = ChaincodeRef::parse(&target);
        if callee.name.is_empty() {
            return Err(Error::Protocol(
                "INVOKE_CHAINCODE names no chaincode".into(),
            ));
        }
        let support = self.support()?;
        let channel = callee.channel.unwrap_or(&ctx.key.channel_id).to_owned();
        let def = support.definitions.definition(&channel, callee.name)?;
        // A Fabric 1.4 chaincode must be at the version named; a Fabric 2.x one is called by
        // name, a version ignored as Fabric ignores it.
        if let (Some(requested), Some(defined)) = (callee.version, def.version.as_deref())
            && requested != defined
        {
            return Err(Error::WrongVersion {
                name: callee.name.to_owned(),
                requested: requested.to_owned(),
                defined: defined.to_owned(),
            });
        }
        // The same channel shares the caller's simulator; another channel is read-only.
        let state = if channel == ctx.key.channel_id {
            ctx.state.clone()
        } else {
            let ledgers = support.ledgers.as_ref().ok_or_else(|| {
                Error::Ledger(format!("this peer has no ledger for channel {channel:?}"))
            })?;
            let reader: Arc<dyn QueryExecutor> =
                ledgers.query_executor(&channel).ok_or_else(|| {
                    Error::Ledger(format!("this peer has no ledger for channel {channel:?}"))
                })?;
            StateAccess::ReadOnly(reader)
        };
        let params = TxParams {
            tx_id: ctx.key.txid.clone(),
            channel_id: channel,
            signed_proposal: ctx.signed_proposal.clone(),
            simulator: None,
            history: ctx.history.clone(),
        };
        tracing::debug!(caller = self.name(), callee = %def.ccid, txid = %params.tx_id, "chaincode-to-chaincode call");
        let reply: ChaincodeMessage = support
            .execute_with_state(&params, &def, spec.input.unwrap_or_default(), false, state)
            .await?;
        Ok(reply.encode_to_vec().into())
    }
}
