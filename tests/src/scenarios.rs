//! The key/value scenarios every kv chaincode passes, whichever language it is written in and
//! however it runs: Fabric's Node chaincode, our Rust one, launched or started by hand, in a
//! process or in a container.

use serde_json::Value;

use crate::{TestPeer, ok_text};

/// The channel the scenarios run on.
pub const CHANNEL: &str = "interop";

/// The other chaincodes a scenario calls.
#[derive(Debug, Clone, Copy)]
pub struct Callees<'a> {
    /// A system chaincode (kvscc).
    pub system: &'a str,
    /// A user chaincode in another process (the Rust kv chaincode, or the Node one).
    pub user: &'a str,
}

/// Runs every scenario against kv chaincode `cc`; panics with the failing step.
pub async fn kv_scenarios(peer: &TestPeer, cc: &str, callees: Callees<'_>) {
    let ch = CHANNEL;
    // init seeds pairs
    let init = peer
        .init(ch, cc, &["init", "seed", "s0"])
        .await
        .expect("init");
    assert_eq!(ok_text(&init), "init ok");
    assert_eq!(
        ok_text(&peer.query(ch, cc, &["get", "seed"]).await.unwrap()),
        "s0",
        "init wrote its pairs"
    );

    // put, get, a missing key, del
    assert_eq!(
        ok_text(&peer.invoke(ch, cc, &["put", "k1", "v1"]).await.unwrap()),
        "ok"
    );
    assert_eq!(
        ok_text(&peer.query(ch, cc, &["get", "k1"]).await.unwrap()),
        "v1"
    );
    let missing = peer.query(ch, cc, &["get", "nope"]).await.unwrap();
    assert_eq!(missing.response.status, 500, "{:?}", missing.response);
    assert_eq!(missing.response.message, "no such key: nope");
    assert_eq!(
        ok_text(&peer.invoke(ch, cc, &["del", "k1"]).await.unwrap()),
        "ok"
    );
    assert_eq!(
        peer.query(ch, cc, &["get", "k1"])
            .await
            .unwrap()
            .response
            .status,
        500
    );

    // a range over 260 keys: several batches of 100
    let mut args = vec!["init".to_owned()];
    for i in 0..260 {
        args.push(format!("r{i:03}"));
        args.push(format!("value-{i}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok_text(&peer.init(ch, cc, &args).await.unwrap());
    let range: Vec<Value> = serde_json::from_str(&ok_text(
        &peer
            .query(ch, cc, &["range", "r000", "r999"])
            .await
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(range.len(), 260);
    assert_eq!(range[0]["key"], "r000");
    assert_eq!(range[0]["value"], "value-0");
    assert_eq!(range[259]["key"], "r259");
    let keys: Vec<&str> = range.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "range in key order");
    let everything: Vec<Value> = serde_json::from_str(&ok_text(
        &peer.query(ch, cc, &["range", "", ""]).await.unwrap(),
    ))
    .unwrap();
    assert_eq!(everything.len(), 261, "260 range keys and the seed");

    // an event comes back with the response
    let evented = peer
        .invoke(ch, cc, &["event", "KeyCreated", "payload-1"])
        .await
        .unwrap();
    assert_eq!(ok_text(&evented), "ok");
    let event = evented.event.expect("event with the response");
    assert_eq!(event.event_name, "KeyCreated");
    assert_eq!(&event.payload[..], b"payload-1");

    // cc-to-cc: to a system chaincode and to another user chaincode
    ok_text(
        &peer
            .invoke(ch, callees.system, &["put", "shared", "from-system"])
            .await
            .unwrap(),
    );
    assert_eq!(
        ok_text(
            &peer
                .query(ch, cc, &["call", callees.system, "get", "shared"])
                .await
                .unwrap()
        ),
        "from-system"
    );
    ok_text(
        &peer
            .invoke(ch, callees.user, &["put", "shared", "from-user"])
            .await
            .unwrap(),
    );
    assert_eq!(
        ok_text(
            &peer
                .query(ch, cc, &["call", callees.user, "get", "shared"])
                .await
                .unwrap()
        ),
        "from-user"
    );
    let failed_call = peer
        .query(ch, cc, &["call", callees.user, "get", "absent"])
        .await
        .unwrap();
    assert_eq!(failed_call.response.status, 500);
    assert!(
        failed_call.response.message.contains("no such key: absent"),
        "{:?}",
        failed_call.response
    );
    // a write through a call lands in the callee's namespace
    ok_text(
        &peer
            .invoke(ch, cc, &["call", callees.system, "put", "via-call", "yes"])
            .await
            .unwrap(),
    );
    assert_eq!(
        peer.state(ch, callees.system, "via-call").as_deref(),
        Some(&b"yes"[..])
    );

    // fail
    let fail = peer.invoke(ch, cc, &["fail", "deliberate"]).await.unwrap();
    assert_eq!(
        (fail.response.status, fail.response.message.as_str()),
        (500, "deliberate")
    );

    // whoami: the transaction as the chaincode sees it
    let result = peer.query(ch, cc, &["whoami"]).await.unwrap();
    let me: Value = serde_json::from_str(&ok_text(&result)).unwrap();
    assert_eq!(me["channel"], ch);
    assert_eq!(me["txid"].as_str().unwrap().len(), 64);

    // what was committed is in the ledger under the chaincode's namespace
    let ns = cc.split(':').next().unwrap();
    assert_eq!(peer.state(ch, ns, "seed").as_deref(), Some(&b"s0"[..]));
    assert_eq!(peer.state(ch, ns, "k1"), None);
}
