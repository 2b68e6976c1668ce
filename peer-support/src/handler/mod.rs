//! The peer's side of one chaincode stream (Fabric's chaincode `Handler`).
//!
//! ```text
//! Created ──REGISTER──▶ (REGISTERED, READY sent) Ready
//! ```
//! In `Created` only REGISTER is accepted. In `Ready`, COMPLETED and ERROR complete the
//! waiting transaction; every state request runs as its own task and gets a RESPONSE or an
//! ERROR with the same channel id and txid; anything else gets an ERROR. KEEPALIVE is accepted
//! in every state. When the stream ends, every running transaction fails with "chaincode
//! stream terminated" and the handler leaves the registry.

mod invoke;
mod requests;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use proto::protos::{ChaincodeAdditionalParams, ChaincodeId, ChaincodeMessage};
use proto::stream::{ChaincodeStream, MessageReceiver, MessageSender};
use proto::{MessageType, TxKey};
use tokio::sync::Semaphore;
use vm_api::StreamOrigin;

use crate::chaincode_support::SupportInner;
use crate::tx_context::{NewContext, StateAccess, TransactionContexts};
use crate::{Error, Result, SupportConfig, TxParams};

/// The peer's end of one chaincode's stream.
pub(crate) struct Handler {
    support: Weak<SupportInner>,
    config: Arc<SupportConfig>,
    sender: MessageSender,
    /// The name the chaincode registered with, once it has.
    name: OnceLock<String>,
    contexts: TransactionContexts,
    /// Bounds the state requests handled at once.
    requests: Arc<Semaphore>,
    origin: StreamOrigin,
}

impl Handler {
    fn name(&self) -> &str {
        self.name.get().map_or("(unregistered)", String::as_str)
    }

    fn support(&self) -> Result<Arc<SupportInner>> {
        self.support.upgrade().ok_or(Error::ShuttingDown)
    }

    /// Sends from the reader loop without blocking it.
    fn send_detached(&self, msg: ChaincodeMessage) {
        proto::stream::send_detached(&self.sender, msg);
    }

    fn reply_error(&self, to: &ChaincodeMessage, text: String) {
        tracing::warn!(chaincode = self.name(), txid = %to.txid, "{text}");
        self.send_detached(ChaincodeMessage::error_reply(to, text));
    }

    /// Sends INIT or TRANSACTION `msg` and waits for the chaincode's COMPLETED or ERROR.
    pub(crate) async fn execute(
        &self,
        params: &TxParams,
        namespace: &str,
        state: StateAccess,
        msg: ChaincodeMessage,
        timeout: Duration,
    ) -> Result<ChaincodeMessage> {
        let key = TxKey::new(params.channel_id.clone(), params.tx_id.clone());
        let new = NewContext {
            key: key.clone(),
            namespace: namespace.to_owned(),
            signed_proposal: params.signed_proposal.clone(),
            state,
            history: params.history.clone(),
        };
        let Some((_ctx, response)) = self.contexts.create(new) else {
            return Err(Error::DuplicateTransaction {
                ccid: self.name().to_owned(),
                channel: params.channel_id.clone(),
                txid: params.tx_id.clone(),
            });
        };
        // Remove the context however this ends (including the caller giving up).
        struct Cleanup<'a>(&'a TransactionContexts, TxKey);
        impl Drop for Cleanup<'_> {
            fn drop(&mut self) {
                self.0.remove(&self.1);
            }
        }
        let _cleanup = Cleanup(&self.contexts, key);
        let terminated = || Error::StreamTerminated {
            ccid: self.name().to_owned(),
            reason: None,
        };
        self.sender.send(msg).await.map_err(|_| terminated())?;
        match tokio::time::timeout(timeout, response).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(terminated()),
            Err(_) => Err(Error::ExecuteTimeout {
                ccid: self.name().to_owned(),
                txid: params.tx_id.clone(),
                timeout,
            }),
        }
    }

    /// Handles REGISTER: checks and registers the chaincode, then sends REGISTERED and READY.
    fn register(self: &Arc<Self>, msg: &ChaincodeMessage) -> Result<String> {
        let id = ChaincodeId::decode(msg.payload.clone())
            .map_err(|e| Error::decode("the REGISTER payload (ChaincodeID)", e))?;
        let name = id.name;
        if name.is_empty() {
            return Err(Error::Protocol(
                "REGISTER carries an empty chaincode name".into(),
            ));
        }
        if let Some(expected) = &self.origin.expected
            && name != expected.registered_name()
        {
            return Err(Error::RegistrationRefused {
                reason: format!("this stream was opened for chaincode {expected}"),
                name,
            });
        }
        let support = self.support()?;
        if let Some(check) = &support.registration_check {
            check.check(&name, &self.origin)?;
        }
        support.registry.register(&name, Arc::clone(self))?;
        let _ = self.name.set(name.clone());
        self.send_detached(ChaincodeMessage::new(MessageType::Registered, "", ""));
        let params = ChaincodeAdditionalParams {
            use_write_batch: self.config.write_batch.is_some(),
            max_size_write_batch: self.config.write_batch.unwrap_or(0),
            use_get_multiple_keys: self.config.get_multiple.is_some(),
            max_size_get_multiple_keys: self.config.get_multiple.unwrap_or(0),
        };
        self.send_detached(ChaincodeMessage::with_payload(
            MessageType::Ready,
            "",
            "",
            params.encode_to_vec(),
        ));
        support.registry.ready(&name);
        tracing::info!(chaincode = %name, "chaincode registered");
        Ok(name)
    }

    /// Runs the stream until it ends.
    async fn process(self: Arc<Self>, mut receiver: MessageReceiver) {
        let keepalive = (!self.config.keepalive.is_zero()).then(|| {
            let sender = self.sender.clone();
            let every = self.config.keepalive;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if sender
                        .send(ChaincodeMessage::new(MessageType::Keepalive, "", ""))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            })
        });
        let reason = self.read_loop(&mut receiver).await;
        if let Some(task) = keepalive {
            task.abort();
        }
        self.terminate(reason);
    }

    /// Reads messages until the stream ends; returns why it ended.
    async fn read_loop(self: &Arc<Self>, receiver: &mut MessageReceiver) -> Option<String> {
        let mut registered = false;
        // Watch for shutdown without keeping the support alive.
        let mut closing = self.support().ok()?.closing.subscribe();
        loop {
            let next = tokio::select! {
                next = receiver.next() => next,
                _ = closing.wait_for(|c| *c) => return Some("the peer is shutting down".into()),
            };
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(status)) => return Some(status.message().to_owned()),
                None => return None,
            };
            let kind = msg.kind();
            if kind == Some(MessageType::Keepalive) {
                continue;
            }
            if !registered {
                if kind != Some(MessageType::Register) {
                    let text = format!(
                        "chaincode handler cannot handle {} while in created state: REGISTER first",
                        msg.kind_name()
                    );
                    self.reply_error(&msg, text);
                    continue;
                }
                match self.register(&msg) {
                    Ok(_) => registered = true,
                    Err(e) => {
                        let text = e.report();
                        if let Some(expected) = &self.origin.expected
                            && let Ok(support) = self.support()
                        {
                            support
                                .registry
                                .failed(&expected.registered_name(), Arc::new(e));
                        }
                        self.reply_error(&msg, text.clone());
                        return Some(text);
                    }
                }
                continue;
            }
            match kind {
                Some(MessageType::Completed | MessageType::Error) => {
                    if !self.contexts.complete(msg) {
                        tracing::warn!(
                            chaincode = self.name(),
                            "result for a transaction nobody waits for"
                        );
                    }
                }
                Some(MessageType::Register) => {
                    self.reply_error(
                        &msg,
                        format!("chaincode {} is already registered", self.name()),
                    );
                }
                Some(MessageType::InvokeChaincode) => {
                    // Calls wait for another chaincode: each runs on its own task, at most
                    // `max_concurrent_requests` at once (backpressure on the stream).
                    let Ok(permit) = Arc::clone(&self.requests).acquire_owned().await else {
                        return Some("request limiter closed".into());
                    };
                    let handler = Arc::clone(self);
                    tokio::spawn(async move {
                        let reply = handler.reply_to_invoke(&msg).await;
                        let _ = handler.sender.send(reply).await;
                        drop(permit);
                    });
                }
                Some(kind) if requests::is_request(kind) => {
                    // State requests are short, synchronous ledger calls: served in order
                    // right here, which saves a task hand-off per round trip.
                    let reply = self.reply_to_state(&msg);
                    self.send_detached(reply);
                }
                _ => {
                    let text = format!(
                        "chaincode handler cannot handle {} in ready state",
                        msg.kind_name()
                    );
                    self.reply_error(&msg, text);
                }
            }
        }
    }

    /// The stream ended: fail running transactions and leave the registry.
    fn terminate(self: &Arc<Self>, reason: Option<String>) {
        let running = self.contexts.len();
        self.contexts.close_all();
        if let (Some(name), Ok(support)) = (self.name.get(), self.support())
            && support.registry.deregister(name, self)
        {
            tracing::info!(chaincode = %name, running, reason = reason.as_deref().unwrap_or("closed"), "chaincode stream ended; deregistered");
        }
    }
}

/// Serves one chaincode stream (Fabric's `HandleChaincodeStream`).
pub(crate) async fn handle_stream(
    support: &Arc<SupportInner>,
    stream: ChaincodeStream,
    origin: StreamOrigin,
) {
    let handler = Arc::new(Handler {
        support: Arc::downgrade(support),
        config: Arc::clone(&support.config),
        sender: stream.sender,
        name: OnceLock::new(),
        contexts: TransactionContexts::default(),
        requests: Arc::new(Semaphore::new(
            support.config.max_concurrent_requests.max(1),
        )),
        origin,
    });
    handler.process(stream.receiver).await;
}
