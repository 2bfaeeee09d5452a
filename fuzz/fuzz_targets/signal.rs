//! Signaling decoders: what the server parses from any client (`ClientMsg::parse`, the REST
//! bodies, room ids) and what a client parses from the server (`ServerMsg::parse`), plus the
//! server's pure checks on a parsed frame (`relay::check`) and the guess counter they feed.
//! Invariants: no panic; whatever parses re-encodes to JSON that parses back to the same
//! value; a parse error is a short ASCII message (the server echoes it, so it must never
//! carry the client's bytes back); a relay passes exactly when its payload is within its
//! kind's cap, and only a `confirm:` prefix marks a confirmation; a guest run counts as at
//! most one failed guess, and only if its guest sent a tag the host did not answer.
#![no_main]

use ferry_fuzz::guess::GuessRun;
use ferry_fuzz::relay::{self, MAX_ICE_PAYLOAD, MAX_PAKE_PAYLOAD, MAX_SDP_PAYLOAD};
use ferry_proto::RoomId;
use ferry_proto::signal::{ClientMsg, CreateRoomRequest, JoinRoomRequest, ServerMsg};
use libfuzzer_sys::fuzz_target;

/// Longest echoed parse error; the fixed text plus two numbers fits with room to spare.
const MAX_ERROR_LEN: usize = 128;

/// The server's relay check against an independent reading of its rules.
fn check_relay(m: &ClientMsg) {
    let (kind, cap, payload) = match m {
        ClientMsg::Pake { payload } => (0, MAX_PAKE_PAYLOAD, payload),
        ClientMsg::Offer { payload } => (1, MAX_SDP_PAYLOAD, payload),
        ClientMsg::Answer { payload } => (2, MAX_SDP_PAYLOAD, payload),
        ClientMsg::IceCandidate { payload } => (3, MAX_ICE_PAYLOAD, payload),
        other => {
            assert_eq!(relay::check(other), Ok(None));
            return;
        }
    };
    match relay::check(m) {
        Ok(Some(r)) => {
            assert!(
                payload.len() <= cap,
                "{} bytes passed a {cap} cap",
                payload.len()
            );
            assert_eq!(r.kind, kind);
            let confirm = payload.starts_with("confirm:");
            assert_eq!(r.pake_confirm, (kind == 0).then_some(confirm));
        }
        Ok(None) => panic!("a relay was taken for a control message"),
        Err(_) => assert!(payload.len() > cap),
    }
}

/// Drive one guest run's guess counter with events the input picks.
fn check_guess_run(ops: &[u8]) {
    let mut run = GuessRun::default();
    let (mut counted, mut guest_tag, mut host_tag) = (0, false, false);
    for op in ops {
        let confirm = op & 0x10 != 0;
        let now = match op % 4 {
            0 => {
                guest_tag |= confirm;
                run.guest_pake(confirm);
                false
            }
            1 => {
                host_tag |= confirm && guest_tag;
                run.host_pake(confirm);
                false
            }
            2 => run.host_reported(),
            _ => run.ended(),
        };
        if now {
            counted += 1;
            assert!(
                guest_tag && !host_tag,
                "counted a run that was not a failed guess"
            );
        }
    }
    assert!(counted <= 1, "one run counted {counted} times");
}

fuzz_target!(|data: &[u8]| {
    if let Some((&0xfe, ops)) = data.split_first() {
        check_guess_run(ops);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match ClientMsg::parse(text) {
        Ok(m) => {
            let again = ClientMsg::parse(&m.to_json()).expect("re-encoded ClientMsg parses");
            assert_eq!(again, m);
            let _ = m.rid();
            check_relay(&m);
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
