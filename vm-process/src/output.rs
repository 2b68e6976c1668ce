//! A chaincode's output: every line goes to the peer's log under the chaincode's name, and
//! the last lines are kept for error messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

/// The last lines a chaincode printed.
#[derive(Clone, Default)]
pub(crate) struct RecentOutput {
    lines: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
}

impl RecentOutput {
    pub(crate) fn new(keep: usize) -> Self {
        Self {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(keep))),
            keep,
        }
    }

    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.keep {
            lines.pop_front();
        }
        if self.keep > 0 {
            lines.push_back(line);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Reads `pipe` line by line until it closes.
    pub(crate) fn capture(
        &self,
        chaincode: String,
        stream: &'static str,
        pipe: impl AsyncRead + Unpin + Send + 'static,
    ) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        tracing::info!(target: "chaincode", chaincode = %chaincode, stream, "{line}");
                        this.push(line);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // Not UTF-8, say: keep reading the rest.
                        tracing::debug!(chaincode = %chaincode, stream, error = %e, "unreadable output");
                        this.push(format!("<unreadable output: {e}>"));
                        break;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_lines() {
        let out = RecentOutput::new(2);
        let text: &'static [u8] = b"one\ntwo\nthree\n";
        out.capture("cc".into(), "stdout", text).await.unwrap();
        assert_eq!(out.snapshot(), ["two", "three"]);
    }
}
