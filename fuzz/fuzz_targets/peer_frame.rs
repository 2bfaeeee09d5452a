//! Peer-frame decoder: every data-channel message a (possibly hostile) peer can send.
//! Invariants: `decode` and the control-part reassembler never panic; a chunk frame
//! re-encodes to exactly its input bytes; a control message re-encodes to a canonical frame
//! that decodes to the same message, and splitting that frame into parts of any size
//! reassembles to the same message.
#![no_main]

use ferry_proto::peer::{
    CHUNK_HEADER_LEN, ControlReassembler, Frame, FrameError, MAX_CONTROL_LEN, MAX_FRAME_LEN,
    decode, encode_chunk,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(Frame::Chunk(c)) => {
            assert_eq!(data.len(), CHUNK_HEADER_LEN + c.data.len());
            assert_eq!(
                encode_chunk(c.file, c.offset, c.flags, &c.hash, c.data),
                data,
                "chunk encoding is not canonical"
            );
        }
        Ok(Frame::Control(m)) => {
            let canonical = m.encode();
            // Defaults written out can make the canonical frame a little longer than the
            // input; past the frame limit a sender splits it (checked below), never sends it whole.
            if canonical.len() <= MAX_FRAME_LEN {
                assert_eq!(decode(&canonical), Ok(Frame::Control(m.clone())));
                // Re-encoding is a fixed point: the canonical frame encodes to itself.
                if let Ok(Frame::Control(m2)) = decode(&canonical) {
                    assert_eq!(m2.encode(), canonical);
                }
            }
            // Part sizes from tiny to one-frame, chosen by the input so the fuzzer explores them.
            let max = 3 + usize::from(data.get(2).copied().unwrap_or(0)) * 7;
            let frames = m.encode_frames(max);
            let mut r = ControlReassembler::new();
            let mut out = Vec::new();
            for f in &frames {
                if let Some(fr) = r.push(f).expect("own parts reassemble") {
                    out.push(fr);
                }
            }
            assert_eq!(out, vec![Frame::Control(m)]);
        }
        Err(e) => {
            if let FrameError::BadControl(msg) = &e {
                // Surfaced to the user and logs; must stay small whatever the peer sent.
                assert!(msg.len() < 128, "error too long: {msg:?}");
            }
        }
    }

    // The same bytes as a stream of frames into the reassembler: split at every 0xFF byte so
    // the fuzzer can build multi-part messages out of one input.
    let mut r = ControlReassembler::new();
    for f in data.split(|&b| b == 0xff) {
        match r.push(f) {
            Ok(Some(Frame::Chunk(c))) => assert!(c.data.len() + CHUNK_HEADER_LEN == f.len()),
            Ok(_) => {}
            Err(FrameError::ControlTooLarge) => assert!(data.len() > MAX_CONTROL_LEN),
            Err(_) => {}
        }
    }
});
