//! Packages and code archives made with the system's GNU tar are read.
#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use chaincode_package::{Error, Limits, Package, unpack_code};
use common::{ccaas_code, meta};

/// Runs `tar` with `args`, failing the test if it fails.
fn tar(args: &[&str]) {
    let out = Command::new("tar").args(args).output().expect("run tar");
    assert!(
        out.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A folder holding `metadata.json` (label `kv`) and `code.tar.gz`.
fn package_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("metadata.json"), meta("kv").to_json()).unwrap();
    fs::write(dir.path().join("code.tar.gz"), ccaas_code()).unwrap();
    dir
}

/// `tar -C <folder> -czf <pkg> <extra args...> <names...>`, returning the package bytes.
fn tar_package(extra: &[&str], names: &[&str]) -> Vec<u8> {
    let dir = package_folder();
    let out = tempfile::tempdir().unwrap();
    let pkg = out.path().join("pkg.tar.gz");
    let mut args = vec![
        "-C",
        dir.path().to_str().unwrap(),
        "-czf",
        pkg.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(names);
    tar(&args);
    fs::read(pkg).unwrap()
}

fn assert_parses(bytes: &[u8]) {
    let package = Package::parse(bytes, &Limits::default()).unwrap();
    assert_eq!(package.metadata, meta("kv"));
    assert_eq!(&package.code[..], &ccaas_code()[..]);
    assert_eq!(package.id.label(), "kv");
}

#[test]
fn gnu_format_with_plain_names() {
    assert_parses(&tar_package(&[], &["metadata.json", "code.tar.gz"]));
}

#[test]
fn names_starting_with_dot_slash() {
    assert_parses(&tar_package(&[], &["./metadata.json", "./code.tar.gz"]));
}

#[test]
fn pax_format() {
    assert_parses(&tar_package(
        &["--format=pax"],
        &["metadata.json", "code.tar.gz"],
    ));
}

#[test]
fn ustar_format() {
    assert_parses(&tar_package(
        &["--format=ustar"],
        &["metadata.json", "code.tar.gz"],
    ));
}

#[test]
fn code_after_metadata_order_does_not_matter() {
    assert_parses(&tar_package(&[], &["code.tar.gz", "metadata.json"]));
}

/// `tar -C dir -czf pkg .` adds a `./` directory entry; like Fabric, the reader refuses
/// anything that is not a regular file, and says which entry.
#[test]
fn the_dot_form_is_refused_for_its_directory_entry() {
    let bytes = tar_package(&[], &["."]);
    let err = Package::parse(&bytes, &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::EntryKind { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(r#""./""#), "{message}");
    assert!(message.contains("directory"), "{message}");
}

/// Makes a code folder with a file under a path longer than 100 bytes and tars it in `format`.
fn long_name_code(format: &str) -> (Vec<u8>, String) {
    let src = tempfile::tempdir().unwrap();
    let rel = format!("{}/{}/main.go", "a".repeat(70), "b".repeat(120));
    fs::create_dir_all(src.path().join(Path::new(&rel).parent().unwrap())).unwrap();
    fs::write(src.path().join(&rel), "package main\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let code = out.path().join("code.tar.gz");
    tar(&[
        "-C",
        src.path().to_str().unwrap(),
        "-czf",
        code.to_str().unwrap(),
        &format!("--format={format}"),
        ".",
    ]);
    (fs::read(code).unwrap(), rel)
}

#[test]
fn a_pax_long_name_unpacks() {
    let (code, rel) = long_name_code("pax");
    let raw = common::gunzip(&code);
    assert!(
        raw.windows(10).any(|w| w == b"PaxHeaders"),
        "tar wrote PAX headers"
    );
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    let unpacked = unpack_code(&code, &dest, &Limits::default()).unwrap();
    assert_eq!(unpacked.files, 1);
    assert_eq!(
        fs::read_to_string(dest.join(&rel)).unwrap(),
        "package main\n"
    );
}

#[test]
fn a_gnu_long_name_unpacks() {
    let (code, rel) = long_name_code("gnu");
    let raw = common::gunzip(&code);
    assert!(
        raw.windows(13).any(|w| w == b"././@LongLink"),
        "tar wrote GNU long names"
    );
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    unpack_code(&code, &dest, &Limits::default()).unwrap();
    assert_eq!(
        fs::read_to_string(dest.join(&rel)).unwrap(),
        "package main\n"
    );
}

#[test]
fn a_whole_gnu_tar_package_installs() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("connection.json"), "{}").unwrap();
    let dir = tempfile::tempdir().unwrap();
    tar(&[
        "-C",
        src.path().to_str().unwrap(),
        "-czf",
        dir.path().join("code.tar.gz").to_str().unwrap(),
        ".",
    ]);
    fs::write(dir.path().join("metadata.json"), meta("kv").to_json()).unwrap();
    let pkg = dir.path().join("pkg.tar.gz");
    tar(&[
        "-C",
        dir.path().to_str().unwrap(),
        "-czf",
        pkg.to_str().unwrap(),
        "metadata.json",
        "code.tar.gz",
    ]);
    let (_root, store) = common::store(Limits::default());
    let installed = store.install(&fs::read(pkg).unwrap()).unwrap();
    assert_eq!(
        fs::read_to_string(installed.code_dir.join("connection.json")).unwrap(),
        "{}"
    );
}
