//! Browser links (`http(s)://SERVER/j/ROOM#password`) between real `ferry` processes: what
//! `ferry send` prints is what `ferry receive` takes, with no --server or --password.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// `ferry send` in text mode (what people see); its stdout lines arrive on a channel.
fn send_text_mode(
    s: &Setup,
    file: &std::path::Path,
    extra: &[&str],
) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(FERRY)
        .args([
            "send",
            "--server",
            &s.server.url,
            "--password",
            "web link words 50%",
        ])
        .args(extra)
        .arg(file)
        .env("FERRY_DB", s.path("send.db"))
        .env("FERRY_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        // Loopback only: nothing goes out on the LAN's multicast.
        .env("FERRY_NO_ANNOUNCE", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines up to and including the first that starts with `prefix`.
fn lines_until(rx: &mpsc::Receiver<String>, prefix: &str) -> Vec<String> {
    let deadline = Instant::now() + T;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {prefix:?} line; saw {seen:#?}"));
        let hit = line.starts_with(prefix);
        seen.push(line);
        if hit {
            return seen;
        }
    }
}

#[test]
fn the_printed_web_link_receives_with_nothing_else() {
    let s = Setup::new();
    let f = s.path("src/web.bin");
    random_file(&f, 1024 * 1024 + 3, 7);
    let (mut snd, lines) = send_text_mode(&s, &f, &["--web-link"]);
    let seen = lines_until(&lines, "Web link: ");
    let link = seen
        .last()
        .unwrap()
        .strip_prefix("Web link: ")
        .unwrap()
        .to_string();
    let port = s
        .server
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws");
    assert!(
        link.starts_with(&format!("http://{port}/j/"))
            && link.ends_with("#web%20link%20words%2050%25"),
        "{link}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("Link:     ferry://join/")),
        "{seen:#?}"
    );

    let out = s.path("out");
    let o = out.display().to_string();
    let mut rcv = Peer::spawn(
        "receiver",
        &["receive", &link, "--json", "--yes", "--out", &o],
        &s.path("recv.db"),
        &[],
    );
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    let deadline = Instant::now() + T;
    let code = loop {
        if let Some(st) = snd.try_wait().unwrap() {
            break st.code();
        }
        assert!(Instant::now() < deadline, "the sender did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    assert_eq!(hash(&out.join("web.bin")), hash(&f));
}

#[test]
fn no_plain_http_link_unless_asked() {
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 10, 1);
    let (mut snd, lines) = send_text_mode(&s, &f, &[]);
    let seen = lines_until(&lines, "Expires:");
    assert!(!seen.iter().any(|l| l.contains("Web link")), "{seen:#?}");
    let _ = snd.kill();
    let _ = snd.wait();
}

#[test]
fn ferry_serve_serves_the_page_at_the_link_path() {
    use std::io::{Read, Write};
    let page = tempfile::tempdir().unwrap();
    std::fs::write(page.path().join("web.html"), "<!doctype html>ferry page").unwrap();
    let dir = page.path().display().to_string();
    let server = Server::start_with(&["--web-dir", &dir]);
    let addr = server
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /j/ABCDE-FGHJK HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("content-security-policy: "),
        "{reply}"
    );
    assert!(reply.ends_with("<!doctype html>ferry page"), "{reply}");
}
