//! Peer protocol: binary frames on the WebRTC data channel.
//!
//! Every frame starts with a 2-byte header `[kind, flags]`:
//! - `kind = 1` (control): the rest is a JSON [`Control`] message. Control traffic is
//!   tiny next to the data, and JSON keeps it readable in traces and easy for a browser peer.
//! - `kind = 2` (chunk): `file: u32 BE | offset: u64 BE | blake3(data): [u8; 32] | data`.
//!   The hash is over the uncompressed bytes; the receiver checks it before writing.
//!   `flags & FLAG_COMPRESSED` marks `data` as compressed (see [`Control::Hello::caps`]).

use serde::{Deserialize, Serialize};

pub const KIND_CONTROL: u8 = 1;
pub const KIND_CHUNK: u8 = 2;
/// Chunk flag: payload is compressed (codec negotiated in `hello`).
pub const FLAG_COMPRESSED: u8 = 0b0000_0001;
/// Bytes of a chunk frame before its data.
pub const CHUNK_HEADER_LEN: usize = 2 + 4 + 8 + 32;
/// Smallest and largest chunk payloads the engine will use.
pub const MIN_CHUNK: usize = 16 * 1024;
pub const MAX_CHUNK: usize = 256 * 1024;

/// One file (or empty directory) offered by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path with `/` separators, as the sender names it. Untrusted on the receiver:
    /// it must be sanitised before touching the disk.
    pub path: String,
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
}

/// Control messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Control {
    /// First message from each side: protocol version, capabilities, and the MAC binding
    /// both DTLS fingerprints and roles to the room key (hex).
    Hello {
        version: u16,
        #[serde(default)]
        caps: Vec<String>,
        max_message_size: u32,
        mac: String,
    },
    /// Sender → receiver: what is offered.
    Manifest {
        /// Stable id of this transfer (hash of manifest + room), the key of the resume store.
        transfer_id: String,
        files: Vec<FileEntry>,
    },
    /// Receiver → sender: accepted files with resume offsets. Files not listed are skipped.
    Accept {
        files: Vec<FileAccept>,
    },
    /// Receiver → sender: no thanks.
    Decline {
        #[serde(default)]
        reason: String,
    },
    /// Receiver → sender: everything of `file` below `offset` is written and verified.
    Ack {
        file: u32,
        offset: u64,
    },
    /// Receiver → sender: a chunk failed verification; send again from `offset`.
    Resend {
        file: u32,
        offset: u64,
    },
    /// Sender → receiver: all of `file` has been sent; its BLAKE3 (hex).
    FileEnd {
        file: u32,
        hash: String,
    },
    /// Receiver → sender: `file` is complete and its hash matched.
    FileDone {
        file: u32,
    },
    Pause,
    Resume,
    Cancel {
        #[serde(default)]
        reason: String,
    },
    Error {
        code: PeerErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<u32>,
    },
    /// Sender → receiver: nothing more to send.
    Done,
}

/// A decoded frame, borrowing chunk data from the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Control(Control),
    Chunk(Chunk<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub file: u32,
    pub offset: u64,
    pub flags: u8,
    pub hash: [u8; 32],
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("chunk frame too short ({0} bytes)")]
    ShortChunk(usize),
    #[error("bad control message: {0}")]
    BadControl(String),
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![KIND_CONTROL, 0];
        // Plain data types: serialisation cannot fail.
        out.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        out
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

pub fn encode_chunk(file: u32, offset: u64, flags: u8, hash: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_chunk_into(&mut out, file, offset, flags, hash, data);
    out
}

/// Decode one frame. Never panics on any input.
pub fn decode(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (&kind, _) = buf.split_first().ok_or(FrameError::Empty)?;
    match kind {
        KIND_CONTROL => {
            let body = buf
                .get(2..)
                .ok_or(FrameError::BadControl("truncated header".into()))?;
            serde_json::from_slice(body)
                .map(Frame::Control)
                .map_err(|e| {
                    FrameError::BadControl(format!("{:?} at column {}", e.classify(), e.column()))
                })
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chunk_layout_is_fixed() {
        let f = encode_chunk(3, 0x0102, FLAG_COMPRESSED, &[9u8; 32], b"abc");
        assert_eq!(f.len(), CHUNK_HEADER_LEN + 3);
        assert_eq!(&f[..2], &[KIND_CHUNK, FLAG_COMPRESSED]);
        assert_eq!(&f[2..6], &[0, 0, 0, 3]);
        assert_eq!(&f[6..14], &[0, 0, 0, 0, 0, 0, 1, 2]);
        match decode(&f).unwrap() {
            Frame::Chunk(c) => {
                assert_eq!(
                    (c.file, c.offset, c.flags, c.data),
                    (3, 0x0102, 1, &b"abc"[..])
                );
                assert_eq!(c.hash, [9u8; 32]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn control_roundtrip_and_shape() {
        let m = Control::Ack {
            file: 1,
            offset: 42,
        };
        let f = m.encode();
        assert_eq!(&f[2..], br#"{"type":"ack","file":1,"offset":42}"#);
        assert_eq!(decode(&f).unwrap(), Frame::Control(m));
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(decode(&[]), Err(FrameError::Empty));
        assert_eq!(decode(&[9, 0]), Err(FrameError::UnknownKind(9)));
        assert_eq!(decode(&[KIND_CHUNK, 0, 1]), Err(FrameError::ShortChunk(3)));
        assert!(matches!(
            decode(&[KIND_CONTROL]),
            Err(FrameError::BadControl(_))
        ));
        assert!(matches!(
            decode(b"\x01\x00{\"type\":\"bogus\"}"),
            Err(FrameError::BadControl(_))
        ));
    }

    fn arb_control() -> impl Strategy<Value = Control> {
        let entry = (".*", any::<u64>(), any::<i64>(), any::<bool>()).prop_map(
            |(path, size, mtime_ms, dir)| FileEntry {
                path,
                size,
                mtime_ms,
                dir,
            },
        );
        prop_oneof![
            (
                any::<u16>(),
                proptest::collection::vec("[a-z0-9]{1,8}", 0..4),
                any::<u32>(),
                "[0-9a-f]{0,64}"
            )
                .prop_map(|(version, caps, max_message_size, mac)| Control::Hello {
                    version,
                    caps,
                    max_message_size,
                    mac
                }),
            ("[0-9a-f]{0,64}", proptest::collection::vec(entry, 0..5))
                .prop_map(|(transfer_id, files)| Control::Manifest { transfer_id, files }),
            proptest::collection::vec(
                (any::<u32>(), any::<u64>()).prop_map(|(file, offset)| FileAccept { file, offset }),
                0..5
            )
            .prop_map(|files| Control::Accept { files }),
            (any::<u32>(), any::<u64>()).prop_map(|(file, offset)| Control::Ack { file, offset }),
            (any::<u32>(), any::<u64>())
                .prop_map(|(file, offset)| Control::Resend { file, offset }),
            (any::<u32>(), "[0-9a-f]{64}").prop_map(|(file, hash)| Control::FileEnd { file, hash }),
            any::<u32>().prop_map(|file| Control::FileDone { file }),
            Just(Control::Pause),
            Just(Control::Resume),
            Just(Control::Done),
            ".*".prop_map(|reason| Control::Cancel { reason }),
            ".*".prop_map(|reason| Control::Decline { reason }),
            (".*", any::<Option<u32>>()).prop_map(|(message, file)| Control::Error {
                code: PeerErrorCode::DiskFull,
                message,
                file
            }),
        ]
    }

    proptest! {
        #[test]
        fn control_roundtrip(m in arb_control()) {
            let f = m.encode();
            prop_assert_eq!(decode(&f).unwrap(), Frame::Control(m));
        }

        #[test]
        fn chunk_roundtrip(file in any::<u32>(), offset in any::<u64>(), flags in any::<u8>(),
                           hash in any::<[u8; 32]>(), data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let f = encode_chunk(file, offset, flags, &hash, &data);
            let expected = Frame::Chunk(Chunk { file, offset, flags, hash, data: &data });
            prop_assert_eq!(decode(&f).unwrap(), expected);
        }

        #[test]
        fn decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&buf);
        }
    }
}
