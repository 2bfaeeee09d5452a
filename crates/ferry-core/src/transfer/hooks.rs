//! Test hooks for fault tests (the `test-hooks` feature; release builds do not carry them):
//! damage a chunk in transit, or slow the sender so a test can hit a transfer mid-way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ferry_proto::peer;

/// Faults the sender injects into its own sending. Clones share the chunk count, so a
/// transfer's attempts (reconnects) count chunks together.
#[derive(Debug, Clone, Default)]
pub struct TestHooks {
    /// Flip a byte in the Nth chunk sent (1-based, counted across attempts), after hashing.
    pub corrupt_chunk: Option<u64>,
    /// Cap the send rate (bytes per second).
    pub rate_limit_bps: Option<u64>,
    chunks_sent: Arc<AtomicU64>,
}

impl TestHooks {
    /// `frame` (a chunk about to go out), damaged if it is the one `corrupt_chunk` names.
    pub(crate) fn corrupt(&self, frame: Bytes) -> Bytes {
        let n = self.chunks_sent.fetch_add(1, Ordering::Relaxed) + 1;
        if self.corrupt_chunk != Some(n) || frame.len() <= peer::CHUNK_HEADER_LEN {
            return frame;
        }
        tracing::warn!(chunk = n, "test hook: corrupting a chunk");
        let mut v = frame.to_vec();
        if let Some(last) = v.last_mut() {
            *last ^= 0xff;
        }
        Bytes::from(v)
    }
}
