//! A chaincode that calls other chaincodes in the same transaction.

use serde_json::json;
use shim::{Chaincode, ChaincodeStub, Response};

/// Calls other chaincodes.
///
/// | function | arguments | result |
/// |---|---|---|
/// | `call` | chaincode function args… | the callee's payload; its error as an error |
/// | `callon` | chaincode channel function args… | the same, on another channel |
/// | `relay` | chaincode function args… | JSON `{"status","message","payload"}` of the callee's response |
#[derive(Debug, Default, Clone, Copy)]
pub struct CallerChaincode;

#[shim::async_trait]
impl Chaincode for CallerChaincode {
    async fn invoke(&self, stub: &ChaincodeStub) -> Response {
        let (function, p) = stub.function_and_parameters();
        let (target, channel, args) = match function.as_str() {
            "call" | "relay" if !p.is_empty() => (&p[0], "", &p[1..]),
            "callon" if p.len() >= 2 => (&p[0], p[1].as_str(), &p[2..]),
            other => return shim::error(format!("unknown function or missing arguments: {other}")),
        };
        let response = match stub.invoke_chaincode(target, args, channel).await {
            Ok(r) => r,
            Err(e) => return shim::error(format!("calling {target} failed: {e}")),
        };
        if function == "relay" {
            let out = json!({
                "status": response.status,
                "message": response.message,
                "payload": String::from_utf8_lossy(&response.payload),
            });
            return shim::success(serde_json::to_vec(&out).unwrap_or_default());
        }
        if response.is_error() {
            shim::error(format!("{target} failed: {}", response.message))
        } else {
            shim::success(response.payload)
        }
    }
}
