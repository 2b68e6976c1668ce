//! What the environment offers: paths of built binaries and of `../shared`, and the
//! prerequisites (Node, Docker) some tests need, skipped with a message or required by CI.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder the test binary was built into (`target/<profile>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target dir")
}

/// A binary of the workspace built beside the tests; the test script builds every binary
/// before running tests.
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace's binaries first (`cargo build --workspace --bins`, which scripts/test does)",
        path.display()
    );
    path
}

/// The example Rust user chaincode.
pub fn kv_chaincode() -> PathBuf {
    workspace_binary("kv-chaincode")
}

/// The example Rust user chaincode built static (for `FROM scratch` images): the test script
/// builds it for the host's target triple, into `target/<triple>/<profile>/`.
pub fn static_kv_chaincode() -> PathBuf {
    let profile_dir = target_dir();
    let profile = profile_dir.file_name().expect("profile").to_owned();
    let target = profile_dir.parent().expect("target");
    let found = std::fs::read_dir(target)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .find_map(|entry| {
            let candidate = entry.path().join(&profile).join("kv-chaincode");
            candidate.is_file().then_some(candidate)
        });
    found.unwrap_or_else(|| {
        panic!(
            "no static kv-chaincode under {}/<triple>/: build it with \
             RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build -p kv-chaincode --target <host triple> \
             (scripts/test does)",
            target.display()
        )
    })
}

/// `../shared` beside the workspace (or `CCRT_SHARED_DIR`).
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("CCRT_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// `run-node-chaincode`.
pub fn run_node_chaincode() -> PathBuf {
    shared_dir().join("interop/run-node-chaincode")
}

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Prints `SKIPPED: <test>: <reason>` and returns `None`, or fails when `require_var` is set.
pub fn skip<T>(test: &str, require_var: &str, reason: &str) -> Option<T> {
    assert!(
        !required(require_var),
        "{test}: {require_var}=1 but {reason}"
    );
    println!("SKIPPED: {test}: {reason}");
    None
}

/// Node and Fabric's Node shim, ready to run chaincodes.
#[derive(Debug, Clone)]
pub struct NodeKit {
    /// The unpacked `node_modules` of fabric-shim and its dependencies.
    pub node_modules: PathBuf,
}

/// Node, or a skip (a failure under `REQUIRE_NODE=1`).
pub fn require_node(test: &str) -> Option<NodeKit> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return skip(
                test,
                "REQUIRE_NODE",
                &format!(
                    "node --version failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
        Err(e) => return skip(test, "REQUIRE_NODE", &format!("node is not installed: {e}")),
    }
    let script = run_node_chaincode();
    match Command::new(&script).arg("--unpack").output() {
        Ok(out) if out.status.success() => Some(NodeKit {
            node_modules: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        }),
        Ok(out) => skip(
            test,
            "REQUIRE_NODE",
            &format!(
                "{} --unpack failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => skip(
            test,
            "REQUIRE_NODE",
            &format!("cannot run {}: {e}", script.display()),
        ),
    }
}

impl NodeKit {
    /// A copy of the interop `kv` chaincode in `dir`, holding its own `node_modules` (a link
    /// to the bundle), as a user would have it.
    pub fn kv_package(&self, dir: &Path) -> PathBuf {
        let src = shared_dir().join("interop/chaincodes/kv");
        let pkg = dir.join("kv");
        std::fs::create_dir_all(&pkg).expect("package dir");
        for file in ["index.js", "package.json"] {
            std::fs::copy(src.join(file), pkg.join(file)).expect("copy chaincode");
        }
        std::os::unix::fs::symlink(&self.node_modules, pkg.join("node_modules"))
            .expect("link node_modules");
        pkg
    }
}

/// Whether the process `pid` exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// The live processes whose environment holds `name=value` (chaincodes by
/// `CORE_CHAINCODE_ID_NAME`, say).
pub fn processes_with_env(name: &str, value: &str) -> Vec<u32> {
    let wanted = format!("{name}={value}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
        })
        .filter(|pid| process_alive(*pid))
        .collect()
}
