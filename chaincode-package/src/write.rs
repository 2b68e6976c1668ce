//! Writing a package file as Fabric's CLI (`peer lifecycle chaincode package`) does.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::PACKAGE;
use crate::{Error, Metadata, Result, validate_label};

/// The mode Fabric's CLI gives both entries of a package: a regular file, `rw-r--r--`.
const PACKAGE_ENTRY_MODE: u32 = 0o100644;

/// The package file for `metadata` and the code archive `code_tar_gz`, as Fabric's CLI writes it.
///
/// A gzip stream (default compression) of a tar with exactly two entries, `metadata.json`
/// (compact JSON from [`Metadata::to_json`]) then `code.tar.gz`. Each header is USTAR with only
/// the name, the size and mode `0100644` set: regular file, uid and gid 0, mtime 0, no user or
/// group names. The label is checked first.
pub fn write(metadata: &Metadata, code_tar_gz: &[u8]) -> Result<Vec<u8>> {
    validate_label(&metadata.label)?;
    let write_error = |source| Error::Write {
        archive: PACKAGE,
        source,
    };
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    append_file(
        &mut tar,
        b"metadata.json",
        PACKAGE_ENTRY_MODE,
        &metadata.to_json(),
    )
    .map_err(write_error)?;
    append_file(&mut tar, b"code.tar.gz", PACKAGE_ENTRY_MODE, code_tar_gz).map_err(write_error)?;
    tar.into_inner()
        .and_then(GzEncoder::finish)
        .map_err(write_error)
}

/// Appends a regular file `name` with `mode` and `data` to `tar`, with a USTAR header as Go's
/// `archive/tar` writes it (uid, gid, mtime and device numbers 0, no user or group names).
///
/// A name that does not fit the USTAR name and prefix fields goes in a PAX `path` record.
pub(crate) fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &[u8],
    mode: u32,
    data: &[u8],
) -> io::Result<()> {
    let mut header = blank_header(b'0', mode, data.len() as u64)?;
    if header.set_path(path_of(name)).is_err() {
        let record = pax_record("path", name);
        let mut pax = blank_header(b'x', 0o644, record.len() as u64)?;
        set_name_field(&mut pax, b"././@PaxHeader");
        finish_header(&mut pax);
        tar.append(&pax, &record[..])?;
        set_name_field(&mut header, name);
    }
    finish_header(&mut header);
    tar.append(&header, data)
}

/// A USTAR header of type `typeflag` with everything but the name set.
fn blank_header(typeflag: u8, mode: u32, size: u64) -> io::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::new(typeflag));
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_device_major(0)?;
    header.set_device_minor(0)?;
    Ok(header)
}

/// Puts as much of `name` as fits in the 100-byte name field (readers take the PAX `path`).
fn set_name_field(header: &mut tar::Header, name: &[u8]) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
}

/// Writes the checksum as Go does: six octal digits, a NUL and a space.
fn finish_header(header: &mut tar::Header) {
    let bytes = header.as_old_mut();
    bytes.cksum = *b"        ";
    let sum: u32 = header.as_bytes().iter().map(|&b| u32::from(b)).sum();
    let field = format!("{:06o}\0 ", sum);
    header.as_old_mut().cksum.copy_from_slice(field.as_bytes());
}

/// A PAX extended header record `"<len> <key>=<value>\n"`, `<len>` counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// `name` as a path (names are bytes on Unix).
fn path_of(name: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for n in [0, 1, 85, 86, 87, 90, 991, 992, 995, 5000] {
            let value = vec![b'a'; n];
            let record = pax_record("path", &value);
            let text = String::from_utf8(record.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), record.len(), "{n}");
        }
    }

    #[test]
    fn checksum_is_written_as_go_does() {
        let mut header = blank_header(b'0', 0o644, 3).unwrap();
        header.set_path("a").unwrap();
        finish_header(&mut header);
        let field = &header.as_bytes()[148..156];
        assert_eq!(&field[6..], b"\0 ");
        let written = u32::from_str_radix(std::str::from_utf8(&field[..6]).unwrap(), 8).unwrap();
        assert_eq!(u64::from(written), u64::from(header.cksum().unwrap()));
    }

    #[test]
    fn long_names_read_back_through_pax() {
        let name = format!("src/{}/{}", "d".repeat(120), "f".repeat(130));
        let mut tar = tar::Builder::new(Vec::new());
        append_file(&mut tar, name.as_bytes(), 0o644, b"hi").unwrap();
        let bytes = tar.into_inner().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path_bytes().into_owned())
            .collect();
        assert_eq!(entries, [name.into_bytes()]);
    }
}
