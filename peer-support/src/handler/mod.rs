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

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use prost::Message;
use proto::protos::{ChaincodeAdditionalParams, ChaincodeId, ChaincodeMessage};
use proto::stream::{ChaincodeStream, MessageReceiver, MessageSender};
use proto::{MessageType, TxKey};
use tokio::sync::{Notify, Semaphore};
use vm_api::StreamOrigin;

use crate::chaincode_support::SupportInner;
use crate::metrics::{Metrics, ShimRequest};
use crate::tx_context::{NewContext, Refused, StateAccess, TransactionContexts};
use crate::{ChaincodeDefinition, Error, Result, SupportConfig, TxParams};

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
    /// Told when the peer ends the stream itself (the chaincode was stopped).
    close: Notify,
    metrics: Option<Arc<Metrics>>,
}

impl Handler {
    fn name(&self) -> &str {
        self.name.get().map_or("(unregistered)", String::as_str)
    }

    /// Ends the stream from the peer's side: running transactions fail, the handler leaves the
    /// registry, and the chaincode sees its stream end (a chaincode server the peer dialed
    /// has no process for the peer to stop).
    pub(crate) fn close(&self) {
        self.close.notify_one();
    }

    fn support(&self) -> Result<Arc<SupportInner>> {
        self.support.upgrade().ok_or(Error::ShuttingDown)
    }

    /// Sends INIT or TRANSACTION `msg` for `def` and waits for the chaincode's COMPLETED or
    /// ERROR; the chaincode's requests go to `def`'s namespace and collections.
    pub(crate) async fn execute(
        &self,
        params: &TxParams,
        def: &ChaincodeDefinition,
        state: StateAccess,
        msg: ChaincodeMessage,
        timeout: Duration,
    ) -> Result<ChaincodeMessage> {
        let key = TxKey::new(params.channel_id.clone(), params.tx_id.clone());
        let new = NewContext {
            key: key.clone(),
            namespace: def.namespace().to_owned(),
            collections: def.collections.clone(),
            signed_proposal: params.signed_proposal.clone(),
            state,
            history: params.history.clone(),
        };
        let terminated = || Error::StreamTerminated {
            ccid: self.name().to_owned(),
            reason: None,
        };
        let (_ctx, response) = match self.contexts.create(new) {
            Ok(created) => created,
            Err(Refused::Duplicate) => {
                return Err(Error::DuplicateTransaction {
                    ccid: self.name().to_owned(),
                    channel: params.channel_id.clone(),
                    txid: params.tx_id.clone(),
                });
            }
            Err(Refused::Closed) => return Err(terminated()),
        };
        // Remove the context however this ends (including the caller giving up).
        struct Cleanup<'a>(&'a TransactionContexts, TxKey);
        impl Drop for Cleanup<'_> {
            fn drop(&mut self) {
                self.0.remove(&self.1);
            }
        }
        let _cleanup = Cleanup(&self.contexts, key);
        // The timeout covers sending too: a chaincode that stops reading cannot hold us.
        let exchange = async {
            self.sender.send(msg).await.map_err(|_| terminated())?;
            response.await.map_err(|_| terminated())
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => {
                if let Some(metrics) = &self.metrics {
                    metrics.execute_timeout(self.name());
                }
                Err(Error::ExecuteTimeout {
                    ccid: self.name().to_owned(),
                    txid: params.tx_id.clone(),
                    timeout,
                })
            }
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
        // A system chaincode's name is the peer's: in dev mode a chaincode started by hand
        // could otherwise register first under it and answer the system chaincode's calls.
        // The peer's own streams (in process) come with the name they were opened for.
        if self.origin.expected.is_none()
            && let Some(system) = support.definitions.system_chaincode(&name)
        {
            return Err(Error::RegistrationRefused {
                reason: format!(
                    "{name} is reserved: it is the system chaincode {}, which only the peer runs",
                    system.name
                ),
                name,
            });
        }
        if let Some(check) = &support.registration_check {
            check.check(&name, &self.origin)?;
        }
        support.registry.register(&name, Arc::clone(self))?;
        let _ = self.name.set(name.clone());
        Ok(name)
    }

    /// The READY message, with what the peer offers (Fabric 3.1's parameters).
    fn ready_message(&self) -> ChaincodeMessage {
        let params = ChaincodeAdditionalParams {
            use_write_batch: self.config.write_batch.is_some(),
            max_size_write_batch: self.config.write_batch.unwrap_or(0),
            use_get_multiple_keys: self.config.get_multiple.is_some(),
            max_size_get_multiple_keys: self.config.get_multiple.unwrap_or(0),
        };
        ChaincodeMessage::with_payload(MessageType::Ready, "", "", params.encode_to_vec())
    }

    /// Sends a message from the reader, waiting while the chaincode's queue is full, but not
    /// longer than the execute timeout: false when the chaincode stopped reading (or left).
    /// Waiting, not queueing, bounds what a chaincode that does not read can make us hold.
    async fn reply(&self, msg: ChaincodeMessage) -> bool {
        use tokio::sync::mpsc::error::TrySendError;
        // The usual case costs no timer: there is room in the queue.
        let msg = match self.sender.try_send(msg) {
            Ok(()) => return true,
            Err(TrySendError::Closed(_)) => return false,
            Err(TrySendError::Full(msg)) => msg,
        };
        matches!(
            tokio::time::timeout(self.config.execute_timeout, self.sender.send(msg)).await,
            Ok(Ok(()))
        )
    }

    async fn reply_error(&self, to: &ChaincodeMessage, text: String) -> bool {
        tracing::warn!(chaincode = self.name(), txid = %to.txid, "{text}");
        self.reply(ChaincodeMessage::error_reply(to, text)).await
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
        // Whatever happens in the loop, even a panic, the handler leaves the registry.
        let reason = match AssertUnwindSafe(self.read_loop(&mut receiver))
            .catch_unwind()
            .await
        {
            Ok(reason) => reason,
            Err(_) => {
                tracing::error!(
                    chaincode = self.name(),
                    "the chaincode's stream handler panicked"
                );
                Some("internal error in the peer's handler".into())
            }
        };
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
                () = self.close.notified() => return Some("stopped by the peer".into()),
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
                    if !self.reply_error(&msg, text).await {
                        return Some("the chaincode does not read its replies".into());
                    }
                    continue;
                }
                match self.register(&msg) {
                    Ok(name) => {
                        registered = true;
                        let welcomed = self
                            .reply(ChaincodeMessage::new(MessageType::Registered, "", ""))
                            .await
                            && self.reply(self.ready_message()).await;
                        if !welcomed {
                            return Some("the chaincode does not read its replies".into());
                        }
                        if let Ok(support) = self.support() {
                            support.registry.ready(&name);
                        }
                        tracing::info!(chaincode = %name, "chaincode registered");
                    }
                    Err(e) => {
                        let text = e.report();
                        if let Some(expected) = &self.origin.expected
                            && let Ok(support) = self.support()
                        {
                            support
                                .registry
                                .failed(&expected.registered_name(), Arc::new(e));
                        }
                        self.reply_error(&msg, text.clone()).await;
                        return Some(text);
                    }
                }
                continue;
            }
            let answered = match kind {
                Some(MessageType::Completed | MessageType::Error) => {
                    if !self.contexts.complete(msg) {
                        tracing::warn!(
                            chaincode = self.name(),
                            "result for a transaction nobody waits for"
                        );
                    }
                    true
                }
                Some(MessageType::Register) => {
                    let text = format!("chaincode {} is already registered", self.name());
                    self.reply_error(&msg, text).await
                }
                Some(kind @ MessageType::InvokeChaincode) => {
                    let meter = self.meter(kind, &msg);
                    // A call waits for another chaincode, so it runs on its own task; at most
                    // `max_concurrent_requests` at once, further calls are refused rather than
                    // waited for (waiting here would stop the replies they depend on).
                    match Arc::clone(&self.requests).try_acquire_owned() {
                        Ok(permit) => {
                            let handler = Arc::clone(self);
                            tokio::spawn(async move {
                                let reply = match AssertUnwindSafe(handler.reply_to_invoke(&msg))
                                    .catch_unwind()
                                    .await
                                {
                                    Ok(reply) => reply,
                                    Err(_) => ChaincodeMessage::error_reply(
                                        &msg,
                                        "internal error in the peer while calling the chaincode",
                                    ),
                                };
                                if let Some(meter) = meter {
                                    meter.done(reply.kind() == Some(MessageType::Response));
                                }
                                handler.reply(reply).await;
                                drop(permit);
                            });
                            true
                        }
                        Err(_) => {
                            if let Some(meter) = meter {
                                meter.done(false);
                            }
                            let text = format!(
                                "too many chaincode-to-chaincode calls in flight on chaincode {} (at most {})",
                                self.name(),
                                self.config.max_concurrent_requests
                            );
                            self.reply_error(&msg, text).await
                        }
                    }
                }
                Some(kind) if requests::is_request(kind) => {
                    let meter = self.meter(kind, &msg);
                    // State requests are short, synchronous ledger calls: served in order
                    // right here, which saves a task hand-off per round trip. A panic in a
                    // ledger becomes an ERROR reply, not a dead stream.
                    let reply = std::panic::catch_unwind(AssertUnwindSafe(|| self.reply_to_state(&msg)))
                        .unwrap_or_else(|_| {
                            tracing::error!(chaincode = self.name(), txid = %msg.txid, "serving {} panicked", msg.kind_name());
                            ChaincodeMessage::error_reply(&msg, format!("internal error in the peer serving {}", msg.kind_name()))
                        });
                    if let Some(meter) = meter {
                        meter.done(reply.kind() == Some(MessageType::Response));
                    }
                    self.reply(reply).await
                }
                _ => {
                    let text = format!(
                        "chaincode handler cannot handle {} in ready state",
                        msg.kind_name()
                    );
                    self.reply_error(&msg, text).await
                }
            };
            if !answered {
                return Some("the chaincode does not read its replies".into());
            }
        }
    }

    /// Counts a request from the chaincode, when metrics are on.
    fn meter(&self, kind: MessageType, msg: &ChaincodeMessage) -> Option<ShimRequest> {
        let metrics = self.metrics.as_ref()?;
        Some(metrics.shim_request(kind, &msg.channel_id, self.name()))
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
        close: Notify::new(),
        metrics: support.metrics.clone(),
    });
    handler.process(stream.receiver).await;
}
