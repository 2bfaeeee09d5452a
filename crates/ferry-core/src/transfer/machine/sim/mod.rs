//! The two session machines wired to each other in memory, on a simulated clock: no sockets,
//! no async runtime. The disk sides are the real reader and writer called inline on temp
//! files (real hashing, verification, `.part` files and store), so what these tests pin down
//! is the protocol between the machines: pause, cancel, resend, a vanishing peer, resume
//! (the cases are in `scenarios`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_proto::peer::{self, Control, FileAccept, Frame};
use tokio::sync::mpsc;

use super::super::WINDOW;
use super::super::reader::Reader;
use super::super::writer::{PartFile, Writer};
use super::{
    ReadIn, RecvOutput, RecvSession, SendOutput, SendSession, SendSetup, WriteIn, WriteOut,
};
use crate::error::FerryError;
use crate::events::Event;
use crate::store::Store;
use crate::transfer::receiver::RecvAttempt;
use crate::transfer::sender::SendAttempt;

/// Frames the link holds each way (a real link's channel is bounded too).
const LINK_CAP: usize = 8;
/// Simulated time one busy step takes, and one idle step when no timer is due sooner.
const STEP: Duration = Duration::from_millis(1);
const IDLE: Duration = Duration::from_millis(100);
/// Chunk payload (a real link's is 64–256 KiB).
const CHUNK: usize = 64 * 1024;
const K: u64 = 1024;

struct Sim {
    _dir: tempfile::TempDir,
    src: Vec<(PathBuf, Vec<u8>)>,
    out: PathBuf,
    now: Instant,
    s: SendSession,
    s_end: Option<(Instant, Result<(), FerryError>)>,
    s_events: Vec<Event>,
    reader: Reader,
    reads: VecDeque<ReadIn>,
    r: RecvSession,
    r_end: Option<(Instant, Result<(), FerryError>)>,
    r_events: Vec<Event>,
    writer: Writer,
    written: mpsc::UnboundedReceiver<WriteOut>,
    /// The link, each way.
    to_r: VecDeque<Bytes>,
    to_s: VecDeque<Bytes>,
    /// The link is closed: queued frames still arrive, then each side sees the close.
    cut: bool,
    /// The receiver's parting frames (its `Done`, its cancel) are lost, and its close never
    /// reaches the sender: it vanished.
    receiver_vanishes: bool,
    /// Damage the Nth chunk frame (1-based) on its way to the receiver.
    damage: Option<usize>,
    /// Every chunk that crossed to the receiver: (file, offset).
    chunks: Vec<(u32, u64)>,
    /// When the sender's `Done` went onto the link.
    done_sent: Option<Instant>,
    /// How many chunks had crossed when the sender took each resend request.
    rewinds: Vec<usize>,
}

impl Sim {
    /// Files of these sizes; `resume` gives a file index and the offset its `.part` holds.
    fn new(sizes: &[u64], resume: &[(u32, u64)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (src_dir, out) = (dir.path().join("src"), dir.path().join("out"));
        std::fs::create_dir_all(&src_dir).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let out = out.canonicalize().unwrap();
        let src: Vec<(PathBuf, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let p = src_dir.join(format!("f{i}.bin"));
                let d = ferry_testkit::data(n as usize, i as u64 + 1);
                std::fs::write(&p, &d).unwrap();
                (p, d)
            })
            .collect();
        let paths: Vec<PathBuf> = src.iter().map(|(p, _)| p.clone()).collect();
        let m = crate::manifest::build(&paths).unwrap();
        let accepts: Vec<FileAccept> = (0..sizes.len() as u32)
            .map(|file| {
                let offset = resume
                    .iter()
                    .find(|(f, _)| *f == file)
                    .map_or(0, |(_, o)| *o);
                FileAccept { file, offset }
            })
            .collect();
        let mut files = Vec::new();
        for (e, a) in m.entries.iter().zip(&accepts) {
            let dest = out.join(&e.path);
            if a.offset > 0 {
                // What an earlier attempt left: the first `offset` bytes, verified.
                let have = &src[a.file as usize].1[..a.offset as usize];
                std::fs::write(crate::fsio::part_path(&dest), have).unwrap();
            }
            files.push(Some(PartFile::new(e.size, dest, a.offset)));
        }
        let now = Instant::now();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        let (tx, written) = mpsc::unbounded_channel();
        let writer = Writer::new(out.clone(), files, store, "sim-r".into(), false, false, tx);
        let s = SendSession::new(
            now,
            SendSetup {
                entries: &m.entries,
                accepts: &accepts,
                window: WINDOW,
                chunk: CHUNK,
                paused: false,
                #[cfg(feature = "test-hooks")]
                hooks: Default::default(),
            },
        )
        .unwrap();
        let resumed_from = accepts.iter().map(|a| a.offset).sum();
        let r = RecvSession::new(
            now,
            m.entries.iter().map(|e| e.path.clone()).collect(),
            accepts.iter().map(|a| a.file),
            RecvAttempt {
                transfer_id: "sim-r".into(),
                total: sizes.iter().sum(),
                resumed_from,
                ..Default::default()
            },
            false,
        );
        Sim {
            _dir: dir,
            src,
            out,
            now,
            s,
            s_end: None,
            s_events: Vec::new(),
            reader: Reader::new(m.entries.clone(), m.sources.clone(), None),
            reads: VecDeque::new(),
            r,
            r_end: None,
            r_events: Vec::new(),
            writer,
            written,
            to_r: VecDeque::new(),
            to_s: VecDeque::new(),
            cut: false,
            receiver_vanishes: false,
            damage: None,
            chunks: Vec::new(),
            done_sent: None,
            rewinds: Vec::new(),
        }
    }

    /// A frame the sender puts on the link, as it crosses (logged, maybe damaged).
    fn cross(&mut self, f: Bytes) -> Bytes {
        match peer::decode(&f) {
            Ok(Frame::Chunk(c)) => {
                self.chunks.push((c.file, c.offset));
                if self.damage == Some(self.chunks.len()) {
                    let mut v = f.to_vec();
                    if let Some(b) = v.last_mut() {
                        *b ^= 0xff;
                    }
                    return Bytes::from(v);
                }
            }
            Ok(Frame::Control(Control::Done)) => self.done_sent = Some(self.now),
            _ => {}
        }
        f
    }

    /// One round of everything either side can do now. Whether anything happened.
    fn step(&mut self) -> bool {
        let now = self.now;
        let mut busy = false;
        while let Some(o) = self.s.poll_output() {
            busy = true;
            match o {
                SendOutput::Read(r) => self.reads.push_back(r),
                SendOutput::Event(e) => self.s_events.push(e),
                SendOutput::End { parting, result } => {
                    if !self.cut {
                        self.to_r.extend(parting);
                    }
                    self.s_end = Some((now, result));
                }
            }
        }
        while let Some(o) = self.r.poll_output() {
            busy = true;
            match o {
                RecvOutput::Event(e) => self.r_events.push(e),
                RecvOutput::End { parting, result } => {
                    if !self.cut && !self.receiver_vanishes {
                        self.to_s.extend(parting);
                    }
                    self.r_end = Some((now, result));
                }
            }
        }
        if self.s_end.is_none() {
            while self.s.wants_read()
                && let Some(req) = self.reads.pop_front()
            {
                let out = self.reader.read(req);
                self.s.handle_read(now, out);
                busy = true;
            }
            while !self.cut && self.to_r.len() < LINK_CAP && self.s.has_transmit(now) {
                if let Some(f) = self.s.poll_transmit(now) {
                    let f = self.cross(f);
                    self.to_r.push_back(f);
                }
                busy = true;
            }
            while self.s.wants_frame()
                && let Some(f) = self.to_s.pop_front()
            {
                if let Ok(Frame::Control(Control::Resend { .. })) = peer::decode(&f) {
                    self.rewinds.push(self.chunks.len());
                }
                self.s.handle_frame(now, &f);
                busy = true;
            }
            if self.cut && self.to_s.is_empty() && self.s.wants_frame() {
                self.s.link_closed();
                busy = true;
            }
            if self.s.poll_timeout().is_some_and(|t| t <= now) {
                self.s.handle_timeout(now);
                busy = true;
            }
        }
        if self.r_end.is_none() {
            while !self.cut && self.to_s.len() < LINK_CAP && self.r.has_transmit() {
                if let Some(f) = self.r.poll_transmit() {
                    self.to_s.push_back(f);
                }
                busy = true;
            }
            while let Some(w) = self.r.poll_write() {
                self.write(w);
                busy = true;
            }
            while self.r.wants_frame()
                && let Some(f) = self.to_r.pop_front()
            {
                self.r.handle_frame(f);
                busy = true;
            }
            if self.cut && self.to_r.is_empty() && self.r.wants_frame() {
                self.r.link_closed();
                busy = true;
            }
        }
        busy
    }

    fn write(&mut self, w: WriteIn) {
        let now = self.now;
        if let Err(e) = self.writer.handle(w) {
            self.r.handle_write(now, WriteOut::Fatal(e));
        }
        while let Ok(o) = self.written.try_recv() {
            self.r.handle_write(now, o);
        }
    }

    /// Step until `done` holds, at most `secs` of simulated time. Idle stretches jump to the
    /// sender's next timer.
    fn run_until(&mut self, secs: u64, mut done: impl FnMut(&Sim) -> bool) {
        let limit = self.now + Duration::from_secs(secs);
        for _ in 0..1_000_000 {
            if done(self) {
                return;
            }
            assert!(self.now < limit, "not settled in {secs} simulated seconds");
            if self.step() {
                self.now += STEP;
            } else {
                let timer = self
                    .s_end
                    .is_none()
                    .then(|| self.s.poll_timeout())
                    .flatten();
                self.now = match timer {
                    Some(t) if t > self.now => t.min(self.now + IDLE),
                    _ => self.now + IDLE,
                };
            }
        }
        panic!("not settled in a million steps");
    }

    fn run_to_end(&mut self) {
        self.run_until(60, |s| s.s_end.is_some() && s.r_end.is_some());
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(d.as_secs() + 1, |s| s.now >= until);
    }

    fn s_result(&self) -> &Result<(), FerryError> {
        &self.s_end.as_ref().expect("sender still running").1
    }

    fn r_result(&self) -> &Result<(), FerryError> {
        &self.r_end.as_ref().expect("receiver still running").1
    }

    fn assert_arrived(&self) {
        for (p, d) in &self.src {
            let name = p.file_name().unwrap();
            let got = std::fs::read(self.out.join(name)).unwrap();
            assert!(got == *d, "{name:?} differs");
            assert!(!crate::fsio::part_path(&self.out.join(name)).exists());
        }
    }

    fn attempts(self) -> (SendAttempt, RecvAttempt) {
        (self.s.into_attempt(self.now), self.r.into_attempt(self.now))
    }
}

mod scenarios;
