//! Sender driver: one attempt over one link. A reader thread reads and hashes (per chunk and
//! per file) ahead of the network, up to [`PIPELINE`] chunks; the machine decides what to
//! read next within the window.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferry_proto::peer::{self, Control, Frame, PeerErrorCode};
use tokio::sync::mpsc;

use super::compress::Compressor;
use super::machine::{SendMachine, SendStep};
use super::reader::{ReadOut, ReadReq, reader};
use super::{PIPELINE, Progress, TransferHandle, adaptive_chunk, chunk_size};
use crate::error::FerryError;
use crate::events::{Event, EventSink};
use crate::link::Link;
use crate::manifest::Manifest;

/// What to send. Lives across attempts (reconnects) of one transfer.
#[derive(Debug)]
pub struct SendJob {
    pub transfer_id: String,
    pub manifest: Manifest,
    pub window: u64,
    /// Compress chunks that shrink (when the receiver supports it).
    pub compress: bool,
    /// Test hook: flip a byte in the Nth chunk (1-based, counted across attempts).
    pub corrupt_chunk: Option<u64>,
    /// Test hook: cap the send rate (bytes per second) so fault tests can hit a transfer
    /// mid-way.
    pub rate_limit_bps: Option<u64>,
    pub chunks_sent: AtomicU64,
}

impl SendJob {
    pub fn new(transfer_id: String, manifest: Manifest) -> Self {
        Self {
            transfer_id,
            manifest,
            window: super::WINDOW,
            compress: true,
            corrupt_chunk: None,
            rate_limit_bps: None,
            chunks_sent: AtomicU64::new(0),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SendAttempt {
    /// Bytes the receiver confirmed, including what it already held.
    pub bytes_acked: u64,
    /// Bytes sent during this attempt (chunks, including re-sent ones).
    pub bytes_sent: u64,
    /// Where the receiver's accept started us (sum of offsets).
    pub resumed_from: u64,
    /// Files that could not be sent, with why.
    pub failed: Vec<(u32, FerryError)>,
    pub secs: f64,
}

fn ctl(c: Control) -> Bytes {
    Bytes::from(c.encode())
}

/// Wait for the receiver's answer to the manifest.
async fn await_accept(
    link: &mut Link,
    handle: &TransferHandle,
) -> Result<Vec<peer::FileAccept>, FerryError> {
    let cancel = handle.cancelled_token();
    // An accept for thousands of files arrives in parts.
    let mut parts = peer::ControlReassembler::new();
    let c = super::next_control(
        link,
        &mut parts,
        &cancel,
        Some("sender cancelled"),
        "the offer was answered",
        "accept",
    )
    .await?;
    match c {
        Control::Accept { files } => Ok(files),
        Control::Decline { reason } => Err(FerryError::Declined(super::clip(&reason))),
        Control::Cancel { reason } => Err(FerryError::Cancelled(super::clip(&reason))),
        Control::Error { code, message, .. } => Err(super::peer_error(code, &message)),
        other => Err(FerryError::Protocol(format!(
            "expected accept, got {}",
            super::brief(&other)
        ))),
    }
}

/// One attempt: offer the manifest, stream what the receiver wants, wait for its
/// confirmations. Returns `PeerGone` if the link drops (the caller may reconnect and call
/// again: the receiver's accept tells where to continue).
pub async fn run(
    mut link: Link,
    job: &SendJob,
    handle: &TransferHandle,
    ev: &EventSink,
) -> Result<SendAttempt, FerryError> {
    let entries = &job.manifest.entries;
    if entries.len() > peer::MAX_FILES {
        // A receiver refuses the manifest unread; say why here instead.
        return Err(FerryError::Io(format!(
            "{} files are more than one transfer can carry ({})",
            entries.len(),
            peer::MAX_FILES
        )));
    }
    super::send_control(
        &link,
        &Control::Manifest {
            transfer_id: job.transfer_id.clone(),
            files: entries.clone(),
        },
    )
    .await?;
    let accepts = await_accept(&mut link, handle).await?;

    let sizes: Vec<u64> = entries.iter().map(|e| e.size).collect();
    let chunk = chunk_size(link.info.max_message_size);
    let mut m = SendMachine::new(&sizes, job.window, chunk);
    m.accept(&accepts)?;
    let resumed_from: u64 = accepts.iter().map(|a| a.offset).sum();
    let total: u64 = accepts
        .iter()
        .filter_map(|a| entries.get(a.file as usize))
        .map(|e| e.size)
        .sum();
    if resumed_from > 0 {
        ev.emit(Event::Resuming {
            bytes_done: resumed_from,
            total,
        });
    }
    let mut progress = Progress::new(resumed_from, total);
    let mut att = SendAttempt {
        resumed_from,
        ..Default::default()
    };

    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (out_tx, mut out_rx) = mpsc::channel(PIPELINE);
    let reader_entries = entries.clone();
    let reader_sources = job.manifest.sources.clone();
    let compressor =
        (job.compress && link.info.caps.iter().any(|c| c == peer::CAP_LZ4)).then(Compressor::new);
    let reader_thread = std::thread::Builder::new()
        .name("ferry-read".into())
        .spawn(move || reader(reader_entries, reader_sources, compressor, req_rx, out_tx))
        .map_err(|e| FerryError::Io(format!("cannot start reader thread: {e}")))?;

    let result = stream(
        &mut link,
        job,
        handle,
        ev,
        &mut m,
        &mut progress,
        &mut att,
        &req_tx,
        &mut out_rx,
    )
    .await;
    drop(req_tx);
    drop(out_rx);
    let _ = tokio::task::spawn_blocking(move || reader_thread.join()).await;
    att.bytes_acked = m.acked_total();
    att.secs = progress.secs();
    result.map(|()| att)
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    link: &mut Link,
    job: &SendJob,
    handle: &TransferHandle,
    ev: &EventSink,
    m: &mut SendMachine,
    progress: &mut Progress,
    att: &mut SendAttempt,
    req_tx: &mpsc::UnboundedSender<ReadReq>,
    out_rx: &mut mpsc::Receiver<ReadOut>,
) -> Result<(), FerryError> {
    let entries = &job.manifest.entries;
    let max_chunk = m.chunk();
    let cancel = handle.cancelled_token();
    let mut pause_rx = handle.pause_rx();
    let mut ctrl_q: VecDeque<Bytes> = VecDeque::new();
    let mut local_paused = *pause_rx.borrow_and_update();
    m.set_paused_local(local_paused);
    if local_paused {
        ctrl_q.push_back(ctl(Control::Pause));
        ev.emit(Event::Paused);
    }
    let mut outstanding = 0usize;
    // A data frame (chunk or file end) read but not yet taken by the link: (file, gen, frame).
    let mut pending: Option<(u32, u32, Bytes)> = None;
    let mut hashes: HashMap<u32, String> = HashMap::new();
    let mut finishing = false;
    let mut failed_files = std::collections::HashSet::new();
    let started = tokio::time::Instant::now();

    loop {
        while !finishing && outstanding < PIPELINE {
            match m.next_step() {
                SendStep::Chunk {
                    file,
                    offset,
                    len,
                    generation,
                } => {
                    let _ = req_tx.send(ReadReq::Chunk {
                        file,
                        offset,
                        len,
                        generation,
                    });
                    outstanding += 1;
                }
                SendStep::End { file, generation } => {
                    let _ = req_tx.send(ReadReq::End { file, generation });
                    outstanding += 1;
                }
                SendStep::Done => {
                    ctrl_q.push_back(ctl(Control::Done));
                    finishing = true;
                }
                SendStep::Wait => break,
            }
        }
        if finishing && ctrl_q.is_empty() && pending.is_none() {
            break;
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                super::send_parting(link, [], Some(Control::Cancel { reason: "sender cancelled".into() })).await;
                return Err(FerryError::Cancelled("by the user".into()));
            }
            msg = link.rx.recv() => {
                let Some(msg) = msg else {
                    return Err(FerryError::PeerGone("link closed during the transfer".into()));
                };
                let frame = peer::decode(&msg).map_err(|e| FerryError::Protocol(e.to_string()))?;
                let Frame::Control(c) = frame else {
                    return Err(FerryError::Protocol("receiver sent a chunk".into()));
                };
                match c {
                    Control::Ack { file, offset } => {
                        m.on_ack(file, offset)?;
                        m.set_chunk(adaptive_chunk(progress.rate(m.acked_total()), max_chunk));
                        let name = entries.get(file as usize).map(|e| e.path.as_str()).unwrap_or("");
                        progress.emit(ev, name, m.acked_total(), false);
                    }
                    Control::Resend { file, offset } => {
                        m.on_resend(file, offset)?;
                        tracing::warn!(file, offset, "receiver rejected a chunk; rewinding");
                        let name = entries.get(file as usize).map(|e| e.path.clone()).unwrap_or_default();
                        ev.emit(Event::ChunkRejected { file: name, offset });
                    }
                    Control::FileDone { file } => {
                        m.on_file_done(file)?;
                        let e = &entries[file as usize];
                        ev.emit(Event::FileDone {
                            path: e.path.clone(),
                            hash: hashes.remove(&file).unwrap_or_default(),
                        });
                        progress.emit(ev, &e.path, m.acked_total(), true);
                    }
                    // Announced once per change: a peer repeating itself adds nothing.
                    Control::Pause | Control::Resume => {
                        let p = matches!(c, Control::Pause);
                        if m.paused_remote() != p {
                            m.set_paused_remote(p);
                            ev.emit(if p { Event::Paused } else { Event::Resumed });
                        }
                    }
                    Control::Cancel { reason } => return Err(FerryError::Cancelled(format!("by the receiver: {}", super::clip(&reason)))),
                    Control::Error { code, message, file: Some(file) } => {
                        // One error per file in progress: a repeated one would grow the list
                        // of failures without bound.
                        if !m.in_progress(file) {
                            return Err(FerryError::Protocol(format!("error for file {file}, which is not in progress")));
                        }
                        m.fail_file(file);
                        let err = super::peer_error(code, &message);
                        let path = entries.get(file as usize).map(|e| e.path.clone()).unwrap_or_default();
                        ev.emit(Event::FileFailed { path, code: err.code().into(), message: err.to_string() });
                        att.failed.push((file, err));
                    }
                    Control::Error { code, message, file: None } => return Err(super::peer_error(code, &message)),
                    Control::Hello { .. } => {}
                    other => return Err(FerryError::Protocol(format!("unexpected {} from the receiver", super::brief(&other)))),
                }
            }
            permit = link.tx.reserve(), if !ctrl_q.is_empty() || pending.is_some() => {
                let Ok(permit) = permit else {
                    return Err(FerryError::PeerGone("link closed during the transfer".into()));
                };
                if let Some(c) = ctrl_q.pop_front() {
                    permit.send(c);
                } else if let Some((file, generation, frame)) = pending.take() {
                    // Dropped if the receiver asked for a rewind since it was read.
                    if m.generation(file) == Some(generation) {
                        let is_chunk = frame.first() == Some(&peer::KIND_CHUNK);
                        let frame = if is_chunk { corrupt_hook(job, frame) } else { frame };
                        let n = frame.len().saturating_sub(peer::CHUNK_HEADER_LEN) as u64;
                        permit.send(frame);
                        if is_chunk {
                            att.bytes_sent += n;
                            if let Some(rate) = job.rate_limit_bps.filter(|r| *r > 0) {
                                let due = started + Duration::from_secs_f64(att.bytes_sent as f64 / rate as f64);
                                tokio::time::sleep_until(due).await;
                            }
                        }
                    }
                }
            }
            out = out_rx.recv(), if pending.is_none() => {
                let Some(out) = out else {
                    return Err(FerryError::Io("reader thread stopped".into()));
                };
                outstanding = outstanding.saturating_sub(1);
                match out {
                    ReadOut::Frame { file, generation, frame } => {
                        pending = Some((file, generation, frame));
                    }
                    ReadOut::End { file, generation, hash } => {
                        hashes.insert(file, hash.clone());
                        pending = Some((file, generation, ctl(Control::FileEnd { file, hash })));
                    }
                    ReadOut::Failed { file, err } => {
                        // Reads queued before the first failure fail too: report once.
                        if !failed_files.insert(file) {
                            continue;
                        }
                        m.fail_file(file);
                        let path = entries[file as usize].path.clone();
                        tracing::warn!(%path, %err, "file not sent");
                        ev.emit(Event::FileFailed { path, code: err.code().into(), message: err.to_string() });
                        ctrl_q.push_back(ctl(Control::Error {
                            code: err.peer_code(),
                            message: err.to_string(),
                            file: Some(file),
                        }));
                        if !matches!(err.peer_code(), PeerErrorCode::SourceChanged) {
                            // Not a per-file condition: the whole transfer stops.
                            super::send_parting(link, ctrl_q.drain(..), None).await;
                            return Err(err);
                        }
                        att.failed.push((file, err));
                    }
                }
            }
            changed = pause_rx.changed() => {
                if changed.is_ok() {
                    let p = *pause_rx.borrow_and_update();
                    if p != local_paused {
                        local_paused = p;
                        m.set_paused_local(p);
                        ctrl_q.push_back(ctl(if p { Control::Pause } else { Control::Resume }));
                        ev.emit(if p { Event::Paused } else { Event::Resumed });
                    }
                }
            }
        }
    }
    // `Done` is queued on the link; give the receiver a moment to read it so it is not lost
    // with our end of the link. The receiver answers with its own `Done` once every file is
    // confirmed; a receiver that only hangs up is waited for until its close arrives, which
    // can take until ICE consent expires if its close packets were lost.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(msg) = link.rx.recv().await {
            if matches!(peer::decode(&msg), Ok(Frame::Control(Control::Done))) {
                break;
            }
        }
    })
    .await;
    Ok(())
}

fn corrupt_hook(job: &SendJob, frame: Bytes) -> Bytes {
    let n = job.chunks_sent.fetch_add(1, Ordering::Relaxed) + 1;
    if job.corrupt_chunk != Some(n) || frame.len() <= peer::CHUNK_HEADER_LEN {
        return frame;
    }
    tracing::warn!(chunk = n, "test hook: corrupting a chunk");
    let mut v = frame.to_vec();
    if let Some(last) = v.last_mut() {
        *last ^= 0xff;
    }
    Bytes::from(v)
}
