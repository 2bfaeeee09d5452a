//! Writes the committed seed corpus (fuzz/corpus/<target>/) from Ferry's real encoders, so
//! every target starts from valid messages and the fuzzer spends its time on their edges.
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds` (any toolchain).

use std::fs;
use std::path::Path;

use ferry_fuzz::crypto::{Pake, SealKind};
use ferry_fuzz::password::Password;
use ferry_fuzz::transfer::compress::Compressor;
use ferry_proto::RoomId;
use ferry_proto::peer::{
    self, Control, FLAG_COMPRESSED, FileAccept, FileEntry, MAX_CHUNK, PeerErrorCode,
};
use ferry_proto::signal::{ClientMsg, ErrorCode, IceServer, Role, ServerMsg};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn text(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0;
    while v.len() < n {
        v.extend_from_slice(format!("2026-12-06T05:{i:02}Z INFO chunk {i} ok\n").as_bytes());
        i += 1;
    }
    v.truncate(n);
    v
}

fn main() {
    let room: RoomId = "ABCDE-FGHJK".parse().expect("room id");
    let clients = [
        (
            "create",
            ClientMsg::CreateRoom {
                v: 2,
                rid: Some(1),
                ttl_secs: Some(600),
            },
        ),
        (
            "join",
            ClientMsg::JoinRoom {
                v: 2,
                rid: Some(2),
                room,
            },
        ),
        (
            "reconnect",
            ClientMsg::ReconnectHost {
                v: 2,
                rid: None,
                room,
                host_token: "0123456789abcdef".into(),
            },
        ),
        (
            "extend",
            ClientMsg::ExtendRoom {
                rid: Some(3),
                ttl_secs: 60,
            },
        ),
        ("close", ClientMsg::CloseRoom { rid: None }),
        ("leave", ClientMsg::Leave),
        ("failed", ClientMsg::HandshakeFailed),
        (
            "pake",
            ClientMsg::Pake {
                payload: "spake2:QUJD".into(),
            },
        ),
        (
            "offer",
            ClientMsg::Offer {
                payload: "c2VhbGVk".into(),
            },
        ),
        (
            "ice",
            ClientMsg::IceCandidate {
                payload: "confirm:AAAA".into(),
            },
        ),
    ];
    for (name, m) in clients {
        write("signal", &format!("client-{name}"), m.to_json().as_bytes());
    }
    let ice = vec![IceServer {
        urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
        username: Some("1700000000:ferry".into()),
        credential: Some("c2VjcmV0".into()),
    }];
    let servers = [
        (
            "welcome",
            ServerMsg::Welcome {
                v: 2,
                max_frame_bytes: 65536,
                join_in_url: true,
            },
        ),
        (
            "created",
            ServerMsg::RoomCreated {
                rid: Some(1),
                room,
                host_token: "tok".into(),
                expires_at: 1_800_000_000,
                ice_servers: ice.clone(),
            },
        ),
        (
            "joined",
            ServerMsg::Joined {
                rid: None,
                room,
                role: Role::Guest,
                expires_at: 1_800_000_000,
                peer_present: true,
                ice_servers: ice,
            },
        ),
        (
            "handshake-failed",
            ServerMsg::HandshakeFailed { attempts_left: 2 },
        ),
        (
            "error",
            ServerMsg::error(Some(9), ErrorCode::RoomLocked, "room locked"),
        ),
        ("peer-left", ServerMsg::PeerLeft { role: Role::Host }),
    ];
    for (name, m) in servers {
        write("signal", &format!("server-{name}"), m.to_json().as_bytes());
    }
    write("signal", "rest-join", br#"{"room":"abcde fghjk"}"#);
    write("signal", "room-id", b"ab0de-fghjk");
    // 0xFE: a guest run's guess-counter events (see check_guess_run in fuzz_targets/signal.rs).
    write("signal", "guess-answered", &[0xfe, 0x10, 0x11, 0x03, 0x02]);
    write(
        "signal",
        "guess-unanswered",
        &[0xfe, 0x00, 0x10, 0x03, 0x02],
    );

    let controls = [
        (
            "hello",
            Control::Hello {
                version: 2,
                caps: vec![peer::CAP_LZ4.into()],
                max_message_size: 262_144,
                mac: "ab".repeat(32),
            },
        ),
        (
            "manifest",
            Control::Manifest {
                transfer_id: "cd".repeat(16),
                files: vec![
                    FileEntry {
                        path: "photos/2026/beach.jpg".into(),
                        size: 3_000_000,
                        mtime_ms: 1_700_000_000_000,
                        dir: false,
                    },
                    FileEntry {
                        path: "photos/empty".into(),
                        size: 0,
                        mtime_ms: 0,
                        dir: true,
                    },
                ],
            },
        ),
        (
            "accept",
            Control::Accept {
                files: vec![FileAccept {
                    file: 0,
                    offset: 1024,
                }],
            },
        ),
        (
            "ack",
            Control::Ack {
                file: 0,
                offset: 1 << 20,
            },
        ),
        (
            "file-end",
            Control::FileEnd {
                file: 0,
                hash: "ef".repeat(32),
            },
        ),
        (
            "error",
            Control::Error {
                code: PeerErrorCode::DiskFull,
                message: "no space".into(),
                file: Some(1),
            },
        ),
        ("done", Control::Done),
    ];
    for (name, c) in &controls {
        write("peer_frame", &format!("control-{name}"), &c.encode());
    }
    write(
        "peer_frame",
        "chunk",
        &peer::encode_chunk(1, 16384, 0, &[7; 32], b"hello, ferry"),
    );
    write(
        "peer_frame",
        "chunk-compressed",
        &peer::encode_chunk(0, 0, FLAG_COMPRESSED, &[1; 32], &[9, 0, 0, 0, 0x90, 1]),
    );
    // A manifest split into control parts, joined with the 0xFF separator the target splits on
    // (0xFF never occurs in UTF-8 JSON).
    let parts = controls[1].1.encode_frames(48);
    write("peer_frame", "control-parts", &parts.join(&0xff));

    for (name, p) in [
        ("plain", "photos/2026/beach.jpg"),
        ("backslash", "docs\\report final.pdf"),
        ("device", "backup/CON.txt"),
        ("nfd", "cafe\u{301}/menu.txt"),
        ("dots", "./a/./b./c . "),
        ("parent", "a/../b"),
        ("drive", "C:/Windows/x"),
        ("forbidden", "what?<now>|\"*:.txt"),
        ("control", "tab\there\u{7f}"),
    ] {
        write("rel_path", name, p.as_bytes());
    }

    // sealed: [mode, kind, rest...] (see fuzz_targets/sealed.rs).
    let pw = Password::new("gladly-brave-otter");
    let (h, hm) = Pake::start(Role::Host, &room, &pw);
    let (g, gm) = Pake::start(Role::Guest, &room, &pw);
    let (hk, _gk) = (h.finish(&gm).expect("pake"), g.finish(&hm).expect("pake"));
    let with = |mode: u8, rest: &[u8]| [&[mode, 0][..], rest].concat();
    write("sealed", "spake2-msg", &with(0, hm.as_bytes()));
    let sealed = hk
        .sealer()
        .seal(SealKind::Offer, b"v=0 o=- 1 2 IN IP4 127.0.0.1");
    write("sealed", "foreign-envelope", &with(1, sealed.as_bytes()));
    let plain = b"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host";
    write(
        "sealed",
        "flip-none",
        &with(2, &[&plain[..], &[0u8; 54][..]].concat()),
    );
    write("sealed", "confirm", &with(3, hk.confirmation().as_bytes()));

    // hash_tree: [total u24 LE, then 3-byte ops] (see fuzz_targets/hash_tree.rs).
    let total = |n: u32| n.to_le_bytes()[..3].to_vec();
    let honest: Vec<u8> = [total(40_000), vec![0x86, 0, 0].repeat(40)].concat();
    write("hash_tree", "honest-64k-chunks", &honest);
    let mixed: Vec<u8> = [
        total(65_636),
        [0x84, 0, 0, 0x80, 1, 3, 0x89, 0, 0, 0x82, 1, 0].repeat(20),
    ]
    .concat();
    write("hash_tree", "honest-mixed-windows", &mixed);
    let hostile: Vec<u8> = [
        total(5_000),
        vec![
            0x00, 0x00, 0x04, 0x00, 0x88, 0x13, 0x02, 0x00, 0x04, 0x80, 0, 0,
        ],
    ]
    .concat();
    write("hash_tree", "hostile-shapes", &hostile);

    let limit = (MAX_CHUNK as u32).to_le_bytes();
    for (name, n) in [("small", 64usize), ("chunk", 16 * 1024)] {
        let data = text(n);
        let wire = Compressor::new()
            .compress(&data)
            .expect("log text compresses")
            .to_vec();
        let mut seed = vec![0, limit[0], limit[1], limit[2]];
        seed.extend_from_slice(&wire);
        write("lz4_chunk", &format!("decode-{name}"), &seed);
        let mut seed = vec![1];
        seed.extend_from_slice(&data[..n.min(1024)]);
        write("lz4_chunk", &format!("roundtrip-{name}"), &seed);
    }
}
