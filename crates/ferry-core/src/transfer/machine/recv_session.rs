//! The receiver's side of one attempt's data phase, as a machine: frames from the sender,
//! reports from the writer thread and the user's pause/cancel go in (with the time); writes
//! to queue, frames to send, events and the attempt's end come out. The driver in
//! `receiver.rs` only pumps.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use ferry_proto::peer::{self, Control, Frame};

use super::super::{brief, clip, peer_error};
use super::io::{WriteIn, WriteOut};
use super::progress::Progress;
use crate::error::FerryError;
use crate::events::Event;
use crate::transfer::receiver::{ReceivedFile, RecvAttempt};

/// What the driver does next (besides frames for the link and writes for the disk, see
/// [`RecvSession::poll_transmit`] and [`RecvSession::poll_write`]).
#[derive(Debug)]
pub(crate) enum RecvOutput {
    Event(Event),
    /// The attempt is over: hand the peer `parting` (bounded), then return `result`.
    End {
        parting: Vec<Bytes>,
        result: Result<(), FerryError>,
    },
}

pub(crate) struct RecvSession {
    names: Vec<String>,
    /// Accepted files neither confirmed nor failed.
    remaining: HashSet<u32>,
    progress: Progress,
    /// Bytes held, including what an earlier attempt left (progress counts from there).
    done_bytes: u64,
    att: RecvAttempt,
    local_paused: bool,
    remote_paused: bool,
    sender_done: bool,
    /// Control frames for the sender.
    ctrl_q: VecDeque<Bytes>,
    /// What the link delivered, waiting for room on the writer's queue: while it waits no
    /// more is read off the link, so a slow disk slows the sender.
    pending: Option<WriteIn>,
    ended: bool,
    out: VecDeque<RecvOutput>,
}

fn ctl(c: Control) -> Bytes {
    Bytes::from(c.encode())
}

impl RecvSession {
    /// `att` carries the attempt's id, total, resume point and refused names; `accepted` the
    /// files the accept named; `paused` whether the user had paused before the data phase.
    pub(crate) fn new(
        now: Instant,
        names: Vec<String>,
        accepted: impl IntoIterator<Item = u32>,
        att: RecvAttempt,
        paused: bool,
    ) -> Self {
        let mut me = Self {
            names,
            remaining: accepted.into_iter().collect(),
            progress: Progress::new(now, att.resumed_from, att.total),
            done_bytes: att.resumed_from,
            att,
            local_paused: false,
            remote_paused: false,
            sender_done: false,
            ctrl_q: VecDeque::new(),
            pending: None,
            ended: false,
            out: VecDeque::new(),
        };
        if paused {
            me.set_paused(true);
        }
        me
    }

    fn emit(&mut self, e: Event) {
        self.out.push_back(RecvOutput::Event(e));
    }

    fn name(&self, file: u32) -> &str {
        self.names.get(file as usize).map_or("", String::as_str)
    }

    fn end(&mut self, parting: Vec<Bytes>, result: Result<(), FerryError>) {
        if !self.ended {
            self.ended = true;
            self.out.push_back(RecvOutput::End { parting, result });
        }
    }

    fn fail(&mut self, err: FerryError) {
        self.end(Vec::new(), Err(err));
    }

    /// Once the sender said `Done` and everything it sent is handed on: finished if every
    /// file is accounted for.
    fn check_finished(&mut self) {
        if self.ended || !self.sender_done || self.pending.is_some() || !self.ctrl_q.is_empty() {
            return;
        }
        if self.remaining.is_empty() {
            // Tells the sender it can report done now instead of waiting for our close.
            self.end(vec![ctl(Control::Done)], Ok(()));
        } else {
            self.fail(FerryError::Protocol(
                "sender finished before every file was confirmed".into(),
            ));
        }
    }

    pub(crate) fn poll_output(&mut self) -> Option<RecvOutput> {
        if self.out.is_empty() {
            self.check_finished();
        }
        self.out.pop_front()
    }

    /// Whether a frame may be read off the link now.
    pub(crate) fn wants_frame(&self) -> bool {
        !self.ended && self.pending.is_none() && !self.sender_done
    }

    pub(crate) fn has_transmit(&self) -> bool {
        !self.ended && !self.ctrl_q.is_empty()
    }

    /// The next control frame for the link (the driver holds a send permit).
    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        self.ctrl_q.pop_front()
    }

    pub(crate) fn has_write(&self) -> bool {
        !self.ended && self.pending.is_some()
    }

    /// The next message for the writer (the driver holds room on its queue).
    pub(crate) fn poll_write(&mut self) -> Option<WriteIn> {
        if self.ended {
            return None;
        }
        self.pending.take()
    }

    /// The user paused or resumed; announced to the sender once per change.
    pub(crate) fn set_paused(&mut self, p: bool) {
        if p == self.local_paused || self.ended {
            return;
        }
        self.local_paused = p;
        self.ctrl_q
            .push_back(ctl(if p { Control::Pause } else { Control::Resume }));
        self.emit(if p { Event::Paused } else { Event::Resumed });
    }

    /// The user cancelled: the sender is told why.
    pub(crate) fn cancel(&mut self) {
        let last = ctl(Control::Cancel {
            reason: "receiver cancelled".into(),
        });
        self.end(vec![last], Err(FerryError::Cancelled("by the user".into())));
    }

    pub(crate) fn link_closed(&mut self) {
        self.fail(FerryError::PeerGone(
            "link closed during the transfer".into(),
        ));
    }

    pub(crate) fn writer_gone(&mut self) {
        self.fail(FerryError::Io("writer thread stopped".into()));
    }

    /// A frame from the sender. Chunks are handed to the writer whole (it verifies them).
    pub(crate) fn handle_frame(&mut self, msg: Bytes) {
        if self.ended {
            return;
        }
        let c = match peer::decode(&msg) {
            Ok(Frame::Chunk(_)) => {
                self.pending = Some(WriteIn::Chunk(msg));
                return;
            }
            Ok(Frame::Control(c)) => c,
            Err(e) => return self.fail(FerryError::Protocol(e.to_string())),
        };
        match c {
            Control::FileEnd { file, hash } => self.pending = Some(WriteIn::End { file, hash }),
            Control::Done => self.sender_done = true,
            // Announced once per change: a peer repeating itself adds nothing.
            Control::Pause | Control::Resume => {
                let p = matches!(c, Control::Pause);
                if p != self.remote_paused {
                    self.remote_paused = p;
                    self.emit(if p { Event::Paused } else { Event::Resumed });
                }
            }
            Control::Cancel { reason } => self.fail(FerryError::Cancelled(format!(
                "by the sender: {}",
                clip(&reason)
            ))),
            Control::Error {
                code,
                message,
                file: Some(file),
            } => {
                // One error per file in progress: a repeated one would grow the list of
                // failures without bound.
                if !self.remaining.remove(&file) {
                    return self.fail(FerryError::Protocol(format!(
                        "error for file {file}, which is not in progress"
                    )));
                }
                let err = peer_error(code, &message);
                let path = self.name(file).to_string();
                self.emit(Event::FileFailed {
                    path: path.clone(),
                    code: err.code().into(),
                    message: err.to_string(),
                });
                self.att.failed.push((path, err));
            }
            Control::Error {
                code,
                message,
                file: None,
            } => self.fail(peer_error(code, &message)),
            Control::Hello { .. } => {}
            other => self.fail(FerryError::Protocol(format!(
                "unexpected {} from the sender",
                brief(&other)
            ))),
        }
    }

    /// A report from the writer thread.
    pub(crate) fn handle_write(&mut self, now: Instant, out: WriteOut) {
        if self.ended {
            return;
        }
        match out {
            WriteOut::Written {
                file,
                offset,
                bytes,
            } => {
                self.done_bytes += bytes;
                self.att.bytes_written += bytes;
                if offset != u64::MAX {
                    self.ctrl_q.push_back(ctl(Control::Ack { file, offset }));
                }
                // Field by field, so the name is borrowed, not copied, on every ack.
                let name = self.names.get(file as usize).map_or("", String::as_str);
                if let Some(e) = self.progress.event(now, name, self.done_bytes, false) {
                    self.out.push_back(RecvOutput::Event(e));
                }
            }
            WriteOut::Rejected { file, offset } => {
                self.ctrl_q.push_back(ctl(Control::Resend { file, offset }));
                let file = self.name(file).to_string();
                self.emit(Event::ChunkRejected { file, offset });
            }
            WriteOut::FileDone { file, hash, dest } => {
                self.remaining.remove(&file);
                self.ctrl_q.push_back(ctl(Control::FileDone { file }));
                let path = self.name(file).to_string();
                if let Some(e) = self.progress.event(now, &path, self.done_bytes, true) {
                    self.emit(e);
                }
                self.emit(Event::FileDone {
                    path: path.clone(),
                    hash: hash.clone(),
                });
                self.att.files.push(ReceivedFile { path, dest, hash });
            }
            WriteOut::Fatal(err) => {
                tracing::error!(%err, "receiving failed");
                let mut parting: Vec<Bytes> = self.ctrl_q.drain(..).collect();
                parting.push(ctl(Control::Error {
                    code: err.peer_code(),
                    message: err.to_string(),
                    file: None,
                }));
                self.end(parting, Err(err));
            }
        }
    }

    /// What this attempt did; call once it has ended.
    pub(crate) fn into_attempt(mut self, now: Instant) -> RecvAttempt {
        self.att.secs = self.progress.secs(now);
        self.att
    }
}
