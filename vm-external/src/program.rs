//! Running one builder program (`detect`, `build`, `release`, `run`) the way Fabric runs it:
//! with only the propagated environment, stdout discarded, each stderr line logged at INFO
//! under the builder's name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::process::Command;
use vm_api::process::{LineSink, Spawn, Supervised};
use vm_api::{Ccid, Error, Result};

use crate::config::BuilderConfig;

/// A program that ran to its end.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Its exit code.
    pub code: i64,
    /// The last lines of its stderr.
    pub stderr: Vec<String>,
}

/// Kills the program's process group if the caller gives up on it (a build over
/// `chaincode.installTimeout`), so no builder outlives its build.
struct KillOnDrop(Supervised);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.is_running() {
            self.0.signal(Signal::SIGKILL);
        }
    }
}

impl BuilderConfig {
    /// `<path>/bin/<program>`.
    pub(crate) fn program(&self, program: &str) -> PathBuf {
        self.path.join("bin").join(program)
    }

    /// Whether `bin/<program>` exists.
    pub(crate) async fn has(&self, program: &str) -> bool {
        tokio::fs::metadata(self.program(program))
            .await
            .is_ok_and(|m| m.is_file())
    }

    /// Where `program`'s stderr lines go: the log, under the builder's name.
    fn sink(&self, program: &'static str, ccid: &Ccid) -> LineSink {
        let (builder, ccid) = (self.name.clone(), ccid.registered_name());
        Arc::new(move |_, line: &str| {
            tracing::info!(target: "external_builder", builder = %builder, chaincode = %ccid, program, "{line}");
        })
    }

    /// Starts `bin/<program> args…` with the builder's environment; `cleanup` is dropped once
    /// it exited.
    pub(crate) fn start(
        &self,
        program: &'static str,
        args: &[&Path],
        ccid: &Ccid,
        keep_lines: usize,
        cleanup: Option<Box<dyn std::any::Any + Send>>,
    ) -> Result<Supervised> {
        let path = self.program(program);
        let mut cmd = Command::new(&path);
        cmd.args(args.iter().map(|a| a.as_os_str()))
            .env_clear()
            .envs(self.environment(|k| std::env::var(k).ok()));
        Supervised::spawn(
            cmd,
            Spawn {
                stdout: false,
                cleanup,
                ..Spawn::new(keep_lines, self.sink(program, ccid))
            },
        )
        .map_err(|e| {
            Error::io(
                format!(
                    "external builder {}: cannot run {}",
                    self.name,
                    path.display()
                ),
                e,
            )
        })
    }

    /// Runs `bin/<program> args…` to its end.
    pub(crate) async fn run_to_end(
        &self,
        program: &'static str,
        args: &[&Path],
        ccid: &Ccid,
        keep_lines: usize,
    ) -> Result<Ran> {
        let child = KillOnDrop(self.start(program, args, ccid, keep_lines, None)?);
        let code = child.0.wait().await;
        Ok(Ran {
            code,
            stderr: child.0.output().snapshot(),
        })
    }
}
