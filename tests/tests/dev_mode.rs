//! Dev mode: chaincodes started by hand register themselves, but not under a system
//! chaincode's name.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use proto::MessageType as T;
use proto::protos::{ChaincodeId, ChaincodeMessage};
use proto::stream::{ChaincodeStream, in_memory_pair};
use tests::{TestPeer, ok_text};
use tokio::time::timeout;
use vm_api::StreamOrigin;

const CH: &str = "mychannel";

/// Opens a stream to the peer as a chaincode started by hand would (no expected name).
fn connect(peer: &TestPeer) -> ChaincodeStream {
    let (peer_end, cc_end) = in_memory_pair(16);
    let support = peer.support.clone();
    tokio::spawn(async move {
        support
            .handle_chaincode_stream(peer_end, StreamOrigin::default())
            .await
    });
    cc_end
}

async fn recv(end: &mut ChaincodeStream) -> Option<ChaincodeMessage> {
    timeout(Duration::from_secs(5), end.receiver.next())
        .await
        .expect("the peer answers in time")
        .map(|r| r.expect("no transport error"))
}

/// Sends REGISTER as `name` and returns the peer's reply.
async fn register(end: &mut ChaincodeStream, name: &str) -> ChaincodeMessage {
    let id = ChaincodeId {
        name: name.into(),
        ..ChaincodeId::default()
    };
    end.sender
        .send(ChaincodeMessage::with_payload(
            T::Register,
            "",
            "",
            id.encode_to_vec(),
        ))
        .await
        .unwrap();
    recv(end).await.expect("a reply to REGISTER")
}

async fn assert_refused_as_reserved(peer: &TestPeer, name: &str) {
    let mut fake = connect(peer);
    let reply = register(&mut fake, name).await;
    assert_eq!(reply.kind(), Some(T::Error), "{}", reply.payload_text());
    assert!(
        reply.payload_text().contains(&format!(
            "{name} is reserved: it is the system chaincode kvscc"
        )),
        "{}",
        reply.payload_text()
    );
    assert!(
        recv(&mut fake).await.is_none(),
        "the refused stream is closed"
    );
}

#[tokio::test]
async fn a_hand_started_chaincode_cannot_take_a_system_chaincodes_name() {
    let peer = TestPeer::builder().config(|c| c.dev_mode = true).build();
    let kvscc = peer.support.definition(CH, "kvscc").unwrap();
    assert!(kvscc.is_system());
    let reserved = kvscc.ccid.registered_name();

    // Before the system chaincode ever ran: refused, and nothing registered.
    assert_refused_as_reserved(&peer, &reserved).await;
    assert!(peer.support.registry().registered().is_empty());

    // The system chaincode still runs, in process, and answers its own calls.
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
    assert_eq!(
        ok_text(&peer.invoke(CH, "kvscc", &["get", "k"]).await.unwrap()),
        "v"
    );
    assert!(peer.support.registry().registered().contains(&reserved));

    // While it runs, the name is still refused as reserved (not merely as a duplicate).
    assert_refused_as_reserved(&peer, &reserved).await;

    // Other names register as usual in dev mode.
    let mut other = connect(&peer);
    assert_eq!(
        register(&mut other, "mine:1").await.kind(),
        Some(T::Registered)
    );
}
