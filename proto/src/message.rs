//! Constructors and accessors for the messages every component builds.

use bytes::Bytes;

use crate::TxKeyRef;
use crate::protos::{ChaincodeMessage, Response};

/// The type of a [`ChaincodeMessage`].
pub use crate::protos::chaincode_message::Type as MessageType;

/// Status of a successful [`Response`].
pub const OK: i32 = 200;
/// Lowest status that is an error (Fabric's `ERRORTHRESHOLD`).
pub const ERROR_THRESHOLD: i32 = 400;
/// Status of a failed [`Response`].
pub const ERROR: i32 = 500;

impl ChaincodeMessage {
    /// A message of type `kind` for the transaction `txid` on `channel_id`, without payload.
    pub fn new(kind: MessageType, channel_id: impl Into<String>, txid: impl Into<String>) -> Self {
        Self {
            r#type: kind as i32,
            txid: txid.into(),
            channel_id: channel_id.into(),
            ..Self::default()
        }
    }

    /// A message of type `kind` carrying `payload`.
    pub fn with_payload(
        kind: MessageType,
        channel_id: impl Into<String>,
        txid: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Self {
        Self {
            payload: payload.into(),
            ..Self::new(kind, channel_id, txid)
        }
    }

    /// An ERROR message answering the transaction of `to`, with `text` as its payload.
    pub fn error_reply(to: &ChaincodeMessage, text: impl Into<String>) -> Self {
        Self::with_payload(
            MessageType::Error,
            to.channel_id.clone(),
            to.txid.clone(),
            Bytes::from(text.into()),
        )
    }

    /// The message's type, or `None` when the number is not one of Fabric's.
    pub fn kind(&self) -> Option<MessageType> {
        MessageType::try_from(self.r#type).ok()
    }

    /// The message's type as text, also for unknown numbers (`UNKNOWN(42)`).
    pub fn kind_name(&self) -> String {
        match self.kind() {
            Some(kind) => kind.as_str_name().to_owned(),
            None => format!("UNKNOWN({})", self.r#type),
        }
    }

    /// The transaction this message belongs to.
    pub fn tx_key(&self) -> TxKeyRef<'_> {
        TxKeyRef::new(&self.channel_id, &self.txid)
    }

    /// The payload as text (an ERROR's message), replacing invalid UTF-8.
    pub fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

impl Response {
    /// A successful response (status 200) with `payload`.
    pub fn ok(payload: impl Into<Bytes>) -> Self {
        Self {
            status: OK,
            message: String::new(),
            payload: payload.into(),
        }
    }

    /// A failed response (status 500) with `message`.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            status: ERROR,
            message: message.into(),
            payload: Bytes::new(),
        }
    }

    /// Whether the status says the call failed (400 or more).
    pub fn is_error(&self) -> bool {
        self.status >= ERROR_THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_type_is_named_by_number() {
        let msg = ChaincodeMessage {
            r#type: 42,
            ..ChaincodeMessage::default()
        };
        assert_eq!(msg.kind(), None);
        assert_eq!(msg.kind_name(), "UNKNOWN(42)");
        let known = ChaincodeMessage::new(MessageType::GetStateByRange, "", "");
        assert_eq!(known.kind_name(), "GET_STATE_BY_RANGE");
    }

    #[test]
    fn error_reply_keeps_transaction() {
        let req = ChaincodeMessage::new(MessageType::GetState, "ch", "tx");
        let reply = ChaincodeMessage::error_reply(&req, "bad");
        assert_eq!(reply.kind(), Some(MessageType::Error));
        assert_eq!(reply.tx_key(), req.tx_key());
        assert_eq!(reply.payload_text(), "bad");
    }

    #[test]
    fn response_status_threshold() {
        assert!(!Response::ok("x").is_error());
        assert!(Response::error("x").is_error());
        let warn = Response {
            status: 399,
            ..Response::default()
        };
        assert!(!warn.is_error());
    }
}
