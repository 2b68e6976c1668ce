//! The package writer lays packages out as Fabric's CLI does.
#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

mod common;

use chaincode_package::{Limits, Metadata, Package, PackageId, write};
use common::{ccaas_code, gunzip};
use sha2::{Digest, Sha256};

/// The raw 512-byte header blocks and data of a plain (extension-free) tar.
fn blocks(tar: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while tar[pos..pos + 512].iter().any(|&b| b != 0) {
        let header = &tar[pos..pos + 512];
        let size_text = std::str::from_utf8(&header[124..135]).unwrap();
        let size = usize::from_str_radix(size_text, 8).unwrap();
        let data = &tar[pos + 512..pos + 512 + size];
        out.push((header, data));
        pos += 512 + size.div_ceil(512) * 512;
    }
    assert!(tar[pos..].iter().all(|&b| b == 0));
    assert_eq!(
        tar.len() - pos,
        1024,
        "the archive ends with two zero blocks"
    );
    out
}

fn field(header: &[u8], start: usize, len: usize) -> &[u8] {
    &header[start..start + len]
}

#[test]
fn entries_are_metadata_then_code_with_the_cli_headers() {
    let code = ccaas_code();
    let bytes = write(&Metadata::new("x", "binary", "kv_1"), &code).unwrap();
    let tar = gunzip(&bytes);
    let entries = blocks(&tar);
    assert_eq!(entries.len(), 2);
    let expected_json = br#"{"path":"x","type":"binary","label":"kv_1"}"#;
    for ((header, data), (name, contents)) in entries.iter().zip([
        (&b"metadata.json"[..], &expected_json[..]),
        (b"code.tar.gz", &code[..]),
    ]) {
        let mut name_field = name.to_vec();
        name_field.resize(100, 0);
        assert_eq!(field(header, 0, 100), &name_field[..]);
        assert_eq!(field(header, 100, 8), b"0100644\0", "mode");
        assert_eq!(field(header, 108, 8), b"0000000\0", "uid");
        assert_eq!(field(header, 116, 8), b"0000000\0", "gid");
        let size = format!("{:011o}\0", contents.len());
        assert_eq!(field(header, 124, 12), size.as_bytes(), "size");
        assert_eq!(field(header, 136, 12), b"00000000000\0", "mtime");
        assert_eq!(header[156], b'0', "typeflag");
        assert!(field(header, 157, 100).iter().all(|&b| b == 0), "linkname");
        assert_eq!(field(header, 257, 6), b"ustar\0", "magic");
        assert_eq!(field(header, 263, 2), b"00", "version");
        assert!(field(header, 265, 32).iter().all(|&b| b == 0), "uname");
        assert!(field(header, 297, 32).iter().all(|&b| b == 0), "gname");
        assert_eq!(field(header, 329, 8), b"0000000\0", "devmajor");
        assert_eq!(field(header, 337, 8), b"0000000\0", "devminor");
        assert!(field(header, 345, 155).iter().all(|&b| b == 0), "prefix");
        assert_eq!(*data, contents);
    }
}

#[test]
fn the_gzip_header_is_plain() {
    let bytes = write(&common::meta("kv"), &ccaas_code()).unwrap();
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0], "magic, deflate, no flags");
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "mtime 0");
    assert_eq!(bytes[9], 255, "OS unknown, as Go writes it");
}

#[test]
fn metadata_json_is_exact() {
    let bytes = write(
        &Metadata::new("github.com/x/kv", "golang", "kv_1.0"),
        b"code",
    )
    .unwrap();
    let tar = gunzip(&bytes);
    assert_eq!(
        blocks(&tar)[0].1,
        br#"{"path":"github.com/x/kv","type":"golang","label":"kv_1.0"}"#
    );
}

#[test]
fn parse_round_trips_and_the_id_is_the_label_and_sha256_of_the_file() {
    let code = ccaas_code();
    let metadata = Metadata::new("", "ccaas", "kv_1");
    let bytes = write(&metadata, &code).unwrap();
    let package = Package::parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(package.metadata, metadata);
    assert_eq!(&package.metadata_json[..], &metadata.to_json()[..]);
    assert_eq!(&package.code[..], &code[..]);
    let hash = hex::encode(Sha256::digest(&bytes));
    assert_eq!(package.id.to_string(), format!("kv_1:{hash}"));
    assert_eq!(package.id.label(), "kv_1");
    assert_eq!(package.id.hash(), hash);
    assert_eq!(package.id, PackageId::of("kv_1", &bytes).unwrap());
    assert_eq!(package.id.file_name(), format!("kv_1.{hash}.tar.gz"));
    assert_eq!(package.id.sanitised(), format!("kv_1-{hash}"));
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let a = write(&common::meta("kv"), &ccaas_code()).unwrap();
    let b = write(&common::meta("kv"), &ccaas_code()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_bad_label_is_refused_when_writing() {
    for bad in ["", "-x", "a b", "a:b"] {
        let err = write(&common::meta(bad), b"").unwrap_err();
        assert!(
            matches!(err, chaincode_package::Error::InvalidLabel { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}
