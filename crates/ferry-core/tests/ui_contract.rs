//! The UI's contract with the engine, checked from the Rust side. One sample of every
//! `Event` variant (and of every `PathKind`) is serialised and compared with the fixtures the
//! UI tests load (`ui/tests/fixtures/events/*.json`), and with `ui/tests/fixtures/events.ts`,
//! which assigns each fixture to the type `ui/src/ipc.ts` declares for it. So a field renamed
//! here fails this test; once the fixtures are blessed, it fails `tsc --noEmit` in `ui/`
//! until `ipc.ts` follows. See docs/ARCHITECTURE.md §5.
//!
//! To accept a change on purpose: `FERRY_BLESS=1 cargo test -p ferry-core --test ui_contract`,
//! then `cd ui && npx tsc --noEmit && npx vitest run` and update `ui/src/ipc.ts` until both pass.

#[macro_use]
mod contract;

use std::collections::BTreeMap;

use contract::pretty;
use ferry_core::link::PathKind;
use ferry_core::{Event, OfferFile};

every_variant!(
    event_variants,
    Event: Event::RoomCreated { .. },
    Event::RoomExtended { .. },
    Event::Waiting,
    Event::PeerJoined,
    Event::Connecting,
    Event::WrongPasswordAttempt { .. },
    Event::AttemptFailed { .. },
    Event::Retrying { .. },
    Event::Connected { .. },
    Event::Verification { .. },
    Event::Offer { .. },
    Event::Resuming { .. },
    Event::Progress { .. },
    Event::FileDone { .. },
    Event::FileFailed { .. },
    Event::ChunkRejected { .. },
    Event::Paused,
    Event::Resumed,
    Event::Reconnecting,
    Event::SkippedSymlinks { .. },
    Event::Text { .. },
    Event::Done { .. },
    Event::Error { .. },
    Event::Receiver { .. },
);

every_variant!(
    kind_variants,
    PathKind: PathKind::Host,
    PathKind::Srflx,
    PathKind::Prflx,
    PathKind::Relay,
    PathKind::Memory,
    PathKind::Unknown,
);

/// Every path kind, for the fixture the UI's `PathKind` is checked against.
const KINDS: [PathKind; 6] = [
    PathKind::Host,
    PathKind::Srflx,
    PathKind::Prflx,
    PathKind::Relay,
    PathKind::Memory,
    PathKind::Unknown,
];

const ID: &str = "6f1c0a52d3b94e7e";

/// Fixture name (the file stem: the event's tag, then a case when one variant has several
/// shapes) and the event. An optional field needs a sample with it present, or the UI's
/// type is never checked for it.
fn samples() -> Vec<(&'static str, Event)> {
    vec![
        (
            "room-created",
            Event::RoomCreated {
                room: "ABCDEFGHJK".into(),
                password: "otter-lantern-7".into(),
                link:
                    "ferry://join/ABCDEFGHJK?server=wss%3A%2F%2Fsignal.example%2Fws#otter-lantern-7"
                        .into(),
                expires_at: 1_796_000_000,
                server: "wss://signal.example/ws".into(),
                transfer_id: ID.into(),
                capped: false,
            },
        ),
        (
            "room-created.capped",
            Event::RoomCreated {
                room: "ABCDEFGHJK".into(),
                password: "otter-lantern-7".into(),
                link:
                    "ferry://join/ABCDEFGHJK?server=wss%3A%2F%2Fsignal.example%2Fws#otter-lantern-7"
                        .into(),
                expires_at: 1_796_086_400,
                server: "wss://signal.example/ws".into(),
                transfer_id: ID.into(),
                capped: true,
            },
        ),
        (
            "room-extended",
            Event::RoomExtended {
                expires_at: 1_796_003_600,
            },
        ),
        ("waiting", Event::Waiting),
        ("peer-joined", Event::PeerJoined),
        ("connecting", Event::Connecting),
        (
            "wrong-password-attempt",
            Event::WrongPasswordAttempt {
                attempts_left: Some(2),
            },
        ),
        (
            "wrong-password-attempt.unknown-left",
            Event::WrongPasswordAttempt {
                attempts_left: None,
            },
        ),
        (
            "attempt-failed",
            Event::AttemptFailed {
                code: "rtc".into(),
                message: "no WebRTC path formed between the devices".into(),
            },
        ),
        (
            "retrying",
            Event::Retrying {
                code: "peer-left".into(),
                message: "the sender left mid-handshake".into(),
            },
        ),
        (
            "connected",
            Event::Connected {
                path: "direct".into(),
                kind: PathKind::Host,
            },
        ),
        (
            "connected.relayed",
            Event::Connected {
                path: "relayed".into(),
                kind: PathKind::Relay,
            },
        ),
        (
            "verification",
            Event::Verification {
                words: "123 456 789".into(),
            },
        ),
        (
            "offer",
            Event::Offer {
                transfer_id: ID.into(),
                files: vec![
                    OfferFile {
                        path: "photos".into(),
                        size: 0,
                        dir: true,
                    },
                    OfferFile {
                        path: "photos/a.jpg".into(),
                        size: 1_000,
                        dir: false,
                    },
                    OfferFile {
                        path: "photos/b.jpg".into(),
                        size: 3_000,
                        dir: false,
                    },
                ],
                total: 4_000,
            },
        ),
        (
            "resuming",
            Event::Resuming {
                bytes_done: 1_000,
                total: 4_000,
            },
        ),
        (
            "progress",
            Event::Progress {
                file: "photos/b.jpg".into(),
                // Overall: a.jpg (1,000) is done and 2,500 of b.jpg's 3,000 arrived.
                bytes_done: 3_500,
                total: 4_000,
                rate_bps: 500,
                eta_secs: Some(1),
            },
        ),
        (
            "progress.no-rate-yet",
            Event::Progress {
                file: "photos/a.jpg".into(),
                bytes_done: 0,
                total: 4_000,
                rate_bps: 0,
                eta_secs: None,
            },
        ),
        (
            "file-done",
            Event::FileDone {
                path: "photos/a.jpg".into(),
                hash: "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262".into(),
            },
        ),
        (
            "file-failed",
            Event::FileFailed {
                path: "photos/b.jpg".into(),
                code: "disk-full".into(),
                message: "no space left on the device".into(),
            },
        ),
        (
            "chunk-rejected",
            Event::ChunkRejected {
                file: "photos/b.jpg".into(),
                offset: 131_072,
            },
        ),
        ("paused", Event::Paused),
        ("resumed", Event::Resumed),
        ("reconnecting", Event::Reconnecting),
        (
            "skipped-symlinks",
            Event::SkippedSymlinks {
                paths: vec!["photos/latest".into()],
            },
        ),
        (
            "text",
            Event::Text {
                transfer_id: ID.into(),
                text: "héllo 🚢\r\nsecond line\n".into(),
            },
        ),
        (
            "done.sender",
            Event::Done {
                bytes: 4_000,
                secs: 2.5,
                transfer_id: ID.into(),
                link_bytes: Some(3_100),
            },
        ),
        (
            "done.receiver",
            Event::Done {
                bytes: 4_000,
                secs: 2.5,
                transfer_id: ID.into(),
                link_bytes: None,
            },
        ),
        (
            "error",
            Event::Error {
                code: "wrong-password".into(),
                message: "wrong password, or the server interfered".into(),
            },
        ),
        (
            "receiver",
            Event::Receiver {
                receiver: 2,
                inner: Box::new(Event::Progress {
                    file: "holiday/beach.jpg".into(),
                    bytes_done: 1_000,
                    total: 4_000,
                    rate_bps: 500,
                    eta_secs: Some(6),
                }),
            },
        ),
    ]
}

/// Every file this test owns, by path under `ui/tests/fixtures`, with the text it must hold.
fn expected_files() -> BTreeMap<String, String> {
    let samples = samples();
    let mut files = BTreeMap::new();
    let mut ts = String::from(
        "// Generated by `FERRY_BLESS=1 cargo test -p ferry-core --test ui_contract`: do not edit.\n\
         // Each fixture in events/ is assigned here to the type ui/src/ipc.ts declares for it, so a\n\
         // field the engine renames, adds or drops fails `tsc --noEmit` until ipc.ts follows.\n\
         import type { FerryEvent, PathKind } from \"../../src/ipc\";\n\n\
         type Ev<K extends FerryEvent[\"event\"]> = Extract<FerryEvent, { event: K }>;\n\n\
         /** Every event the UI declares, each with the engine's fixtures of it, by file stem. */\n\
         export const eventFixtures: { [K in FerryEvent[\"event\"]]: Record<string, Ev<K>> } = {\n",
    );
    let mut by_tag: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
    for (name, e) in &samples {
        let json = pretty(e);
        let tag = serde_json::to_value(e).unwrap()["event"]
            .as_str()
            .unwrap()
            .to_string();
        by_tag
            .entry(tag)
            .or_default()
            .push((name, serde_json::to_string(e).unwrap()));
        files.insert(format!("events/{name}.json"), json);
    }
    for (tag, cases) in &by_tag {
        ts.push_str(&format!("  {tag:?}: {{\n"));
        for (name, json) in cases {
            ts.push_str(&format!("    {name:?}: {json},\n"));
        }
        ts.push_str("  },\n");
    }
    ts.push_str("};\n\n");
    let kinds: Vec<String> = KINDS
        .iter()
        .map(|k| serde_json::to_string(k).unwrap())
        .collect();
    ts.push_str(&format!(
        "/** Every path kind the engine sends in `connected`. */\n\
         export const pathKinds = [{}] as const satisfies readonly PathKind[];\n\
         /** Fails to compile when ipc.ts declares a kind the engine never sends. */\n\
         export const everyDeclaredKindIsSent: readonly (typeof pathKinds)[number][] = [] as PathKind[];\n",
        kinds.join(", ")
    ));
    files.insert("events/path-kinds.json".into(), pretty(&KINDS));
    files.insert("events.ts".into(), ts);
    files
}

#[test]
fn every_variant_has_a_sample() {
    let mut seen = vec![false; event_variants::NAMES.len()];
    for (name, e) in samples() {
        event_variants::exhaustive(&e);
        seen[event_variants::ordinal(&e)] = true;
        let tag = serde_json::to_value(&e).unwrap()["event"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            name == tag || name.starts_with(&format!("{tag}.")),
            "sample {name:?} holds a {tag:?} event: name it after its tag"
        );
    }
    let missing: Vec<&str> = (0..seen.len())
        .filter(|&i| !seen[i])
        .map(|i| event_variants::NAMES[i])
        .collect();
    assert!(
        missing.is_empty(),
        "no sample in `samples()` for {missing:?}"
    );
    let mut kinds = vec![false; kind_variants::NAMES.len()];
    for k in KINDS {
        kind_variants::exhaustive(&k);
        kinds[kind_variants::ordinal(&k)] = true;
    }
    assert!(kinds.iter().all(|&k| k), "a PathKind is missing from KINDS");
}

#[test]
fn fixtures_match_what_the_engine_sends() {
    contract::check_or_bless(
        &contract::fixtures_dir(env!("CARGO_MANIFEST_DIR")),
        "events",
        &expected_files(),
        "FERRY_BLESS=1 cargo test -p ferry-core --test ui_contract",
    );
}
