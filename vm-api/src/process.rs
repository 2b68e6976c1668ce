//! Supervised child processes, for backends that run chaincodes or builder programs as
//! processes of the peer (feature `process`).
//!
//! A [`Supervised`] process runs in its own process group and dies with the peer
//! (`PR_SET_PDEATHSIG`); its stderr (and stdout, unless discarded) is read line by line, each
//! line handed to a log sink and the last lines kept for error messages; lines are cut at
//! [`MAX_LINE`] bytes, so a process printing without newlines cannot make the peer hold more.
//! When the leader exits, whatever it left in its group is killed with it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use vm_api::process::{Spawn, Supervised};
//! let mut cmd = tokio::process::Command::new("/bin/sh");
//! cmd.args(["-c", "echo hello >&2; exit 3"]);
//! let child = Supervised::spawn(cmd, Spawn::new(10, Arc::new(|_, _| {}))).unwrap();
//! assert_eq!(child.wait().await, 3);
//! assert_eq!(child.output().snapshot(), ["hello"]);
//! # }
//! ```

use std::any::Any;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The signals [`Supervised::signal`] sends.
pub use nix::sys::signal::Signal;
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::RecentOutput;

/// The longest line kept or logged, in bytes; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 16 * 1024;

/// Where each output line goes: `(stream, line)`, the stream being `"stdout"` or `"stderr"`.
pub type LineSink = Arc<dyn Fn(&'static str, &str) + Send + Sync>;

/// How to run a [`Supervised`] process.
pub struct Spawn {
    /// Output lines kept for error messages.
    pub keep_lines: usize,
    /// Whether stdout is read like stderr (`true`) or discarded (`false`).
    pub stdout: bool,
    /// Where each line goes (the log).
    pub sink: LineSink,
    /// Dropped once the process exited and its output was read (a private folder, say), on a
    /// blocking thread.
    pub cleanup: Option<Box<dyn Any + Send>>,
}

impl std::fmt::Debug for Spawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawn")
            .field("keep_lines", &self.keep_lines)
            .field("stdout", &self.stdout)
            .finish_non_exhaustive()
    }
}

impl Spawn {
    /// Both streams read, `keep_lines` kept, lines to `sink`, nothing to clean up.
    pub fn new(keep_lines: usize, sink: LineSink) -> Self {
        Self {
            keep_lines,
            stdout: true,
            sink,
            cleanup: None,
        }
    }
}

/// A child process in its own process group.
pub struct Supervised {
    /// Process id, which is also its process group id.
    pid: Pid,
    /// The exit code, once it exited (and its output was read).
    exited: watch::Receiver<Option<i64>>,
    /// Set the moment the leader is reaped: from then on its id may be reused.
    reaped: Arc<AtomicBool>,
    output: RecentOutput,
}

impl std::fmt::Debug for Supervised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervised")
            .field("pid", &self.pid.as_raw())
            .field("exited", &*self.exited.borrow())
            .finish()
    }
}

/// The exit code of `status`: its code, or 128 + the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
    }
}

/// Reads `pipe` line by line until it closes, handing each line (cut at [`MAX_LINE`] bytes,
/// invalid UTF-8 replaced) to `sink` and keeping it in `recent`.
pub async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    stream: &'static str,
    recent: &RecentOutput,
    sink: &LineSink,
) {
    let mut reader = BufReader::new(pipe);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) => {
                recent.push(format!("<unreadable output: {e}>"));
                break;
            }
        };
        let (take, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        let body = &chunk[..take - usize::from(end)];
        cut |= body.len() > room;
        line.extend_from_slice(&body[..body.len().min(room)]);
        reader.consume(take);
        if end {
            emit(&line, cut, stream, recent, sink);
            line.clear();
            cut = false;
        }
    }
    if !line.is_empty() {
        emit(&line, cut, stream, recent, sink);
    }
}

fn emit(line: &[u8], cut: bool, stream: &'static str, recent: &RecentOutput, sink: &LineSink) {
    let raw = String::from_utf8_lossy(line);
    let mut text = crate::output::clean_line(raw.trim_end_matches('\r')).into_owned();
    if cut {
        text.push_str(" [line cut]");
    }
    sink(stream, &text);
    recent.push(text);
}

/// Asks the kernel to kill the child when the peer dies, so no process outlives it.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; prctl(2) and getppid(2) are plain system calls.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The peer may have died before the call above: then we were re-parented.
            if nix::unistd::getppid() == Pid::from_raw(1) {
                return Err(std::io::Error::other(
                    "the peer exited while starting the process",
                ));
            }
            Ok(())
        });
    }
}

impl Supervised {
    /// Starts `cmd` in a process group of its own, with stdin closed, dying with the peer.
    /// Must run inside a tokio runtime, on one of its workers: the kernel's parent-death signal
    /// follows the thread that forks, and a worker lives as long as the runtime (a
    /// `spawn_blocking` thread does not).
    pub fn spawn(mut cmd: Command, options: Spawn) -> std::io::Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(if options.stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn()?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| {
                std::io::Error::other("the process exited before it could be tracked")
            })?;
        let output = RecentOutput::new(options.keep_lines);
        let readers = [
            child.stdout.take().map(|p| {
                let (recent, sink) = (output.clone(), Arc::clone(&options.sink));
                tokio::spawn(async move { read_lines(p, "stdout", &recent, &sink).await })
            }),
            child.stderr.take().map(|p| {
                let (recent, sink) = (output.clone(), Arc::clone(&options.sink));
                tokio::spawn(async move { read_lines(p, "stderr", &recent, &sink).await })
            }),
        ];
        let (exited_tx, exited) = watch::channel(None);
        let reaped = Arc::new(AtomicBool::new(false));
        let reaped_flag = Arc::clone(&reaped);
        let cleanup = options.cleanup;
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => exit_code(status),
                Err(e) => {
                    tracing::warn!(pid = pid.as_raw(), error = %e, "cannot wait for a child process");
                    -1
                }
            };
            reaped_flag.store(true, Ordering::Release);
            // What the process left running in its group goes with it. Right after the
            // leader is reaped its group id cannot belong to anyone else yet: it is still in
            // use by the remaining members, or there are none and the signal finds nothing.
            let _ = killpg(pid, Signal::SIGKILL);
            // Let the readers take in the last lines; a grandchild that left the group may
            // hold the pipes open, so a reader still waiting then is ended.
            for reader in readers.into_iter().flatten() {
                let abort = reader.abort_handle();
                if tokio::time::timeout(Duration::from_millis(200), reader)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            }
            // Removing a folder is file system work: off the async workers.
            if let Some(cleanup) = cleanup {
                let _ = tokio::task::spawn_blocking(move || drop(cleanup)).await;
            }
            let _ = exited_tx.send(Some(code));
        });
        Ok(Self {
            pid,
            exited,
            reaped,
            output,
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// Whether it still runs.
    pub fn is_running(&self) -> bool {
        self.exited.borrow().is_none()
    }

    /// The last lines it printed.
    pub fn output(&self) -> &RecentOutput {
        &self.output
    }

    /// Signals the whole process group while its leader runs. Once the leader is reaped the
    /// group id may be reused by an unrelated process, so it is not signalled then (the
    /// supervisor swept the group when the leader exited).
    pub fn signal(&self, signal: Signal) {
        if !self.reaped.load(Ordering::Acquire) {
            let _ = killpg(self.pid, signal);
        }
    }

    /// Waits until it exited and its output was read; returns its exit code.
    pub async fn wait(&self) -> i64 {
        let mut exited = self.exited.clone();
        match exited.wait_for(Option::is_some).await {
            Ok(code) => code.unwrap_or(-1),
            Err(_) => -1,
        }
    }

    /// Asks it to end (SIGTERM to its group), and after `grace` kills it (SIGKILL) unless
    /// `kill` is false; then waits up to `grace` again. Returns whether it ended.
    pub async fn stop(&self, grace: Duration, kill: bool) -> bool {
        if !self.is_running() {
            return true;
        }
        self.signal(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.wait()).await.is_ok() {
            return true;
        }
        if !kill {
            return false;
        }
        self.signal(Signal::SIGKILL);
        tokio::time::timeout(grace, self.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Lines seen by a sink: `(stream, line)`.
    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    fn sink() -> (LineSink, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        (
            Arc::new(move |stream: &'static str, line: &str| {
                s.lock().unwrap().push((stream.to_owned(), line.to_owned()))
            }),
            seen,
        )
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_partial_last_lines_kept() {
        let (sink, seen) = sink();
        let recent = RecentOutput::new(5);
        let mut text = vec![b'x'; MAX_LINE + 100];
        text.extend_from_slice(b"\r\nshort\nlast-no-newline");
        read_lines(text.as_slice(), "stderr", &recent, &sink).await;
        let lines = recent.snapshot();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), MAX_LINE + " [line cut]".len());
        assert!(lines[0].ends_with("x [line cut]"));
        assert_eq!(&lines[1..], ["short", "last-no-newline"]);
        assert_eq!(seen.lock().unwrap()[1], ("stderr".into(), "short".into()));
    }

    #[tokio::test]
    async fn colour_codes_never_reach_the_log_or_the_kept_lines() {
        let (sink, seen) = sink();
        let recent = RecentOutput::new(5);
        let text = b"2026-12-02T10:00:00Z \x1b[32minfo\x1b[39m [c-api:kv] ready\n";
        read_lines(text.as_slice(), "stdout", &recent, &sink).await;
        let expected = "2026-12-02T10:00:00Z info [c-api:kv] ready";
        assert_eq!(seen.lock().unwrap()[0].1, expected);
        assert_eq!(recent.snapshot(), [expected]);
    }

    #[tokio::test]
    async fn stdout_can_be_discarded_and_stop_ends_a_process_that_ignores_sigterm() {
        let (sink, seen) = sink();
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "trap '' TERM; echo out; echo err >&2; exec sleep 60"]);
        let child = Supervised::spawn(
            cmd,
            Spawn {
                stdout: false,
                ..Spawn::new(10, sink)
            },
        )
        .unwrap();
        assert!(child.is_running());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            child.stop(Duration::from_millis(300), true).await,
            "killed after the grace period"
        );
        assert_eq!(child.wait().await, 128 + 9);
        assert_eq!(child.output().snapshot(), ["err"], "stdout discarded");
        assert!(seen.lock().unwrap().iter().all(|(s, _)| s == "stderr"));
    }

    #[tokio::test]
    async fn cleanup_is_dropped_once_the_process_exited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let child = Supervised::spawn(
            Command::new("/bin/true"),
            Spawn {
                cleanup: Some(Box::new(dir)),
                ..Spawn::new(1, Arc::new(|_, _| {}))
            },
        )
        .unwrap();
        assert_eq!(child.wait().await, 0);
        assert!(!path.exists());
    }
}
