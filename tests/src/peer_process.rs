//! The `peer` binary as a subprocess on free ports, and its CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::env::workspace_binary;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What a CLI command did.
#[derive(Debug)]
pub struct CliOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl CliOutput {
    /// Panics with the output unless the command succeeded.
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics with the output unless the command failed.
    pub fn failed(self) -> Self {
        assert!(
            !self.status.success(),
            "command succeeded but should not have:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A running `peer node start`.
pub struct PeerProcess {
    /// The data folder (`peer.fileSystemPath`).
    pub data: PathBuf,
    /// The admin address.
    pub admin: String,
    /// The chaincode listener's address.
    pub chaincode_address: String,
    /// The operations service's address (`/healthz`, `/metrics`, …), unless the test's
    /// environment sets `CORE_OPERATIONS_LISTENADDRESS`.
    pub operations: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl PeerProcess {
    /// Starts a peer with its data in `data`, with extra environment and arguments.
    pub fn start(data: &Path, env: &[(&str, &str)], args: &[&str]) -> PeerProcess {
        let (admin_port, cc_port, ops_port) = (free_port(), free_port(), free_port());
        let mut peer = PeerProcess {
            data: data.to_path_buf(),
            admin: format!("127.0.0.1:{admin_port}"),
            chaincode_address: format!("127.0.0.1:{cc_port}"),
            operations: format!("127.0.0.1:{ops_port}"),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
            log: data.join("peer.log"),
        };
        peer.spawn();
        peer
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(workspace_binary("peer"));
        cmd.env_remove("RUST_LOG")
            .env("CORE_PEER_FILESYSTEMPATH", &self.data)
            .env("CORE_PEER_LISTENADDRESS", &self.admin)
            .env("CORE_PEER_CHAINCODELISTENADDRESS", &self.chaincode_address)
            .env("CORE_PEER_ADDRESS", &self.admin)
            .env("CORE_OPERATIONS_LISTENADDRESS", &self.operations);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = self
            .command()
            .args(["node", "start"])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the peer");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&self.admin).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the peer exited with {status} at start:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the peer did not listen within 20 s:\n{}", self.log());
    }

    /// The peer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Runs `peer <args>` against this peer.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        self.cli_with(args, &[])
    }

    /// Runs `peer <args>` with extra environment.
    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the CLI");
        CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = nix_kill(child.id(), "TERM");
        wait_within(&mut child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("the peer did not stop:\n{}", self.log()))
    }

    /// Kills the peer with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the peer again on the same data and ports.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the peer first");
        self.spawn();
    }
}

fn nix_kill(pid: u32, signal: &str) -> std::io::Result<ExitStatus> {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
}

fn wait_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix_kill(child.id(), "TERM");
            if wait_within(&mut child, Duration::from_secs(15)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("--- peer log ---\n{}", self.log());
        }
    }
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}
