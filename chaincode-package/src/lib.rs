//! Fabric 2.x chaincode packages.
//!
//! A package is a gzip-compressed tar holding exactly two files, `metadata.json` (the code's
//! `path`, its `type` and the package `label`) then `code.tar.gz` (the code itself). Its ID is
//! `<label>:<hex sha256 of the package file>`. This crate
//! - writes packages as Fabric's CLI does ([`write()`], [`code_archive`], [`package_dir`]): the
//!   same entries, tar headers and metadata JSON, byte for byte (the deflate stream, and so the
//!   package ID, differs from Go's compressor for the same content);
//! - reads any ordinary ustar, GNU or PAX `.tar.gz` safely ([`Package::parse`]) and unpacks code
//!   archives safely ([`unpack_code`]): packages come from outside the peer, so sizes are bounded
//!   by [`Limits`], links, devices and names leaving the destination are refused, and nothing
//!   written survives a refused package;
//! - computes and parses package IDs ([`PackageId`]);
//! - keeps installed packages by ID on disk ([`PackageStore`]).
//!
//! All I/O is blocking: async callers use `spawn_blocking`.
//!
//! ```
//! use chaincode_package::{Limits, Metadata, Package, PackageId, package_dir};
//! use sha2::{Digest, Sha256};
//!
//! let src = tempfile::tempdir()?;
//! std::fs::write(src.path().join("connection.json"), r#"{"address":"kv:9999"}"#)?;
//!
//! let metadata = Metadata::new("", "ccaas", "kv_1");
//! let bytes = package_dir(src.path(), &metadata, "")?;
//!
//! let package = Package::parse(&bytes, &Limits::default())?;
//! assert_eq!(package.metadata, metadata);
//! assert_eq!(&package.metadata_json[..], br#"{"path":"","type":"ccaas","label":"kv_1"}"#);
//! let hash = hex::encode(Sha256::digest(&bytes));
//! assert_eq!(package.id.to_string(), format!("kv_1:{hash}"));
//! assert_eq!(package.id, PackageId::of("kv_1", &bytes)?);
//! assert_eq!(package.id.file_name(), format!("kv_1.{hash}.tar.gz"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod error;
mod id;
mod limited;
mod limits;
mod metadata;
mod names;
mod read;
mod source;
mod store;
mod unpack;
mod write;

pub use error::{Error, Result};
pub use id::{PackageId, validate_label};
pub use limits::Limits;
pub use metadata::Metadata;
pub use read::Package;
pub use source::{code_archive, code_archive_following_links, package_dir};
pub use store::{Installed, PackageStore};
pub use unpack::{Unpacked, unpack_code};
pub use write::write;
