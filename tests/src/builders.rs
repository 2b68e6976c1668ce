//! External builders and Fabric 2.x packages for tests: the fixture builders of
//! `tests/fixtures/builders` (Fabric's ccaas builder and a sample binary builder, as shell
//! scripts written from Fabric's facts), wrapped so a test sees every call and the environment
//! each program got.

use std::path::{Path, PathBuf};

use chaincode_package::{Metadata, package_dir};

/// `tests/fixtures/builders/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/builders")
        .join(name)
}

/// Whether `jq`, which the fixture builders use (as Fabric's sample builders do), is here;
/// otherwise prints `SKIPPED: <test>: …` (a failure with `REQUIRE_JQ=1`, which CI sets;
/// `scripts/test` installs it).
pub fn require_jq(test: &str) -> bool {
    let found = std::process::Command::new("jq")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found
        || crate::env::skip::<()>(
            test,
            "REQUIRE_JQ",
            "jq is not installed (scripts/test installs it)",
        )
        .is_some()
}

/// A builder in `dir/<name>` whose programs are the fixture `fixture`'s, each wrapped to
/// append `<program> <args>` to `dir/<name>/calls.log` and write its environment to
/// `dir/<name>/env.<program>` first.
pub fn traced(dir: &Path, name: &str, fixture_name: &str) -> PathBuf {
    let root = dir.join(name);
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).expect("builder folder");
    for entry in std::fs::read_dir(fixture(fixture_name).join("bin")).expect("fixture builder") {
        let program = entry.expect("entry").path();
        let file = program.file_name().expect("name").to_owned();
        let wrapper = format!(
            "#!/bin/sh\necho \"{prog} $*\" >> '{root}/calls.log'\nenv > '{root}/env.{prog}'\nexec '{target}' \"$@\"\n",
            prog = file.to_string_lossy(),
            root = root.display(),
            target = program.display(),
        );
        write_script(&bin.join(&file), &wrapper);
    }
    root
}

/// Writes an executable script.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The lines of a traced builder's `calls.log` (empty when nothing ran).
pub fn calls(builder: &Path) -> Vec<String> {
    std::fs::read_to_string(builder.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The environment a traced builder's `program` ran with, as `NAME=value` lines.
pub fn environment(builder: &Path, program: &str) -> Vec<String> {
    std::fs::read_to_string(builder.join(format!("env.{program}")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A package of type `binary` holding the static Rust kv chaincode as `chaincode`, plus
/// `extra` files (`FAIL_BUILD`, say).
pub fn binary_package(label: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        crate::env::static_kv_chaincode(),
        dir.path().join("chaincode"),
    )
    .expect("copy the chaincode");
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).expect("extra file");
    }
    package_dir(dir.path(), &Metadata::new("", "binary", label), "").expect("package")
}

/// A package of type `ccaas` holding `connection.json`.
pub fn ccaas_package(label: &str, connection: &serde_json::Value) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("connection.json"),
        serde_json::to_vec_pretty(connection).expect("json"),
    )
    .expect("connection.json");
    package_dir(dir.path(), &Metadata::new("", "ccaas", label), "").expect("package")
}
