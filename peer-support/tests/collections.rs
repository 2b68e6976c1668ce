//! Private data requests against the collections of the executing definition: a declared
//! collection works, an undeclared one is an error naming it (Fabric's texts) and changes
//! nothing, a definition that declares none is not checked, and a called chaincode is checked
//! against its own definition.
//!
//! The chaincodes are played by the test over in-memory streams, in dev mode (they register
//! themselves).

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use peer_support::ledger::{Ledger, TxSimulator, private_namespace};
use peer_support::{
    ChaincodeDefinition, ChaincodeSupport, DefinitionMap, ExecuteResult, SupportConfig, TxParams,
};
use prost::Message;
use proto::MessageType as T;
use proto::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec, DelState, GetQueryResult,
    GetState, GetStateByRange, GetStateMetadata, GetStateMultiple, PurgePrivateState, PutState,
    Response, WriteBatchState, WriteRecord, write_record,
};
use proto::stream::{ChaincodeStream, in_memory_pair};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use vm_api::{Ccid, ChaincodePackage, StreamOrigin};

const CH: &str = "mychannel";

fn definition(name: &str) -> ChaincodeDefinition {
    let ccid = Ccid::new(name, "1");
    let package = ChaincodePackage::legacy(&ccid, "binary", "/nonexistent");
    ChaincodeDefinition::user(ccid, "PROCESS", package)
}

fn dev_support(definitions: DefinitionMap) -> ChaincodeSupport {
    let config = SupportConfig {
        dev_mode: true,
        ..SupportConfig::default()
    };
    ChaincodeSupport::builder(config)
        .definitions(Arc::new(definitions))
        .build()
        .unwrap()
}

/// A chaincode played by the test.
struct Raw {
    end: ChaincodeStream,
}

impl Raw {
    /// Connects and registers as `name:1`.
    async fn register(support: &ChaincodeSupport, name: &str) -> Raw {
        let (peer_end, cc_end) = in_memory_pair(16);
        let support = support.clone();
        tokio::spawn(async move {
            support
                .handle_chaincode_stream(peer_end, StreamOrigin::default())
                .await
        });
        let mut raw = Raw { end: cc_end };
        let id = ChaincodeId {
            name: format!("{name}:1"),
            ..ChaincodeId::default()
        };
        raw.send(ChaincodeMessage::with_payload(
            T::Register,
            "",
            "",
            id.encode_to_vec(),
        ))
        .await;
        assert_eq!(raw.recv().await.kind(), Some(T::Registered));
        assert_eq!(raw.recv().await.kind(), Some(T::Ready));
        raw
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.end.sender.send(msg).await.unwrap();
    }

    async fn recv(&mut self) -> ChaincodeMessage {
        timeout(Duration::from_secs(5), self.end.receiver.next())
            .await
            .expect("the peer answers in time")
            .expect("the stream is open")
            .expect("no transport error")
    }

    /// Sends request `kind` with `payload` in the transaction of `tx` and returns the reply.
    async fn ask(
        &mut self,
        tx: &ChaincodeMessage,
        kind: T,
        payload: impl Message,
    ) -> ChaincodeMessage {
        self.send(ChaincodeMessage::with_payload(
            kind,
            &tx.channel_id,
            &tx.txid,
            payload.encode_to_vec(),
        ))
        .await;
        let reply = self.recv().await;
        assert_eq!(reply.txid, tx.txid);
        reply
    }

    async fn complete(&self, tx: &ChaincodeMessage, response: Response) {
        self.send(ChaincodeMessage::with_payload(
            T::Completed,
            &tx.channel_id,
            &tx.txid,
            response.encode_to_vec(),
        ))
        .await;
    }
}

fn put(collection: &str, key: &str) -> PutState {
    PutState {
        key: key.into(),
        value: b"v".to_vec().into(),
        collection: collection.into(),
    }
}

fn get(collection: &str) -> GetState {
    GetState {
        key: "k".into(),
        collection: collection.into(),
    }
}

/// Starts a transaction on chaincode `name`; returns the simulator and the pending result.
fn begin(
    support: &ChaincodeSupport,
    ledger: &Ledger,
    name: &'static str,
    txid: &str,
) -> (
    Arc<peer_support::ledger::Simulator>,
    JoinHandle<peer_support::Result<ExecuteResult>>,
) {
    let simulator = ledger.new_tx_simulator();
    let params = TxParams {
        tx_id: txid.into(),
        channel_id: CH.into(),
        simulator: Some(Arc::clone(&simulator) as Arc<dyn TxSimulator>),
        ..TxParams::default()
    };
    let support = support.clone();
    let run = tokio::spawn(async move {
        support
            .execute(&params, name, ChaincodeInput::default())
            .await
    });
    (simulator, run)
}

fn assert_error(reply: &ChaincodeMessage, text: &str) {
    assert_eq!(reply.kind(), Some(T::Error), "{}", reply.payload_text());
    assert!(
        reply.payload_text().contains(text),
        "{:?} does not contain {text:?}",
        reply.payload_text()
    );
}

fn assert_response(reply: &ChaincodeMessage) {
    assert_eq!(reply.kind(), Some(T::Response), "{}", reply.payload_text());
}

#[tokio::test]
async fn a_declared_collection_works_and_an_undeclared_one_is_an_error_naming_it() {
    let definitions = DefinitionMap::new();
    definitions.define(definition("cc").with_collections(["secret"]));
    let support = dev_support(definitions);
    let ledger = Ledger::in_memory(CH);
    let mut cc = Raw::register(&support, "cc").await;
    let (simulator, run) = begin(&support, &ledger, "cc", "tx1");
    let tx = cc.recv().await;
    assert_eq!(tx.kind(), Some(T::Transaction));

    // Declared, implicit and public: served.
    assert_response(&cc.ask(&tx, T::PutState, put("secret", "k")).await);
    assert_response(&cc.ask(&tx, T::GetState, get("secret")).await);
    assert_response(&cc.ask(&tx, T::GetState, get("_implicit_org_Org1MSP")).await);
    assert_response(&cc.ask(&tx, T::PutState, put("", "public")).await);

    // Undeclared: Fabric's errors, for every kind of private data request.
    let not_found = "collection mychannel/cc/nope could not be found";
    assert_error(&cc.ask(&tx, T::PutState, put("nope", "k")).await, not_found);
    assert_error(&cc.ask(&tx, T::GetState, get("nope")).await, not_found);
    assert_error(
        &cc.ask(&tx, T::GetPrivateDataHash, get("nope")).await,
        "collection [nope] not defined in the collection config for chaincode [cc]",
    );
    let del = DelState {
        key: "k".into(),
        collection: "nope".into(),
    };
    assert_error(&cc.ask(&tx, T::DelState, del).await, not_found);
    let purge = PurgePrivateState {
        key: "k".into(),
        collection: "nope".into(),
    };
    assert_error(&cc.ask(&tx, T::PurgePrivateData, purge).await, not_found);
    let metadata = GetStateMetadata {
        key: "k".into(),
        collection: "nope".into(),
    };
    assert_error(&cc.ask(&tx, T::GetStateMetadata, metadata).await, not_found);
    let range = GetStateByRange {
        start_key: "a".into(),
        end_key: "z".into(),
        collection: "nope".into(),
        ..GetStateByRange::default()
    };
    assert_error(&cc.ask(&tx, T::GetStateByRange, range).await, not_found);
    let query = GetQueryResult {
        query: "{}".into(),
        collection: "nope".into(),
        ..GetQueryResult::default()
    };
    assert_error(&cc.ask(&tx, T::GetQueryResult, query).await, not_found);
    let multiple = GetStateMultiple {
        keys: vec!["k".into()],
        collection: "nope".into(),
    };
    assert_error(&cc.ask(&tx, T::GetStateMultiple, multiple).await, not_found);
    // A batch with one undeclared collection writes none of its records.
    let record = |collection: &str, key: &str| WriteRecord {
        key: key.into(),
        value: b"v".to_vec().into(),
        collection: collection.into(),
        r#type: write_record::Type::PutState as i32,
        ..WriteRecord::default()
    };
    let batch = WriteBatchState {
        rec: vec![record("secret", "k2"), record("nope", "k3")],
    };
    assert_error(&cc.ask(&tx, T::WriteBatchState, batch).await, not_found);

    // The chaincode reports the failure; the transaction ends cleanly with it, and its writes
    // are only the ones that were served.
    cc.complete(&tx, Response::error(not_found)).await;
    let result = run.await.unwrap().unwrap();
    assert_eq!(result.response.status, 500);
    assert_eq!(result.response.message, not_found);
    let writes: Vec<(String, String)> = simulator.rwset().writes.into_keys().collect();
    assert_eq!(
        writes,
        vec![
            ("cc".to_owned(), "public".to_owned()),
            (private_namespace("cc", "secret"), "k".to_owned()),
        ]
    );

    // The stream still serves the next transaction.
    let (_, run) = begin(&support, &ledger, "cc", "tx2");
    let tx = cc.recv().await;
    assert_response(&cc.ask(&tx, T::GetState, get("secret")).await);
    cc.complete(&tx, Response::ok("fine")).await;
    assert_eq!(run.await.unwrap().unwrap().response.status, 200);
}

#[tokio::test]
async fn a_definition_without_collections_is_not_checked() {
    let definitions = DefinitionMap::new();
    let legacy = definition("old");
    assert_eq!(legacy.collections, None);
    definitions.define(legacy);
    let support = dev_support(definitions);
    let ledger = Ledger::in_memory(CH);
    let mut cc = Raw::register(&support, "old").await;
    let (simulator, run) = begin(&support, &ledger, "old", "tx1");
    let tx = cc.recv().await;
    assert_response(&cc.ask(&tx, T::PutState, put("anything", "k")).await);
    assert_response(&cc.ask(&tx, T::GetPrivateDataHash, get("anything")).await);
    cc.complete(&tx, Response::ok("done")).await;
    assert_eq!(run.await.unwrap().unwrap().response.status, 200);
    assert!(
        simulator
            .rwset()
            .written(&private_namespace("old", "anything"), "k")
            .is_some()
    );

    // An empty declaration is a declaration: every explicit collection is undefined.
    let definitions = DefinitionMap::new();
    definitions.define(definition("none").with_collections(Vec::<String>::new()));
    let support = dev_support(definitions);
    let mut cc = Raw::register(&support, "none").await;
    let (_, run) = begin(&support, &ledger, "none", "tx2");
    let tx = cc.recv().await;
    assert_error(
        &cc.ask(&tx, T::PutState, put("anything", "k")).await,
        "collection mychannel/none/anything could not be found",
    );
    cc.complete(&tx, Response::ok("done")).await;
    run.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_called_chaincode_is_checked_against_its_own_definition() {
    let definitions = DefinitionMap::new();
    definitions.define(definition("caller").with_collections(["mine"]));
    definitions.define(definition("callee").with_collections(["theirs"]));
    let support = dev_support(definitions);
    let ledger = Ledger::in_memory(CH);
    let mut caller = Raw::register(&support, "caller").await;
    let mut callee = Raw::register(&support, "callee").await;
    let (_, run) = begin(&support, &ledger, "caller", "tx1");
    let tx = caller.recv().await;
    let spec = ChaincodeSpec {
        chaincode_id: Some(ChaincodeId {
            name: "callee".into(),
            ..ChaincodeId::default()
        }),
        input: Some(ChaincodeInput::default()),
        ..ChaincodeSpec::default()
    };
    caller
        .send(ChaincodeMessage::with_payload(
            T::InvokeChaincode,
            &tx.channel_id,
            &tx.txid,
            spec.encode_to_vec(),
        ))
        .await;
    let inner = callee.recv().await;
    assert_eq!(inner.kind(), Some(T::Transaction));
    assert_response(&callee.ask(&inner, T::PutState, put("theirs", "k")).await);
    assert_error(
        &callee.ask(&inner, T::PutState, put("mine", "k")).await,
        "collection mychannel/callee/mine could not be found",
    );
    callee.complete(&inner, Response::ok("inner")).await;
    let reply = caller.recv().await;
    assert_response(&reply);
    let completed = ChaincodeMessage::decode(reply.payload).unwrap();
    assert_eq!(completed.kind(), Some(T::Completed));
    // Back in the caller, its own collection is the declared one.
    assert_response(&caller.ask(&tx, T::PutState, put("mine", "k")).await);
    assert_error(
        &caller.ask(&tx, T::PutState, put("theirs", "k")).await,
        "collection mychannel/caller/theirs could not be found",
    );
    caller.complete(&tx, Response::ok("outer")).await;
    assert_eq!(run.await.unwrap().unwrap().response.status, 200);
}
