//! A chaincode's output: every line goes to the peer's log under the chaincode's name, and
//! the last lines are kept for error messages.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;
use vm_api::RecentOutput;

/// Reads `pipe` line by line until it closes, logging each line and keeping it in `recent`.
pub(crate) fn capture(
    recent: &RecentOutput,
    chaincode: String,
    stream: &'static str,
    pipe: impl AsyncRead + Unpin + Send + 'static,
) -> JoinHandle<()> {
    let recent = recent.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    tracing::info!(target: "chaincode", chaincode = %chaincode, stream, "{line}");
                    recent.push(line);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(chaincode = %chaincode, stream, error = %e, "unreadable output");
                    recent.push(format!("<unreadable output: {e}>"));
                    break;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn logs_and_keeps_the_last_lines() {
        let out = RecentOutput::new(2);
        let text: &'static [u8] = b"one\ntwo\nthree\n";
        capture(&out, "cc".into(), "stdout", text).await.unwrap();
        assert_eq!(out.snapshot(), ["two", "three"]);
    }
}
