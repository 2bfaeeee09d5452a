//! Ferry patch: the PAD chunk (RFC 4820), which path MTU probes (RFC 8899 §6.2.1) use to reach
//! a chosen packet size without making the peer echo the padding back.

use super::{chunk_header::*, chunk_type::*, *};

use bytes::{Bytes, BytesMut};
use std::fmt;

/// PAD: `padding_len` bytes the receiver ignores.
///
/// Its type (0x84) has the high bits `10`: an endpoint that does not know it skips it and
/// processes the rest of the packet (RFC 9260 §3.2), so a probe never breaks an older peer.
#[derive(Default, Debug, Clone)]
pub(crate) struct ChunkPad {
    pub(crate) padding_len: usize,
}

impl fmt::Display for ChunkPad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.header())
    }
}

impl Chunk for ChunkPad {
    fn header(&self) -> ChunkHeader {
        ChunkHeader {
            typ: CT_PAD,
            flags: 0,
            value_length: self.padding_len as u16,
        }
    }

    fn unmarshal(raw: &Bytes) -> Result<Self> {
        let header = ChunkHeader::unmarshal(raw)?;
        if header.typ != CT_PAD {
            return Err(Error::ErrUnmarshalUnknownChunkType);
        }
        Ok(ChunkPad {
            padding_len: header.value_length(),
        })
    }

    fn marshal_to(&self, buf: &mut BytesMut) -> Result<usize> {
        if self.padding_len > usize::from(u16::MAX) - CHUNK_HEADER_SIZE {
            return Err(Error::ErrChunkValueNotLongEnough);
        }
        self.header().marshal_to(buf)?;
        buf.put_bytes(0, self.padding_len);
        Ok(buf.len())
    }

    fn check(&self) -> Result<()> {
        Ok(())
    }

    fn value_length(&self) -> usize {
        self.padding_len
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::chunk_cookie_ack::ChunkCookieAck;
    use crate::packet::{CommonHeader, Packet};

    fn packet(chunks: Vec<Box<dyn Chunk>>) -> Bytes {
        Packet {
            common_header: CommonHeader {
                source_port: 5000,
                destination_port: 5000,
                verification_tag: 7,
            },
            chunks,
        }
        .marshal()
        .unwrap()
    }

    #[test]
    fn a_padded_packet_has_exactly_the_asked_size_and_parses() {
        let raw = packet(vec![
            Box::new(ChunkCookieAck {}),
            Box::new(ChunkPad { padding_len: 1000 }),
        ]);
        assert_eq!(raw.len(), 12 + 4 + 4 + 1000);
        let p = Packet::unmarshal(&raw).unwrap();
        assert_eq!(p.chunks.len(), 2);
    }

    /// Rewrites the type of the first chunk and the checksum that covers it.
    fn with_first_chunk_type(raw: &Bytes, typ: u8) -> Bytes {
        let mut r = raw.to_vec();
        r[12] = typ;
        let sum = crate::util::generate_packet_checksum(&Bytes::from(r.clone()));
        r[8..12].copy_from_slice(&sum.to_le_bytes());
        Bytes::from(r)
    }

    #[test]
    fn unknown_chunks_are_skipped_or_refused_by_their_high_bit() {
        // Stand-ins for chunk types this stack does not know: one with the high bit set
        // (0x85: skip it and go on), one without (0x45: stop).
        let raw = packet(vec![
            Box::new(ChunkPad { padding_len: 6 }),
            Box::new(ChunkCookieAck {}),
        ]);
        let p = Packet::unmarshal(&with_first_chunk_type(&raw, 0x85)).unwrap();
        assert_eq!(
            p.chunks.len(),
            1,
            "the unknown chunk is skipped, the COOKIE-ACK kept"
        );
        assert!(
            p.chunks[0]
                .as_any()
                .downcast_ref::<ChunkCookieAck>()
                .is_some()
        );
        assert!(Packet::unmarshal(&with_first_chunk_type(&raw, 0x45)).is_err());
    }
}
