//! Launches the example key/value system chaincode in process, runs an invoke and a query,
//! and prints what they returned.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use tests::TestPeer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let peer = TestPeer::new();
    let put = peer
        .invoke("mychannel", "kvscc", &["put", "greeting", "hello, fabric"])
        .await?;
    println!(
        "invoke put greeting -> {} {}",
        put.response.status,
        String::from_utf8_lossy(&put.response.payload)
    );
    let get = peer
        .query("mychannel", "kvscc", &["get", "greeting"])
        .await?;
    println!(
        "query get greeting -> {} {}",
        get.response.status,
        String::from_utf8_lossy(&get.response.payload)
    );
    peer.support.shutdown().await;
    Ok(())
}
