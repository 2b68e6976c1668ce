//! The peer's handler against raw streams: malformed and out-of-place messages, duplicate
//! registrations, dev mode, keepalive.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use peer_support::{ChaincodeDefinition, Error};
use prost::Message;
use proto::MessageType as T;
use proto::protos::{ChaincodeAdditionalParams, ChaincodeId, ChaincodeMessage, GetState};
use proto::stream::{ChaincodeStream, in_memory_pair};
use tests::{TestPeer, ok_text};
use tokio::time::timeout;
use vm_api::{Ccid, ChaincodePackage, StreamOrigin};

const CH: &str = "mychannel";

/// A chaincode played by the test, message by message.
struct Raw {
    end: ChaincodeStream,
}

impl Raw {
    fn connect(peer: &TestPeer) -> Raw {
        let (peer_end, cc_end) = in_memory_pair(16);
        let support = peer.support.clone();
        tokio::spawn(async move {
            support
                .handle_chaincode_stream(peer_end, StreamOrigin::default())
                .await
        });
        Raw { end: cc_end }
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.end.sender.send(msg).await.unwrap();
    }

    async fn recv(&mut self) -> Option<ChaincodeMessage> {
        timeout(Duration::from_secs(5), self.end.receiver.next())
            .await
            .expect("the peer answers in time")
            .map(|r| r.expect("no transport error"))
    }

    /// Sends GET_STATE of `key` for the transaction of `tx`.
    async fn get_state(&self, tx: &ChaincodeMessage, key: &str) {
        let req = GetState {
            key: key.into(),
            ..Default::default()
        };
        self.send(ChaincodeMessage::with_payload(
            T::GetState,
            &tx.channel_id,
            &tx.txid,
            req.encode_to_vec(),
        ))
        .await;
    }

    /// Answers the transaction of `tx` with COMPLETED and a successful response.
    async fn complete(&self, tx: &ChaincodeMessage, payload: &'static str) {
        let response = proto::protos::Response::ok(payload);
        self.send(ChaincodeMessage::with_payload(
            T::Completed,
            &tx.channel_id,
            &tx.txid,
            response.encode_to_vec(),
        ))
        .await;
    }

    async fn register(&mut self, name: &str) -> ChaincodeMessage {
        let id = ChaincodeId {
            name: name.into(),
            ..ChaincodeId::default()
        };
        self.send(ChaincodeMessage::with_payload(
            T::Register,
            "",
            "",
            id.encode_to_vec(),
        ))
        .await;
        self.recv().await.expect("a reply to REGISTER")
    }
}

fn dev_peer() -> TestPeer {
    TestPeer::builder().config(|c| c.dev_mode = true).build()
}

fn define_dev(peer: &TestPeer, name: &str) {
    let ccid = Ccid::new(name, "1");
    let package = ChaincodePackage::legacy(&ccid, "binary", "/nonexistent");
    peer.definitions
        .define(ChaincodeDefinition::user(ccid, "PROCESS", package));
}

#[tokio::test]
async fn messages_before_register_get_an_error_and_a_bad_register_closes_the_stream() {
    let peer = dev_peer();
    let mut raw = Raw::connect(&peer);
    raw.send(ChaincodeMessage::new(T::GetState, CH, "tx")).await;
    let reply = raw.recv().await.unwrap();
    assert_eq!(reply.kind(), Some(T::Error));
    assert_eq!(reply.txid, "tx");
    assert!(
        reply
            .payload_text()
            .contains("cannot handle GET_STATE while in created state"),
        "{}",
        reply.payload_text()
    );
    raw.send(ChaincodeMessage::with_payload(
        T::Register,
        "",
        "",
        Bytes::from_static(b"\xff\xff\xff"),
    ))
    .await;
    let reply = raw.recv().await.unwrap();
    assert_eq!(reply.kind(), Some(T::Error));
    assert!(
        reply
            .payload_text()
            .contains("cannot decode the REGISTER payload"),
        "{}",
        reply.payload_text()
    );
    assert!(
        raw.recv().await.is_none(),
        "the stream is closed after a failed registration"
    );
    // The peer keeps serving.
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
}

#[tokio::test]
async fn registered_chaincode_gets_errors_for_bad_requests_and_the_peer_survives() {
    let peer = dev_peer();
    define_dev(&peer, "raw");
    let mut raw = Raw::connect(&peer);
    assert_eq!(raw.register("raw:1").await.kind(), Some(T::Registered));
    let ready = raw.recv().await.unwrap();
    assert_eq!(ready.kind(), Some(T::Ready));
    let params = ChaincodeAdditionalParams::decode(ready.payload).unwrap();
    assert!(
        params.use_write_batch,
        "the peer offers Fabric 3.1's write batches"
    );

    // A request for a transaction that is not running.
    raw.send(ChaincodeMessage::with_payload(
        T::GetState,
        CH,
        "ghost",
        GetState {
            key: "k".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    ))
    .await;
    let reply = raw.recv().await.unwrap();
    assert_eq!(
        (reply.kind(), reply.txid.as_str()),
        (Some(T::Error), "ghost")
    );
    assert!(
        reply.payload_text().contains("no transaction context"),
        "{}",
        reply.payload_text()
    );
    // An unknown message type, and REGISTER twice.
    raw.send(ChaincodeMessage {
        r#type: 99,
        txid: "u".into(),
        ..Default::default()
    })
    .await;
    let reply = raw.recv().await.unwrap();
    assert!(
        reply.payload_text().contains("cannot handle UNKNOWN(99)"),
        "{}",
        reply.payload_text()
    );
    let again = raw.register("raw:1").await;
    assert_eq!(again.kind(), Some(T::Error));
    assert!(
        again.payload_text().contains("already registered"),
        "{}",
        again.payload_text()
    );

    // A real transaction: the chaincode sends a malformed request, then completes.
    let (tx, runner) = begin(&peer, &mut raw, "raw", None).await;
    assert!(
        tx.proposal.is_some(),
        "transactions carry the signed proposal"
    );
    raw.send(ChaincodeMessage::with_payload(
        T::GetState,
        &tx.channel_id,
        &tx.txid,
        Bytes::from_static(b"\x0a\xff"),
    ))
    .await;
    let reply = raw.recv().await.unwrap();
    assert_eq!(
        (reply.kind(), reply.txid.as_str()),
        (Some(T::Error), tx.txid.as_str())
    );
    assert!(
        reply.payload_text().contains("cannot decode GetState"),
        "{}",
        reply.payload_text()
    );
    // A valid read gets an empty value for an absent key.
    raw.get_state(&tx, "k").await;
    let reply = raw.recv().await.unwrap();
    assert_eq!((reply.kind(), reply.payload.len()), (Some(T::Response), 0));
    let done = proto::protos::Response::ok("raw done");
    raw.send(ChaincodeMessage::with_payload(
        T::Completed,
        &tx.channel_id,
        &tx.txid,
        done.encode_to_vec(),
    ))
    .await;
    let result = runner.await.unwrap().unwrap();
    assert_eq!(ok_text(&result), "raw done");
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
}

#[tokio::test]
async fn a_refused_duplicate_leaves_the_registered_handler_alone() {
    let peer = dev_peer();
    define_dev(&peer, "dup");
    let mut first = Raw::connect(&peer);
    assert_eq!(first.register("dup:1").await.kind(), Some(T::Registered));
    first.recv().await; // READY
    let mut second = Raw::connect(&peer);
    let refused = second.register("dup:1").await;
    assert_eq!(refused.kind(), Some(T::Error));
    assert!(
        refused.payload_text().contains("duplicate chaincode dup:1"),
        "{}",
        refused.payload_text()
    );
    assert!(
        second.recv().await.is_none(),
        "the duplicate's stream is closed"
    );
    drop(second);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        peer.support.registry().registered(),
        vec!["dup:1".to_owned()]
    );
    // The first still serves transactions.
    let (tx, runner) = begin(&peer, &mut first, "dup", None).await;
    first.complete(&tx, "first").await;
    assert_eq!(ok_text(&runner.await.unwrap().unwrap()), "first");
}

#[tokio::test]
async fn outside_dev_mode_an_unsolicited_registration_is_refused() {
    let peer = TestPeer::new();
    let mut raw = Raw::connect(&peer);
    let reply = raw.register("stranger:1").await;
    assert_eq!(reply.kind(), Some(T::Error));
    assert!(
        reply
            .payload_text()
            .contains("will not accept external chaincode connection stranger:1"),
        "{}",
        reply.payload_text()
    );
    assert!(peer.support.registry().registered().is_empty());
}

#[tokio::test]
async fn in_dev_mode_user_chaincodes_are_not_launched() {
    let peer = dev_peer();
    define_dev(&peer, "manual");
    let err = peer.invoke(CH, "manual", &["x"]).await.unwrap_err();
    assert!(
        matches!(err, Error::NotRunningInDevMode { .. }),
        "{}",
        err.report()
    );
    assert!(
        err.to_string().contains("CORE_CHAINCODE_ID_NAME=manual:1"),
        "{err}"
    );
    // System chaincodes still are.
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
}

#[tokio::test]
async fn stream_end_fails_the_waiting_transaction_and_deregisters() {
    let peer = dev_peer();
    define_dev(&peer, "quitter");
    let mut raw = Raw::connect(&peer);
    raw.register("quitter:1").await;
    raw.recv().await;
    let (_tx, runner) = begin(&peer, &mut raw, "quitter", None).await;
    drop(raw);
    let err = timeout(Duration::from_secs(1), runner)
        .await
        .expect("fails within a second")
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string().starts_with("chaincode stream terminated"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(peer.support.registry().registered().is_empty());
}

#[tokio::test]
async fn keepalive_is_sent_at_the_configured_interval() {
    let peer = TestPeer::builder()
        .config(|c| {
            c.dev_mode = true;
            c.keepalive = Duration::from_millis(30);
        })
        .build();
    let mut raw = Raw::connect(&peer);
    raw.register("alive:1").await;
    raw.recv().await; // READY
    for _ in 0..2 {
        assert_eq!(raw.recv().await.unwrap().kind(), Some(T::Keepalive));
    }
}

#[tokio::test]
async fn an_in_process_chaincode_registering_under_another_name_fails_its_launch_at_once() {
    // The SYSTEM backend opens the stream for kvscc; the chaincode claims another name.
    let peer = TestPeer::builder()
        .with(|b| {
            b.vm("LIAR", |_| {
                Ok(std::sync::Arc::new(tests::fixtures::Manual) as std::sync::Arc<dyn vm_api::Vm>)
            })
        })
        .build();
    let def = ChaincodeDefinition::builtin(Ccid::new("honest", "1"), "LIAR");
    let launch = {
        let support = peer.support.clone();
        let def = def.clone();
        tokio::spawn(async move { support.launch(&def).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (peer_end, mut cc_end) = in_memory_pair(16);
    let support = peer.support.clone();
    tokio::spawn(async move {
        support
            .handle_chaincode_stream(
                peer_end,
                StreamOrigin {
                    expected: Some(Ccid::new("honest", "1")),
                    client_cert_hash: None,
                },
            )
            .await
    });
    let id = ChaincodeId {
        name: "impostor:1".into(),
        ..Default::default()
    };
    cc_end
        .sender
        .send(ChaincodeMessage::with_payload(
            T::Register,
            "",
            "",
            id.encode_to_vec(),
        ))
        .await
        .unwrap();
    let reply = cc_end.receiver.next().await.unwrap().unwrap();
    assert_eq!(reply.kind(), Some(T::Error));
    let err = timeout(Duration::from_secs(2), launch)
        .await
        .expect("the launch fails at once")
        .unwrap()
        .unwrap_err();
    assert!(
        err.report().contains("opened for chaincode honest:1"),
        "{}",
        err.report()
    );
}

impl Raw {
    fn connect_with_capacity(peer: &TestPeer, capacity: usize) -> Raw {
        let (peer_end, cc_end) = in_memory_pair(capacity);
        let support = peer.support.clone();
        tokio::spawn(async move {
            support
                .handle_chaincode_stream(peer_end, StreamOrigin::default())
                .await
        });
        Raw { end: cc_end }
    }
}

/// Starts a transaction on `name` in the background and returns the TRANSACTION message.
async fn begin(
    peer: &TestPeer,
    raw: &mut Raw,
    name: &str,
    simulator: Option<std::sync::Arc<dyn peer_support::ledger::TxSimulator>>,
) -> (
    ChaincodeMessage,
    tokio::task::JoinHandle<peer_support::Result<peer_support::ExecuteResult>>,
) {
    let support = peer.support.clone();
    let input = tests::input(&["x"]);
    let (mut params, _) = peer.tx(CH, name, &input);
    if let Some(sim) = simulator {
        params.simulator = Some(sim);
    }
    let name = name.to_owned();
    let run = tokio::spawn(async move { support.execute(&params, &name, input).await });
    let tx = raw.recv().await.unwrap();
    assert_eq!(tx.kind(), Some(T::Transaction));
    (tx, run)
}

#[tokio::test]
async fn an_inverted_range_is_empty_and_a_panicking_ledger_is_an_error_reply() {
    use peer_support::ledger::{Metadata, QueryExecutor, StateIterator, TxSimulator};
    /// A ledger whose reads panic.
    struct Broken;
    impl QueryExecutor for Broken {
        fn get_state(&self, _: &str, _: &str) -> peer_support::Result<Option<Bytes>> {
            panic!("the ledger's disk is on fire")
        }
        fn get_state_metadata(&self, _: &str, _: &str) -> peer_support::Result<Metadata> {
            Ok(Metadata::new())
        }
        fn get_state_range(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> peer_support::Result<Box<dyn StateIterator>> {
            Err(peer_support::Error::Ledger("no ranges".into()))
        }
        fn execute_query(&self, _: &str, _: &str) -> peer_support::Result<Box<dyn StateIterator>> {
            Err(peer_support::Error::Ledger("no queries".into()))
        }
        fn get_private_data(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> peer_support::Result<Option<Bytes>> {
            Ok(None)
        }
        fn get_private_data_hash(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> peer_support::Result<Option<Bytes>> {
            Ok(None)
        }
        fn get_private_data_metadata(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> peer_support::Result<Metadata> {
            Ok(Metadata::new())
        }
        fn get_private_data_range(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
        ) -> peer_support::Result<Box<dyn StateIterator>> {
            Err(peer_support::Error::Ledger("no ranges".into()))
        }
        fn execute_query_on_private_data(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> peer_support::Result<Box<dyn StateIterator>> {
            Err(peer_support::Error::Ledger("no queries".into()))
        }
    }
    impl TxSimulator for Broken {
        fn set_state(&self, _: &str, _: &str, _: Bytes) -> peer_support::Result<()> {
            Ok(())
        }
        fn delete_state(&self, _: &str, _: &str) -> peer_support::Result<()> {
            Ok(())
        }
        fn set_state_metadata(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: Bytes,
        ) -> peer_support::Result<()> {
            Ok(())
        }
        fn set_private_data(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: Bytes,
        ) -> peer_support::Result<()> {
            Ok(())
        }
        fn delete_private_data(&self, _: &str, _: &str, _: &str) -> peer_support::Result<()> {
            Ok(())
        }
        fn set_private_data_metadata(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
            _: Bytes,
        ) -> peer_support::Result<()> {
            Ok(())
        }
        fn purge_private_data(&self, _: &str, _: &str, _: &str) -> peer_support::Result<()> {
            Ok(())
        }
    }

    let peer = dev_peer();
    define_dev(&peer, "raw");
    let mut raw = Raw::connect(&peer);
    raw.register("raw:1").await;
    raw.recv().await;
    // Start after end: an empty result, not a panic.
    let (tx, run) = begin(&peer, &mut raw, "raw", None).await;
    let range = proto::protos::GetStateByRange {
        start_key: "b".into(),
        end_key: "a".into(),
        ..Default::default()
    };
    raw.send(ChaincodeMessage::with_payload(
        T::GetStateByRange,
        &tx.channel_id,
        &tx.txid,
        range.encode_to_vec(),
    ))
    .await;
    let reply = raw.recv().await.unwrap();
    assert_eq!(reply.kind(), Some(T::Response), "{}", reply.payload_text());
    let batch = proto::protos::QueryResponse::decode(reply.payload).unwrap();
    assert!(batch.results.is_empty() && !batch.has_more);
    raw.complete(&tx, "").await;
    run.await.unwrap().unwrap();
    // A ledger that panics: the request gets an ERROR and the stream goes on.
    let (tx, run) = begin(&peer, &mut raw, "raw", Some(std::sync::Arc::new(Broken))).await;
    raw.get_state(&tx, "k").await;
    let reply = raw.recv().await.unwrap();
    assert_eq!(reply.kind(), Some(T::Error));
    assert!(
        reply
            .payload_text()
            .contains("internal error in the peer serving GET_STATE"),
        "{}",
        reply.payload_text()
    );
    raw.complete(&tx, "alive").await;
    assert_eq!(ok_text(&run.await.unwrap().unwrap()), "alive");
    assert_eq!(peer.support.registry().registered(), ["raw:1"]);
}

#[tokio::test]
async fn a_chaincode_that_stops_reading_is_timed_out_and_dropped() {
    let peer = TestPeer::builder()
        .config(|c| {
            c.dev_mode = true;
            c.execute_timeout = Duration::from_millis(300);
        })
        .build();
    define_dev(&peer, "deaf");
    // Room for one message towards the chaincode.
    let mut raw = Raw::connect_with_capacity(&peer, 1);
    assert_eq!(raw.register("deaf:1").await.kind(), Some(T::Registered));
    raw.recv().await; // READY; from now on the chaincode reads nothing.
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let support = peer.support.clone();
            let input = tests::input(&["x"]);
            let (params, _) = peer.tx(CH, "deaf", &input);
            tokio::spawn(async move { support.execute(&params, "deaf", input).await })
        })
        .collect();
    for call in calls {
        let err = timeout(Duration::from_secs(5), call)
            .await
            .expect("bounded by the execute timeout")
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, Error::ExecuteTimeout { .. }),
            "{}",
            err.report()
        );
    }
    // It floods requests and reads no replies: the peer stops serving it instead of queueing.
    for i in 0..50 {
        if raw
            .end
            .sender
            .send(ChaincodeMessage::new(T::GetState, CH, format!("junk{i}")))
            .await
            .is_err()
        {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while peer
        .support
        .registry()
        .registered()
        .contains(&"deaf:1".to_owned())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        peer.support.registry().registered().is_empty(),
        "the deaf chaincode was dropped"
    );
}

#[tokio::test]
async fn chaincode_calls_beyond_the_limit_are_refused_not_waited_for() {
    let peer = TestPeer::builder()
        .config(|c| {
            c.dev_mode = true;
            c.max_concurrent_requests = 1;
        })
        .chaincode("trouble", "1", tests::fixtures::troublemaker)
        .build();
    define_dev(&peer, "caller");
    let mut raw = Raw::connect(&peer);
    raw.register("caller:1").await;
    raw.recv().await;
    let call = |to: &ChaincodeMessage| {
        let spec = proto::protos::ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name: "trouble".into(),
                ..Default::default()
            }),
            input: Some(tests::input(&["sleep", "500"])),
            ..Default::default()
        };
        ChaincodeMessage::with_payload(
            T::InvokeChaincode,
            to.channel_id.clone(),
            to.txid.clone(),
            spec.encode_to_vec(),
        )
    };
    let (tx1, run1) = begin(&peer, &mut raw, "caller", None).await;
    let (tx2, run2) = begin(&peer, &mut raw, "caller", None).await;
    raw.send(call(&tx1)).await;
    raw.send(call(&tx2)).await;
    // The second call is refused at once; the first is answered after the callee's sleep.
    let first = raw.recv().await.unwrap();
    assert_eq!(
        (first.kind(), first.txid.as_str()),
        (Some(T::Error), tx2.txid.as_str())
    );
    assert!(
        first
            .payload_text()
            .contains("too many chaincode-to-chaincode calls"),
        "{}",
        first.payload_text()
    );
    let second = raw.recv().await.unwrap();
    assert_eq!(
        (second.kind(), second.txid.as_str()),
        (Some(T::Response), tx1.txid.as_str())
    );
    for (tx, run) in [(tx1, run1), (tx2, run2)] {
        raw.complete(&tx, "").await;
        run.await.unwrap().unwrap();
    }
}
