//! One room, many receivers, end to end: one `ferry send --receivers`, several real `ferry
//! receive` processes (each with its own database), a real `ferry-signal`.

// The shared helpers re-export what other tests use and these do not.
#[allow(unused_imports)]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const PW: &str = "pw-many";

fn sender(s: &Setup, file: &Path, extra: &[&str], rate: Option<u64>) -> Peer {
    let file = file.display().to_string();
    let mut a = vec![
        "send",
        "--json",
        "--server",
        &s.server.url,
        "--password",
        PW,
    ];
    a.extend_from_slice(extra);
    a.push(&file);
    let env: Vec<(&str, String)> = rate
        .map(|r| vec![("FERRY_TEST_RATE_BPS", r.to_string())])
        .unwrap_or_default();
    Peer::spawn("sender", &a, &s.path("send.db"), &env)
}

/// Receiver `n`, with its own database and output folder.
fn receiver(s: &Setup, room: &str, n: u32) -> Peer {
    let out = s.path(&format!("out{n}")).display().to_string();
    let a = [
        "receive",
        room,
        "--json",
        "--yes",
        "--server",
        &s.server.url,
        "--password",
        PW,
        "--out",
        &out,
    ];
    Peer::spawn("receiver", &a, &s.path(&format!("recv{n}.db")), &[])
}

fn landed(s: &Setup, n: u32) -> PathBuf {
    s.path(&format!("out{n}/a.bin"))
}

/// The sender's events about one receiver, by the inner event's name.
fn about(snd: &Peer, inner: &str) -> Vec<u64> {
    snd.events
        .iter()
        .filter(|v| v["event"] == "receiver" && v["inner"]["event"] == inner)
        .filter_map(|v| v["receiver"].as_u64())
        .collect()
}

/// Stops every receiver that connected and has not finished (a killed one's link has not
/// timed out on the sender's side yet), then closes the room; the sender must end with 0.
fn stop_unfinished_and_close(snd: &mut Peer) {
    snd.drain();
    let done = about(snd, "done");
    for n in about(snd, "connected") {
        if !done.contains(&n) {
            snd.say(&format!("stop {n}"));
        }
    }
    snd.say("close");
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
}

#[test]
fn three_receivers_at_once_then_a_fourth_all_byte_exact() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 600_000, 21);
    // Each receiver takes about a second: long enough for all three to overlap.
    let mut snd = sender(
        &s,
        &f,
        &["--receivers", "4", "--at-once", "3"],
        Some(600_000),
    );
    let (room, _) = room_of(&mut snd);
    let mut first: Vec<Peer> = (1..=3).map(|n| receiver(&s, &room, n)).collect();
    for r in &mut first {
        assert_eq!(r.finish(T), 0, "{:#?}", r.events);
    }
    for n in 1..=3 {
        assert_eq!(hash(&landed(&s, n)), hash(&f), "receiver {n}");
    }
    snd.drain();
    // All three were connected before the first finished: served side by side.
    let order: Vec<&str> = snd
        .events
        .iter()
        .filter(|v| v["event"] == "receiver")
        .filter_map(|v| v["inner"]["event"].as_str())
        .filter(|e| *e == "connected" || *e == "done")
        .collect();
    let first_done = order.iter().position(|e| *e == "done").unwrap();
    assert_eq!(
        order[..first_done].len(),
        3,
        "three connected before any finished: {order:?}"
    );

    let mut fourth = receiver(&s, &room, 4);
    assert_eq!(fourth.finish(T), 0, "{:#?}", fourth.events);
    assert_eq!(hash(&landed(&s, 4)), hash(&f));
    // Four served: the room closes and the sender ends well.
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    let mut done = about(&snd, "done");
    done.sort_unstable();
    assert_eq!(done, vec![1, 2, 3, 4]);
    assert_eq!(snd.all("done").len(), 1, "the room's own done, once");
}

#[test]
fn a_receiver_killed_mid_transfer_resumes_while_the_others_finish() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    // Checkpoints reach the receiver's database every few megabytes: big enough to have one
    // well before the end, at a rate that keeps the transfer a few seconds long.
    random_file(&f, 24_000_000, 22);
    let mut snd = sender(&s, &f, &["--receivers", "0"], Some(6_000_000));
    let (room, _) = room_of(&mut snd);
    let mut victim = receiver(&s, &room, 1);
    let mut others: Vec<Peer> = (2..=3).map(|n| receiver(&s, &room, n)).collect();
    // Part of the file verified and recorded on disk, then the process dies.
    victim.wait_for("progress past 6 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 6_000_000
    });
    let durable = s.durable_bytes("recv1.db", T);
    victim.kill9();
    assert!(
        !victim.all("done").iter().any(|_| true),
        "killed mid-transfer"
    );
    for r in &mut others {
        assert_eq!(r.finish(T), 0, "{:#?}", r.events);
    }
    for n in 2..=3 {
        assert_eq!(hash(&landed(&s, n)), hash(&f), "receiver {n}");
    }
    // The same receiver (its database) joins again and picks up where its disk says.
    let mut again = receiver(&s, &room, 1);
    assert_eq!(again.finish(T), 0, "{:#?}", again.events);
    assert_eq!(hash(&landed(&s, 1)), hash(&f));
    let resumed = again.all("resuming");
    assert!(
        resumed
            .first()
            .and_then(|v| v["bytes_done"].as_u64())
            .is_some_and(|b| b >= durable),
        "the second run resumed: {:#?}",
        again.events
    );
    // The killed one's link has not timed out yet on the sender's side: stop it rather than
    // wait.
    stop_unfinished_and_close(&mut snd);
}

#[test]
fn the_sender_stops_one_receiver_and_the_others_complete() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 1_500_000, 23);
    let mut snd = sender(&s, &f, &["--receivers", "0"], Some(1_000_000));
    let (room, _) = room_of(&mut snd);
    let mut rs: Vec<Peer> = (1..=3).map(|n| receiver(&s, &room, n)).collect();
    for _ in 0..3 {
        snd.wait_for("a receiver connected", T, |v| {
            v["event"] == "receiver" && v["inner"]["event"] == "connected"
        });
    }
    snd.say("stop 2");
    let codes: Vec<i32> = rs.iter_mut().map(|r| r.finish(T)).collect();
    let stopped: Vec<usize> = (0..3).filter(|i| codes[*i] != 0).collect();
    assert_eq!(stopped.len(), 1, "exactly one stopped: {codes:?}");
    for (i, r) in rs.iter().enumerate() {
        let n = i as u32 + 1;
        if stopped.contains(&i) {
            let err = r.all("error");
            assert_eq!(err[0]["code"], "cancelled", "{:#?}", r.events);
        } else {
            assert_eq!(hash(&landed(&s, n)), hash(&f), "receiver {n}");
        }
    }
    snd.say("close");
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(about(&snd, "done").len(), 2);
    let errs = snd
        .events
        .iter()
        .filter(|v| v["event"] == "receiver" && v["inner"]["event"] == "error")
        .collect::<Vec<_>>();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0]["receiver"], 2);
}

#[test]
fn a_single_use_room_refuses_the_second_receiver() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 3_000_000, 24);
    // --receivers 1: while the first is served, a second is refused at once.
    let mut snd = sender(&s, &f, &["--receivers", "1"], Some(600_000));
    let (room, _) = room_of(&mut snd);
    let mut first = receiver(&s, &room, 1);
    snd.wait_for("receiver 1 connected", T, |v| {
        v["event"] == "receiver" && v["inner"]["event"] == "connected"
    });
    let mut second = receiver(&s, &room, 2);
    let code = second.finish(T);
    assert_eq!(code, 13, "{:#?}", second.events);
    assert_eq!(second.all("error")[0]["code"], "room-full");
    assert_eq!(first.finish(T), 0, "{:#?}", first.events);
    assert_eq!(hash(&landed(&s, 1)), hash(&f));
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert!(!landed(&s, 2).exists());

    // The default send is single-use too: once its receiver is served the room is gone, and
    // a second receiver hears that rather than waiting.
    let g = s.path("src/b.bin");
    random_file(&g, 1000, 25);
    let mut snd = Peer::spawn(
        "sender",
        &[
            "send",
            "--json",
            "--server",
            &s.server.url,
            "--password",
            PW,
            &g.display().to_string(),
        ],
        &s.path("send2.db"),
        &[],
    );
    let (room, _) = room_of(&mut snd);
    let mut one = receiver(&s, &room, 3);
    assert_eq!(one.finish(T), 0, "{:#?}", one.events);
    assert_eq!(snd.finish(T), 0);
    let mut two = receiver(&s, &room, 4);
    assert_eq!(two.finish(Duration::from_secs(30)), 12, "{:#?}", two.events);
    assert_eq!(two.all("error")[0]["code"], "room-expired");
}

#[test]
fn cancel_stops_every_receiver_and_ends_the_room() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 2_000_000, 26);
    let mut snd = sender(&s, &f, &["--receivers", "0"], Some(500_000));
    let (room, _) = room_of(&mut snd);
    let mut rs: Vec<Peer> = (1..=2).map(|n| receiver(&s, &room, n)).collect();
    for _ in 0..2 {
        snd.wait_for("a receiver connected", T, |v| {
            v["event"] == "receiver" && v["inner"]["event"] == "connected"
        });
    }
    snd.say("cancel");
    assert_eq!(snd.finish(T), 19, "{:#?}", snd.events);
    for r in &mut rs {
        assert_ne!(r.finish(T), 0, "{:#?}", r.events);
        assert_eq!(r.all("error")[0]["code"], "cancelled", "{:#?}", r.events);
    }
    // The room is gone: a late receiver hears so.
    let mut late = receiver(&s, &room, 3);
    assert_eq!(late.finish(T), 12, "{:#?}", late.events);
}

#[test]
fn two_receivers_killed_resume_at_the_same_time_each_from_its_own_disk() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 24_000_000, 27);
    let mut snd = sender(&s, &f, &["--receivers", "0"], Some(6_000_000));
    let (room, _) = room_of(&mut snd);
    let mut victims: Vec<Peer> = (1..=2).map(|n| receiver(&s, &room, n)).collect();
    let mut durable = vec![];
    for (i, v) in victims.iter_mut().enumerate() {
        v.wait_for("progress past 6 MB", T, |e| {
            e["event"] == "progress" && e["bytes_done"].as_u64().unwrap_or(0) > 6_000_000
        });
        durable.push(s.durable_bytes(&format!("recv{}.db", i + 1), T));
    }
    for v in &mut victims {
        v.kill9();
    }
    // Both come back together; each resumes from what its own database and disk hold.
    let mut again: Vec<Peer> = (1..=2).map(|n| receiver(&s, &room, n)).collect();
    for (i, r) in again.iter_mut().enumerate() {
        assert_eq!(r.finish(T), 0, "receiver {}: {:#?}", i + 1, r.events);
        assert_eq!(
            hash(&landed(&s, i as u32 + 1)),
            hash(&f),
            "receiver {}",
            i + 1
        );
        let from = r
            .all("resuming")
            .first()
            .and_then(|v| v["bytes_done"].as_u64());
        assert!(
            from.is_some_and(|b| b >= durable[i]),
            "receiver {} resumed from {from:?}, its disk held {}",
            i + 1,
            durable[i]
        );
    }
    stop_unfinished_and_close(&mut snd);
}
