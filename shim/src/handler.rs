//! The shim's side of the protocol: registration, the state machine, and the routing of
//! replies to the transactions waiting for them.
//!
//! ```text
//! created ──REGISTERED──▶ established ──READY──▶ ready
//! ```
//! In `ready`, every INIT and TRANSACTION runs as its own task; a RESPONSE or ERROR goes to the
//! request its transaction (channel id + txid) is waiting on. KEEPALIVE is echoed in every
//! state. Anything else gets an ERROR reply and the conversation goes on.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use hashbrown::HashMap;
use prost::Message;
use proto::protos::{ChaincodeAdditionalParams, ChaincodeId, ChaincodeInput, ChaincodeMessage};
use proto::stream::{ChaincodeStream, MessageSender};
use proto::{MessageType, TxKey};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::{Chaincode, ChaincodeStub, Error, Result};

/// Where a conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Established,
    Ready,
}

/// What the peer offered on READY (Fabric 3.1's ChaincodeAdditionalParams).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PeerParams {
    /// Most writes per WRITE_BATCH_STATE, when the peer accepts batches (0: no limit).
    pub write_batch: Option<u32>,
    /// Most keys per GET_STATE_MULTIPLE, when the peer accepts them (0: no limit).
    pub get_multiple: Option<u32>,
}

/// A transaction in flight: the reply slot of its one outstanding request.
#[derive(Default)]
struct Slot {
    waiter: Option<oneshot::Sender<ChaincodeMessage>>,
    /// A request was given up (its future dropped) before its reply came. The protocol
    /// routes replies by transaction only, so a later request could receive that reply:
    /// the transaction makes no more requests.
    abandoned: bool,
}

/// State shared by the reader loop and the transactions of one conversation.
pub(crate) struct Handler {
    sender: MessageSender,
    txs: Mutex<HashMap<TxKey, Slot>>,
    params: OnceLock<PeerParams>,
}

impl Handler {
    fn new(sender: MessageSender) -> Self {
        Self {
            sender,
            txs: Mutex::new(HashMap::new()),
            params: OnceLock::new(),
        }
    }

    pub(crate) fn params(&self) -> PeerParams {
        self.params.get().copied().unwrap_or_default()
    }

    fn txs(&self) -> std::sync::MutexGuard<'_, HashMap<TxKey, Slot>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.txs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one request of transaction `key` and waits for its RESPONSE payload. The caller
    /// makes sure a transaction has one request outstanding at a time.
    pub(crate) async fn request(
        &self,
        key: &TxKey,
        kind: MessageType,
        payload: Vec<u8>,
    ) -> Result<Bytes> {
        let (tx, rx) = oneshot::channel();
        match self.txs().get_mut(key) {
            Some(slot) if slot.abandoned => {
                return Err(Error::Protocol(format!(
                    "transaction {key} gave up a request before its reply came; \
                     a later request could get that reply, so it makes no more requests"
                )));
            }
            Some(slot) => slot.waiter = Some(tx),
            None => return Err(Error::Protocol(format!("transaction {key} is not running"))),
        }
        // If this future is dropped before the reply, the transaction is marked.
        struct Outstanding<'a> {
            handler: &'a Handler,
            key: &'a TxKey,
            answered: bool,
        }
        impl Drop for Outstanding<'_> {
            fn drop(&mut self) {
                if !self.answered
                    && let Some(slot) = self.handler.txs().get_mut(self.key)
                {
                    slot.waiter = None;
                    slot.abandoned = true;
                }
            }
        }
        let mut outstanding = Outstanding {
            handler: self,
            key,
            answered: false,
        };
        let msg =
            ChaincodeMessage::with_payload(kind, key.channel_id.clone(), key.txid.clone(), payload);
        self.sender.send(msg).await.map_err(|_| Error::closed())?;
        let reply = rx.await.map_err(|_| Error::closed())?;
        outstanding.answered = true;
        match reply.kind() {
            Some(MessageType::Response) => Ok(reply.payload),
            Some(MessageType::Error) => Err(Error::Peer {
                message: reply.payload_text(),
            }),
            _ => Err(Error::Protocol(format!(
                "expected RESPONSE or ERROR to {}, got {}",
                kind.as_str_name(),
                reply.kind_name()
            ))),
        }
    }

    /// Sends from the reader loop without blocking it.
    fn send_detached(&self, msg: ChaincodeMessage) {
        proto::stream::send_detached(&self.sender, msg);
    }

    fn reply_error(&self, to: &ChaincodeMessage, text: String) {
        tracing::warn!(txid = %to.txid, channel = %to.channel_id, "{text}");
        self.send_detached(ChaincodeMessage::error_reply(to, text));
    }

    /// Hands a RESPONSE or ERROR to the request waiting for it.
    fn route(&self, msg: ChaincodeMessage) {
        let waiter = self
            .txs()
            .get_mut(&msg.tx_key())
            .and_then(|slot| slot.waiter.take());
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(msg);
            }
            None => tracing::warn!(
                txid = %msg.txid,
                channel = %msg.channel_id,
                "ignoring {} that no request is waiting for",
                msg.kind_name()
            ),
        }
    }
}

/// Serves one conversation with the peer on `stream`: registers as `name` (`name:version`),
/// then runs transactions until the stream ends.
///
/// Returns an error when the registration is refused, the stream closes or fails, or a
/// transaction panics (after telling the peer which transaction failed). It never returns
/// `Ok`: a chaincode lives as long as its stream.
pub async fn serve_stream(
    chaincode: Arc<dyn Chaincode>,
    name: &str,
    stream: ChaincodeStream,
) -> Result<()> {
    let ChaincodeStream {
        sender,
        mut receiver,
    } = stream;
    let handler = Arc::new(Handler::new(sender));
    let register = ChaincodeId {
        name: name.to_owned(),
        ..ChaincodeId::default()
    };
    handler
        .sender
        .send(ChaincodeMessage::with_payload(
            MessageType::Register,
            "",
            "",
            register.encode_to_vec(),
        ))
        .await
        .map_err(|_| Error::closed())?;

    let mut state = State::Created;
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    loop {
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                Ok(Ok(())) => {}
                Ok(Err(fatal)) => return Err(fatal),
                Err(join) if join.is_cancelled() => {}
                Err(join) => return Err(Error::Protocol(format!("transaction task failed: {join}"))),
            },
            next = receiver.next() => {
                let msg = match next {
                    Some(Ok(msg)) => msg,
                    Some(Err(status)) => {
                        return Err(Error::StreamClosed { detail: Some(status.message().to_owned()) })
                    }
                    None => return Err(Error::closed()),
                };
                state = dispatch(&handler, &chaincode, &mut tasks, state, name, msg)?;
            }
        }
    }
}

fn dispatch(
    handler: &Arc<Handler>,
    chaincode: &Arc<dyn Chaincode>,
    tasks: &mut JoinSet<Result<()>>,
    state: State,
    name: &str,
    msg: ChaincodeMessage,
) -> Result<State> {
    use MessageType as T;
    match (state, msg.kind()) {
        (_, Some(T::Keepalive)) => {
            handler.send_detached(ChaincodeMessage::new(T::Keepalive, "", ""));
            Ok(state)
        }
        (State::Created, Some(T::Registered)) => {
            tracing::debug!(chaincode = name, "registered");
            Ok(State::Established)
        }
        (State::Created | State::Established, Some(T::Error)) => Err(Error::RegistrationRefused {
            name: name.to_owned(),
            message: msg.payload_text(),
        }),
        (State::Established, Some(T::Ready)) => {
            let offered =
                ChaincodeAdditionalParams::decode(msg.payload.clone()).unwrap_or_default();
            let params = PeerParams {
                write_batch: offered
                    .use_write_batch
                    .then_some(offered.max_size_write_batch),
                get_multiple: offered
                    .use_get_multiple_keys
                    .then_some(offered.max_size_get_multiple_keys),
            };
            let _ = handler.params.set(params);
            tracing::debug!(chaincode = name, ?params, "ready");
            Ok(State::Ready)
        }
        (State::Ready, Some(kind @ (T::Init | T::Transaction))) => {
            let key = msg.tx_key().to_owned();
            {
                let mut txs = handler.txs();
                if txs.contains_key(&key) {
                    drop(txs);
                    handler.reply_error(&msg, format!("transaction {key} is already running"));
                    return Ok(state);
                }
                txs.insert(key.clone(), Slot::default());
            }
            let handler = Arc::clone(handler);
            let chaincode = Arc::clone(chaincode);
            tasks.spawn(run_transaction(
                handler,
                chaincode,
                msg,
                key,
                kind == T::Init,
            ));
            Ok(state)
        }
        (State::Ready, Some(T::Response | T::Error)) => {
            handler.route(msg);
            Ok(state)
        }
        (state, _) => {
            let text = format!(
                "chaincode {name} cannot handle {} in state {state:?}",
                msg.kind_name()
            );
            handler.reply_error(&msg, text);
            Ok(state)
        }
    }
}

/// Runs one INIT or TRANSACTION and sends its COMPLETED or ERROR. Returns an error only for a
/// panic, which ends the conversation.
async fn run_transaction(
    handler: Arc<Handler>,
    chaincode: Arc<dyn Chaincode>,
    msg: ChaincodeMessage,
    key: TxKey,
    is_init: bool,
) -> Result<()> {
    let input = match ChaincodeInput::decode(msg.payload.clone()) {
        Ok(input) => input,
        Err(e) => {
            handler.txs().remove(&key);
            let text = format!("cannot decode the ChaincodeInput of transaction {key}: {e}");
            handler.reply_error(&msg, text);
            return Ok(());
        }
    };
    let stub = ChaincodeStub::new(Arc::clone(&handler), key.clone(), input, msg.proposal);
    let run = async {
        if is_init {
            chaincode.init(&stub).await
        } else {
            chaincode.invoke(&stub).await
        }
    };
    let outcome = AssertUnwindSafe(run).catch_unwind().await;
    let reply = match outcome {
        Ok(response) => match stub.finish().await {
            Err(e) => ChaincodeMessage::with_payload(
                MessageType::Error,
                key.channel_id.clone(),
                key.txid.clone(),
                format!("transaction {key} failed to write its state: {e}"),
            ),
            Ok(_) if is_init && response.status >= proto::message::ERROR => {
                ChaincodeMessage::with_payload(
                    MessageType::Error,
                    key.channel_id.clone(),
                    key.txid.clone(),
                    response.message,
                )
            }
            Ok(event) => ChaincodeMessage {
                chaincode_event: event,
                ..ChaincodeMessage::with_payload(
                    MessageType::Completed,
                    key.channel_id.clone(),
                    key.txid.clone(),
                    response.encode_to_vec(),
                )
            },
        },
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            handler.txs().remove(&key);
            let _ = handler
                .sender
                .send(ChaincodeMessage::with_payload(
                    MessageType::Error,
                    key.channel_id.clone(),
                    key.txid.clone(),
                    format!("chaincode panicked: {message}"),
                ))
                .await;
            return Err(Error::Panicked {
                txid: key.txid,
                message,
            });
        }
    };
    handler.txs().remove(&key);
    handler
        .sender
        .send(reply)
        .await
        .map_err(|_| Error::closed())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
