//! `ferry send`'s stdin commands for its room, end to end: `extend 1m` moves the deadline a
//! receiver meets, `close` ends the room for both sides. Real processes, a real server.

// The shared helpers re-export what other tests use and these do not.
#[allow(unused_imports)]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn extend_on_stdin_keeps_the_room_open_past_its_first_deadline() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 200_000, 7);
    let file = f.display().to_string();
    let args = [
        "send",
        "--json",
        "--server",
        &s.server.url,
        "--password",
        "pw-extend",
        "--expires",
        "3s",
        &file,
    ];
    let mut snd = Peer::spawn("sender", &args, &s.path("send.db"), &[]);
    let created = snd.wait_event("room-created", T);
    let first = created["expires_at"].as_i64().unwrap();
    let room = created["room"].as_str().unwrap().to_string();

    snd.say("extend 1m");
    let extended = snd.wait_event("room-extended", T);
    let later = extended["expires_at"].as_i64().unwrap();
    assert!(later > first, "{first} -> {later}");
    assert!((55..=61).contains(&(later - now())), "1m asked, {later}");

    // Past the first deadline the room is still there: the receiver joins and gets the file.
    let wait = (first + 2 - now()).max(0) as u64;
    std::thread::sleep(Duration::from_secs(wait));
    let mut rcv = s.receiver(&room, "pw-extend", &s.path("out"), &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(hash(&f), hash(&s.path("out/a.bin")));
}

#[test]
fn close_on_stdin_ends_the_room_for_both_sides_and_extend_prints_the_new_deadline() {
    let s = Setup::new();
    let f = s.path("a.txt");
    random_file(&f, 100, 8);
    // A person's terminal: human output, commands typed on stdin.
    let mut c = Command::new(FERRY)
        .args([
            "send",
            "--server",
            &s.server.url,
            "--password",
            "pw-close",
            "--expires",
            "5m",
            &f.display().to_string(),
        ])
        .env("FERRY_DB", s.path("send.db"))
        .env("FERRY_BIND", "127.0.0.1:0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let out = c.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut line_starting = |prefix: &str| loop {
        let l = rx
            .recv_timeout(T)
            .unwrap_or_else(|_| panic!("no {prefix:?} line; saw {seen:#?}"));
        seen.push(l.clone());
        if l.starts_with(prefix) {
            break l;
        }
    };
    let room = line_starting("Room:");
    let room = room
        .trim_start_matches("Room:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    line_starting("Expires:");

    writeln!(stdin, "extend 2m").unwrap();
    let ext = line_starting("Extended:");
    assert!(
        (ext.contains("in 2m") || ext.contains("in 1m 59s")) && ext.contains("UTC"),
        "{ext}"
    );
    writeln!(stdin, "extend whenever").unwrap();
    writeln!(stdin, "close").unwrap();
    stdin.flush().unwrap();

    let deadline = std::time::Instant::now() + T;
    let code = loop {
        if let Some(st) = c.try_wait().unwrap() {
            break st.code();
        }
        assert!(std::time::Instant::now() < deadline, "sender did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(code, Some(19), "{err}");
    assert!(err.contains("you closed the room"), "{err}");
    assert!(
        err.contains("30s, 10m, 1h"),
        "a bad extend says what works: {err}"
    );

    // The receiver opening the room afterwards is told it is gone, as for an expired one.
    let mut rcv = s.receiver(&room, "pw-close", &s.path("out"), &[]);
    assert_eq!(rcv.finish(T), 12, "{:#?}", rcv.events);
    assert_eq!(rcv.all("error")[0]["code"], "room-expired");
    assert!(!s.path("out/a.txt").exists());
}

#[test]
fn extend_on_stdin_moves_a_shared_rooms_deadline_too() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 1000, 9);
    let file = f.display().to_string();
    let args = [
        "send",
        "--json",
        "--server",
        &s.server.url,
        "--password",
        "pw-extend-many",
        "--expires",
        "1m",
        "--receivers",
        "0",
        &file,
    ];
    let mut snd = Peer::spawn("sender", &args, &s.path("send.db"), &[]);
    let created = snd.wait_event("room-created", T);
    let first = created["expires_at"].as_i64().unwrap();
    snd.say("extend 10m");
    let extended = snd.wait_event("room-extended", T);
    let later = extended["expires_at"].as_i64().unwrap();
    assert!(later > first, "{first} -> {later}");
    assert!((595..=601).contains(&(later - now())), "10m asked, {later}");
    snd.say("cancel");
    snd.finish(T);
}
