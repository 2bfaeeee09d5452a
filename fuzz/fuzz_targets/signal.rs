//! Signaling decoders: what the server parses from any client (`ClientMsg::parse`, the REST
//! bodies, room ids) and what a client parses from the server (`ServerMsg::parse`).
//! Invariants: no panic; whatever parses re-encodes to JSON that parses back to the same
//! value; a parse error is a short ASCII message (the server echoes it, so it must never
//! carry the client's bytes back).
#![no_main]

use ferry_proto::RoomId;
use ferry_proto::signal::{ClientMsg, CreateRoomRequest, JoinRoomRequest, ServerMsg};
use libfuzzer_sys::fuzz_target;

/// Longest echoed parse error; the fixed text plus two numbers fits with room to spare.
const MAX_ERROR_LEN: usize = 128;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match ClientMsg::parse(text) {
        Ok(m) => {
            let again = ClientMsg::parse(&m.to_json()).expect("re-encoded ClientMsg parses");
            assert_eq!(again, m);
            let _ = m.rid();
        }
        Err(why) => {
            assert!(why.is_ascii(), "error echoes non-ASCII input: {why:?}");
            assert!(why.len() <= MAX_ERROR_LEN, "error too long: {why:?}");
        }
    }

    if let Ok(m) = ServerMsg::parse(text) {
        let again = ServerMsg::parse(&m.to_json()).expect("re-encoded ServerMsg parses");
        assert_eq!(again, m);
    }

    // REST bodies the server deserialises from any client.
    if let Ok(r) = serde_json::from_str::<CreateRoomRequest>(text) {
        let j = serde_json::to_string(&r).expect("serialise");
        assert_eq!(serde_json::from_str::<CreateRoomRequest>(&j).ok(), Some(r));
    }
    if let Ok(r) = serde_json::from_str::<JoinRoomRequest>(text) {
        let j = serde_json::to_string(&r).expect("serialise");
        assert_eq!(serde_json::from_str::<JoinRoomRequest>(&j).ok(), Some(r));
    }

    // Room ids as typed by a user or sent by a client: canonical form is stable and both
    // printed forms parse back.
    if let Ok(id) = text.parse::<RoomId>() {
        assert_eq!(id.as_str().len(), ferry_proto::room::ROOM_ID_LEN);
        assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(id.as_str().parse::<RoomId>().ok(), Some(id));
        assert_eq!(id.display().parse::<RoomId>().ok(), Some(id));
    }
});
