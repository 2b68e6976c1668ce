//! One end of a chaincode conversation, independent of the transport.
//!
//! Both the peer's handler and the shim's handler speak to a [`ChaincodeStream`]: a sender of
//! outgoing [`ChaincodeMessage`]s and a stream of incoming ones. Over gRPC the incoming side is
//! tonic's `Streaming` and the outgoing side feeds the response stream; in process both sides
//! are tokio channels made by [`in_memory_pair`]. Nothing is encoded on the in-memory path.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::protos::ChaincodeMessage;

/// Default number of messages that may wait in one direction of a stream.
pub const DEFAULT_CAPACITY: usize = 128;

/// Sends messages to the other end.
pub type MessageSender = mpsc::Sender<ChaincodeMessage>;

/// Messages from the other end; an `Err` is a transport failure and ends the conversation.
pub type MessageReceiver =
    Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + 'static>>;

/// One end of a chaincode conversation.
pub struct ChaincodeStream {
    /// Where to send messages for the other end.
    pub sender: MessageSender,
    /// What the other end sent.
    pub receiver: MessageReceiver,
}

impl std::fmt::Debug for ChaincodeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeStream")
            .field("sender_closed", &self.sender.is_closed())
            .finish_non_exhaustive()
    }
}

impl ChaincodeStream {
    /// Wraps a sender and any stream of incoming messages.
    pub fn new<S>(sender: MessageSender, receiver: S) -> Self
    where
        S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + 'static,
    {
        Self {
            sender,
            receiver: Box::pin(receiver),
        }
    }

    /// A stream whose outgoing messages come out of the returned receiver, for transports that
    /// need a `Stream` to send from (tonic's request and response bodies).
    pub fn with_outbound<S>(
        receiver: S,
        capacity: usize,
    ) -> (Self, ReceiverStream<ChaincodeMessage>)
    where
        S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(capacity);
        (Self::new(tx, receiver), ReceiverStream::new(rx))
    }
}

/// Sends `msg` without waiting: when the queue is full, a task sends it. Reader loops use it,
/// so a reader never blocks on a peer that is itself blocked on sending to it. A closed
/// stream drops the message.
pub fn send_detached(sender: &MessageSender, msg: ChaincodeMessage) {
    use tokio::sync::mpsc::error::TrySendError;
    match sender.try_send(msg) {
        Ok(()) | Err(TrySendError::Closed(_)) => {}
        Err(TrySendError::Full(msg)) => {
            let sender = sender.clone();
            tokio::spawn(async move {
                let _ = sender.send(msg).await;
            });
        }
    }
}

/// Two connected ends: what one sends, the other receives. Used for in-process chaincodes.
pub fn in_memory_pair(capacity: usize) -> (ChaincodeStream, ChaincodeStream) {
    let (a_tx, a_rx) = mpsc::channel(capacity);
    let (b_tx, b_rx) = mpsc::channel(capacity);
    (
        ChaincodeStream::new(a_tx, ReceiverStream::new(b_rx).map(Ok)),
        ChaincodeStream::new(b_tx, ReceiverStream::new(a_rx).map(Ok)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageType;

    #[tokio::test]
    async fn pair_carries_messages_both_ways_and_ends_when_dropped() {
        let (mut peer, mut chaincode) = in_memory_pair(4);
        chaincode
            .sender
            .send(ChaincodeMessage::new(MessageType::Register, "", ""))
            .await
            .unwrap();
        let got = peer.receiver.next().await.unwrap().unwrap();
        assert_eq!(got.kind(), Some(MessageType::Register));
        peer.sender
            .send(ChaincodeMessage::new(MessageType::Registered, "", ""))
            .await
            .unwrap();
        let got = chaincode.receiver.next().await.unwrap().unwrap();
        assert_eq!(got.kind(), Some(MessageType::Registered));
        drop(peer);
        assert!(chaincode.receiver.next().await.is_none());
    }
}
