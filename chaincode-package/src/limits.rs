//! The limits that bound what reading and unpacking a package may cost.

/// Bounds on what reading, unpacking and installing one package may use.
///
/// A package comes from outside the peer, so every size is checked against these before it is
/// trusted, and decompressed bytes are counted as they come, not taken from headers.
///
/// Beside the three fields, fixed bounds apply, all named in the error when hit:
/// - `metadata.json` may be at most 1 MiB;
/// - each entry of the package, `code.tar.gz` included, may be at most
///   [`max_package_bytes`](Self::max_package_bytes) (it is held in memory);
/// - the package's outer tar may decompress to at most 4 × `max_package_bytes`;
/// - the tar headers in front of one entry (PAX and GNU long-name records included), and the
///   padding between entries, may take at most 1 MiB;
/// - the code archive may decompress to at most `max_unpacked_bytes` + 4 KiB per allowed entry
///   + 1 MiB (its files are also counted as they are written, against `max_unpacked_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The largest package file accepted, in bytes (the compressed `.tar.gz` as received).
    /// Default 100 MiB.
    pub max_package_bytes: u64,
    /// The most bytes the files of the code archive may add up to once unpacked. Default 1 GiB.
    pub max_unpacked_bytes: u64,
    /// The most entries (files and folders) the code archive, or the package itself, may hold.
    /// Default 100 000.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_package_bytes: 100 * MIB,
            max_unpacked_bytes: 1024 * MIB,
            max_entries: 100_000,
        }
    }
}

/// One mebibyte.
const MIB: u64 = 1024 * 1024;

/// The largest `metadata.json` accepted.
pub(crate) const MAX_METADATA_BYTES: u64 = MIB;

/// The most bytes of tar headers, extension records and padding in front of one entry.
pub(crate) const MAX_HEADER_BYTES: u64 = MIB;

impl Limits {
    /// The most bytes the package's outer tar may decompress to.
    pub(crate) fn max_package_tar_bytes(&self) -> u64 {
        self.max_package_bytes.saturating_mul(4)
    }

    /// The most bytes the code archive's tar may decompress to.
    pub(crate) fn max_code_tar_bytes(&self) -> u64 {
        self.max_unpacked_bytes
            .saturating_add(self.max_entries.saturating_mul(4096))
            .saturating_add(MIB)
    }
}
