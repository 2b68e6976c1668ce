//! The trait a chaincode implements, and the registration of system chaincodes.

use std::sync::Arc;

use async_trait::async_trait;
use proto::protos::Response;

use crate::ChaincodeStub;

/// A chaincode: Fabric calls `init` once when it is instantiated (or upgraded) and
/// `invoke` for every transaction.
///
/// Transactions run concurrently, each with its own [`ChaincodeStub`]. The response goes
/// back to the client: status 200 for success, 400 or more for an error (use
/// [`success`] and [`error`]). An `init` that returns status 500 or more is reported to the
/// peer as a failure; an `invoke` response always is delivered as it is.
///
/// A panic ends the chaincode instance: the transaction fails with the panic message and the
/// peer starts a new instance for the next transaction.
#[async_trait]
pub trait Chaincode: Send + Sync + 'static {
    /// Initialises the chaincode's state. The default does nothing and succeeds.
    async fn init(&self, stub: &ChaincodeStub) -> Response {
        let _ = stub;
        success("")
    }

    /// Runs one transaction.
    async fn invoke(&self, stub: &ChaincodeStub) -> Response;
}

/// A successful response (status 200) carrying `payload`.
pub fn success(payload: impl Into<bytes::Bytes>) -> Response {
    Response::ok(payload)
}

/// A failed response (status 500) carrying `message`.
pub fn error(message: impl Into<String>) -> Response {
    Response::error(message)
}

/// A system chaincode linked into the peer; collected with `inventory`, so linking the crate
/// that submits it is enough for the peer's `SYSTEM` backend to run it.
///
/// ```
/// use std::sync::Arc;
/// use shim::{Chaincode, ChaincodeStub, SystemChaincode};
///
/// struct Echo;
///
/// #[shim::async_trait]
/// impl Chaincode for Echo {
///     async fn invoke(&self, stub: &ChaincodeStub) -> shim::Response {
///         shim::success(stub.args().concat())
///     }
/// }
///
/// fn echo() -> Arc<dyn Chaincode> {
///     Arc::new(Echo)
/// }
///
/// shim::inventory::submit! {
///     SystemChaincode { name: "echo", version: "1.0", description: "echoes its arguments", create: echo }
/// }
///
/// assert!(shim::system_chaincodes().any(|scc| scc.name == "echo"));
/// ```
#[derive(Debug)]
pub struct SystemChaincode {
    /// The chaincode name (also its ledger namespace).
    pub name: &'static str,
    /// The chaincode version.
    pub version: &'static str,
    /// One line for listings.
    pub description: &'static str,
    /// Creates an instance; called once per launch.
    pub create: fn() -> Arc<dyn Chaincode>,
}

inventory::collect!(SystemChaincode);

/// Every system chaincode linked into this program, in no particular order.
pub fn system_chaincodes() -> impl Iterator<Item = &'static SystemChaincode> {
    inventory::iter::<SystemChaincode>()
}
