//! What the session machines exchange with the disk threads: `ReadIn`/`ReadOut` with the
//! sender's reader (`reader.rs`), `WriteIn`/`WriteOut` with the receiver's writer
//! (`writer.rs`). Frames travel as `Bytes`, so handing one on moves a pointer, not the data.

use std::path::PathBuf;

use bytes::Bytes;

use crate::error::FerryError;

/// A read the sender's session asks of the reader thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadIn {
    /// Read, hash (and maybe compress) `len` bytes of `file` at `offset` into a chunk frame.
    Chunk {
        file: u32,
        offset: u64,
        len: usize,
        generation: u32,
    },
    /// Finish `file`'s whole-file hash.
    End { file: u32, generation: u32 },
}

/// What the reader thread hands back, tagged with the generation it was read for.
#[derive(Debug)]
pub(crate) enum ReadOut {
    Frame {
        file: u32,
        generation: u32,
        frame: Bytes,
    },
    End {
        file: u32,
        generation: u32,
        hash: String,
    },
    Failed {
        file: u32,
        err: FerryError,
    },
}

/// What the receiver's session hands the writer thread, in the order it arrived.
#[derive(Debug)]
pub(crate) enum WriteIn {
    /// A whole chunk frame, as it came off the link (the writer decodes and verifies it).
    Chunk(Bytes),
    End {
        file: u32,
        hash: String,
    },
}

/// What the writer thread reports back.
#[derive(Debug)]
pub(crate) enum WriteOut {
    /// `bytes` more of `file` are written; acknowledge up to `offset` (`u64::MAX`: count the
    /// bytes, the file's confirmation follows).
    Written { file: u32, offset: u64, bytes: u64 },
    /// A chunk failed its check: ask for `file` again from `offset`.
    Rejected { file: u32, offset: u64 },
    /// `file` is verified, durable and in place at `dest`.
    FileDone {
        file: u32,
        hash: String,
        dest: PathBuf,
    },
    /// The transfer cannot go on (disk full, store failed, protocol broken).
    Fatal(FerryError),
}
