//! Text snippets end to end: real `ferry send --text` and `ferry receive` processes over a
//! real signaling server. The receiver's stdout must be the snippet, byte for byte.

// The shared helpers re-export what other tests use and these do not.
#[allow(unused_imports)]
mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Unicode, emoji, CRLF, a blank line, a tab and a trailing newline.
const SNIPPET: &str = "héllo wörld 🚢⚓ 世界\r\nsecond line\twith a tab\r\n\nlast line\n";

/// The limit in `ferry-core`'s defaults (`TEXT_MAX_BYTES`).
const LIMIT: usize = 64 * 1024;

fn ferry(s: &Setup, db: &str) -> Command {
    let mut c = Command::new(FERRY);
    c.env("FERRY_DB", s.path(db))
        .env("FERRY_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "error");
    c
}

/// Everything a reader thread collects from a pipe, as it arrives.
fn collect(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait (bounded) for `c` to exit and return its code with all of its stdout and stderr.
fn finish(
    c: &mut Child,
    out: &mpsc::Receiver<Vec<u8>>,
    err: &mpsc::Receiver<Vec<u8>>,
    timeout: Duration,
) -> (i32, Vec<u8>, String) {
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(st) = c.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let e: Vec<u8> = err.try_iter().flatten().collect();
            panic!(
                "did not exit within {timeout:?}: {}",
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(50));
    let o: Vec<u8> = out.try_iter().flatten().collect();
    let e: Vec<u8> = err.try_iter().flatten().collect();
    (code, o, String::from_utf8_lossy(&e).into_owned())
}

/// A `ferry send --json --text ARG` sender; with `stdin_text`, `ARG` is `-` and the text
/// is written to its stdin, which is then closed.
fn text_sender(
    s: &Setup,
    arg: &str,
    stdin_text: Option<&str>,
) -> (Child, mpsc::Receiver<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
    let mut c = ferry(s, "send.db")
        .args([
            "send",
            "--json",
            "--server",
            &s.server.url,
            "--password",
            "pw-text",
            "--text",
            arg,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    if let Some(t) = stdin_text {
        // A sender that refuses stops reading at the limit: the rest may meet a closed pipe.
        let _ = stdin.write_all(t.as_bytes());
    }
    drop(stdin);
    let out = collect(c.stdout.take().unwrap());
    let err = collect(c.stderr.take().unwrap());
    (c, out, err)
}

/// The room id from the sender's `room-created` event.
fn room_from(out: &mpsc::Receiver<Vec<u8>>, seen: &mut Vec<u8>) -> String {
    let deadline = Instant::now() + T;
    loop {
        if let Ok(b) = out.recv_timeout(Duration::from_millis(100)) {
            seen.extend(b);
        }
        for line in String::from_utf8_lossy(seen).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && v["event"] == "room-created"
            {
                return v["room"].as_str().unwrap().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no room: {}",
            String::from_utf8_lossy(seen)
        );
    }
}

/// A plain `ferry receive` (a person's terminal, no --json); returns code, stdout, stderr.
fn receive_plain(s: &Setup, room: &str, out_dir: &std::path::Path) -> (i32, Vec<u8>, String) {
    let mut c = ferry(s, "recv.db")
        .args([
            "receive",
            room,
            "--server",
            &s.server.url,
            "--password",
            "pw-text",
            "--out",
        ])
        .arg(out_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect(c.stdout.take().unwrap());
    let err = collect(c.stderr.take().unwrap());
    finish(&mut c, &out, &err, T)
}

fn history(s: &Setup, db: &str) -> String {
    let h = ferry(s, db).args(["history", "--json"]).output().unwrap();
    String::from_utf8_lossy(&h.stdout).into_owned()
}

#[test]
fn a_snippet_arrives_on_stdout_byte_exact_and_nothing_is_written() {
    let s = Setup::new();
    let (mut snd, out, err) = text_sender(&s, SNIPPET, None);
    let mut seen = Vec::new();
    let room = room_from(&out, &mut seen);
    let dir = s.path("out");
    let (code, stdout, stderr) = receive_plain(&s, &room, &dir);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        SNIPPET.as_bytes(),
        "stdout carries the snippet and nothing else; stderr: {stderr}"
    );
    let (code, sout, serr) = finish(&mut snd, &out, &err, T);
    assert_eq!(code, 0, "{serr}");
    seen.extend(sout);
    assert!(String::from_utf8_lossy(&seen).contains(r#""event":"done""#));
    // Shown, not saved: no file in the output folder, not even the folder.
    assert!(
        !dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none(),
        "something was written to {}",
        dir.display()
    );
    // History has it as text, by size only.
    for db in ["send.db", "recv.db"] {
        let h = history(&s, db);
        assert!(h.contains(r#""kind":"text""#), "{db}: {h}");
        assert!(h.contains(r#""state":"done""#), "{db}: {h}");
        assert!(!h.contains("second line"), "{db} stored the text: {h}");
    }
}

#[test]
fn a_snippet_from_stdin_arrives_exactly_and_json_carries_it_in_the_text_event() {
    let s = Setup::new();
    let (mut snd, out, err) = text_sender(&s, "-", Some(SNIPPET));
    let mut seen = Vec::new();
    let room = room_from(&out, &mut seen);
    let mut rcv = s.receiver(&room, "pw-text", &s.path("out"), &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    let (code, _, serr) = finish(&mut snd, &out, &err, T);
    assert_eq!(code, 0, "{serr}");
    let texts = rcv.all("text");
    assert_eq!(texts.len(), 1, "{:#?}", rcv.events);
    assert_eq!(texts[0]["text"], SNIPPET);
    assert!(rcv.all("offer").is_empty(), "a snippet is not a file offer");
    assert_eq!(rcv.all("done").len(), 1);
}

#[test]
fn over_the_limit_the_sender_refuses_before_opening_a_room() {
    let s = Setup::new();
    let big = "é".repeat(LIMIT / 2 + 1);
    for (arg, stdin) in [(big.as_str(), None), ("-", Some(big.as_str()))] {
        let (mut snd, out, err) = text_sender(&s, arg, stdin);
        let (code, sout, serr) = finish(&mut snd, &out, &err, Duration::from_secs(10));
        assert_eq!(code, 24, "too-large exit code; stderr: {serr}");
        assert!(
            serr.contains("at most 65536 bytes"),
            "the refusal says the limit: {serr}"
        );
        let sout = String::from_utf8_lossy(&sout);
        assert!(!sout.contains("room-created"), "a room was opened: {sout}");
    }
}

/// The app's sending side is `ferry_core::send_text` (its `send_text` command is a thin
/// wrapper over it, tested in src-tauri): driven here in-process, received by a real
/// `ferry receive`, the snippet arrives on stdout exactly.
#[test]
fn a_snippet_sent_the_way_the_app_sends_reaches_the_cli_exactly() {
    let s = Setup::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut opts = ferry_core::SendOptions::new(
        s.server.url.clone(),
        ferry_core::Store::open(&s.path("app.db")).unwrap(),
    );
    opts.password = Some("pw-text".into());
    opts.bind_addrs = Some(vec!["127.0.0.1:0".into()]);
    opts.stop_on_wrong_password = false;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sending = rt.spawn(async move {
        let h = ferry_core::TransferHandle::new();
        ferry_core::send_text(opts, SNIPPET.into(), &h, ferry_core::EventSink::new(tx)).await
    });
    let room = rt.block_on(async {
        loop {
            match tokio::time::timeout(T, rx.recv()).await.unwrap() {
                Some(ferry_core::Event::RoomCreated { room, .. }) => break room,
                Some(_) => {}
                None => panic!("the sender ended before its room"),
            }
        }
    });
    let (code, stdout, stderr) = receive_plain(&s, &room, &s.path("out"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, SNIPPET.as_bytes(), "stderr: {stderr}");
    let report = rt
        .block_on(async { tokio::time::timeout(T, sending).await })
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.bytes, SNIPPET.len() as u64);
}
