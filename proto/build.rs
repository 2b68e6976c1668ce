//! Compiles the `.proto` files under `protos/` with protox (no system `protoc`) and generates
//! prost messages plus tonic clients and servers.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "protos/chaincode.proto",
    "protos/chaincode_event.proto",
    "protos/chaincode_shim.proto",
    "protos/proposal.proto",
    "protos/proposal_response.proto",
    "protos/policy.proto",
    "protos/collection.proto",
    "protos/lifecycle/lifecycle.proto",
    "common/common.proto",
    "common/policies.proto",
    "msp/identities.proto",
    "msp/msp_principal.proto",
    "ledger/queryresult/kv_query_result.proto",
    "ccrt/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("protos");
    println!("cargo:rerun-if-changed={}", root.display());
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Bytes fields decode without copying out of the receive buffer.
        .bytes(".")
        // Maps keep a stable order, so encodings are deterministic.
        .btree_map(".")
        // The generated `connect` helpers would tie this crate to tonic's transport.
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
