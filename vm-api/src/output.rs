//! The last lines a chaincode printed, kept by backends for error messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A bounded, shared buffer of the most recent output lines of one chaincode.
///
/// Cloning shares the buffer: a reader task pushes while the backend takes snapshots.
#[derive(Debug, Clone, Default)]
pub struct RecentOutput {
    lines: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
}

impl RecentOutput {
    /// A buffer that keeps the last `keep` lines.
    pub fn new(keep: usize) -> Self {
        Self {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(keep.min(1024)))),
            keep,
        }
    }

    /// Adds a line, dropping the oldest when full.
    pub fn push(&self, line: impl Into<String>) {
        if self.keep == 0 {
            return;
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.keep {
            lines.pop_front();
        }
        lines.push_back(line.into());
    }

    /// Adds every line of `text` (a chunk that may hold several lines or end mid-line is
    /// split at newlines; a trailing carriage return is dropped).
    pub fn push_text(&self, text: &str) {
        for line in text.lines() {
            self.push(line.trim_end_matches('\r'));
        }
    }

    /// The lines kept, oldest first.
    pub fn snapshot(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// `"; last output:\n<lines>"` for an error message, or nothing when there are no lines.
pub fn tail_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last output:\n{}", lines.join("\n"))
    }
}

/// A line a chaincode printed, as the peer logs it: terminal colour and other escape codes
/// removed (Node chaincodes colour their levels: `\x1b[32minfo\x1b[39m` is logged as `info`).
///
/// ```
/// assert_eq!(vm_api::output::clean_line("\x1b[32minfo\x1b[39m: ready"), "info: ready");
/// assert_eq!(vm_api::output::clean_line("plain"), "plain");
/// ```
pub fn clean_line(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\x1b') {
        return std::borrow::Cow::Borrowed(line);
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&strip_ansi_escapes::strip(line)).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines() {
        let out = RecentOutput::new(2);
        out.push_text("one\ntwo\r\nthree\n");
        assert_eq!(out.snapshot(), ["two", "three"]);
        let none = RecentOutput::new(0);
        none.push("x");
        assert!(none.snapshot().is_empty());
    }
}
