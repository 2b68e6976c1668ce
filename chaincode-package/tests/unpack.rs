//! Unpacking code archives: what is written, with which modes, and what is removed on error.
#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use chaincode_package::{Error, Limits, Unpacked, unpack_code};
use common::{code_of, contents, file, file_mode, header, mode};

#[test]
fn files_and_folders_are_written_with_safe_modes() {
    let code = code_of(vec![
        (header(b"./", b'5', 0, 0o755), Vec::new()),
        (header(b"./bin/", b'5', 0, 0o700), Vec::new()),
        file_mode("./bin/run", b"#!/bin/sh\n", 0o4755),
        file_mode("./bin/group", b"g", 0o2710),
        file_mode("lib/data.txt", b"data", 0o666),
        file_mode("lib/private", b"p", 0o600),
        file_mode("lib/sticky", b"s", 0o1644),
    ]);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("a/b/code");
    let unpacked = unpack_code(&code, &dest, &Limits::default()).unwrap();
    assert_eq!(
        unpacked,
        Unpacked {
            files: 5,
            bytes: 10 + 1 + 4 + 1 + 1
        }
    );
    assert_eq!(
        contents(&dest),
        [
            "bin",
            "bin/group",
            "bin/run",
            "lib",
            "lib/data.txt",
            "lib/private",
            "lib/sticky"
        ]
    );
    assert_eq!(
        fs::read_to_string(dest.join("bin/run")).unwrap(),
        "#!/bin/sh\n"
    );
    assert_eq!(
        mode(&dest.join("bin/run")),
        0o755,
        "setuid dropped, exec kept"
    );
    assert_eq!(mode(&dest.join("bin/group")), 0o755, "setgid dropped");
    assert_eq!(mode(&dest.join("lib/data.txt")), 0o644);
    assert_eq!(mode(&dest.join("lib/private")), 0o644);
    assert_eq!(mode(&dest.join("lib/sticky")), 0o644, "sticky dropped");
    assert_eq!(mode(&dest.join("bin")), 0o755);
    assert_eq!(mode(&dest.join("lib")), 0o755);
    assert_eq!(mode(&dest), 0o755);
}

#[test]
fn an_existing_empty_folder_is_fine_a_full_one_is_not() {
    let out = tempfile::tempdir().unwrap();
    let code = code_of(vec![file("a", b"a")]);
    unpack_code(&code, out.path(), &Limits::default()).unwrap();
    assert_eq!(contents(out.path()), ["a"]);
    let err = unpack_code(&code, out.path(), &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::DestinationNotEmpty { .. }), "{err}");
    assert!(
        err.to_string().contains(&out.path().display().to_string()),
        "{err}"
    );
    let err = unpack_code(&code, &out.path().join("a"), &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::DestinationNotEmpty { .. }), "{err}");
}

#[test]
fn on_error_everything_written_is_removed() {
    let bad = code_of(vec![
        file("one/a", b"a"),
        file("two/b", b"b"),
        common::link_header(b"two/link", b'2', "../one/a").pipe(|h| (h, Vec::new())),
    ]);
    // A destination this call created goes, with the parents it created.
    let out = tempfile::tempdir().unwrap();
    let err = unpack_code(&bad, &out.path().join("x/y/code"), &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::EntryKind { .. }), "{err}");
    assert!(contents(out.path()).is_empty());
    // An existing empty destination stays, emptied.
    let err = unpack_code(&bad, out.path(), &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::EntryKind { .. }), "{err}");
    assert!(out.path().is_dir());
    assert!(contents(out.path()).is_empty());
}

#[test]
fn a_file_cannot_pass_through_an_earlier_file() {
    let code = code_of(vec![file("a", b"a"), file("a/b", b"b")]);
    let out = tempfile::tempdir().unwrap();
    let err = unpack_code(&code, &out.path().join("c"), &Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("code archive entry \"a/b\""),
        "{err}"
    );
    assert!(contents(out.path()).is_empty());
}

#[test]
fn a_directory_with_data_is_refused() {
    let code = code_of(vec![(header(b"d/", b'5', 3, 0o755), b"abc".to_vec())]);
    let out = tempfile::tempdir().unwrap();
    let err = unpack_code(&code, &out.path().join("c"), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("\"d/\""), "{err}");
}

#[test]
fn old_style_directories_and_pax_global_headers_are_read() {
    let code = code_of(vec![
        (header(b"pax_global_header", b'g', 0, 0o644), Vec::new()),
        (header(b"old/", 0, 0, 0o755), Vec::new()),
        (header(b"old/file", 0, 1, 0o644), b"x".to_vec()),
    ]);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("c");
    unpack_code(&code, &dest, &Limits::default()).unwrap();
    assert_eq!(contents(&dest), ["old", "old/file"]);
}

#[test]
fn exactly_the_byte_limit_is_fine() {
    let limits = Limits {
        max_unpacked_bytes: 10,
        ..Limits::default()
    };
    let out = tempfile::tempdir().unwrap();
    let ok = code_of(vec![file("a", b"01234"), file("b", b"56789")]);
    unpack_code(&ok, &out.path().join("ok"), &limits).unwrap();
    let over = code_of(vec![file("a", b"01234"), file("b", b"567890")]);
    let err = unpack_code(&over, &out.path().join("over"), &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "package code unpacks to more than the limit of 10 bytes"
    );
    assert_eq!(contents(out.path()), ["ok", "ok/a", "ok/b"]);
}

/// `x.pipe(f)` is `f(x)`, to build a tuple inline.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn a_regular_file_named_like_a_folder_is_refused() {
    let code = code_of(vec![(header(b"d/", b'0', 0, 0o644), Vec::new())]);
    let out = tempfile::tempdir().unwrap();
    let err = unpack_code(&code, &out.path().join("c"), &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::EntryName { .. }), "{err}");
    assert!(err.to_string().contains("ends with `/`"), "{err}");
}
