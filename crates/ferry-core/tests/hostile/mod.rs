//! The hostile peer's toolkit: a real `ferry-signal` in-process, two real WebRTC links over
//! loopback, a victim folder with a sentinel tree beside it, and a peer that speaks the
//! peer protocol by hand so it can say what no honest `ferry-core` would.

// Three test crates mount this module (hostile_peer.rs, hostile_manifest.rs,
// hostile_receiver.rs), each using a part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use ferry_core::Store;
use ferry_core::link::Link;
use ferry_core::transfer::TransferHandle;
use ferry_core::transfer::receiver::{self, Decision, RecvAttempt, RecvJob};
use ferry_core::transfer::tree;
use ferry_core::{Event, EventSink};
use ferry_core::{HostRoom, Password, join};
use ferry_proto::peer::{self, Control, ControlReassembler, FileEntry, Frame};
use tokio::sync::mpsc;

pub(crate) use crate::session_common::within;
use crate::session_common::{cfg, server};

pub(crate) const MIB: u64 = 1024 * 1024;

/// `r` is a protocol error whose message says `says`.
pub(crate) fn protocol_error<T: std::fmt::Debug>(
    r: &Result<T, ferry_core::FerryError>,
    says: &str,
) {
    match r {
        Err(e @ ferry_core::FerryError::Protocol(_)) => {
            assert!(
                e.to_string().contains(says),
                "error {e:?} does not say {says:?}"
            )
        }
        other => panic!("expected a protocol error saying {says:?}, got {other:?}"),
    }
}

/// The transfer id every hostile offer uses.
pub(crate) const TRANSFER_ID: &str = "abababababababababababababababab";

/// Every case holds this: cases measure the process's peak memory, which a case running
/// beside it would spoil, and two cores do not gain from WebRTC pairs in parallel anyway.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two ends of a real link: (host, guest). The room is kept so the host's side stays up.
pub(crate) struct Pair {
    pub host: Link,
    pub guest: Link,
    _room: HostRoom,
    _srv: ferry_signal::RunningServer,
}

pub(crate) async fn connect() -> Pair {
    let srv = server().await;
    let pw = Password::generate();
    let mut room = HostRoom::create(cfg(&srv.ws_url()), pw.clone())
        .await
        .unwrap();
    let id = room.ticket().room;
    let (etx, _erx) = mpsc::unbounded_channel();
    let (h, g) = within(40, async {
        tokio::join!(room.accept(&etx), join(cfg(&srv.ws_url()), id, pw))
    })
    .await;
    Pair {
        host: h.unwrap().link,
        guest: g.unwrap().link,
        _room: room,
        _srv: srv,
    }
}

/// A temp folder holding the victim's output folder `out/` beside a sentinel tree whose
/// every byte is compared afterwards; the resume store lives in a folder of its own.
pub(crate) struct Victim {
    pub base: tempfile::TempDir,
    pub out: PathBuf,
    db: tempfile::TempDir,
    before: BTreeMap<PathBuf, Vec<u8>>,
}

impl Victim {
    pub(crate) fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let out = base.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let s = base.path().join("sentinel");
        std::fs::create_dir_all(s.join("deep/er")).unwrap();
        std::fs::write(s.join("a.txt"), b"sentinel a").unwrap();
        std::fs::write(s.join("deep/er/b.txt"), b"sentinel b").unwrap();
        std::fs::write(base.path().join("x"), b"sentinel x").unwrap();
        let db = tempfile::tempdir().unwrap();
        let before = outside(base.path(), &out);
        Victim {
            base,
            out,
            db,
            before,
        }
    }

    pub(crate) fn job(&self) -> RecvJob {
        RecvJob {
            out_dir: self.out.clone(),
            overwrite: false,
            store: Store::open(&self.db.path().join("r.db")).unwrap(),
            room: "HOSTILE".into(),
            server: String::new(),
        }
    }

    /// Nothing beside the output folder was created, changed or removed.
    pub(crate) fn assert_untouched(&self) {
        assert_eq!(
            outside(self.base.path(), &self.out),
            self.before,
            "the tree beside the output folder changed"
        );
    }

    /// Every file under the output folder, relative, with `/`.
    pub(crate) fn out_files(&self) -> Vec<String> {
        let mut v = Vec::new();
        walk(&self.out, &mut |p| {
            v.push(
                p.strip_prefix(&self.out)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            )
        });
        v.sort();
        v
    }

    /// No file under the output folder is finished: at most `.part` files.
    pub(crate) fn assert_nothing_finished(&self) {
        let done: Vec<_> = self
            .out_files()
            .into_iter()
            .filter(|f| !f.ends_with(".part"))
            .collect();
        assert!(done.is_empty(), "files claimed finished: {done:?}");
        // Nor does the resume store say so.
        let store = Store::open(&self.db.path().join("r.db")).unwrap();
        if let Some((_, files)) = store.transfer(&format!("{TRANSFER_ID}-r")).unwrap() {
            let done: Vec<_> = files
                .iter()
                .filter(|f| f.state == ferry_core::FileState::Done)
                .collect();
            assert!(done.is_empty(), "store claims finished: {done:?}");
        }
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// Every path under `base` but outside `out`, with its contents (directories as empty).
fn outside(base: &Path, out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    fn go(dir: &Path, out: &Path, m: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p == out {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                m.insert(p.clone(), Vec::new());
                go(&p, out, m);
            } else {
                m.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    go(base, out, &mut m);
    m
}

/// Runs the victim's side to its end beside the hostile `script`; the script then gets 5 s
/// more (None if it is still going: it may push more than the victim will ever read).
pub(crate) async fn victim_beside<R, T>(
    victim: impl std::future::Future<Output = R>,
    script: impl std::future::Future<Output = T>,
) -> (R, Option<T>) {
    tokio::pin!(victim);
    tokio::pin!(script);
    let mut out = None;
    let r = loop {
        tokio::select! {
            r = &mut victim => break r,
            t = &mut script, if out.is_none() => out = Some(t),
        }
    };
    if out.is_none() {
        out = tokio::time::timeout(Duration::from_secs(5), script)
            .await
            .ok();
    }
    (r, out)
}

/// The real receiver, run to its end against whatever `script` does on the other link.
/// Returns the receiver's result, its events, and what the script returned (None if it was
/// still going 5 s after the receiver stopped: a script may push more than the receiver
/// will ever read).
pub(crate) async fn receive_against<T>(
    victim: &Victim,
    link: Link,
    decision: Decision,
    secs: u64,
    script: impl std::future::Future<Output = T>,
) -> (
    Result<RecvAttempt, ferry_core::FerryError>,
    Vec<Event>,
    Option<T>,
) {
    let job = victim.job();
    let (etx, mut erx) = mpsc::unbounded_channel();
    let ev = EventSink::new(etx);
    let handle = TransferHandle::new();
    let mut decide = move |_: &receiver::Offer| decision;
    let (r, t) = within(
        secs,
        victim_beside(receiver::run(link, &job, &mut decide, &handle, &ev), script),
    )
    .await;
    drop(ev);
    let mut events = Vec::new();
    while let Ok(e) = erx.try_recv() {
        events.push(e);
    }
    (r, events, t)
}

/// The hand-driven peer.
pub(crate) struct Hostile {
    pub link: Link,
    parts: ControlReassembler,
}

impl Hostile {
    /// Up to `n` per-file errors for file 0 carrying `message`, until the link refuses one.
    pub(crate) async fn repeat_file_error(&mut self, n: usize, message: &str) {
        for _ in 0..n {
            let e = Control::Error {
                code: peer::PeerErrorCode::Io,
                message: message.to_string(),
                file: Some(0),
            };
            if !self.control(&e).await {
                break;
            }
        }
    }

    pub(crate) fn new(link: Link) -> Self {
        Hostile {
            link,
            parts: ControlReassembler::new(),
        }
    }

    /// Send a frame as is; false once the link is gone.
    pub(crate) async fn raw(&self, frame: Vec<u8>) -> bool {
        self.link.tx.send(Bytes::from(frame)).await.is_ok()
    }

    /// A control message, split into parts as an honest peer would.
    pub(crate) async fn control(&self, c: &Control) -> bool {
        for f in c.encode_frames(self.link.info.max_message_size) {
            if !self.raw(f).await {
                return false;
            }
        }
        true
    }

    /// The next control message (`hello` and chunks skipped), or None when the link ends, a
    /// frame does not decode, or `secs` pass.
    pub(crate) async fn recv(&mut self, secs: u64) -> Option<Control> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.link.rx.recv())
                .await
                .ok()??;
            match self.parts.push(&msg) {
                // Chunks (when this peer plays the receiver) are not what it waits for.
                Ok(Some(Frame::Control(Control::Hello { .. }) | Frame::Chunk(_))) | Ok(None) => {}
                Ok(Some(Frame::Control(c))) => return Some(c),
                Err(_) => return None,
            }
        }
    }

    /// Offer `files`; returns the receiver's answer.
    pub(crate) async fn offer(&mut self, files: Vec<FileEntry>) -> Option<Control> {
        let m = Control::Manifest {
            transfer_id: TRANSFER_ID.into(),
            files,
        };
        assert!(self.control(&m).await);
        self.recv(30).await
    }

    /// Send `data` of `file` as correct chunks (one piece per tree shape) and its end.
    pub(crate) async fn send_file(&self, file: u32, data: &[u8]) -> bool {
        let size = data.len() as u64;
        let mut off = 0u64;
        let mut t = tree::FileTree::new(size);
        while off < size {
            let len = tree::piece_len(off, size, size, 16 * 1024);
            let piece = &data[off as usize..(off + len) as usize];
            let cv = tree::piece_cv(off, piece);
            t.push(off, piece, cv).unwrap();
            let frame = peer::encode_chunk(file, off, 0, &cv, piece);
            if !self.raw(frame).await {
                return false;
            }
            off += len;
        }
        let hash = t.finalize().unwrap().to_hex().to_string();
        self.control(&Control::FileEnd { file, hash }).await
    }

    /// Read control messages until the link ends or `secs` pass; what came.
    pub(crate) async fn drain(&mut self, secs: u64) -> Vec<Control> {
        let mut v = Vec::new();
        while let Some(c) = self.recv(secs).await {
            v.push(c);
        }
        v
    }
}

pub(crate) fn entry(path: &str, size: u64) -> FileEntry {
    FileEntry {
        path: path.into(),
        size,
        mtime_ms: 1_700_000_000_000,
        dir: false,
    }
}

/// Accepted file indices of an `accept`.
pub(crate) fn accepted(c: &Option<Control>) -> Vec<u32> {
    match c {
        Some(Control::Accept { files }) => files.iter().map(|a| a.file).collect(),
        other => panic!("expected accept, got {other:?}"),
    }
}

/// Resident set and its peak, in bytes (Linux `/proc/self/status`).
pub(crate) fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// Peak resident growth while `f` runs: the kernel's high-water mark is reset first.
pub(crate) async fn peak_growth<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (base, _) = rss();
    let t = f.await;
    let (_, peak) = rss();
    (t, peak.saturating_sub(base))
}
