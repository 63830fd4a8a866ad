use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Content-defined chunking parameters, in bytes of encoded records.
///
/// Records are grouped whole. After a record is added, the chunk is cut when it holds at least
/// `min` bytes and either the record's digest is an anchor or the chunk holds `max` bytes. A
/// record of `s` bytes is an anchor with probability about `s / (avg - min)` (its digest modulo
/// `avg - min` is below `s`), the per-byte rate of a Gear/FastCDC chunker, so chunks average
/// about `avg` bytes whatever the record sizes. Boundaries depend only on nearby records: an
/// insertion or edit moves at most the boundaries around it, and the chunks after the next
/// anchor are the same blocks as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    // DAG-CBOR canonical key order
    /// Average chunk size (bytes).
    pub avg: u64,
    /// Largest chunk (bytes), unless one record is larger.
    pub max: u64,
    /// Smallest chunk (bytes), unless it is the last one.
    pub min: u64,
}

impl Default for Chunking {
    fn default() -> Self {
        Self {
            avg: 4 << 10,
            max: 64 << 10,
            min: 512,
        }
    }
}

impl Chunking {
    /// Check `min < avg <= max`.
    pub fn validate(&self) -> Result<()> {
        if self.min < self.avg && self.avg <= self.max {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "chunking needs min < avg <= max, got {self:?}"
            )))
        }
    }

    /// Whether to cut after a record with `digest_prefix` and `size` bytes, the chunk then
    /// holding `filled` bytes.
    pub fn cut_after(&self, digest_prefix: u64, size: u64, filled: u64) -> bool {
        filled >= self.max || (filled >= self.min && digest_prefix % (self.avg - self.min) < size)
    }
}

/// Page-cutting rule for lists of chunk references, the same idea by count.
pub(crate) fn cut_page(digest_prefix: u64, entries: usize) -> bool {
    const MIN: usize = 4;
    const AVG: u64 = 16;
    const MAX: usize = 128;
    entries >= MAX || (entries >= MIN && digest_prefix.is_multiple_of(AVG))
}
