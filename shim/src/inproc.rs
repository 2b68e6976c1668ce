//! The in-process transport: a chaincode served over an in-memory stream pair.
//!
//! The peer's in-process backend makes a pair with
//! [`proto::stream::in_memory_pair`], gives one end to the peer's handler and the other to
//! [`serve`]. The messages are the same `ChaincodeMessage`s that travel over gRPC; nothing is
//! encoded on the way.

use std::sync::Arc;

use proto::stream::ChaincodeStream;

use crate::{Chaincode, Result};

/// Serves `chaincode`, registered as `name` (`name:version`), on one end of an in-memory
/// stream pair until the stream ends.
pub async fn serve(
    chaincode: Arc<dyn Chaincode>,
    name: &str,
    stream: ChaincodeStream,
) -> Result<()> {
    crate::handler::serve_stream(chaincode, name, stream).await
}
