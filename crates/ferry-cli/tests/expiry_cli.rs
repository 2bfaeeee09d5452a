//! Room lifetimes end to end: `ferry send --expires`, real processes, a real server.

// The shared helpers re-export what other tests use and these do not.
#[allow(unused_imports)]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sender_args<'a>(s: &'a Setup, expires: &'a str, file: &'a str) -> Vec<&'a str> {
    vec![
        "send",
        "--json",
        "--server",
        &s.server.url,
        "--password",
        "pw-expiry",
        "--expires",
        expires,
        file,
    ]
}

#[test]
fn a_room_with_a_5s_lifetime_expires_on_both_sides() {
    let s = Setup::new();
    let f = s.path("src/a.txt");
    random_file(&f, 1000, 1);
    let file = f.display().to_string();
    let mut snd = Peer::spawn(
        "sender",
        &sender_args(&s, "5s", &file),
        &s.path("send.db"),
        &[],
    );
    let created = snd.wait_event("room-created", T);
    let left = created["expires_at"].as_i64().unwrap() - now();
    assert!((3..=6).contains(&left), "5 s asked, {left} s granted");
    assert_eq!(created["capped"], false);
    let room = created["room"].as_str().unwrap().to_string();

    // Nobody joins: the sender is told the room expired, and exits with its code.
    let start = Instant::now();
    assert_eq!(snd.finish(Duration::from_secs(20)), 12, "{:#?}", snd.events);
    assert!(start.elapsed() < Duration::from_secs(10));
    let err = snd.all("error");
    assert_eq!(err.len(), 1, "{:#?}", snd.events);
    assert_eq!(err[0]["code"], "room-expired");
    assert!(snd.all("done").is_empty());

    // A receiver opening the link afterwards hears that it expired, not that it never was.
    let mut rcv = s.receiver(&room, "pw-expiry", &s.path("out"), &[]);
    assert_eq!(rcv.finish(T), 12, "{:#?}", rcv.events);
    let err = rcv.all("error");
    assert_eq!(err[0]["code"], "room-expired", "{:#?}", rcv.events);
    assert!(
        err[0]["message"].as_str().unwrap().contains("expired"),
        "{err:?}"
    );
    assert!(!s.path("out/a.txt").exists());
}

#[test]
fn the_server_caps_a_long_lifetime_and_the_sender_says_so() {
    let s = Setup {
        dir: tempfile::tempdir().unwrap(),
        server: Server::start_with(&["--max-room-ttl", "60"]),
    };
    let f = s.path("a.txt");
    random_file(&f, 10, 2);
    let file = f.display().to_string();
    let mut snd = Peer::spawn(
        "sender",
        &sender_args(&s, "1d", &file),
        &s.path("send.db"),
        &[],
    );
    let created = snd.wait_event("room-created", T);
    let left = created["expires_at"].as_i64().unwrap() - now();
    assert!((55..=61).contains(&left), "capped to 60 s, got {left}");
    assert_eq!(created["capped"], true);
    snd.kill9();

    // A person's terminal: the expiry line says when, and that it was capped.
    let mut c = Command::new(FERRY)
        .args([
            "send",
            "--server",
            &s.server.url,
            "--password",
            "pw",
            "--expires",
            "2h",
            &file,
        ])
        .env("FERRY_DB", s.path("send2.db"))
        .env("FERRY_BIND", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    let line = loop {
        let l = lines.next().expect("stdout ended").unwrap();
        if l.starts_with("Expires:") {
            break l;
        }
    };
    let _ = c.kill();
    let _ = c.wait();
    assert!(line.contains("in 1m") || line.contains("in 59s"), "{line}");
    assert!(line.contains("UTC"), "{line}");
    assert!(line.contains("capped"), "{line}");
}

#[test]
fn a_lifetime_that_does_not_read_is_refused_with_the_forms_that_do() {
    let out = Command::new(FERRY)
        .args(["send", "--expires", "soon", "--text", "x"])
        .env("FERRY_DB", tempfile::tempdir().unwrap().path().join("db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("30s, 10m, 1h, 1d"), "{err}");
}
