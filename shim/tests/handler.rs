//! The shim's state machine against a scripted peer on an in-memory stream.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use proto::MessageType as T;
use proto::protos::{
    ChaincodeAdditionalParams, ChaincodeId, ChaincodeInput, ChaincodeMessage, GetState,
    GetStateByRange, QueryResponse, QueryResultBytes, QueryStateNext, Response, WriteBatchState,
};
use proto::queryresult::Kv;
use proto::stream::{ChaincodeStream, in_memory_pair};
use shim::{Chaincode, ChaincodeStub, Error};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Reads keys named by the arguments; `range a z` iterates; `put k v` writes; `panic` panics.
struct Probe;

#[shim::async_trait]
impl Chaincode for Probe {
    async fn init(&self, stub: &ChaincodeStub) -> Response {
        match stub.function_and_parameters().0.as_str() {
            "bad" => shim::error("init refused"),
            _ => shim::success("init ok"),
        }
    }

    async fn invoke(&self, stub: &ChaincodeStub) -> Response {
        let (f, p) = stub.function_and_parameters();
        match f.as_str() {
            "get" => match stub.get_state(&p[0]).await {
                Ok(Some(v)) => shim::success(v),
                Ok(None) => shim::error("absent"),
                Err(e) => shim::error(e.to_string()),
            },
            "put" => {
                stub.put_state(&p[0], p[1].clone()).await.unwrap();
                stub.del_state(&p[0]).await.unwrap();
                stub.set_event("written", "e").unwrap();
                shim::success("ok")
            }
            "range" => {
                let mut it = stub.get_state_by_range(&p[0], &p[1]).await.unwrap();
                let mut keys = Vec::new();
                while let Some(kv) = it.next().await {
                    keys.push(kv.unwrap().key);
                }
                it.close().await.unwrap();
                shim::success(keys.join(","))
            }
            "panic" => panic!("boom in {}", stub.tx_id()),
            "impatient" => {
                // Gives up on a read, then reads again.
                let first =
                    tokio::time::timeout(Duration::from_millis(50), stub.get_state("a")).await;
                assert!(first.is_err(), "the first read timed out");
                match stub.get_state("b").await {
                    Ok(v) => shim::success(format!("second read got {v:?}")),
                    Err(e) => shim::error(e.to_string()),
                }
            }
            _ => shim::error("unknown"),
        }
    }
}

struct Peer {
    stream: ChaincodeStream,
    shim: JoinHandle<shim::Result<()>>,
}

impl Peer {
    async fn recv(&mut self) -> ChaincodeMessage {
        timeout(Duration::from_secs(5), self.stream.receiver.next())
            .await
            .expect("the shim answers in time")
            .expect("stream open")
            .expect("no transport error")
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.stream.sender.send(msg).await.unwrap();
    }

    /// Starts the shim and completes the handshake with `params` on READY.
    async fn ready(params: Option<ChaincodeAdditionalParams>) -> Self {
        let (peer_end, cc_end) = in_memory_pair(16);
        let shim = tokio::spawn(shim::serve_stream(Arc::new(Probe), "probe:1", cc_end));
        let mut peer = Peer {
            stream: peer_end,
            shim,
        };
        let reg = peer.recv().await;
        assert_eq!(reg.kind(), Some(T::Register));
        assert_eq!(ChaincodeId::decode(reg.payload).unwrap().name, "probe:1");
        peer.send(ChaincodeMessage::new(T::Registered, "", ""))
            .await;
        let payload = params.map(|p| p.encode_to_vec()).unwrap_or_default();
        peer.send(ChaincodeMessage::with_payload(T::Ready, "", "", payload))
            .await;
        peer
    }

    async fn transaction(&self, txid: &str, args: &[&str]) {
        let input = ChaincodeInput {
            args: args
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
            ..ChaincodeInput::default()
        };
        self.send(ChaincodeMessage::with_payload(
            T::Transaction,
            "ch",
            txid,
            input.encode_to_vec(),
        ))
        .await;
    }

    async fn respond(&self, to: &ChaincodeMessage, payload: impl Into<Bytes>) {
        self.send(ChaincodeMessage::with_payload(
            T::Response,
            to.channel_id.clone(),
            to.txid.clone(),
            payload,
        ))
        .await;
    }
}

fn response_of(msg: &ChaincodeMessage) -> Response {
    assert_eq!(
        msg.kind(),
        Some(T::Completed),
        "{}: {}",
        msg.kind_name(),
        msg.payload_text()
    );
    Response::decode(msg.payload.clone()).unwrap()
}

#[tokio::test]
async fn keepalive_is_echoed_in_every_state() {
    let (peer_end, cc_end) = in_memory_pair(16);
    let shim = tokio::spawn(shim::serve_stream(Arc::new(Probe), "probe:1", cc_end));
    let mut peer = Peer {
        stream: peer_end,
        shim,
    };
    assert_eq!(peer.recv().await.kind(), Some(T::Register));
    for next in [Some(T::Registered), Some(T::Ready), None] {
        peer.send(ChaincodeMessage::new(T::Keepalive, "", "")).await;
        assert_eq!(peer.recv().await.kind(), Some(T::Keepalive));
        if let Some(kind) = next {
            peer.send(ChaincodeMessage::new(kind, "", "")).await;
        }
    }
    assert!(!peer.shim.is_finished());
}

#[tokio::test]
async fn transactions_run_concurrently_and_replies_reach_their_transaction() {
    let mut peer = Peer::ready(None).await;
    peer.transaction("tx1", &["get", "a"]).await;
    peer.transaction("tx2", &["get", "b"]).await;
    let mut requests = [peer.recv().await, peer.recv().await];
    requests.sort_by(|x, y| x.txid.cmp(&y.txid));
    for (req, key) in requests.iter().zip(["a", "b"]) {
        assert_eq!(req.kind(), Some(T::GetState));
        assert_eq!(GetState::decode(req.payload.clone()).unwrap().key, key);
    }
    // Answer the second transaction first.
    peer.respond(&requests[1], "B").await;
    peer.respond(&requests[0], "A").await;
    let mut done = [peer.recv().await, peer.recv().await];
    done.sort_by(|x, y| x.txid.cmp(&y.txid));
    assert_eq!(response_of(&done[0]).payload, "A");
    assert_eq!(response_of(&done[1]).payload, "B");
}

#[tokio::test]
async fn out_of_place_messages_get_an_error_and_the_shim_goes_on() {
    let (peer_end, cc_end) = in_memory_pair(16);
    let shim = tokio::spawn(shim::serve_stream(Arc::new(Probe), "probe:1", cc_end));
    let mut peer = Peer {
        stream: peer_end,
        shim,
    };
    peer.recv().await;
    // A transaction before the handshake.
    peer.transaction("early", &["get", "a"]).await;
    let reply = peer.recv().await;
    assert_eq!(reply.kind(), Some(T::Error));
    assert_eq!(reply.txid, "early");
    assert!(
        reply
            .payload_text()
            .contains("cannot handle TRANSACTION in state Created"),
        "{}",
        reply.payload_text()
    );
    peer.send(ChaincodeMessage::new(T::Registered, "", ""))
        .await;
    peer.send(ChaincodeMessage::new(T::Ready, "", "")).await;
    // A message type the shim never accepts, and an unknown number.
    peer.send(ChaincodeMessage::new(T::GetState, "ch", "x"))
        .await;
    assert_eq!(peer.recv().await.kind(), Some(T::Error));
    peer.send(ChaincodeMessage {
        r#type: 99,
        txid: "y".into(),
        ..ChaincodeMessage::default()
    })
    .await;
    let reply = peer.recv().await;
    assert_eq!(reply.kind(), Some(T::Error));
    assert!(reply.payload_text().contains("UNKNOWN(99)"));
    // A malformed input.
    peer.send(ChaincodeMessage::with_payload(
        T::Transaction,
        "ch",
        "bad",
        Bytes::from_static(b"\xff\xff"),
    ))
    .await;
    let reply = peer.recv().await;
    assert_eq!(reply.kind(), Some(T::Error));
    assert!(
        reply
            .payload_text()
            .contains("cannot decode the ChaincodeInput")
    );
    // Still serving.
    peer.transaction("tx", &["get", "a"]).await;
    let req = peer.recv().await;
    peer.respond(&req, "v").await;
    assert_eq!(response_of(&peer.recv().await).payload, "v");
}

#[tokio::test]
async fn a_duplicate_transaction_is_refused_not_dropped() {
    let mut peer = Peer::ready(None).await;
    peer.transaction("tx", &["get", "a"]).await;
    let req = peer.recv().await;
    peer.transaction("tx", &["get", "a"]).await;
    let dup = peer.recv().await;
    assert_eq!(dup.kind(), Some(T::Error));
    assert!(dup.payload_text().contains("already running"));
    peer.respond(&req, "v").await;
    assert_eq!(response_of(&peer.recv().await).payload, "v");
}

#[tokio::test]
async fn peer_error_reaches_the_chaincode() {
    let mut peer = Peer::ready(None).await;
    peer.transaction("tx", &["get", "a"]).await;
    let req = peer.recv().await;
    peer.send(ChaincodeMessage::error_reply(&req, "no ledger"))
        .await;
    let resp = response_of(&peer.recv().await);
    assert_eq!(resp.status, 500);
    assert_eq!(resp.message, "no ledger");
}

#[tokio::test]
async fn init_failure_is_sent_as_error_and_invoke_failure_as_completed() {
    let mut peer = Peer::ready(None).await;
    let input = ChaincodeInput {
        args: vec![Bytes::from_static(b"bad")],
        ..ChaincodeInput::default()
    };
    peer.send(ChaincodeMessage::with_payload(
        T::Init,
        "ch",
        "i",
        input.encode_to_vec(),
    ))
    .await;
    let reply = peer.recv().await;
    assert_eq!(reply.kind(), Some(T::Error));
    assert_eq!(reply.payload_text(), "init refused");
    peer.transaction("t", &["nope"]).await;
    assert_eq!(response_of(&peer.recv().await).status, 500);
}

#[tokio::test]
async fn writes_and_event_go_out_and_come_back_with_completed() {
    let mut peer = Peer::ready(None).await;
    peer.transaction("tx", &["put", "k", "v"]).await;
    let put = peer.recv().await;
    assert_eq!(put.kind(), Some(T::PutState));
    peer.respond(&put, Bytes::new()).await;
    let del = peer.recv().await;
    assert_eq!(del.kind(), Some(T::DelState));
    peer.respond(&del, Bytes::new()).await;
    let done = peer.recv().await;
    assert_eq!(response_of(&done).payload, "ok");
    let event = done.chaincode_event.expect("event sent with COMPLETED");
    assert_eq!(event.event_name, "written");
}

#[tokio::test]
async fn writes_are_batched_when_the_peer_offers_it() {
    let params = ChaincodeAdditionalParams {
        use_write_batch: true,
        max_size_write_batch: 1,
        ..Default::default()
    };
    let mut peer = Peer::ready(Some(params)).await;
    peer.transaction("tx", &["put", "k", "v"]).await;
    // Two writes, at most one per batch: two WRITE_BATCH_STATE, then COMPLETED.
    for expected in [T::PutState, T::DelState] {
        let batch = peer.recv().await;
        assert_eq!(batch.kind(), Some(T::WriteBatchState));
        let recs = WriteBatchState::decode(batch.payload.clone()).unwrap().rec;
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].r#type, expected as i32);
        peer.respond(&batch, Bytes::new()).await;
    }
    assert_eq!(response_of(&peer.recv().await).payload, "ok");
}

#[tokio::test]
async fn range_iterator_fetches_next_batches_and_skips_composite_keys() {
    let mut peer = Peer::ready(None).await;
    peer.transaction("tx", &["range", "", ""]).await;
    let req = peer.recv().await;
    assert_eq!(req.kind(), Some(T::GetStateByRange));
    let range = GetStateByRange::decode(req.payload.clone()).unwrap();
    assert_eq!(range.start_key, "\u{1}", "empty start skips composite keys");
    assert_eq!(range.end_key, "");
    let batch = |keys: &[&str], more: bool| QueryResponse {
        results: keys
            .iter()
            .map(|k| QueryResultBytes {
                result_bytes: Kv {
                    key: (*k).into(),
                    ..Kv::default()
                }
                .encode_to_vec()
                .into(),
            })
            .collect(),
        has_more: more,
        id: "q1".into(),
        metadata: Bytes::new(),
    };
    peer.respond(&req, batch(&["a", "b"], true).encode_to_vec())
        .await;
    let next = peer.recv().await;
    assert_eq!(next.kind(), Some(T::QueryStateNext));
    assert_eq!(
        QueryStateNext::decode(next.payload.clone()).unwrap().id,
        "q1"
    );
    peer.respond(&next, batch(&["c"], false).encode_to_vec())
        .await;
    // The last batch said no more: close sends nothing.
    assert_eq!(response_of(&peer.recv().await).payload, "a,b,c");
}

#[tokio::test]
async fn a_panic_fails_its_transaction_and_ends_the_instance() {
    let mut peer = Peer::ready(None).await;
    peer.transaction("tx9", &["panic"]).await;
    let reply = peer.recv().await;
    assert_eq!(reply.kind(), Some(T::Error));
    assert_eq!(reply.payload_text(), "chaincode panicked: boom in tx9");
    let ended = timeout(Duration::from_secs(5), peer.shim)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ended, Err(Error::Panicked { ref txid, .. }) if txid == "tx9"),
        "{ended:?}"
    );
}

#[tokio::test]
async fn refused_registration_ends_with_the_peers_reason() {
    let (peer_end, cc_end) = in_memory_pair(16);
    let shim = tokio::spawn(shim::serve_stream(Arc::new(Probe), "probe:1", cc_end));
    let mut peer = Peer {
        stream: peer_end,
        shim,
    };
    let reg = peer.recv().await;
    peer.send(ChaincodeMessage::error_reply(
        &reg,
        "duplicate chaincode probe:1",
    ))
    .await;
    let ended = timeout(Duration::from_secs(5), peer.shim)
        .await
        .unwrap()
        .unwrap();
    let err = ended.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the peer refused to register chaincode probe:1: duplicate chaincode probe:1"
    );
}

#[tokio::test]
async fn stream_end_ends_the_shim_with_an_error() {
    let mut peer = Peer::ready(None).await;
    peer.recv_nothing_pending();
    drop(peer.stream);
    let ended = timeout(Duration::from_secs(5), peer.shim)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ended, Err(Error::StreamClosed { .. })),
        "{ended:?}"
    );
}

impl Peer {
    fn recv_nothing_pending(&mut self) {
        assert!(self.stream.receiver.next().now_or_never_is_none());
    }
}

trait NowOrNever {
    fn now_or_never_is_none(self) -> bool;
}

impl<F: std::future::Future> NowOrNever for F {
    fn now_or_never_is_none(self) -> bool {
        futures::FutureExt::now_or_never(self).is_none()
    }
}

#[tokio::test]
async fn a_transaction_that_gave_up_a_request_makes_no_more_so_no_reply_goes_astray() {
    let mut peer = Peer::ready(None).await;
    peer.transaction("tx", &["impatient"]).await;
    let first = peer.recv().await;
    assert_eq!(GetState::decode(first.payload.clone()).unwrap().key, "a");
    // The chaincode gave up on "a" and its next request is refused locally: the next message
    // is its result, not a GET_STATE for "b".
    let done = peer.recv().await;
    let response = response_of(&done);
    assert_eq!(response.status, 500);
    assert!(
        response
            .message
            .contains("gave up a request before its reply came"),
        "{}",
        response.message
    );
    // The late reply to "a" reaches nobody.
    peer.respond(&first, "A").await;
    assert!(!peer.shim.is_finished());
}
