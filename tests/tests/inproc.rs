//! System chaincodes launched through peer-support by container type SYSTEM, end to end.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use peer_support::{ChaincodeDefinition, Error};
use serde_json::Value;
use tests::fixtures::{CountingVm, troublemaker};
use tests::{TestPeer, kvscc, ok_text};
use vm_api::Ccid;
use vm_inproc::{InprocVm, SystemChaincodes};

const CH: &str = "mychannel";

#[tokio::test]
async fn system_registered_when_vm_inproc_is_linked() {
    let registry = vm_api::providers().expect("no duplicate providers");
    assert!(
        registry.get("SYSTEM").is_some(),
        "registered: {:?}",
        registry.keys()
    );
    let sccs = vm_inproc::system_chaincodes().unwrap();
    assert!(sccs.contains(&kvscc()), "{sccs:?}");
}

#[tokio::test]
async fn launch_invoke_and_read_state_back() {
    let peer = TestPeer::new();
    ok_text(&peer.init(CH, "kvscc", &["init", "a", "1"]).await.unwrap());
    assert_eq!(
        ok_text(&peer.invoke(CH, "kvscc", &["put", "b", "2"]).await.unwrap()),
        "ok"
    );
    assert_eq!(peer.state(CH, "kvscc", "a").as_deref(), Some(&b"1"[..]));
    assert_eq!(peer.state(CH, "kvscc", "b").as_deref(), Some(&b"2"[..]));
    assert_eq!(
        ok_text(&peer.query(CH, "kvscc", &["get", "b"]).await.unwrap()),
        "2"
    );
    let missing = peer.query(CH, "kvscc", &["get", "zz"]).await.unwrap();
    assert_eq!(missing.response.status, 500);
    assert_eq!(missing.response.message, "no such key: zz");
    peer.invoke(CH, "kvscc", &["del", "b"]).await.unwrap();
    assert_eq!(peer.state(CH, "kvscc", "b"), None);
    assert_eq!(
        peer.support.registry().registered(),
        vec![kvscc().registered_name()]
    );
}

#[tokio::test]
async fn writes_are_the_same_with_and_without_write_batches() {
    for batch in [None, Some(1), Some(1000)] {
        let peer = TestPeer::builder()
            .config(|c| c.write_batch = batch)
            .build();
        peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap();
        peer.invoke(CH, "kvscc", &["putc", "color", "red", "1", "x"])
            .await
            .unwrap();
        assert_eq!(
            peer.state(CH, "kvscc", "k").as_deref(),
            Some(&b"v"[..]),
            "batch {batch:?}"
        );
        let found = peer
            .query(CH, "kvscc", &["byprefix", "color"])
            .await
            .unwrap();
        assert_eq!(
            ok_text(&found),
            r#"[{"attrs":["red","1"],"value":"x"}]"#,
            "batch {batch:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_launches_make_one_instance() {
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let peer = TestPeer::builder()
        .with(move |b| {
            b.in_process_vm("SYSTEM", move |_, peer| {
                let inproc = InprocVm::new(peer, SystemChaincodes::new());
                Ok(Arc::new(CountingVm {
                    inner: Arc::new(inproc),
                    starts: counter.clone(),
                    swallow: Arc::new(AtomicUsize::new(0)),
                    start_delay: Duration::from_millis(50),
                }) as Arc<dyn vm_api::Vm>)
            })
        })
        .build();
    let calls = (0..20).map(|i| {
        let peer = &peer;
        async move {
            peer.invoke(CH, "kvscc", &["put", &format!("k{i}"), "v"])
                .await
        }
    });
    for result in futures::future::join_all(calls).await {
        ok_text(&result.unwrap());
    }
    assert_eq!(
        starts.load(Ordering::SeqCst),
        1,
        "one start for 20 concurrent launches"
    );
    assert_eq!(peer.support.registry().registered().len(), 1);
}

#[tokio::test]
async fn startup_timeout_is_clear_leaves_nothing_and_the_next_launch_succeeds() {
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let peer = TestPeer::builder()
        .config(|c| c.startup_timeout = Duration::from_millis(300))
        .with(move |b| {
            b.in_process_vm("SYSTEM", move |_, peer| {
                let inproc = InprocVm::new(peer, SystemChaincodes::new());
                Ok(Arc::new(CountingVm {
                    inner: Arc::new(inproc),
                    starts: counter.clone(),
                    swallow: Arc::new(AtomicUsize::new(1)),
                    start_delay: Duration::ZERO,
                }) as Arc<dyn vm_api::Vm>)
            })
        })
        .build();
    let err = peer
        .invoke(CH, "kvscc", &["put", "k", "v"])
        .await
        .unwrap_err();
    let text = err.report();
    assert!(matches!(err, Error::Launch { .. }), "{text}");
    assert!(text.contains("did not register within 300ms"), "{text}");
    assert!(
        text.contains("still waiting for a database that never comes"),
        "last output shown: {text}"
    );
    assert!(peer.support.registry().registered().is_empty());
    assert!(
        peer.support.registry().launched().is_empty(),
        "no leftover launch"
    );
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
    assert_eq!(starts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_panicking_chaincode_fails_its_caller_and_the_peer_keeps_serving() {
    let peer = TestPeer::builder()
        .chaincode("trouble", "1", troublemaker)
        .build();
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
    assert_eq!(
        ok_text(&peer.invoke(CH, "trouble", &["ping"]).await.unwrap()),
        "pong"
    );
    let err = peer.invoke(CH, "trouble", &["panic"]).await.unwrap_err();
    let text = err.report();
    assert!(matches!(err, Error::Chaincode { .. }), "{text}");
    assert!(text.contains("troublemaker panicked on purpose"), "{text}");
    // Others are untouched and the panicked one is launched again.
    assert_eq!(
        ok_text(&peer.query(CH, "kvscc", &["get", "k"]).await.unwrap()),
        "v"
    );
    let mut relaunched = false;
    for _ in 0..50 {
        match peer.invoke(CH, "trouble", &["ping"]).await {
            Ok(r) => {
                assert_eq!(ok_text(&r), "pong");
                relaunched = true;
                break;
            }
            // The old instance may still be going away.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(relaunched);
}

#[tokio::test]
async fn init_returning_error_is_an_error_to_the_caller() {
    let peer = TestPeer::builder()
        .chaincode("trouble", "1", troublemaker)
        .build();
    let err = peer.init(CH, "trouble", &["fail"]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Chaincode { message, .. } if message == "init refused on purpose"),
        "{}",
        err.report()
    );
    let failed = peer.invoke(CH, "kvscc", &["fail", "nope"]).await.unwrap();
    assert_eq!(
        (failed.response.status, failed.response.message.as_str()),
        (500, "nope")
    );
}

#[tokio::test]
async fn execute_timeout_fails_the_transaction_not_the_chaincode() {
    let peer = TestPeer::builder()
        .config(|c| c.execute_timeout = Duration::from_millis(200))
        .chaincode("trouble", "1", troublemaker)
        .build();
    let err = peer
        .invoke(CH, "trouble", &["sleep", "2000"])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ExecuteTimeout { .. }),
        "{}",
        err.report()
    );
    assert_eq!(
        ok_text(&peer.invoke(CH, "trouble", &["ping"]).await.unwrap()),
        "pong"
    );
}

#[tokio::test]
async fn chaincode_to_chaincode_on_the_same_and_another_channel() {
    let peer = TestPeer::new();
    peer.invoke(CH, "kvscc", &["put", "k", "here"])
        .await
        .unwrap();
    peer.invoke("other", "kvscc", &["put", "k", "there"])
        .await
        .unwrap();
    assert_eq!(
        ok_text(
            &peer
                .query(CH, "callerscc", &["call", "kvscc", "get", "k"])
                .await
                .unwrap()
        ),
        "here"
    );
    assert_eq!(
        ok_text(
            &peer
                .query(CH, "callerscc", &["callon", "kvscc", "other", "get", "k"])
                .await
                .unwrap()
        ),
        "there"
    );
    // Writes by the callee land in the callee's namespace, in the caller's transaction.
    ok_text(
        &peer
            .invoke(CH, "callerscc", &["call", "kvscc", "put", "k2", "via"])
            .await
            .unwrap(),
    );
    assert_eq!(peer.state(CH, "kvscc", "k2").as_deref(), Some(&b"via"[..]));
    assert_eq!(peer.state(CH, "callerscc", "k2"), None);
    // Another channel is read-only.
    let denied = peer
        .invoke(
            CH,
            "callerscc",
            &["callon", "kvscc", "other", "put", "x", "y"],
        )
        .await
        .unwrap();
    assert!(
        denied.response.message.contains("may only read"),
        "{:?}",
        denied.response
    );
    // The callee's error status comes back to the caller.
    let relay = peer
        .query(CH, "callerscc", &["relay", "kvscc", "get", "missing"])
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&ok_text(&relay)).unwrap();
    assert_eq!(v["status"], 500);
    assert_eq!(v["message"], "no such key: missing");
    // An unknown callee is a clear error.
    let unknown = peer
        .query(CH, "callerscc", &["call", "nosuchcc", "get", "k"])
        .await
        .unwrap();
    assert!(
        unknown
            .response
            .message
            .contains("chaincode nosuchcc is not defined"),
        "{:?}",
        unknown.response
    );
    // A chaincode calling itself in the same transaction is refused, not deadlocked.
    let looped = peer
        .query(
            CH,
            "callerscc",
            &["call", "callerscc", "call", "kvscc", "get", "k"],
        )
        .await
        .unwrap();
    assert!(
        looped.response.message.contains("already running"),
        "{:?}",
        looped.response
    );
}

#[tokio::test]
async fn ranges_over_more_than_one_batch_and_pages_with_bookmarks() {
    let peer = TestPeer::new();
    let mut args = vec!["init".to_owned()];
    for i in 0..300 {
        args.push(format!("key{i:03}"));
        args.push(format!("v{i}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok_text(&peer.init(CH, "kvscc", &args).await.unwrap());
    peer.invoke(CH, "kvscc", &["putc", "color", "red", "1", "composite"])
        .await
        .unwrap();

    let all: Vec<Value> = serde_json::from_str(&ok_text(
        &peer.query(CH, "kvscc", &["range", "", ""]).await.unwrap(),
    ))
    .unwrap();
    assert_eq!(
        all.len(),
        300,
        "three batches of results, composite keys left out"
    );
    assert_eq!(all[0]["key"], "key000");
    assert_eq!(all[299]["key"], "key299");
    let part: Vec<Value> = serde_json::from_str(&ok_text(
        &peer
            .query(CH, "kvscc", &["range", "key100", "key250"])
            .await
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(part.len(), 150);

    // Pages of 120 (larger than one batch of 100), following bookmarks to the end.
    let mut bookmark = String::new();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = serde_json::from_str(&ok_text(
            &peer
                .query(CH, "kvscc", &["page", "", "", "120", &bookmark])
                .await
                .unwrap(),
        ))
        .unwrap();
        pages += 1;
        let records = page["records"].as_array().unwrap();
        assert_eq!(page["fetched"], records.len());
        seen.extend(
            records
                .iter()
                .map(|r| r["key"].as_str().unwrap().to_owned()),
        );
        bookmark = page["bookmark"].as_str().unwrap().to_owned();
        if bookmark.is_empty() {
            break;
        }
        assert_eq!(
            bookmark,
            format!("key{:03}", seen.len()),
            "bookmark is the next page's first key"
        );
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 300);
    assert_eq!(seen[120], "key120");
}

#[tokio::test]
async fn history_metadata_and_events() {
    let peer = TestPeer::new();
    let put1 = peer.invoke(CH, "kvscc", &["put", "h", "v1"]).await.unwrap();
    peer.invoke(CH, "kvscc", &["put", "h", "v2"]).await.unwrap();
    peer.invoke(CH, "kvscc", &["del", "h"]).await.unwrap();
    let history: Vec<Value> = serde_json::from_str(&ok_text(
        &peer.query(CH, "kvscc", &["history", "h"]).await.unwrap(),
    ))
    .unwrap();
    let values: Vec<(&str, bool)> = history
        .iter()
        .map(|h| {
            (
                h["value"].as_str().unwrap(),
                h["deleted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        values,
        [("", true), ("v2", false), ("v1", false)],
        "newest first"
    );
    let _ = put1;

    peer.invoke(CH, "kvscc", &["put", "m", "x"]).await.unwrap();
    peer.invoke(
        CH,
        "kvscc",
        &["setmeta", "m", "VALIDATION_PARAMETER", "policy"],
    )
    .await
    .unwrap();
    assert_eq!(
        ok_text(
            &peer
                .query(CH, "kvscc", &["getmeta", "m", "VALIDATION_PARAMETER"])
                .await
                .unwrap()
        ),
        "policy"
    );
    // A value written later keeps the key's metadata.
    peer.invoke(CH, "kvscc", &["put", "m", "y"]).await.unwrap();
    assert_eq!(
        ok_text(
            &peer
                .query(CH, "kvscc", &["getmeta", "m", "VALIDATION_PARAMETER"])
                .await
                .unwrap()
        ),
        "policy"
    );

    let evented = peer
        .invoke(CH, "kvscc", &["event", "Created", "payload"])
        .await
        .unwrap();
    let event = evented.event.expect("event returned with the response");
    assert_eq!(
        (event.event_name.as_str(), &event.payload[..]),
        ("Created", &b"payload"[..])
    );

    let me: Value = serde_json::from_str(&ok_text(
        &peer.query(CH, "kvscc", &["whoami"]).await.unwrap(),
    ))
    .unwrap();
    assert_eq!(me["channel"], CH);
    assert_eq!(me["mspid"], "Org1MSP");
    assert_eq!(me["txid"].as_str().unwrap().len(), 64, "Fabric-style txid");
}

#[tokio::test]
async fn conflicting_transactions_never_both_commit() {
    let peer = TestPeer::new();
    peer.invoke(CH, "kvscc", &["put", "c", "0"]).await.unwrap();
    let ledger = peer.ledgers.get_or_create(CH).unwrap();
    // Two read-modify-write transactions simulated before either commits.
    let input = tests::input(&["incr", "c"]);
    let (p1, s1) = peer.tx(CH, "kvscc", &input);
    let (p2, s2) = peer.tx(CH, "kvscc", &input);
    assert_eq!(
        ok_text(
            &peer
                .support
                .execute(&p1, "kvscc", input.clone())
                .await
                .unwrap()
        ),
        "1"
    );
    assert_eq!(
        ok_text(
            &peer
                .support
                .execute(&p2, "kvscc", input.clone())
                .await
                .unwrap()
        ),
        "1"
    );
    ledger.commit(&p1.tx_id, None, &s1.rwset()).unwrap();
    let err = ledger.commit(&p2.tx_id, None, &s2.rwset()).unwrap_err();
    assert!(
        matches!(err, Error::MvccConflict { .. }),
        "{}",
        err.report()
    );
    assert!(err.to_string().contains("kvscc/c"), "{err}");
    assert_eq!(peer.state(CH, "kvscc", "c").as_deref(), Some(&b"1"[..]));
    // A range read is protected too: a key appearing in it conflicts.
    let (p3, s3) = peer.tx(CH, "kvscc", &tests::input(&["range", "a", "z"]));
    ok_text(
        &peer
            .support
            .execute(&p3, "kvscc", tests::input(&["range", "a", "z"]))
            .await
            .unwrap(),
    );
    peer.invoke(CH, "kvscc", &["put", "m", "new"])
        .await
        .unwrap();
    let err = ledger.commit(&p3.tx_id, None, &s3.rwset()).unwrap_err();
    assert!(
        matches!(err, Error::MvccConflict { .. }),
        "{}",
        err.report()
    );
}

#[tokio::test]
async fn unknown_container_type_names_the_registered_ones() {
    let peer = TestPeer::new();
    let def = ChaincodeDefinition::builtin(Ccid::new("ghost", "1"), "NOPE");
    let err = peer.support.launch(&def).await.unwrap_err();
    let text = err.report();
    assert!(text.contains("unknown container type \"NOPE\""), "{text}");
    assert!(
        text.contains("SYSTEM"),
        "lists the registered types: {text}"
    );
    // And the peer still works.
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
    assert!(
        peer.support
            .registry()
            .launched()
            .iter()
            .all(|n| n != "ghost:1")
    );
}

#[tokio::test]
async fn unknown_chaincode_is_a_clear_error() {
    let peer = TestPeer::new();
    let err = peer.invoke(CH, "nosuch", &["x"]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "chaincode nosuch is not defined on channel \"mychannel\""
    );
    // Defined but unknown to the backend.
    peer.definitions
        .define(ChaincodeDefinition::system(Ccid::new("phantom", "1")));
    let err = peer.invoke(CH, "phantom", &["x"]).await.unwrap_err();
    assert!(
        err.report().contains("unknown chaincode phantom:1"),
        "{}",
        err.report()
    );
    assert!(peer.support.registry().launched().is_empty());
}

#[tokio::test]
async fn stop_all_stops_what_was_launched_and_shutdown_refuses_new_work() {
    let peer = TestPeer::new();
    ok_text(&peer.invoke(CH, "kvscc", &["put", "k", "v"]).await.unwrap());
    assert_eq!(peer.support.registry().launched().len(), 1);
    peer.support.stop_all().await;
    assert!(peer.support.registry().launched().is_empty());
    assert!(peer.support.registry().registered().is_empty());
    // Launched again when needed.
    ok_text(&peer.invoke(CH, "kvscc", &["get", "k"]).await.unwrap());
    peer.support.shutdown().await;
    assert!(peer.support.registry().registered().is_empty());
    let err = peer.invoke(CH, "kvscc", &["get", "k"]).await.unwrap_err();
    assert!(matches!(err, Error::ShuttingDown), "{}", err.report());
}

#[tokio::test]
async fn the_startup_timeout_covers_a_start_that_hangs() {
    let peer = TestPeer::builder()
        .config(|c| c.startup_timeout = Duration::from_millis(300))
        .with(move |b| {
            b.in_process_vm("SYSTEM", move |_, peer| {
                let inproc = InprocVm::new(peer, SystemChaincodes::new());
                Ok(Arc::new(CountingVm {
                    inner: Arc::new(inproc),
                    starts: Arc::new(AtomicUsize::new(0)),
                    swallow: Arc::new(AtomicUsize::new(0)),
                    // Like an image build or a daemon that does not answer.
                    start_delay: Duration::from_secs(30),
                }) as Arc<dyn vm_api::Vm>)
            })
        })
        .build();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        peer.invoke(CH, "kvscc", &["get", "k"]),
    )
    .await
    .expect("the launch does not hang")
    .unwrap_err();
    assert!(
        err.report().contains("did not register within 300ms"),
        "{}",
        err.report()
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(peer.support.registry().launched().is_empty());
}

#[tokio::test]
async fn linking_a_system_chaincode_crate_is_enough_to_define_it() {
    // No definitions, no backends given: only what is linked (vm-inproc, scc-examples).
    let support = peer_support::ChaincodeSupport::builder(peer_support::SupportConfig {
        tls: peer_support::ChaincodeTls::Off,
        ..peer_support::SupportConfig::default()
    })
    .build()
    .unwrap();
    let names: Vec<String> = support
        .builtin_chaincodes()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["callerscc", "kvscc"]);
    let params = peer_support::TxParams {
        tx_id: "tx1".into(),
        channel_id: "ch".into(),
        ..peer_support::TxParams::default()
    };
    let result = support
        .execute(&params, "kvscc", tests::input(&["get", "missing"]))
        .await
        .unwrap();
    // Reached the chaincode: it answers for itself (no state on this transaction).
    assert_eq!(result.response.status, 500, "{:?}", result.response);
    assert!(
        result.response.message.contains("no ledger context"),
        "{:?}",
        result.response
    );
    support.shutdown().await;
}

#[tokio::test]
async fn a_user_definition_cannot_take_a_system_chaincodes_name() {
    let peer = TestPeer::new();
    let ccid = Ccid::new("kvscc", "9");
    peer.definitions.define(ChaincodeDefinition::user(
        ccid.clone(),
        "PROCESS",
        vm_api::ChaincodePackage::legacy(&ccid, "binary", "/bin/false"),
    ));
    let def = peer.support.definition("ch", "kvscc").unwrap();
    assert!(def.is_system(), "{def:?}");
    assert_eq!(def.ccid, kvscc());
    ok_text(
        &peer
            .invoke("ch", "kvscc", &["put", "k", "v"])
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn a_call_naming_another_version_of_a_fabric_1_4_chaincode_is_refused() {
    let peer = TestPeer::new();
    let wrong = peer
        .invoke("ch", "callerscc", &["call", "kvscc:9.9", "get", "k"])
        .await
        .unwrap();
    assert_eq!(wrong.response.status, 500, "{:?}", wrong.response);
    assert!(
        wrong.response.message.contains(&format!(
            "chaincode kvscc is at version {}, not 9.9",
            scc_examples::VERSION
        )),
        "{:?}",
        wrong.response
    );
    let right = format!("kvscc:{}", scc_examples::VERSION);
    ok_text(
        &peer
            .invoke("ch", "callerscc", &["call", &right, "put", "k", "v"])
            .await
            .unwrap(),
    );
}
