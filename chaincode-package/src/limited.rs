//! A reader that counts decompressed bytes and stops at a limit.
//!
//! The tar reader reads headers, PAX records and GNU long names into memory, and skips entry
//! data by reading it; this reader, between the gzip decoder and the tar reader, bounds all of
//! that. Two caps apply: one on the whole stream, and one that the caller moves before each
//! header so that headers and padding between two entries stay small.

use std::cell::Cell;
use std::io::{self, Read};

use crate::Error;
use crate::limits::MAX_HEADER_BYTES;

/// Which cap was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    /// The cap on the whole stream.
    Total,
    /// The cap on the headers in front of one entry.
    Header,
}

/// The shared count and caps of a [`Metered`] reader.
#[derive(Debug)]
pub(crate) struct Meter {
    /// Which archive this counts, for messages.
    archive: &'static str,
    /// Bytes read so far.
    read: Cell<u64>,
    /// The most bytes the whole stream may hold.
    total: u64,
    /// The position that reading may not pass until the cap is moved.
    step: Cell<u64>,
    /// The cap hit, if one was.
    hit: Cell<Option<Hit>>,
}

impl Meter {
    /// A meter for `archive` whose stream may hold at most `total` bytes.
    pub(crate) fn new(archive: &'static str, total: u64) -> Self {
        Meter {
            archive,
            read: Cell::new(0),
            total,
            step: Cell::new(u64::MAX),
            hit: Cell::new(None),
        }
    }

    /// Before reading the next header: allows the `unread` bytes left of the last entry plus
    /// [`MAX_HEADER_BYTES`].
    pub(crate) fn before_header(&self, unread: u64) {
        let cap = self
            .read
            .get()
            .saturating_add(unread)
            .saturating_add(MAX_HEADER_BYTES);
        self.step.set(cap);
    }

    /// Once a header is read: the entry's data is bounded by its size and the total cap only.
    pub(crate) fn after_header(&self) {
        self.step.set(u64::MAX);
    }

    /// The next entry of `entries`, its header bounded as [`before_header`](Self::before_header)
    /// says (with the `unread` bytes left of the last entry), counted in `count` against
    /// `max_entries`; `None` at the end of the archive.
    pub(crate) fn next_entry<'a, R: Read>(
        &self,
        entries: &mut tar::Entries<'a, R>,
        unread: u64,
        count: &mut u64,
        max_entries: u64,
    ) -> Result<Option<tar::Entry<'a, R>>, Error> {
        self.before_header(unread);
        let Some(entry) = entries.next() else {
            return Ok(None);
        };
        let entry = entry.map_err(|e| self.error(e))?;
        self.after_header();
        *count += 1;
        if *count > max_entries {
            return Err(Error::TooManyEntries {
                archive: self.archive,
                limit: max_entries,
            });
        }
        Ok(Some(entry))
    }

    /// The crate error for an I/O error that came out of reading through this meter.
    pub(crate) fn error(&self, source: io::Error) -> Error {
        match self.hit.get() {
            Some(Hit::Total) => Error::DecompressedTooLarge {
                archive: self.archive,
                limit: self.total,
            },
            Some(Hit::Header) => Error::HeaderTooLarge {
                archive: self.archive,
                limit: MAX_HEADER_BYTES,
            },
            None => Error::Archive {
                archive: self.archive,
                source,
            },
        }
    }
}

/// A reader counted by a [`Meter`].
pub(crate) struct Metered<'m, R> {
    /// The decompressed stream.
    inner: R,
    /// The count and caps.
    meter: &'m Meter,
}

impl<'m, R: Read> Metered<'m, R> {
    /// Counts what is read from `inner` with `meter`.
    pub(crate) fn new(inner: R, meter: &'m Meter) -> Self {
        Metered { inner, meter }
    }
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let meter = self.meter;
        if let Some(hit) = meter.hit.get() {
            return Err(exceeded(hit));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let pos = meter.read.get();
        let (cap, hit) = if meter.total <= meter.step.get() {
            (meter.total, Hit::Total)
        } else {
            (meter.step.get(), Hit::Header)
        };
        let room = cap.saturating_sub(pos);
        // At the cap, read one byte to tell the end of the stream from more data.
        let want = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .clamp(1, buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if room == 0 && n > 0 {
            meter.hit.set(Some(hit));
            return Err(exceeded(hit));
        }
        meter.read.set(pos + n as u64);
        Ok(n)
    }
}

/// The I/O error returned once a cap is hit (replaced by [`Meter::error`]).
fn exceeded(hit: Hit) -> io::Error {
    io::Error::other(match hit {
        Hit::Total => "decompressed size limit exceeded",
        Hit::Header => "tar header size limit exceeded",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_total_and_no_further() {
        let meter = Meter::new("package", 10);
        let mut buf = Vec::new();
        Metered::new(&[7u8; 10][..], &meter)
            .read_to_end(&mut buf)
            .unwrap();
        assert_eq!(buf.len(), 10);

        let meter = Meter::new("package", 10);
        let err = Metered::new(&[7u8; 11][..], &meter)
            .read_to_end(&mut buf)
            .unwrap_err();
        let err = meter.error(err);
        assert!(
            matches!(err, Error::DecompressedTooLarge { limit: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn the_header_cap_moves() {
        let data = vec![0u8; 3 * MAX_HEADER_BYTES as usize];
        let meter = Meter::new("code archive", u64::MAX);
        let mut reader = Metered::new(&data[..], &meter);
        meter.before_header(MAX_HEADER_BYTES);
        let mut buf = vec![0u8; 2 * MAX_HEADER_BYTES as usize];
        reader.read_exact(&mut buf).unwrap();
        let err = reader.read_exact(&mut buf[..1]).unwrap_err();
        assert!(matches!(meter.error(err), Error::HeaderTooLarge { .. }));
    }
}
