//! The receiver's per-file machine: in-order verified data, resend requests after a bad
//! chunk, and the whole-file check at the end.

use super::super::tree;
use super::{ProtoViolation, violation};

/// What the receiver does with one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkVerdict {
    /// Verified and next in line: write it.
    Write,
    /// Already have it (sent again after a rewind): drop.
    Duplicate,
    /// Bad hash: drop and ask for everything from `offset` again.
    Resend(u64),
    /// Sent before our resend request took effect: drop.
    Stale,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndVerdict {
    /// Whole-file hash matched: move it into place.
    Complete,
    /// A resend is outstanding; a fresh `FileEnd` will follow the resent data.
    Stale,
    /// Whole-file hash mismatch: start the file over from 0.
    Restart,
}

/// Receiver side, one file: in-order verified data, resend requests, final check.
#[derive(Debug, Clone)]
pub struct RecvFile {
    pub size: u64,
    /// Everything below is verified (and handed to the writer).
    pub expected: u64,
    resend_pending: bool,
    bad_chunks: u32,
    restarts: u32,
    pub done: bool,
}

/// After this many rejected chunks (or two whole-file mismatches) in one file, give up:
/// something between the peers corrupts data systematically.
pub const MAX_BAD_CHUNKS: u32 = 16;

/// Most rewinds a sender grants per file and attempt: an honest receiver asks at most once per
/// rejected chunk and once for a whole-file mismatch. A receiver asking for more would keep
/// the sender sending the same bytes forever.
pub const MAX_RESENDS: u32 = MAX_BAD_CHUNKS + 1;

impl RecvFile {
    pub fn new(size: u64, start: u64) -> Self {
        Self {
            size,
            expected: start,
            resend_pending: false,
            bad_chunks: 0,
            restarts: 0,
            done: false,
        }
    }

    pub fn on_chunk(
        &mut self,
        offset: u64,
        len: u64,
        hash_ok: bool,
    ) -> Result<ChunkVerdict, ProtoViolation> {
        if self.done || offset < self.expected {
            return Ok(ChunkVerdict::Duplicate);
        }
        if offset.checked_add(len).is_none_or(|end| end > self.size) || len == 0 {
            return violation(format!(
                "chunk at {offset}+{len} outside a {}-byte file",
                self.size
            ));
        }
        if !tree::valid_piece(offset, len, self.size) {
            return violation(format!(
                "chunk at {offset}+{len} is not a BLAKE3 subtree of a {}-byte file",
                self.size
            ));
        }
        if offset > self.expected {
            if self.resend_pending {
                return Ok(ChunkVerdict::Stale);
            }
            return violation(format!("chunk at {offset}, expected {}", self.expected));
        }
        if !hash_ok {
            return self.reject();
        }
        self.resend_pending = false;
        self.expected += len;
        Ok(ChunkVerdict::Write)
    }

    /// A chunk at `offset` arrived too damaged to tell its length (it did not decompress).
    pub fn on_corrupt(&mut self, offset: u64) -> Result<ChunkVerdict, ProtoViolation> {
        if self.done || offset < self.expected {
            return Ok(ChunkVerdict::Duplicate);
        }
        if offset > self.expected {
            if self.resend_pending {
                return Ok(ChunkVerdict::Stale);
            }
            return violation(format!("chunk at {offset}, expected {}", self.expected));
        }
        self.reject()
    }

    fn reject(&mut self) -> Result<ChunkVerdict, ProtoViolation> {
        self.bad_chunks += 1;
        if self.bad_chunks > MAX_BAD_CHUNKS {
            return violation("too many corrupt chunks");
        }
        self.resend_pending = true;
        Ok(ChunkVerdict::Resend(self.expected))
    }

    pub fn on_end(&mut self, hash_ok: bool) -> Result<EndVerdict, ProtoViolation> {
        if self.done || self.resend_pending {
            return Ok(EndVerdict::Stale);
        }
        if self.expected != self.size {
            return violation(format!("file end at {} of {}", self.expected, self.size));
        }
        if hash_ok {
            self.done = true;
            return Ok(EndVerdict::Complete);
        }
        self.restarts += 1;
        if self.restarts > 1 {
            return violation("whole-file hash mismatch twice");
        }
        self.expected = 0;
        self.resend_pending = true;
        Ok(EndVerdict::Restart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes in the tests are in KiB: chunk boundaries must sit on BLAKE3's 1 KiB chunks.
    const K: u64 = 1024;

    #[test]
    fn receiver_verifies_and_requests_resend() {
        let mut r = RecvFile::new(3 * K, 0);
        assert_eq!(r.on_chunk(0, K, true).unwrap(), ChunkVerdict::Write);
        assert_eq!(r.on_chunk(K, K, false).unwrap(), ChunkVerdict::Resend(K));
        // The rest of the window, sent before the sender saw our request.
        assert_eq!(r.on_chunk(2 * K, K, true).unwrap(), ChunkVerdict::Stale);
        assert_eq!(r.on_end(true).unwrap(), EndVerdict::Stale);
        assert_eq!(r.on_chunk(K, K, true).unwrap(), ChunkVerdict::Write);
        assert_eq!(r.on_chunk(0, K, true).unwrap(), ChunkVerdict::Duplicate);
        assert_eq!(r.on_chunk(2 * K, K, true).unwrap(), ChunkVerdict::Write);
        assert_eq!(r.on_end(true).unwrap(), EndVerdict::Complete);
        assert!(r.done);
    }

    #[test]
    fn receiver_asks_again_for_undecodable_chunks() {
        let mut r = RecvFile::new(4 * K, 0);
        assert_eq!(r.on_chunk(0, K, true).unwrap(), ChunkVerdict::Write);
        assert_eq!(r.on_corrupt(K).unwrap(), ChunkVerdict::Resend(K));
        assert_eq!(r.on_corrupt(2 * K).unwrap(), ChunkVerdict::Stale);
        assert_eq!(r.on_corrupt(0).unwrap(), ChunkVerdict::Duplicate);
        assert!(RecvFile::new(4 * K, 0).on_corrupt(K).is_err(), "gap");
        for _ in 1..MAX_BAD_CHUNKS {
            assert_eq!(r.on_corrupt(K).unwrap(), ChunkVerdict::Resend(K));
        }
        assert!(r.on_corrupt(K).is_err(), "too many");
    }

    #[test]
    fn receiver_protocol_errors() {
        let mut r = RecvFile::new(4 * K, 0);
        assert!(r.on_chunk(2 * K, K, true).is_err(), "gap without resend");
        let mut r = RecvFile::new(4 * K, 0);
        assert!(r.on_chunk(0, 4 * K + 1, true).is_err(), "past the end");
        assert!(r.on_chunk(0, 0, true).is_err(), "empty chunk");
        assert!(r.on_chunk(0, 3 * K, true).is_err(), "not a subtree");
        assert!(r.on_end(true).is_err(), "end before data");
        let mut r = RecvFile::new(10, 0);
        for _ in 0..MAX_BAD_CHUNKS {
            assert_eq!(r.on_chunk(0, 10, false).unwrap(), ChunkVerdict::Resend(0));
        }
        assert!(r.on_chunk(0, 10, false).is_err());
    }

    #[test]
    fn receiver_restarts_once_on_whole_file_mismatch() {
        let mut r = RecvFile::new(10, 0);
        r.on_chunk(0, 10, true).unwrap();
        assert_eq!(r.on_end(false).unwrap(), EndVerdict::Restart);
        assert_eq!(r.expected, 0);
        assert_eq!(r.on_chunk(0, 10, true).unwrap(), ChunkVerdict::Write);
        assert!(r.on_end(false).is_err());
        let mut r = RecvFile::new(0, 0);
        assert_eq!(r.on_end(true).unwrap(), EndVerdict::Complete);
    }
}
