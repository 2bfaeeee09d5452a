//! What a person at a terminal sees: plain `ferry send` / `ferry receive` (no `--json`, no
//! `RUST_LOG`), the receiver answering the accept prompt itself.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{FERRY, Setup, random_file};

/// How long the receiver's user takes to answer; the "Done" line must not count it.
const ANSWER_AFTER: Duration = Duration::from_secs(3);

/// Collects a pipe's bytes on a thread, so a prompt without a newline can be seen.
fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn text(b: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&b.lock().unwrap()).into_owned()
}

fn ferry(s: &Setup, db: &str, args: &[&str]) -> Child {
    Command::new(FERRY)
        .args(args)
        .env("FERRY_DB", s.path(db))
        .env("FERRY_BIND", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "no {what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exit(c: &mut Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The seconds on the "Done: 1 MB in 0.2 s (5 MB/s)" line.
fn done_secs(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Done: "))
        .unwrap_or_else(|| panic!("no Done line in {stdout:?}"));
    let (_, rest) = line.split_once(" in ").unwrap();
    rest.split_once(" s ").unwrap().0.parse().unwrap()
}

#[test]
fn a_terminal_transfer_shows_no_dependency_warnings_and_times_only_the_data() {
    let s = Setup::new();
    let f = s.path("photo.bin");
    random_file(&f, 1_000_000, 7);
    let url = s.server.url.clone();
    let mut snd = ferry(
        &s,
        "send.db",
        &[
            "send",
            "--server",
            &url,
            "--password",
            "pw-term",
            f.to_str().unwrap(),
        ],
    );
    let snd_out = collect(snd.stdout.take().unwrap());
    let snd_err = collect(snd.stderr.take().unwrap());
    wait_until("room", common::T, || text(&snd_out).contains("Room:"));
    let out = text(&snd_out);
    let room = out
        .lines()
        .find_map(|l| l.strip_prefix("Room:"))
        .unwrap()
        .trim()
        .to_string();

    let dest = s.path("out");
    let mut rcv = ferry(
        &s,
        "recv.db",
        &[
            "receive",
            &room,
            "--server",
            &url,
            "--password",
            "pw-term",
            "--out",
            dest.to_str().unwrap(),
        ],
    );
    let rcv_out = collect(rcv.stdout.take().unwrap());
    let rcv_err = collect(rcv.stderr.take().unwrap());
    wait_until("accept prompt", common::T, || {
        text(&rcv_err).contains("Accept? [y/N]")
    });
    std::thread::sleep(ANSWER_AFTER);
    let mut stdin = rcv.stdin.take().unwrap();
    writeln!(stdin, "y").unwrap();
    stdin.flush().unwrap();

    assert_eq!(exit(&mut rcv, common::T), 0, "{}", text(&rcv_err));
    assert_eq!(exit(&mut snd, common::T), 0, "{}", text(&snd_err));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        std::fs::read(dest.join("photo.bin")).unwrap(),
        std::fs::read(&f).unwrap()
    );

    assert_eq!(
        text(&rcv_out),
        "",
        "a file receive writes nothing to stdout"
    );
    for (who, out, err) in [
        ("sender", text(&snd_out), text(&snd_err)),
        // A receiver's status lines go to stderr: its stdout is for a received text snippet.
        ("receiver", text(&rcv_err), text(&rcv_err)),
    ] {
        // The WebRTC stack's routine warnings stay out of the user's terminal.
        let noise: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("rtc_") || l.contains("webrtc"))
            .collect();
        assert!(noise.is_empty(), "{who} stderr: {noise:#?}");
        // One megabyte over loopback takes well under the user's answer time.
        let secs = done_secs(&out);
        assert!(
            secs < ANSWER_AFTER.as_secs_f64(),
            "{who} counted the wait for the user's answer: {secs} s\n{out}"
        );
    }
}
