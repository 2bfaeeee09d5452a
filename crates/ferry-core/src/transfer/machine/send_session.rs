//! The sender's side of one attempt's data phase, as a machine: frames from the receiver,
//! reads from the disk thread and the user's pause/cancel go in (with the time); reads to
//! issue, frames to send, events and the attempt's end come out. The driver in `sender.rs`
//! only pumps.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use ferry_proto::peer::{self, Control, FileAccept, FileEntry, Frame, PeerErrorCode};

use super::super::{PIPELINE, adaptive_chunk, brief, clip, peer_error};
use super::io::{ReadIn, ReadOut};
use super::progress::Progress;
use super::send_files::{SendMachine, SendStep};
use crate::defaults::DONE_WAIT;
use crate::error::FerryError;
use crate::events::Event;
use crate::transfer::sender::SendAttempt;

/// What the sender's session starts from.
pub(crate) struct SendSetup<'a> {
    pub(crate) entries: &'a [FileEntry],
    /// The receiver's answer: which files, from where.
    pub(crate) accepts: &'a [FileAccept],
    /// Unacknowledged bytes allowed out.
    pub(crate) window: u64,
    /// Largest chunk payload the link carries.
    pub(crate) chunk: usize,
    /// The user had paused before the data phase began.
    pub(crate) paused: bool,
    #[cfg(feature = "test-hooks")]
    pub(crate) hooks: crate::transfer::TestHooks,
}

/// What the driver does next (besides sending frames, see [`SendSession::poll_transmit`]).
#[derive(Debug)]
pub(crate) enum SendOutput {
    /// Queue this read on the disk thread.
    Read(ReadIn),
    Event(Event),
    /// The attempt is over: hand the peer `parting` (bounded), then return `result`.
    End {
        parting: Vec<Bytes>,
        result: Result<(), FerryError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sending,
    /// `Done` is on the link; waiting for the receiver's until the deadline.
    Draining(Instant),
    Ended,
}

pub(crate) struct SendSession {
    m: SendMachine,
    names: Vec<String>,
    max_chunk: usize,
    progress: Progress,
    att: SendAttempt,
    local_paused: bool,
    /// Control frames for the receiver, sent before any data frame.
    ctrl_q: VecDeque<Bytes>,
    /// A data frame (chunk or file end) read but not yet taken by the link: (file, gen, frame).
    pending: Option<(u32, u32, Bytes)>,
    /// Reads queued on the disk thread.
    outstanding: usize,
    /// Whole-file hashes read, reported when the receiver confirms the file.
    hashes: HashMap<u32, String>,
    /// Files whose read failed (reads queued behind the first failure fail too).
    read_failed: HashSet<u32>,
    /// `Done` is queued.
    finishing: bool,
    phase: Phase,
    out: VecDeque<SendOutput>,
    #[cfg(feature = "test-hooks")]
    hooks: crate::transfer::TestHooks,
    #[cfg(feature = "test-hooks")]
    started: Instant,
}

fn ctl(c: Control) -> Bytes {
    Bytes::from(c.encode())
}

impl SendSession {
    pub(crate) fn new(now: Instant, s: SendSetup<'_>) -> Result<Self, FerryError> {
        let sizes: Vec<u64> = s.entries.iter().map(|e| e.size).collect();
        let mut m = SendMachine::new(&sizes, s.window, s.chunk);
        m.accept(s.accepts)?;
        let resumed_from: u64 = s.accepts.iter().map(|a| a.offset).sum();
        let total: u64 = s
            .accepts
            .iter()
            .filter_map(|a| s.entries.get(a.file as usize))
            .map(|e| e.size)
            .sum();
        let mut me = Self {
            m,
            names: s.entries.iter().map(|e| e.path.clone()).collect(),
            max_chunk: s.chunk,
            progress: Progress::new(now, resumed_from, total),
            att: SendAttempt {
                resumed_from,
                ..Default::default()
            },
            local_paused: false,
            ctrl_q: VecDeque::new(),
            pending: None,
            outstanding: 0,
            hashes: HashMap::new(),
            read_failed: HashSet::new(),
            finishing: false,
            phase: Phase::Sending,
            out: VecDeque::new(),
            #[cfg(feature = "test-hooks")]
            hooks: s.hooks,
            #[cfg(feature = "test-hooks")]
            started: now,
        };
        if resumed_from > 0 {
            me.emit(Event::Resuming {
                bytes_done: resumed_from,
                total,
            });
        }
        if s.paused {
            me.set_paused(now, true);
        }
        me.advance(now);
        Ok(me)
    }

    fn emit(&mut self, e: Event) {
        self.out.push_back(SendOutput::Event(e));
    }

    fn name(&self, file: u32) -> &str {
        self.names.get(file as usize).map_or("", String::as_str)
    }

    fn end(&mut self, parting: Vec<Bytes>, result: Result<(), FerryError>) {
        if self.phase != Phase::Ended {
            self.phase = Phase::Ended;
            self.out.push_back(SendOutput::End { parting, result });
        }
    }

    fn fail(&mut self, err: FerryError) {
        self.end(Vec::new(), Err(err));
    }

    /// Issue reads while the pipeline has room, queue `Done` once everything is confirmed,
    /// and start waiting for the receiver's `Done` once ours is on the link.
    fn advance(&mut self, now: Instant) {
        if self.phase != Phase::Sending {
            return;
        }
        while !self.finishing && self.outstanding < PIPELINE {
            match self.m.next_step() {
                SendStep::Chunk {
                    file,
                    offset,
                    len,
                    generation,
                } => {
                    self.out.push_back(SendOutput::Read(ReadIn::Chunk {
                        file,
                        offset,
                        len,
                        generation,
                    }));
                    self.outstanding += 1;
                }
                SendStep::End { file, generation } => {
                    self.out
                        .push_back(SendOutput::Read(ReadIn::End { file, generation }));
                    self.outstanding += 1;
                }
                SendStep::Done => {
                    self.ctrl_q.push_back(ctl(Control::Done));
                    self.finishing = true;
                }
                SendStep::Wait => break,
            }
        }
        if self.finishing && self.ctrl_q.is_empty() && self.pending.is_none() {
            self.phase = Phase::Draining(now + DONE_WAIT);
        }
    }

    /// Next thing to do besides sending; `None` once the queue is empty.
    pub(crate) fn poll_output(&mut self) -> Option<SendOutput> {
        self.out.pop_front()
    }

    /// Whether a frame may be read off the link now.
    pub(crate) fn wants_frame(&self) -> bool {
        self.phase != Phase::Ended
    }

    /// Whether a result from the disk thread may be taken now (one data frame waits at most).
    pub(crate) fn wants_read(&self) -> bool {
        self.phase == Phase::Sending && self.pending.is_none()
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has a frame for the link now.
    pub(crate) fn has_transmit(&self, now: Instant) -> bool {
        self.phase == Phase::Sending
            && (!self.ctrl_q.is_empty() || (self.pending.is_some() && self.rate_allows(now)))
    }

    #[cfg(feature = "test-hooks")]
    fn rate_due(&self) -> Option<Instant> {
        let rate = self.hooks.rate_limit_bps.filter(|r| *r > 0)?;
        Some(
            self.started
                + std::time::Duration::from_secs_f64(self.att.bytes_sent as f64 / rate as f64),
        )
    }

    #[cfg(not(feature = "test-hooks"))]
    fn rate_due(&self) -> Option<Instant> {
        None
    }

    fn rate_allows(&self, now: Instant) -> bool {
        self.rate_due().is_none_or(|due| now >= due)
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Draining(until) => Some(until),
            Phase::Sending if self.ctrl_q.is_empty() && self.pending.is_some() => self.rate_due(),
            _ => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Draining(until) = self.phase
            && now >= until
        {
            self.end(Vec::new(), Ok(()));
        }
    }

    /// The next frame for the link (the driver holds a send permit): control first, then
    /// the data frame read last, unless a rewind since its read made it stale.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.phase != Phase::Sending {
            return None;
        }
        let frame = if let Some(c) = self.ctrl_q.pop_front() {
            Some(c)
        } else if self.rate_allows(now)
            && let Some((file, generation, frame)) = self.pending.take()
        {
            if self.m.generation(file) == Some(generation) {
                let is_chunk = frame.first() == Some(&peer::KIND_CHUNK);
                let frame = if is_chunk {
                    self.corrupt_hook(frame)
                } else {
                    frame
                };
                if is_chunk {
                    self.att.bytes_sent +=
                        frame.len().saturating_sub(peer::CHUNK_HEADER_LEN) as u64;
                }
                Some(frame)
            } else {
                None
            }
        } else {
            None
        };
        self.advance(now);
        frame
    }

    #[cfg(feature = "test-hooks")]
    fn corrupt_hook(&self, frame: Bytes) -> Bytes {
        self.hooks.corrupt(frame)
    }

    #[cfg(not(feature = "test-hooks"))]
    fn corrupt_hook(&self, frame: Bytes) -> Bytes {
        frame
    }

    /// The user paused or resumed; announced to the receiver once per change.
    pub(crate) fn set_paused(&mut self, now: Instant, p: bool) {
        if p == self.local_paused || self.phase != Phase::Sending {
            return;
        }
        self.local_paused = p;
        self.m.set_paused_local(p);
        self.ctrl_q
            .push_back(ctl(if p { Control::Pause } else { Control::Resume }));
        self.emit(if p { Event::Paused } else { Event::Resumed });
        self.advance(now);
    }

    /// The user cancelled: the receiver is told why.
    pub(crate) fn cancel(&mut self) {
        if let Phase::Draining(_) = self.phase {
            // Every file is confirmed: the cancel only cuts the wait for the receiver's `Done`.
            return self.end(Vec::new(), Ok(()));
        }
        let last = ctl(Control::Cancel {
            reason: "sender cancelled".into(),
        });
        self.end(vec![last], Err(FerryError::Cancelled("by the user".into())));
    }

    /// The link is gone.
    pub(crate) fn link_closed(&mut self) {
        match self.phase {
            // Our `Done` is out; a receiver that hangs up instead of answering is finished.
            Phase::Draining(_) => self.end(Vec::new(), Ok(())),
            _ => self.fail(FerryError::PeerGone(
                "link closed during the transfer".into(),
            )),
        }
    }

    /// The disk thread is gone.
    pub(crate) fn reader_gone(&mut self) {
        self.fail(FerryError::Io("reader thread stopped".into()));
    }

    /// A frame from the receiver.
    pub(crate) fn handle_frame(&mut self, now: Instant, msg: &[u8]) {
        match self.phase {
            Phase::Ended => return,
            Phase::Draining(_) => {
                if matches!(peer::decode(msg), Ok(Frame::Control(Control::Done))) {
                    self.end(Vec::new(), Ok(()));
                }
                return;
            }
            Phase::Sending => {}
        }
        let frame = match peer::decode(msg) {
            Ok(Frame::Control(c)) => c,
            Ok(Frame::Chunk(_)) => {
                return self.fail(FerryError::Protocol("receiver sent a chunk".into()));
            }
            Err(e) => return self.fail(FerryError::Protocol(e.to_string())),
        };
        if let Err(e) = self.handle_control(now, frame) {
            return self.fail(e);
        }
        self.advance(now);
    }

    fn handle_control(&mut self, now: Instant, c: Control) -> Result<(), FerryError> {
        match c {
            Control::Ack { file, offset } => {
                self.m.on_ack(file, offset)?;
                let acked = self.m.acked_total();
                self.m.set_chunk(adaptive_chunk(
                    self.progress.rate(now, acked),
                    self.max_chunk,
                ));
                // Field by field, so the name is borrowed, not copied, on every ack.
                let name = self.names.get(file as usize).map_or("", String::as_str);
                if let Some(e) = self.progress.event(now, name, acked, false) {
                    self.out.push_back(SendOutput::Event(e));
                }
            }
            Control::Resend { file, offset } => {
                self.m.on_resend(file, offset)?;
                tracing::warn!(file, offset, "receiver rejected a chunk; rewinding");
                let file = self.name(file).to_string();
                self.emit(Event::ChunkRejected { file, offset });
            }
            Control::FileDone { file } => {
                self.m.on_file_done(file)?;
                let path = self.name(file).to_string();
                let hash = self.hashes.remove(&file).unwrap_or_default();
                self.emit(Event::FileDone {
                    path: path.clone(),
                    hash,
                });
                let acked = self.m.acked_total();
                if let Some(e) = self.progress.event(now, &path, acked, true) {
                    self.emit(e);
                }
            }
            // Announced once per change: a peer repeating itself adds nothing.
            Control::Pause | Control::Resume => {
                let p = matches!(c, Control::Pause);
                if self.m.paused_remote() != p {
                    self.m.set_paused_remote(p);
                    self.emit(if p { Event::Paused } else { Event::Resumed });
                }
            }
            Control::Cancel { reason } => {
                return Err(FerryError::Cancelled(format!(
                    "by the receiver: {}",
                    clip(&reason)
                )));
            }
            Control::Error {
                code,
                message,
                file: Some(file),
            } => {
                // One error per file in progress: a repeated one would grow the list of
                // failures without bound.
                if !self.m.in_progress(file) {
                    return Err(FerryError::Protocol(format!(
                        "error for file {file}, which is not in progress"
                    )));
                }
                self.m.fail_file(file);
                let err = peer_error(code, &message);
                let path = self.name(file).to_string();
                self.emit(Event::FileFailed {
                    path,
                    code: err.code().into(),
                    message: err.to_string(),
                });
                self.att.failed.push((file, err));
            }
            Control::Error {
                code,
                message,
                file: None,
            } => return Err(peer_error(code, &message)),
            Control::Hello { .. } => {}
            other => {
                return Err(FerryError::Protocol(format!(
                    "unexpected {} from the receiver",
                    brief(&other)
                )));
            }
        }
        Ok(())
    }

    /// A result from the reader thread.
    pub(crate) fn handle_read(&mut self, now: Instant, out: ReadOut) {
        if self.phase != Phase::Sending {
            return;
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        match out {
            ReadOut::Frame {
                file,
                generation,
                frame,
            } => self.pending = Some((file, generation, frame)),
            ReadOut::End {
                file,
                generation,
                hash,
            } => {
                self.hashes.insert(file, hash.clone());
                self.pending = Some((file, generation, ctl(Control::FileEnd { file, hash })));
            }
            ReadOut::Failed { file, err } => {
                // Reads queued before the first failure fail too: report once.
                if !self.read_failed.insert(file) {
                    return self.advance(now);
                }
                self.m.fail_file(file);
                let path = self.name(file).to_string();
                tracing::warn!(%path, %err, "file not sent");
                self.emit(Event::FileFailed {
                    path,
                    code: err.code().into(),
                    message: err.to_string(),
                });
                self.ctrl_q.push_back(ctl(Control::Error {
                    code: err.peer_code(),
                    message: err.to_string(),
                    file: Some(file),
                }));
                if !matches!(err.peer_code(), PeerErrorCode::SourceChanged) {
                    // Not a per-file condition: the whole transfer stops.
                    let parting = self.ctrl_q.drain(..).collect();
                    return self.end(parting, Err(err));
                }
                self.att.failed.push((file, err));
            }
        }
        self.advance(now);
    }

    /// What this attempt did; call once it has ended.
    pub(crate) fn into_attempt(mut self, now: Instant) -> SendAttempt {
        self.att.bytes_acked = self.m.acked_total();
        self.att.secs = self.progress.secs(now);
        self.att
    }
}
