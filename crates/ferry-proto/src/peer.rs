//! Peer protocol: binary frames on the WebRTC data channel.
//!
//! Every frame starts with a 2-byte header `[kind, flags]`:
//! - `kind = 1` (control): the rest is a JSON [`Control`] message. Control traffic is
//!   tiny next to the data, and JSON keeps it readable in traces and easy for a browser peer.
//! - `kind = 2` (chunk): `file: u32 BE | offset: u64 BE | cv: [u8; 32] | data`.
//!   `cv` is the BLAKE3 chaining value of `data` as the subtree of the file's hash tree that
//!   starts at `offset` (so every chunk but a file's last is a power of two ≥ 1 KiB starting
//!   at a multiple of its length). It is over the uncompressed bytes; the receiver checks it
//!   before writing and builds the whole-file BLAKE3 from these values (peer version 2).
//!   `flags & FLAG_COMPRESSED` marks `data` as compressed (see [`Control::Hello::caps`]).
//! - `kind = 3` (control part): a slice of one control message's JSON that did not fit in
//!   one data-channel message (a manifest of thousands of files is megabytes, the link's
//!   message limit is 16..256 KiB). `flags & FLAG_LAST` marks the final slice. Parts of one
//!   message are sent back to back; [`ControlReassembler`] joins them.

use serde::{Deserialize, Serialize};

/// Frame kind: a whole control message (JSON).
pub const KIND_CONTROL: u8 = 1;
/// Frame kind: a chunk of file data.
pub const KIND_CHUNK: u8 = 2;
/// Frame kind: one slice of a control message too large for one frame.
pub const KIND_CONTROL_PART: u8 = 3;
/// Control-part flag: this is the last slice of the message.
pub const FLAG_LAST: u8 = 0b0000_0001;
/// Largest control message the reassembler accepts, so a hostile peer cannot make the other
/// side buffer without bound (about 300k manifest entries of 200-byte JSON).
pub const MAX_CONTROL_LEN: usize = 64 * 1024 * 1024;
/// Most entries a `manifest` or `accept` may list. Counted before any entry is built, so a
/// message of a million tiny entries costs its bytes, not a million allocations.
pub const MAX_FILES: usize = 1_000_000;
/// Chunk flag: payload is compressed (codec negotiated in `hello`).
pub const FLAG_COMPRESSED: u8 = 0b0000_0001;
/// `hello` capability: chunks may carry `FLAG_COMPRESSED` with an LZ4 block, prefixed by the
/// uncompressed length (u32 LE), which is at most [`MAX_CHUNK`].
pub const CAP_LZ4: &str = "lz4";
/// `hello` capability: this side understands [`Control::Text`]. A sender offers a snippet
/// only to a receiver that announced it, so an older receiver is never sent a message it
/// would read as a broken protocol; the sender says why instead.
pub const CAP_TEXT: &str = "text";
/// Bytes of a chunk frame before its data.
pub const CHUNK_HEADER_LEN: usize = 2 + 4 + 8 + 32;
/// Smallest and largest chunk payloads the engine will use.
pub const MIN_CHUNK: usize = 16 * 1024;
/// See [`MIN_CHUNK`].
pub const MAX_CHUNK: usize = 256 * 1024;
/// Largest frame a peer may send: a chunk header and the largest chunk. The link's message
/// limit (16..256 KiB) is below it; a peer whose own stack ignores that limit still cannot
/// make a single frame cost more.
pub const MAX_FRAME_LEN: usize = CHUNK_HEADER_LEN + MAX_CHUNK;

/// One file (or empty directory) offered by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path with `/` separators, as the sender names it. Untrusted on the receiver:
    /// it must be sanitised before touching the disk.
    pub path: String,
    /// Bytes (0 for a directory).
    pub size: u64,
    /// Modification time, milliseconds since the Unix epoch (part of the resume identity).
    #[serde(default)]
    pub mtime_ms: i64,
    /// An empty directory to recreate (size is 0, no data follows).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
}

/// What the receiver wants of one offered file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAccept {
    /// Index of the file in the manifest.
    pub file: u32,
    /// Bytes the receiver already holds, verified; the sender starts there.
    pub offset: u64,
}

/// Error codes a peer can send (and the engine surfaces to the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerErrorCode {
    /// The receiver ran out of disk space.
    DiskFull,
    /// A path could not be read or written.
    PermissionDenied,
    /// The source changed (size or mtime) since the transfer began; resume refused.
    SourceChanged,
    /// The user cancelled.
    Cancelled,
    /// The receiver declined the offer.
    Declined,
    /// A frame did not follow the protocol.
    Protocol,
    /// Final hash mismatch after re-fetching.
    Integrity,
    /// Any other I/O failure.
    Io,
    /// Version mismatch.
    Unsupported,
    /// Something offered is larger than this side accepts (a text snippet over its limit).
    TooLarge,
}

/// Control messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Control {
    /// First message from each side: protocol version, capabilities, and the MAC binding
    /// both DTLS fingerprints and roles to the room key (hex).
    Hello {
        /// Peer protocol version.
        version: u16,
        /// Optional features this side supports (e.g. [`CAP_LZ4`]).
        #[serde(default)]
        caps: Vec<String>,
        /// Largest message this side accepts on the data channel.
        max_message_size: u32,
        /// The fingerprint MAC, hex.
        mac: String,
    },
    /// Sender → receiver: what is offered.
    Manifest {
        /// Stable id of this transfer (hash of manifest + room), the key of the resume store.
        transfer_id: String,
        /// The files and empty directories, in order; indices name them from here on.
        files: Vec<FileEntry>,
    },
    /// Sender → receiver, instead of a `manifest` (only to a peer that announced
    /// [`CAP_TEXT`]): a text snippet, shown by the receiver and never written as a file. The
    /// receiver answers `done` once it has it, or `error` (`too-large` past its limit).
    Text {
        /// Stable id of this transfer, as in `manifest`.
        transfer_id: String,
        /// The snippet, exactly as given (any newlines and characters kept).
        text: String,
    },
    /// Receiver → sender: accepted files with resume offsets. Files not listed are skipped.
    Accept {
        /// The accepted files and where each starts.
        files: Vec<FileAccept>,
    },
    /// Receiver → sender: no thanks.
    Decline {
        /// Why, for a person (may be empty).
        #[serde(default)]
        reason: String,
    },
    /// Receiver → sender: everything of `file` below `offset` is written and verified.
    Ack {
        /// Index of the file in the manifest.
        file: u32,
        /// Bytes from the start that are written and verified.
        offset: u64,
    },
    /// Receiver → sender: a chunk failed verification; send again from `offset`.
    Resend {
        /// Index of the file in the manifest.
        file: u32,
        /// Where to send from again.
        offset: u64,
    },
    /// Sender → receiver: all of `file` has been sent; its BLAKE3 (hex).
    FileEnd {
        /// Index of the file in the manifest.
        file: u32,
        /// BLAKE3 of the whole file, hex.
        hash: String,
    },
    /// Receiver → sender: `file` is complete and its hash matched.
    FileDone {
        /// Index of the file in the manifest.
        file: u32,
    },
    /// Either side: stop sending data until `resume`.
    Pause,
    /// Either side: go on after a `pause`.
    Resume,
    /// Either side: the transfer ends here.
    Cancel {
        /// Why, for a person (may be empty).
        #[serde(default)]
        reason: String,
    },
    /// Either side: something failed, for one file (`file`) or the whole transfer.
    Error {
        /// What kind of failure.
        code: PeerErrorCode,
        /// What happened, for a person.
        message: String,
        /// The file it concerns, if only one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<u32>,
    },
    /// Sender → receiver: nothing more to send. Receiver → sender, in reply: every file is
    /// confirmed and the receiver is hanging up (a sender may stop waiting for the close).
    Done,
}

/// A decoded frame, borrowing chunk data from the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A control message (whole, or reassembled from parts).
    Control(Control),
    /// File data.
    Chunk(Chunk<'a>),
}

/// A chunk of file data as it crossed the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Index of the file in the manifest.
    pub file: u32,
    /// Where in the file `data` starts.
    pub offset: u64,
    /// [`FLAG_COMPRESSED`] or 0.
    pub flags: u8,
    /// BLAKE3 chaining value of `data` at `offset` (see the module docs).
    pub hash: [u8; 32],
    /// The bytes (compressed if `flags` says so).
    pub data: &'a [u8],
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No bytes at all.
    #[error("empty frame")]
    Empty,
    /// A kind byte this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A chunk frame shorter than its header.
    #[error("chunk frame too short ({0} bytes)")]
    ShortChunk(usize),
    /// A control message that is not one.
    #[error("bad control message: {0}")]
    BadControl(String),
    /// Control parts adding up past [`MAX_CONTROL_LEN`].
    #[error("control message exceeds {MAX_CONTROL_LEN} bytes")]
    ControlTooLarge,
    /// A frame past [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    FrameTooLarge(usize),
    /// A file list past [`MAX_FILES`].
    #[error("control message lists more than {MAX_FILES} entries")]
    TooManyEntries,
}

/// What the entry counter's error starts with, to tell it from a malformed message.
const TOO_MANY: &str = "ferry: too many entries";

/// Refuse a `files` list longer than [`MAX_FILES`] without building its entries: a pass that
/// only counts the array's elements (nothing is allocated per element) before the real parse.
fn check_entry_count(body: &[u8]) -> Result<(), FrameError> {
    use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
    // An element and its comma take at least 2 bytes: a shorter body cannot hold too many.
    if body.len() <= 2 * MAX_FILES {
        return Ok(());
    }
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut n = 0usize;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                n += 1;
                if n > MAX_FILES {
                    return Err(de::Error::custom(TOO_MANY));
                }
            }
            Ok(())
        }
    }
    fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        d.deserialize_seq(Count)
    }
    #[derive(Deserialize)]
    struct Shape {
        #[serde(default, deserialize_with = "count")]
        #[allow(dead_code)]
        files: (),
    }
    match serde_json::from_slice::<Shape>(body) {
        Err(e) if e.to_string().starts_with(TOO_MANY) => Err(FrameError::TooManyEntries),
        // Anything else wrong with the message is the real parse's to report.
        _ => Ok(()),
    }
}

/// Parse a whole control message's JSON.
fn parse_control(body: &[u8]) -> Result<Control, FrameError> {
    check_entry_count(body)?;
    serde_json::from_slice(body)
        .map_err(|e| FrameError::BadControl(format!("{:?} at column {}", e.classify(), e.column())))
}

impl Control {
    /// Encode as one control frame (whatever its size; see `encode_frames`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![KIND_CONTROL, 0];
        // Plain data types: serialisation cannot fail.
        out.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// Encode as frames of at most `max_frame` bytes: one control frame when it fits, else
    /// control parts. Peers that predate parts only ever see the single-frame form for
    /// messages that fit, which is every message they could have exchanged before.
    pub fn encode_frames(&self, max_frame: usize) -> Vec<Vec<u8>> {
        let whole = self.encode();
        let max_frame = max_frame.min(MAX_FRAME_LEN);
        if whole.len() <= max_frame {
            return vec![whole];
        }
        // At least one JSON byte per frame, whatever the caller passes.
        let body = &whole[2..];
        let per = max_frame.saturating_sub(2).max(1);
        let n = body.len().div_ceil(per);
        body.chunks(per)
            .enumerate()
            .map(|(i, piece)| {
                let flags = if i + 1 == n { FLAG_LAST } else { 0 };
                let mut f = Vec::with_capacity(2 + piece.len());
                f.push(KIND_CONTROL_PART);
                f.push(flags);
                f.extend_from_slice(piece);
                f
            })
            .collect()
    }
}

/// Joins control parts back into a [`Control`]; every other frame passes through as
/// [`decode`] gives it. One per receiving side of a link.
#[derive(Debug, Default)]
pub struct ControlReassembler {
    buf: Vec<u8>,
}

impl ControlReassembler {
    /// Nothing buffered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one received frame. `Ok(None)` means a part was taken and more are expected.
    pub fn push<'a>(&mut self, frame: &'a [u8]) -> Result<Option<Frame<'a>>, FrameError> {
        if frame.first() != Some(&KIND_CONTROL_PART) {
            return decode(frame).map(Some);
        }
        if frame.len() > MAX_FRAME_LEN {
            self.buf = Vec::new();
            return Err(FrameError::FrameTooLarge(frame.len()));
        }
        let flags = *frame
            .get(1)
            .ok_or(FrameError::BadControl("truncated part header".into()))?;
        let piece = &frame[2..];
        if self.buf.len() + piece.len() > MAX_CONTROL_LEN {
            self.buf = Vec::new();
            return Err(FrameError::ControlTooLarge);
        }
        self.buf.extend_from_slice(piece);
        if flags & FLAG_LAST == 0 {
            return Ok(None);
        }
        let body = std::mem::take(&mut self.buf);
        parse_control(&body).map(|c| Some(Frame::Control(c)))
    }
}

/// Write a chunk frame header followed by `data` into `out` (cleared first).
pub fn encode_chunk_into(
    out: &mut Vec<u8>,
    file: u32,
    offset: u64,
    flags: u8,
    hash: &[u8; 32],
    data: &[u8],
) {
    out.clear();
    out.reserve(CHUNK_HEADER_LEN + data.len());
    out.push(KIND_CHUNK);
    out.push(flags);
    out.extend_from_slice(&file.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(data);
}

/// A chunk frame.
pub fn encode_chunk(file: u32, offset: u64, flags: u8, hash: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_chunk_into(&mut out, file, offset, flags, hash, data);
    out
}

/// Decode one frame. Never panics on any input; refuses frames over [`MAX_FRAME_LEN`].
pub fn decode(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (&kind, _) = buf.split_first().ok_or(FrameError::Empty)?;
    if buf.len() > MAX_FRAME_LEN {
        return Err(FrameError::FrameTooLarge(buf.len()));
    }
    match kind {
        KIND_CONTROL => {
            let body = buf
                .get(2..)
                .ok_or(FrameError::BadControl("truncated header".into()))?;
            parse_control(body).map(Frame::Control)
        }
        KIND_CHUNK => {
            if buf.len() < CHUNK_HEADER_LEN {
                return Err(FrameError::ShortChunk(buf.len()));
            }
            let flags = buf[1];
            let file = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]);
            let mut off = [0u8; 8];
            off.copy_from_slice(&buf[6..14]);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&buf[14..46]);
            Ok(Frame::Chunk(Chunk {
                file,
                offset: u64::from_be_bytes(off),
                flags,
                hash,
                data: &buf[CHUNK_HEADER_LEN..],
            }))
        }
        other => Err(FrameError::UnknownKind(other)),
    }
}

#[cfg(test)]
mod tests;
