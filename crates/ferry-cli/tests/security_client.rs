//! The receiving and sending client against hostile names and planted files: real `ferry`
//! processes, a real signaling server, real folders and a real SQLite store.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use ferry_core::{Direction, FileRow, FileState, Store, TransferRow, TransferState};

/// A `ferry` process in human (non-JSON) mode: every stdout and stderr line, raw bytes kept
/// so escape sequences are seen as the terminal would get them.
struct Human {
    child: Child,
    rx: mpsc::Receiver<(bool, Vec<u8>)>,
    /// `(is_stderr, line)` in arrival order.
    lines: Vec<(bool, Vec<u8>)>,
}

impl Human {
    fn spawn(args: &[&str], db: &Path, stdin: &str) -> Human {
        let mut child = Command::new(FERRY)
            .args(args)
            .env("FERRY_DB", db)
            .env("FERRY_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes()).unwrap();
            // Kept open (leaked into a thread that holds it) so the process does not see EOF
            // before it asks; dropped when the test ends.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(120));
                drop(i);
            });
        }
        let (tx, rx) = mpsc::channel();
        for (err, stream) in [
            (
                false,
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            ),
            (true, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                // Bounded: at most this many lines from one process.
                for _ in 0..100_000 {
                    let mut line = Vec::new();
                    match r.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if tx.send((err, line)).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        Human {
            child,
            rx,
            lines: Vec::new(),
        }
    }

    fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    fn stderr(&self) -> Vec<u8> {
        self.lines
            .iter()
            .filter(|(e, _)| *e)
            .flat_map(|(_, l)| l.clone())
            .collect()
    }

    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let s = String::from_utf8_lossy(&l.1).into_owned();
                    self.lines.push(l);
                    if pred(&s) {
                        return s;
                    }
                }
                Err(_) => panic!("no {what} within {T:?}; saw {}", self.text()),
            }
        }
    }

    fn finish(&mut self) -> i32 {
        let deadline = Instant::now() + T;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                while let Ok(l) = self.rx.try_recv() {
                    self.lines.push(l);
                }
                return st.code().unwrap_or(-1);
            }
            while let Ok(l) = self.rx.try_recv() {
                self.lines.push(l);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("did not exit within {T:?}; saw {}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Human {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every path under `root` with its kind and content (symlinks by target, not followed).
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(format!("{rel} {}", hash(&p)));
            }
        }
    }
    out.sort();
    out
}

/// Every transfer and file row in the store at `db`.
fn rows(db: &Path) -> String {
    let s = Store::open(db).unwrap();
    let mut out = String::new();
    for t in s.history(10_000).unwrap() {
        out.push_str(&format!("{t:?}\n"));
        for f in s.transfer(&t.id).unwrap().unwrap().1 {
            out.push_str(&format!("  {f:?}\n"));
        }
    }
    out
}

/// Item 8 and 9: the consent prompt shows a hostile name escaped, and saying no leaves the
/// output folder and the store exactly as they were.
#[cfg(unix)]
#[test]
fn prompt_escapes_hostile_names_and_a_declined_offer_changes_nothing() {
    let s = Setup::new();
    // Clears the screen, retitles the terminal, rings the bell, then flips "exe.pdf" around.
    let evil = "\u{1b}[2J\u{1b}]0;pwned\u{7}report\u{9b}31m\u{202e}fdp.exe";
    let tree = s.path("src/tree");
    std::fs::create_dir_all(tree.join("sub/empty")).unwrap();
    std::fs::write(tree.join(evil), b"payload").unwrap();
    let mut snd = s.sender(std::slice::from_ref(&tree), "pw-decline", &[]);
    let (room, _) = room_of(&mut snd);

    let out = s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("mine.txt"), b"mine").unwrap();
    let db = s.path("recv.db");
    {
        let st = Store::open(&db).unwrap();
        let t = TransferRow {
            id: "earlier-r".into(),
            direction: Direction::Receive,
            kind: ferry_core::TransferKind::Files,
            room: "OLD".into(),
            peer: String::new(),
            server: s.server.url.clone(),
            host_token: String::new(),
            out_dir: out.display().to_string(),
            state: TransferState::Done,
            created_at: 1,
            updated_at: 2,
            total_bytes: 4,
            done_bytes: 4,
            error: None,
        };
        let f = FileRow {
            idx: 0,
            path: "mine.txt".into(),
            size: 4,
            mtime_ms: 1,
            is_dir: false,
            source: None,
            dest: Some(out.join("mine.txt").display().to_string()),
            verified_offset: 4,
            hash: None,
            state: FileState::Done,
        };
        st.insert_if_new(&t, &[f]).unwrap();
    }
    let (files_before, rows_before) = (listing(&out), rows(&db));

    let out_s = out.display().to_string();
    let mut rcv = Human::spawn(
        &[
            "receive",
            &room,
            "--server",
            &s.server.url,
            "--password",
            "pw-decline",
            "--out",
            &out_s,
        ],
        &db,
        "n\n",
    );
    assert_eq!(rcv.finish(), 22, "{}", rcv.text());
    assert_eq!(snd.finish(T), 22, "{:#?}", snd.events);

    let err = rcv.stderr();
    let shown = String::from_utf8_lossy(&err);
    assert!(shown.contains("Accept?"), "{shown}");
    assert!(shown.contains("report"), "{shown}");
    for bad in ["\u{1b}", "\u{7}", "\u{9b}", "\u{202e}"] {
        assert!(
            !shown.contains(bad),
            "raw {bad:?} reached the terminal: {shown:?}"
        );
    }
    assert!(shown.contains("\\u{1b}[2J"), "{shown:?}");
    assert!(shown.contains("\\u{202e}fdp.exe"), "{shown:?}");

    assert_eq!(listing(&out), files_before, "the output folder changed");
    assert_eq!(rows(&db), rows_before, "the store changed");
}

/// Item 6: a `.part` file the user made, and a `.part` symlink planted to point outside,
/// are neither truncated nor written through; the files still arrive.
#[cfg(unix)]
#[test]
fn planted_part_files_are_left_alone() {
    let s = Setup::new();
    let marker = s.path("src/marker.txt");
    let other = s.path("src/other.txt");
    random_file(&marker, 200_000, 1);
    random_file(&other, 150_000, 2);
    let out = s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("marker.txt.part"), b"the user's own notes").unwrap();
    let outside = s.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("target"), b"untouched").unwrap();
    std::os::unix::fs::symlink(outside.join("target"), out.join("other.txt.part")).unwrap();
    let outside_before = listing(&outside);

    let mut snd = s.sender(&[marker.clone(), other.clone()], "pw-part", &[]);
    let (room, _) = room_of(&mut snd);
    let mut rcv = s.receiver(&room, "pw-part", &out, &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);

    assert_eq!(listing(&outside), outside_before, "bytes landed outside");
    assert_eq!(
        std::fs::read(out.join("marker.txt.part")).unwrap(),
        b"the user's own notes"
    );
    assert!(
        std::fs::symlink_metadata(out.join("other.txt.part"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    for (name, src) in [("marker.txt", &marker), ("other.txt", &other)] {
        let m = std::fs::symlink_metadata(out.join(name)).unwrap();
        assert!(m.is_file(), "{name} is not a plain file");
        assert_eq!(hash(&out.join(name)), hash(src), "{name}");
    }
    // Nothing else left behind: the stand-in `.part` names were moved into place.
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        4,
        "{:?}",
        listing(&out)
    );
}

/// Item 7: a symlink inside a picked folder is not followed (the sender says which it
/// skipped); a symlink the user names on the command line is.
#[cfg(unix)]
#[test]
fn symlinks_inside_a_picked_folder_are_skipped_and_listed() {
    let s = Setup::new();
    let ssh = s.path("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_rsa"), b"-----BEGIN SECRET KEY-----").unwrap();
    let tree = s.path("src/project");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("readme.txt"), b"hello").unwrap();
    std::os::unix::fs::symlink(ssh.join("id_rsa"), tree.join("id_rsa")).unwrap();
    std::os::unix::fs::symlink(&ssh, tree.join("keys")).unwrap();
    let real = s.path("src/real.txt");
    std::fs::write(&real, b"named on the command line").unwrap();
    let named = s.path("src/named.txt");
    std::os::unix::fs::symlink(&real, &named).unwrap();

    let (tree_s, named_s) = (tree.display().to_string(), named.display().to_string());
    let mut snd = Human::spawn(
        &[
            "send",
            "--server",
            &s.server.url,
            "--password",
            "pw-links",
            &tree_s,
            &named_s,
        ],
        &s.path("send.db"),
        "",
    );
    let line = snd.wait_line("room", |l| l.starts_with("Room:"));
    let room = line.trim_start_matches("Room:").trim().to_string();
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-links", &out, &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(), 0, "{}", snd.text());

    let said = snd.text();
    assert!(said.contains("skipped 2 symlinks"), "{said}");
    assert!(said.contains("project/id_rsa"), "{said}");
    assert!(said.contains("project/keys"), "{said}");
    assert_eq!(
        listing(&out),
        vec![
            format!("named.txt {}", hash(&real)),
            "project/".to_string(),
            format!("project/readme.txt {}", hash(&tree.join("readme.txt"))),
        ]
    );
}

/// Item 10c: the sender's store is private to the user, and the host token is gone once
/// the transfer is done.
#[cfg(unix)]
#[test]
fn sender_store_is_private_and_forgets_the_host_token() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let f = s.path("src/a.bin");
    random_file(&f, 50_000, 3);
    let dir = s.path("state/ferry");
    let db = dir.join("send.db");
    let f_s = f.display().to_string();
    let mut snd = Peer::spawn(
        "sender",
        &[
            "send",
            "--json",
            "--server",
            &s.server.url,
            "--password",
            "pw-store",
            &f_s,
        ],
        &db,
        &[],
    );
    let (room, id) = room_of(&mut snd);
    let mode = |p: &PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "folder Ferry created");
    let mut seen = 0;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "the store is open in WAL mode while the room waits"
    );
    let mut rcv = s.receiver(&room, "pw-store", &s.path("out"), &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    let st = Store::open(&db).unwrap();
    let (t, _) = st.transfer(&id).unwrap().unwrap();
    assert_eq!(t.state, TransferState::Done);
    assert!(t.host_token.is_empty(), "host token kept after the end");
}

/// Item 10d: a wrong-password answer may equally be a server that tampered with the
/// handshake; the message says so.
#[test]
fn wrong_password_message_allows_for_a_tampering_server() {
    let s = Setup::new();
    let f = s.path("src/x.bin");
    random_file(&f, 1000, 4);
    let mut snd = s.sender(&[f], "right-one", &[]);
    let (room, _) = room_of(&mut snd);
    let out_s = s.path("out").display().to_string();
    let mut rcv = Human::spawn(
        &[
            "receive",
            &room,
            "--yes",
            "--server",
            &s.server.url,
            "--password",
            "wrong-one",
            "--out",
            &out_s,
        ],
        &s.path("recv.db"),
        "",
    );
    assert_eq!(rcv.finish(), 10, "{}", rcv.text());
    assert!(
        rcv.text()
            .contains("wrong password, or the server interfered"),
        "{}",
        rcv.text()
    );
    assert_eq!(snd.finish(T), 10, "{:#?}", snd.events);
}
