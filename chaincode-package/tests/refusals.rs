//! Hostile or broken packages are refused with a message naming the problem, and leave nothing
//! behind in the store.
#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

mod common;

use chaincode_package::{Error, Limits, Package};
use common::{
    assert_store_empty, ccaas_code, code_of, file, gzip, header, link_header, meta, package_of,
    package_with_code, small_limits, tar_of,
};

/// Installs `package` with `limits`, expecting a refusal whose message contains every one of
/// `needles`; checks that the store is left empty. Returns the error.
fn refused_with(package: &[u8], limits: Limits, needles: &[&str]) -> Error {
    let (root, store) = common::store(limits);
    let err = store.install(package).unwrap_err();
    let message = err.to_string();
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    assert_store_empty(root.path());
    err
}

/// [`refused_with`] default limits.
fn refused(package: &[u8], needles: &[&str]) -> Error {
    refused_with(package, Limits::default(), needles)
}

/// A package with a valid metadata.json, a valid code.tar.gz and `extra` after them.
fn package_plus(extra: (tar::Header, Vec<u8>)) -> Vec<u8> {
    gzip(&tar_of(vec![
        file("metadata.json", &meta("kv").to_json()),
        file("code.tar.gz", &ccaas_code()),
        extra,
    ]))
}

/// A package whose code archive holds a good file, then `bad`.
fn code_plus(bad: (tar::Header, Vec<u8>)) -> Vec<u8> {
    package_with_code("kv", &code_of(vec![file("src/ok.go", b"package ok"), bad]))
}

#[test]
fn links_devices_and_fifos_in_the_package() {
    for (typeflag, kind) in [
        (b'2', "symbolic link"),
        (b'1', "hard link"),
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "fifo"),
        (b'5', "directory"),
    ] {
        let entry = if matches!(typeflag, b'1' | b'2') {
            link_header(b"extra", typeflag, "metadata.json")
        } else {
            header(b"extra", typeflag, 0, 0o644)
        };
        let err = refused(
            &package_plus((entry, Vec::new())),
            &[
                "package entry \"extra\"",
                kind,
                "only regular files are allowed",
            ],
        );
        assert!(matches!(err, Error::EntryKind { .. }), "{err}");
    }
}

#[test]
fn links_devices_and_fifos_in_the_code() {
    for (typeflag, kind) in [
        (b'2', "symbolic link"),
        (b'1', "hard link"),
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "fifo"),
    ] {
        let entry = if matches!(typeflag, b'1' | b'2') {
            link_header(b"src/evil", typeflag, "/etc/passwd")
        } else {
            header(b"src/evil", typeflag, 0, 0o644)
        };
        let err = refused(
            &code_plus((entry, Vec::new())),
            &[
                "code archive entry \"src/evil\"",
                kind,
                "only regular files and directories are allowed",
            ],
        );
        assert!(matches!(err, Error::EntryKind { .. }), "{err}");
    }
}

#[test]
fn names_leaving_the_destination() {
    for (name, reason) in [
        ("../evil", "`..` component"),
        ("src/../../evil", "`..` component"),
        ("/abs", "absolute path"),
    ] {
        let err = refused(
            &code_plus(file(name, b"x")),
            &[&format!("code archive entry {name:?}"), reason],
        );
        assert!(matches!(err, Error::EntryName { .. }), "{err}");
        let err = refused(
            &package_plus(file(name, b"x")),
            &[&format!("package entry {name:?}"), reason],
        );
        assert!(matches!(err, Error::EntryName { .. }), "{err}");
    }
}

#[test]
fn missing_entries() {
    let only_code = gzip(&tar_of(vec![file("code.tar.gz", &ccaas_code())]));
    let err = refused(&only_code, &["package has no metadata.json"]);
    assert!(matches!(err, Error::MissingEntry { .. }));
    let only_meta = gzip(&tar_of(vec![file("metadata.json", &meta("kv").to_json())]));
    refused(&only_meta, &["package has no code.tar.gz"]);
    refused(
        &gzip(&tar_of(Vec::new())),
        &["package has no metadata.json"],
    );
}

#[test]
fn duplicate_entries() {
    refused(
        &package_plus(file("./metadata.json", &meta("kv").to_json())),
        &["package has more than one metadata.json"],
    );
    refused(
        &package_plus(file("code.tar.gz", &ccaas_code())),
        &["package has more than one code.tar.gz"],
    );
    refused(
        &code_plus(file("src/ok.go", b"again")),
        &["code archive entry \"src/ok.go\"", "appears twice"],
    );
}

#[test]
fn bad_labels() {
    for label in ["-x", "a b", "a:b", "", "é"] {
        let err = refused(
            &package_with_code(label, &ccaas_code()),
            &[&format!("invalid package label {label:?}")],
        );
        assert!(matches!(err, Error::InvalidLabel { .. }), "{err}");
    }
}

#[test]
fn bad_metadata() {
    for json in [
        &b"not json"[..],
        br#"{"path":"p","label":"kv"}"#,
        br#"{"path":"p","type":"golang"}"#,
        br#"{"type":1,"label":"kv"}"#,
    ] {
        let err = refused(&package_of(json, &ccaas_code()), &["metadata.json"]);
        assert!(matches!(err, Error::Metadata { .. }), "{err}");
    }
    // `path` may be missing.
    let (_root, store) = common::store(Limits::default());
    let installed = store
        .install(&package_of(
            br#"{"type":"ccaas","label":"kv"}"#,
            &ccaas_code(),
        ))
        .unwrap();
    assert_eq!(installed.metadata.path, "");
}

#[test]
fn unknown_top_level_files_are_ignored() {
    let (_root, store) = common::store(Limits::default());
    let installed = store.install(&package_plus(file("README", b"hi"))).unwrap();
    assert_eq!(installed.metadata, meta("kv"));
}

#[test]
fn a_package_over_the_size_limit() {
    let limits = Limits {
        max_package_bytes: 100,
        ..Limits::default()
    };
    let package = package_with_code("kv", &ccaas_code());
    let err = refused_with(
        &package,
        limits,
        &[
            &format!("package is {} bytes", package.len()),
            "limit of 100 bytes",
        ],
    );
    assert!(matches!(err, Error::PackageTooLarge { .. }), "{err}");
}

#[test]
fn more_entries_than_allowed() {
    let files = (0..101).map(|i| file(&format!("f{i}"), b"x")).collect();
    let err = refused_with(
        &package_with_code("kv", &code_of(files)),
        small_limits(),
        &["code archive has more than the limit of 100 entries"],
    );
    assert!(matches!(err, Error::TooManyEntries { .. }), "{err}");
    // Exactly the limit is fine.
    let files = (0..100).map(|i| file(&format!("f{i}"), b"x")).collect();
    let (_root, store) = common::store(small_limits());
    store
        .install(&package_with_code("kv", &code_of(files)))
        .unwrap();
}

#[test]
fn outer_layer_bombs() {
    let limits = small_limits();
    let zeros = vec![0u8; 900 * 1024];
    // Unknown files adding up to more than 4 × max_package_bytes decompressed.
    let mut entries = vec![
        file("metadata.json", &meta("kv").to_json()),
        file("code.tar.gz", &ccaas_code()),
    ];
    entries.extend((0..5).map(|i| file(&format!("junk{i}"), &zeros)));
    let err = refused_with(
        &gzip(&tar_of(entries)),
        limits,
        &["package decompresses to more than the limit of 4194304 bytes"],
    );
    assert!(matches!(err, Error::DecompressedTooLarge { .. }), "{err}");

    // Nothing but zeros: the tar ends at once, and the rest is more padding than allowed.
    let err = refused_with(
        &gzip(&vec![0u8; 2 << 20]),
        limits,
        &["package has a stretch of tar headers or padding longer than the limit of 1048576 bytes"],
    );
    assert!(matches!(err, Error::HeaderTooLarge { .. }), "{err}");

    // A huge PAX record in front of metadata.json.
    let mut pax = header(b"././@PaxHeader", b'x', 0, 0o644);
    let record = format!(
        "{} comment={}\n",
        2 * 1024 * 1024 + 19,
        "c".repeat(2 * 1024 * 1024)
    );
    pax.set_size(record.len() as u64);
    pax.set_cksum();
    let package = gzip(&tar_of(vec![
        (pax, record.into_bytes()),
        file("metadata.json", &meta("kv").to_json()),
        file("code.tar.gz", &ccaas_code()),
    ]));
    let err = refused_with(&package, Limits::default(), &["limit of 1048576 bytes"]);
    assert!(matches!(err, Error::HeaderTooLarge { .. }), "{err}");
}

#[test]
fn a_huge_metadata_json_is_refused() {
    let big = vec![b' '; (1 << 20) + 1];
    refused(
        &package_of(&big, &ccaas_code()),
        &["package entry \"metadata.json\" is larger than the limit of 1048576 bytes"],
    );
}

#[test]
fn not_gzip_or_not_tar() {
    let err = refused(
        b"plain text, not gzip",
        &["package is not a readable tar.gz archive"],
    );
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    let err = refused(
        &package_with_code("kv", b"not gzip"),
        &["code archive is not a readable tar.gz archive"],
    );
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    // A corrupt gzip checksum is noticed.
    let mut package = package_with_code("kv", &ccaas_code());
    let n = package.len();
    package[n - 8] ^= 0xff;
    refused(&package, &["package is not a readable tar.gz archive"]);
}

#[test]
fn parse_refuses_the_same_as_install() {
    let err = Package::parse(&package_plus(file("../x", b"")), &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::EntryName { .. }), "{err}");
}
