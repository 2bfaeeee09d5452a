use super::*;
use proptest::prelude::*;

fn room() -> RoomId {
    "ABCDE-FGHJK".parse().unwrap()
}

#[test]
fn wire_shape_is_kebab_tagged() {
    let m = ClientMsg::JoinRoom {
        v: 2,
        rid: Some(7),
        room: room(),
    };
    assert_eq!(
        m.to_json(),
        r#"{"type":"join-room","v":2,"rid":7,"room":"ABCDE-FGHJK"}"#
    );
    let e = ServerMsg::error(None, ErrorCode::RoomNotFound, "no such room");
    assert_eq!(
        e.to_json(),
        r#"{"type":"error","code":"room-not-found","message":"no such room"}"#
    );
    let c = ClientMsg::IceCandidate {
        payload: "x".into(),
    };
    assert_eq!(c.to_json(), r#"{"type":"ice-candidate","payload":"x"}"#);
}

#[test]
fn shared_room_messages_nest_the_addressed_one() {
    let m = ClientMsg::ToGuest {
        guest: 3,
        msg: Box::new(ClientMsg::Pake {
            payload: "spake2:x".into(),
        }),
    };
    assert_eq!(
        m.to_json(),
        r#"{"type":"to-guest","guest":3,"msg":{"type":"pake","payload":"spake2:x"}}"#
    );
    let s = ServerMsg::FromGuest {
        guest: 3,
        msg: Box::new(ServerMsg::PeerJoined { role: Role::Guest }),
    };
    assert_eq!(
        s.to_json(),
        r#"{"type":"from-guest","guest":3,"msg":{"type":"peer-joined","role":"guest"}}"#
    );
    let c = ClientMsg::parse(r#"{"type":"create-shared-room","v":3,"guests":4}"#).unwrap();
    assert_eq!(c.rid(), None);
    assert!(matches!(
        c,
        ClientMsg::CreateSharedRoom {
            v: 3,
            guests: 4,
            ..
        }
    ));
}

#[test]
fn a_welcome_without_join_in_url_is_an_older_server() {
    let old = r#"{"type":"welcome","v":2,"max_frame_bytes":65536}"#;
    assert_eq!(
        ServerMsg::parse(old).unwrap(),
        ServerMsg::Welcome {
            v: 2,
            max_frame_bytes: 65536,
            join_in_url: false
        }
    );
    let new = ServerMsg::Welcome {
        v: 2,
        max_frame_bytes: 65536,
        join_in_url: true,
    };
    assert_eq!(
        new.to_json(),
        r#"{"type":"welcome","v":2,"max_frame_bytes":65536,"join_in_url":true}"#
    );
}

#[test]
fn version_defaults_when_absent() {
    let m = ClientMsg::parse(r#"{"type":"create-room"}"#).unwrap();
    assert_eq!(
        m,
        ClientMsg::CreateRoom {
            v: crate::SIGNAL_VERSION,
            rid: None,
            ttl_secs: None
        }
    );
}

#[test]
fn malformed_is_an_error_that_does_not_echo_input() {
    let err = ClientMsg::parse(r#"{"type":"offer","payload":SECRET"#).unwrap_err();
    assert!(!err.contains("SECRET"), "{err}");
    assert!(ClientMsg::parse(r#"{"type":"no-such-thing"}"#).is_err());
    assert!(ClientMsg::parse(r#"{"type":"join-room","room":"bad"}"#).is_err());
    assert!(ClientMsg::parse("[]").is_err());
}

#[test]
fn error_codes_have_unique_names_and_statuses() {
    let names: std::collections::HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names.len(), ErrorCode::ALL.len());
    for c in ErrorCode::ALL {
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, format!("\"{}\"", c.as_str()));
        assert!((400..600).contains(&c.http_status()));
    }
}

fn arb_room() -> impl Strategy<Value = RoomId> {
    any::<u64>().prop_map(|s| {
        use rand::SeedableRng;
        RoomId::random_from(&mut rand::rngs::StdRng::seed_from_u64(s))
    })
}

fn arb_client() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        (any::<u16>(), any::<Option<u64>>(), any::<Option<u64>>())
            .prop_map(|(v, rid, ttl_secs)| ClientMsg::CreateRoom { v, rid, ttl_secs }),
        (any::<u16>(), any::<Option<u64>>(), arb_room())
            .prop_map(|(v, rid, room)| ClientMsg::JoinRoom { v, rid, room }),
        (any::<u16>(), any::<Option<u64>>(), arb_room(), ".*").prop_map(
            |(v, rid, room, host_token)| ClientMsg::ReconnectHost {
                v,
                rid,
                room,
                host_token
            }
        ),
        (any::<Option<u64>>(), any::<u64>())
            .prop_map(|(rid, ttl_secs)| ClientMsg::ExtendRoom { rid, ttl_secs }),
        any::<Option<u64>>().prop_map(|rid| ClientMsg::CloseRoom { rid }),
        Just(ClientMsg::Leave),
        Just(ClientMsg::HandshakeFailed),
        ".*".prop_map(|payload| ClientMsg::Pake { payload }),
        ".*".prop_map(|payload| ClientMsg::Offer { payload }),
        ".*".prop_map(|payload| ClientMsg::Answer { payload }),
        ".*".prop_map(|payload| ClientMsg::IceCandidate { payload }),
        (
            any::<u16>(),
            any::<Option<u64>>(),
            any::<Option<u64>>(),
            any::<u32>()
        )
            .prop_map(|(v, rid, ttl_secs, guests)| ClientMsg::CreateSharedRoom {
                v,
                rid,
                ttl_secs,
                guests
            }),
        (any::<u32>(), ".*").prop_map(|(guest, payload)| ClientMsg::ToGuest {
            guest,
            msg: Box::new(ClientMsg::Pake { payload })
        }),
    ]
}

fn arb_server() -> impl Strategy<Value = ServerMsg> {
    let ice = proptest::collection::vec(
        (
            proptest::collection::vec(".*", 0..3),
            any::<Option<String>>(),
            any::<Option<String>>(),
        )
            .prop_map(|(urls, username, credential)| IceServer {
                urls,
                username,
                credential,
            }),
        0..3,
    );
    let role = prop_oneof![Just(Role::Host), Just(Role::Guest)];
    prop_oneof![
        (any::<u16>(), any::<usize>(), any::<bool>()).prop_map(
            |(v, max_frame_bytes, join_in_url)| ServerMsg::Welcome {
                v,
                max_frame_bytes,
                join_in_url
            }
        ),
        (
            any::<Option<u64>>(),
            arb_room(),
            ".*",
            any::<u64>(),
            ice.clone()
        )
            .prop_map(|(rid, room, host_token, expires_at, ice_servers)| {
                ServerMsg::RoomCreated {
                    rid,
                    room,
                    host_token,
                    expires_at,
                    ice_servers,
                }
            }),
        (
            any::<Option<u64>>(),
            arb_room(),
            role.clone(),
            any::<u64>(),
            any::<bool>(),
            ice
        )
            .prop_map(|(rid, room, role, expires_at, peer_present, ice_servers)| {
                ServerMsg::Joined {
                    rid,
                    room,
                    role,
                    expires_at,
                    peer_present,
                    ice_servers,
                }
            }),
        role.clone().prop_map(|role| ServerMsg::PeerJoined { role }),
        role.prop_map(|role| ServerMsg::PeerLeft { role }),
        any::<u32>().prop_map(|attempts_left| ServerMsg::HandshakeFailed { attempts_left }),
        arb_room().prop_map(|room| ServerMsg::RoomExpired { room }),
        Just(ServerMsg::RoomClosed),
        ".*".prop_map(|payload| ServerMsg::Offer { payload }),
        (any::<u32>(), ".*").prop_map(|(guest, payload)| ServerMsg::FromGuest {
            guest,
            msg: Box::new(ServerMsg::Answer { payload })
        }),
        (
            any::<Option<u64>>(),
            proptest::sample::select(ErrorCode::ALL.to_vec()),
            ".*"
        )
            .prop_map(|(rid, code, message)| ServerMsg::Error { rid, code, message }),
    ]
}

proptest! {
    #[test]
    fn client_roundtrip(m in arb_client()) {
        prop_assert_eq!(ClientMsg::parse(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn server_roundtrip(m in arb_server()) {
        prop_assert_eq!(ServerMsg::parse(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn parse_never_panics(s in ".{0,200}") {
        let _ = ClientMsg::parse(&s);
    }
}
