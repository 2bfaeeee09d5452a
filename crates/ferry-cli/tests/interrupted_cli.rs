//! End to end, interrupted: a receiver or a sender killed and started again (mid-transfer,
//! mid-handshake, during the password check), a pause, the signaling server gone after
//! connecting, a source changed before the resume. Two real `ferry` processes, a real
//! signaling server, real WebRTC on loopback; the uninterrupted cases are transfer_cli.rs.

mod common;

use std::time::Duration;

use common::*;

const MB: usize = 1024 * 1024;
/// Same as ferry-core's `WINDOW` (defaults.rs): the most a crash may cost.
const WINDOW: u64 = 8 * 1024 * 1024;

#[test]
fn receiver_killed_and_restarted_resumes() {
    let s = Setup::new();
    let f = s.path("src/k.bin");
    random_file(&f, 40 * MB, 4);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-kill-r", &[rate]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-r", &out, &[]);
    rcv.wait_for("progress past 12 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 12 * MB as u64
    });
    // Checkpoints are made durable off the writer's thread, so on a slow disk the first one
    // may land after 12 MB are written: kill once history shows it saved.
    let saved = s.durable_bytes("recv.db", T);
    rcv.kill9();
    let before = rcv.last_progress();
    let mut rcv2 = s.receiver(&room, "pw-kill-r", &out, &[]);
    let resumed = rcv2.wait_event("resuming", Duration::from_secs(90));
    let from = resumed["bytes_done"].as_u64().unwrap();
    assert!(from >= saved, "resumed at {from}, but {saved} were saved");
    // The window being written plus, at most, the one whose sync was still running.
    assert!(
        before.saturating_sub(from) <= 2 * WINDOW,
        "re-sent {} bytes",
        before - from
    );
    assert_eq!(
        rcv2.finish(Duration::from_secs(90)),
        0,
        "{:#?}",
        rcv2.events
    );
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("k.bin")), hash(&f));
    assert!(!out.join("k.bin.part").exists());
}

#[test]
fn sender_killed_and_resumed() {
    let s = Setup::new();
    let f = s.path("src/s.bin");
    random_file(&f, 40 * MB, 5);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(
        std::slice::from_ref(&f),
        "pw-kill-s",
        std::slice::from_ref(&rate),
    );
    let (room, id) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-s", &out, &[]);
    rcv.wait_for("progress past 12 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 12 * MB as u64
    });
    snd.kill9();
    let mut snd2 = s.sender_resume(&id, "pw-kill-s", &[]);
    let (room2, id2) = room_of(&mut snd2);
    assert_eq!(id2, id);
    assert_eq!(
        room2, room,
        "the room should be reattached with the host token"
    );
    let resumed = rcv.wait_event("resuming", Duration::from_secs(90));
    let before = rcv
        .events
        .iter()
        .filter(|v| v["event"] == "progress")
        .filter_map(|v| v["bytes_done"].as_u64())
        .max()
        .unwrap_or(0);
    let from = resumed["bytes_done"].as_u64().unwrap();
    assert!(from > 0);
    assert!(
        before.saturating_sub(from) <= WINDOW,
        "re-sent {} bytes",
        before - from
    );
    assert_eq!(rcv.finish(Duration::from_secs(90)), 0, "{:#?}", rcv.events);
    assert_eq!(snd2.finish(T), 0, "{:#?}", snd2.events);
    assert_eq!(hash(&out.join("s.bin")), hash(&f));
}

/// A sender that dies while the devices are still connecting (the app crashed, the laptop
/// slept) is not the end for a receiver that already typed the password: it tries again,
/// says so, and gets the files from the restarted sender.
///
/// The kill waits for `connecting`, i.e. for the password to be proved: a sender that dies
/// after the receiver's confirmation tag went out and before its own came back looks exactly
/// like a server that took the tag to test a password offline, so there the receiver stops
/// with `wrong-password` instead of retrying (docs/CRYPTO.md §3).
#[test]
fn sender_killed_mid_handshake_the_receiver_tries_again() {
    let s = Setup::new();
    let f = s.path("src/h.bin");
    random_file(&f, MB, 6);
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-kill-h", &[]);
    let (room, id) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-h", &out, &[]);
    // `connecting` is printed as the sender's tag is queued, not written: a few milliseconds
    // let it reach the receiver. ICE, DTLS and SCTP take tens of milliseconds after that; the
    // kill lands in them.
    snd.wait_event("connecting", T);
    std::thread::sleep(Duration::from_millis(15));
    snd.kill9();
    let retry = rcv.wait_event("retrying", T);
    assert_eq!(retry["code"], "peer-gone", "{retry}");
    let mut snd2 = s.sender_resume(&id, "pw-kill-h", &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd2.finish(T), 0, "{:#?}", snd2.events);
    assert_eq!(hash(&out.join("h.bin")), hash(&f));
    assert!(
        rcv.all("connected").len() == 1 && rcv.all("reconnecting").is_empty(),
        "the first attempt should have failed before a link: {:#?}",
        rcv.events
    );
}

/// A sender that dies before the receiver's password is proved: the receiver's tag may have
/// gone unanswered, which it must treat as a failed attempt, never retried into more guesses.
#[test]
fn sender_killed_during_the_password_check_is_not_retried_into_more_guesses() {
    let s = Setup::new();
    let f = s.path("src/g.bin");
    random_file(&f, MB, 7);
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-kill-g", &[]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-g", &out, &[]);
    snd.wait_event("peer-joined", T);
    snd.kill9();
    let next = rcv.wait_for("retrying or an error", T, |v| {
        v["event"] == "retrying" || v["event"] == "error"
    });
    // Either the kill beat the receiver's tag (a plain peer-gone, retried) or it did not.
    if next["event"] == "error" {
        assert_eq!(next["code"], "wrong-password", "{next}");
        assert!(rcv.all("retrying").is_empty(), "{:#?}", rcv.events);
        assert_eq!(rcv.finish(T), 10);
    } else {
        assert_eq!(next["code"], "peer-gone", "{next}");
        rcv.kill9();
    }
    assert!(!out.join("g.bin").exists());
}

#[test]
fn pause_then_resume() {
    let s = Setup::new();
    let f = s.path("src/p.bin");
    random_file(&f, 24 * MB, 6);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-pause", &[rate]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-pause", &out, &[]);
    rcv.wait_for("progress past 4 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 4 * MB as u64
    });
    rcv.say("pause");
    rcv.wait_event("paused", T);
    snd.wait_event("paused", T);
    std::thread::sleep(Duration::from_millis(1500));
    rcv.drain();
    let at = rcv.last_progress();
    std::thread::sleep(Duration::from_millis(1000));
    rcv.drain();
    assert_eq!(rcv.last_progress(), at, "bytes kept arriving while paused");
    assert!(at < 24 * MB as u64);
    rcv.say("resume");
    snd.wait_event("resumed", T);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0);
    assert_eq!(hash(&out.join("p.bin")), hash(&f));
}

#[test]
fn server_gone_after_connect_does_not_stop_the_transfer() {
    let mut s = Setup::new();
    let f = s.path("src/g.bin");
    random_file(&f, 16 * MB, 7);
    let rate = ("FERRY_TEST_RATE_BPS", (8 * MB).to_string());
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-gone", &[rate]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-gone", &out, &[]);
    rcv.wait_event("progress", T);
    s.server.kill();
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("g.bin")), hash(&f));
}

#[test]
fn changed_source_refuses_resume_for_that_file() {
    let s = Setup::new();
    let a = s.path("src/a.bin");
    let b = s.path("src/b.bin");
    random_file(&a, 24 * MB, 8);
    random_file(&b, MB, 9);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(&[a.clone(), b.clone()], "pw-changed", &[rate]);
    let (room, id) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-changed", &out, &[]);
    rcv.wait_for("progress past 4 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 4 * MB as u64
    });
    snd.kill9();
    // The user edits the file before the transfer is resumed.
    std::thread::sleep(Duration::from_millis(20));
    random_file(&a, 24 * MB + 1, 10);
    let mut snd2 = s.sender_resume(&id, "pw-changed", &[]);
    assert_eq!(rcv.finish(Duration::from_secs(90)), 18, "{:#?}", rcv.events);
    assert_eq!(snd2.finish(T), 18, "{:#?}", snd2.events);
    let failed = rcv.all("file-failed");
    assert!(
        failed
            .iter()
            .any(|v| v["path"] == "a.bin" && v["code"] == "source-changed"),
        "{failed:#?}"
    );
    assert!(!out.join("a.bin").exists());
    assert_eq!(hash(&out.join("b.bin")), hash(&b));
}
