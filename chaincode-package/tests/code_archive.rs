//! Packing a source folder into a deterministic code archive.
#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use chaincode_package::{Error, Limits, Package, code_archive, package_dir, unpack_code, write};
use common::gunzip;

/// (name, mode, uid, gid, mtime, data) of each entry.
fn entries(code: &[u8]) -> Vec<(String, u32, u64, u64, u64, Vec<u8>)> {
    let tar = gunzip(code);
    let mut archive = tar::Archive::new(&tar[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.entry_type(), tar::EntryType::Regular);
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                data,
            )
        })
        .collect()
}

fn source() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::create_dir_all(p.join("b/c")).unwrap();
    fs::create_dir_all(p.join("empty")).unwrap();
    fs::write(p.join("z.txt"), "z").unwrap();
    fs::write(p.join("a.txt"), "a").unwrap();
    fs::write(p.join("b/c/run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(p.join("b/c/run.sh"), fs::Permissions::from_mode(0o744)).unwrap();
    fs::write(p.join("b/secret"), "s").unwrap();
    fs::set_permissions(p.join("b/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

#[test]
fn files_are_sorted_prefixed_and_have_fixed_owner_time_and_modes() {
    let dir = source();
    let got = entries(&code_archive(dir.path(), "src/").unwrap());
    let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        ["src/a.txt", "src/b/c/run.sh", "src/b/secret", "src/z.txt"]
    );
    let modes: Vec<_> = got.iter().map(|e| e.1).collect();
    assert_eq!(modes, [0o644, 0o755, 0o644, 0o644]);
    assert!(got.iter().all(|e| e.2 == 0 && e.3 == 0 && e.4 == 0));
    assert_eq!(got[1].5, b"#!/bin/sh\n");
}

#[test]
fn no_prefix_and_a_prefix_without_slash() {
    let dir = source();
    let plain = entries(&code_archive(dir.path(), "").unwrap());
    assert_eq!(plain[0].0, "a.txt");
    let nested = entries(&code_archive(dir.path(), "x/y").unwrap());
    assert_eq!(nested[0].0, "x/y/a.txt");
}

#[test]
fn the_bytes_are_deterministic() {
    let dir = source();
    let first = code_archive(dir.path(), "src/").unwrap();
    // A new modification time changes nothing.
    fs::write(dir.path().join("a.txt"), "a").unwrap();
    assert_eq!(code_archive(dir.path(), "src/").unwrap(), first);
}

#[test]
fn a_symbolic_link_is_refused_naming_it() {
    let dir = source();
    let link = dir.path().join("b/link");
    symlink("../a.txt", &link).unwrap();
    let err = code_archive(dir.path(), "").unwrap_err();
    assert!(matches!(err, Error::SymlinkInSource { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&link.display().to_string()), "{message}");
    assert!(message.contains("symbolic link"), "{message}");
}

#[test]
fn a_fifo_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let err = code_archive(dir.path(), "").unwrap_err();
    assert!(matches!(err, Error::SpecialFileInSource { .. }), "{err}");
    assert!(
        err.to_string().contains(&fifo.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_missing_folder_or_a_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = code_archive(&missing, "").unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    let file = dir.path().join("f");
    fs::write(&file, "").unwrap();
    let err = code_archive(&file, "").unwrap_err();
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn long_names_survive_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let deep = Path::new("d".repeat(90).as_str())
        .join("e".repeat(90))
        .join("f".repeat(90));
    fs::create_dir_all(dir.path().join(&deep)).unwrap();
    fs::write(dir.path().join(&deep).join("file.txt"), "deep").unwrap();
    let code = code_archive(dir.path(), "src/").unwrap();
    let expected = format!("src/{}/file.txt", deep.display());
    assert!(expected.len() > 255, "too long for ustar name + prefix");
    assert_eq!(entries(&code)[0].0, expected);

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    unpack_code(&code, &dest, &Limits::default()).unwrap();
    assert_eq!(fs::read_to_string(dest.join(&expected)).unwrap(), "deep");
}

#[test]
fn package_dir_is_write_of_code_archive() {
    let dir = source();
    let metadata = common::meta("kv");
    let bytes = package_dir(dir.path(), &metadata, "src/").unwrap();
    let expected = write(&metadata, &code_archive(dir.path(), "src/").unwrap()).unwrap();
    assert_eq!(bytes, expected);
    let package = Package::parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(package.metadata, metadata);
    let err = package_dir(dir.path(), &common::meta("a b"), "").unwrap_err();
    assert!(matches!(err, Error::InvalidLabel { .. }), "{err}");
}

#[test]
fn following_links_packs_what_they_point_to_and_refuses_a_cycle() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("shim")).unwrap();
    std::fs::write(outside.path().join("shim/index.js"), "module.exports = 1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("package.json"), "{}").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("node_modules")).unwrap();
    assert!(matches!(
        chaincode_package::code_archive(dir.path(), "").unwrap_err(),
        chaincode_package::Error::SymlinkInSource { .. }
    ));
    let archive = chaincode_package::code_archive_following_links(dir.path(), "").unwrap();
    let mut names = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    for entry in tar.entries().unwrap() {
        names.push(entry.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(names, ["node_modules/shim/index.js", "package.json"]);
    // A link back to a folder that holds it.
    std::os::unix::fs::symlink(dir.path(), outside.path().join("shim/loop")).unwrap();
    let e = chaincode_package::code_archive_following_links(dir.path(), "").unwrap_err();
    assert!(
        matches!(e, chaincode_package::Error::LinkCycle { .. }),
        "{e}"
    );
}
