//! Receiver driver: one attempt over one link. Chunks go, in order, to a writer thread that
//! verifies each chunk's BLAKE3 before writing, keeps the running whole-file hash, fsyncs
//! at checkpoints and only then raises the stored resume offset.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ferry_proto::peer::{self, Control, FileAccept, FileEntry, Frame};
use serde::Serialize;
use tokio::sync::mpsc;

use super::machine::{ChunkVerdict, EndVerdict, RecvFile};
use super::{ACK_EVERY, PIPELINE, Progress, TransferHandle, WINDOW};
use crate::error::FerryError;
use crate::events::{Event, EventSink, OfferFile};
use crate::fsio;
use crate::store::{self, Direction, FileRow, Store, TransferRow};
use crate::transfer::tree::{self, FileTree};

#[derive(Debug, Clone)]
pub struct RecvJob {
    pub out_dir: PathBuf,
    pub overwrite: bool,
    pub store: Store,
    pub room: String,
    pub server: String,
}

/// What the sender offers, as shown to the user before accepting.
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    pub transfer_id: String,
    pub files: Vec<FileEntry>,
    pub total: u64,
    /// Bytes already on disk from an earlier attempt of the same transfer.
    pub resumable: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Decline,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceivedFile {
    pub path: String,
    pub dest: PathBuf,
    pub hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct RecvAttempt {
    pub transfer_id: String,
    pub total: u64,
    pub resumed_from: u64,
    pub bytes_written: u64,
    pub files: Vec<ReceivedFile>,
    pub failed: Vec<(String, FerryError)>,
    pub secs: f64,
}

struct PlanFile {
    dest: PathBuf,
    start: u64,
    accepted: bool,
}

/// Per manifest entry (None: refused name), and the refusals.
type Plan = (Vec<Option<PlanFile>>, Vec<(String, FerryError)>);

/// Map the manifest onto the output folder and the resume store.
fn plan(job: &RecvJob, transfer_id: &str, entries: &[FileEntry]) -> Result<Plan, FerryError> {
    std::fs::create_dir_all(&job.out_dir).map_err(|e| FerryError::io("output folder", &e))?;
    let root = job
        .out_dir
        .canonicalize()
        .map_err(|e| FerryError::io("output folder", &e))?;
    let mut failed = Vec::new();
    let mut used = HashSet::new();
    let mut dests = Vec::with_capacity(entries.len());
    for e in entries {
        let comps = fsio::sanitize_rel_path(&e.path).and_then(|mut comps| {
            // Two names that sanitise to the same path must not share a `.part` file.
            let base = comps.pop().unwrap_or_default();
            let mut name = base.clone();
            let mut n = 1;
            while !used.insert(format!("{}/{name}", comps.join("/")).to_lowercase()) {
                name = format!("{base} ({n})");
                n += 1;
            }
            comps.push(name);
            fsio::confine(&root, &comps)
        });
        match comps {
            Ok(p) => dests.push(Some(p)),
            Err(err) => {
                tracing::warn!(path = %e.path, %err, "refusing unsafe name");
                failed.push((e.path.clone(), FerryError::Protocol(err.to_string())));
                dests.push(None);
            }
        }
    }
    let total = entries.iter().map(|e| e.size).sum();
    let row = TransferRow {
        id: transfer_id.to_string(),
        direction: Direction::Receive,
        room: job.room.clone(),
        peer: String::new(),
        server: job.server.clone(),
        host_token: String::new(),
        out_dir: root.display().to_string(),
        state: "active".into(),
        created_at: store::now(),
        updated_at: store::now(),
        total_bytes: total,
        done_bytes: 0,
        error: None,
    };
    let rows: Vec<FileRow> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| FileRow {
            idx: i as u32,
            path: e.path.clone(),
            size: e.size,
            mtime_ms: e.mtime_ms,
            is_dir: e.dir,
            source: None,
            dest: dests[i].as_ref().map(|d| d.display().to_string()),
            verified_offset: 0,
            hash: None,
            state: "pending".into(),
        })
        .collect();
    job.store.insert_if_new(&row, &rows)?;
    job.store
        .set_transfer_state(transfer_id, "active", None, None)?;
    let stored = job
        .store
        .transfer(transfer_id)?
        .map(|(_, f)| f)
        .unwrap_or_default();

    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let Some(dest) = dests[i].take() else {
            out.push(None);
            continue;
        };
        if e.dir {
            fsio::create_parents(&root, &dest)
                .and_then(|()| std::fs::create_dir_all(&dest))
                .map_err(|err| FerryError::io(&e.path, &err))?;
            out.push(Some(PlanFile {
                dest,
                start: 0,
                accepted: false,
            }));
            continue;
        }
        let row = stored.iter().find(|r| r.idx == i as u32);
        let done = row.is_some_and(|r| r.state == "done");
        let mut start = row.map(|r| r.verified_offset).unwrap_or(0).min(e.size);
        // Chunks start on the hash tree's 1 KiB grid; a row from an older version may not.
        if start != e.size {
            start -= start % tree::UNIT;
        }
        if start > 0 {
            let have = std::fs::metadata(fsio::part_path(&dest))
                .map(|m| m.len())
                .unwrap_or(0);
            if have < start {
                start = 0;
            }
        }
        out.push(Some(PlanFile {
            dest,
            start,
            accepted: !done,
        }));
    }
    Ok((out, failed))
}

enum WIn {
    Chunk(Bytes),
    End { file: u32, hash: String },
}

enum WOut {
    Written {
        file: u32,
        offset: u64,
        bytes: u64,
    },
    Rejected {
        file: u32,
        offset: u64,
    },
    FileDone {
        file: u32,
        hash: String,
        dest: PathBuf,
    },
    Fatal(FerryError),
}

struct WFile {
    size: u64,
    dest: PathBuf,
    start: u64,
    m: RecvFile,
    /// The `.part` file and the whole-file hash tree over what is verified in it.
    open: Option<(File, FileTree)>,
    unacked: u64,
    since_ckpt: u64,
}

struct Writer {
    root: PathBuf,
    files: Vec<Option<WFile>>,
    store: Store,
    transfer_id: String,
    overwrite: bool,
    tx: mpsc::UnboundedSender<WOut>,
}

impl Writer {
    fn file(&mut self, file: u32) -> Result<&mut WFile, FerryError> {
        match self.files.get_mut(file as usize) {
            Some(Some(f)) => Ok(f),
            _ => Err(FerryError::Protocol(format!(
                "data for file {file}, which was not accepted"
            ))),
        }
    }

    fn ensure_open(root: &Path, f: &mut WFile) -> Result<(), FerryError> {
        if f.open.is_none() {
            let name = f.dest.display().to_string();
            fsio::create_parents(root, &f.dest).map_err(|e| FerryError::io(&name, &e))?;
            let (file, tree, at) =
                fsio::open_part(&f.dest, f.size, f.start).map_err(|e| FerryError::io(&name, &e))?;
            if at != f.start {
                return Err(FerryError::Io(format!("{name}.part changed under us")));
            }
            f.open = Some((file, tree));
        }
        Ok(())
    }

    fn checkpoint(&self, file: u32, f: &mut WFile) -> Result<(), FerryError> {
        if let Some((h, _)) = &f.open {
            h.sync_data()
                .map_err(|e| FerryError::io(&f.dest.display().to_string(), &e))?;
            self.store
                .set_offset(&self.transfer_id, file, f.m.expected)?;
        }
        f.since_ckpt = 0;
        Ok(())
    }

    fn handle(&mut self, msg: WIn) -> Result<(), FerryError> {
        match msg {
            WIn::Chunk(buf) => {
                let Ok(Frame::Chunk(c)) = peer::decode(&buf) else {
                    return Err(FerryError::Protocol("bad chunk frame".into()));
                };
                if c.flags != 0 {
                    return Err(FerryError::Protocol(
                        "compressed chunks were not negotiated".into(),
                    ));
                }
                let root = self.root.clone();
                let f = self.file(c.file)?;
                let len = c.data.len() as u64;
                // Only the next expected piece is hashed, and only once its shape is known to
                // be a subtree (the hasher asserts on shapes); `on_chunk` rejects bad shapes.
                let cv = (c.offset == f.m.expected && tree::valid_piece(c.offset, len, f.size))
                    .then(|| tree::piece_cv(c.offset, c.data));
                let hash_ok = cv.is_none_or(|cv| cv == c.hash);
                match f.m.on_chunk(c.offset, len, hash_ok)? {
                    ChunkVerdict::Write => {
                        Self::ensure_open(&root, f)?;
                        let name = f.dest.display().to_string();
                        if let (Some((h, tree)), Some(cv)) = (&mut f.open, cv) {
                            fsio::write_all_at(h, c.data, c.offset)
                                .map_err(|e| FerryError::io(&name, &e))?;
                            tree.push(c.offset, c.data, cv)
                                .map_err(|e| FerryError::Protocol(format!("{name}: {e}")))?;
                        }
                        f.unacked += len;
                        f.since_ckpt += len;
                        let (offset, ack) = (f.m.expected, f.unacked >= ACK_EVERY);
                        if f.since_ckpt >= WINDOW {
                            let mut tmp = self.files[c.file as usize].take();
                            if let Some(wf) = tmp.as_mut() {
                                let r = self.checkpoint(c.file, wf);
                                self.files[c.file as usize] = tmp;
                                r?;
                            }
                        }
                        if ack && let Some(Some(f)) = self.files.get_mut(c.file as usize) {
                            let bytes = std::mem::take(&mut f.unacked);
                            let _ = self.tx.send(WOut::Written {
                                file: c.file,
                                offset,
                                bytes,
                            });
                        }
                    }
                    ChunkVerdict::Resend(offset) => {
                        let _ = self.tx.send(WOut::Rejected {
                            file: c.file,
                            offset,
                        });
                    }
                    ChunkVerdict::Duplicate | ChunkVerdict::Stale => {}
                }
            }
            WIn::End { file, hash } => {
                let root = self.root.clone();
                let overwrite = self.overwrite;
                let f = self.file(file)?;
                Self::ensure_open(&root, f)?;
                let ours = f
                    .open
                    .as_ref()
                    .and_then(|(_, t)| t.finalize().ok())
                    .map(|h| h.to_hex().to_string())
                    .unwrap_or_default();
                match f.m.on_end(ours == hash)? {
                    EndVerdict::Complete => {
                        let name = f.dest.display().to_string();
                        let bytes = std::mem::take(&mut f.unacked);
                        if let Some((h, _)) = f.open.take() {
                            let dest = fsio::finish_part(h, &f.dest, overwrite)
                                .map_err(|e| FerryError::io(&name, &e))?;
                            self.store.set_file_state(
                                &self.transfer_id,
                                file,
                                "done",
                                Some(&hash),
                                Some(&dest.display().to_string()),
                            )?;
                            let _ = self.tx.send(WOut::Written {
                                file,
                                offset: u64::MAX,
                                bytes,
                            });
                            let _ = self.tx.send(WOut::FileDone { file, hash, dest });
                        }
                    }
                    EndVerdict::Restart => {
                        tracing::warn!(file, "whole-file hash mismatch; fetching the file again");
                        if let Some((_, t)) = &mut f.open {
                            *t = FileTree::new(f.size);
                        }
                        f.start = 0;
                        let _ = self.tx.send(WOut::Rejected { file, offset: 0 });
                    }
                    EndVerdict::Stale => {}
                }
            }
        }
        Ok(())
    }

    /// On the way out (link gone, error, done): make what was written durable and record it.
    fn close(&mut self) {
        for i in 0..self.files.len() {
            let mut tmp = self.files[i].take();
            if let Some(f) = tmp.as_mut()
                && !f.m.done
                && f.open.is_some()
                && let Err(e) = self.checkpoint(i as u32, f)
            {
                tracing::warn!(%e, "final checkpoint failed");
            }
            self.files[i] = tmp;
        }
    }
}

fn writer_thread(mut w: Writer, mut rx: mpsc::Receiver<WIn>) {
    while let Some(msg) = rx.blocking_recv() {
        if let Err(e) = w.handle(msg) {
            let _ = w.tx.send(WOut::Fatal(e));
            break;
        }
    }
    w.close();
}

fn ctl(c: Control) -> Bytes {
    Bytes::from(c.encode())
}

/// One attempt. `decide` is asked about the offer (the API remembers the answer across
/// reconnects). Returns `PeerGone` if the link drops before the sender's `Done`.
pub async fn run(
    mut link: crate::link::Link,
    job: &RecvJob,
    decide: &mut (dyn FnMut(&Offer) -> Decision + Send),
    handle: &TransferHandle,
    ev: &EventSink,
) -> Result<RecvAttempt, FerryError> {
    let cancel = handle.cancelled_token();
    // A manifest of thousands of files is megabytes of JSON and arrives in parts.
    let mut parts = peer::ControlReassembler::new();
    let (transfer_id, entries) = loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => return Err(FerryError::Cancelled("by the user".into())),
            m = link.rx.recv() => m,
        };
        let Some(msg) = msg else {
            return Err(FerryError::PeerGone("link closed before the offer".into()));
        };
        let Some(frame) = parts
            .push(&msg)
            .map_err(|e| FerryError::Protocol(e.to_string()))?
        else {
            continue;
        };
        match frame {
            Frame::Control(Control::Manifest { transfer_id, files }) => break (transfer_id, files),
            Frame::Control(Control::Hello { .. }) => continue,
            Frame::Control(Control::Cancel { reason }) => {
                return Err(FerryError::Cancelled(reason));
            }
            other => {
                return Err(FerryError::Protocol(format!(
                    "expected a manifest, got {other:?}"
                )));
            }
        }
    };
    if transfer_id.is_empty()
        || transfer_id.len() > 128
        || !transfer_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(FerryError::Protocol("bad transfer id".into()));
    }
    // The sender keys its row by the manifest's id; the receiving side of the same transfer
    // gets its own row, or a machine that is both ends (app and CLI sharing one store) would
    // have the receiver's offsets land on the sender's record.
    let transfer_id = format!("{transfer_id}-r");
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let (plan_job, plan_id, plan_entries) = (job.clone(), transfer_id.clone(), entries.clone());
    let (plan, failed) =
        tokio::task::spawn_blocking(move || plan(&plan_job, &plan_id, &plan_entries))
            .await
            .map_err(|e| FerryError::Io(e.to_string()))??;
    let resumable: u64 = plan
        .iter()
        .zip(&entries)
        .map(|(p, e)| match p {
            Some(p) if !p.accepted && !e.dir => e.size,
            Some(p) => p.start,
            None => 0,
        })
        .sum();
    let offer = Offer {
        transfer_id: transfer_id.clone(),
        files: entries.clone(),
        total,
        resumable,
    };
    ev.emit(Event::Offer {
        transfer_id: transfer_id.clone(),
        files: entries
            .iter()
            .map(|e| OfferFile {
                path: e.path.clone(),
                size: e.size,
                dir: e.dir,
            })
            .collect(),
        total,
    });
    if decide(&offer) == Decision::Decline {
        let _ = link
            .tx
            .send(ctl(Control::Decline {
                reason: "declined by the receiver".into(),
            }))
            .await;
        return Err(FerryError::Declined("by you".into()));
    }
    for (path, err) in &failed {
        ev.emit(Event::FileFailed {
            path: path.clone(),
            code: err.code().into(),
            message: err.to_string(),
        });
    }
    let accepts: Vec<FileAccept> = plan
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Some(p) if p.accepted && !entries[i].dir => Some(FileAccept {
                file: i as u32,
                offset: p.start,
            }),
            _ => None,
        })
        .collect();
    if resumable > 0 {
        ev.emit(Event::Resuming {
            bytes_done: resumable,
            total,
        });
    }
    super::send_control(
        &link,
        &Control::Accept {
            files: accepts.clone(),
        },
    )
    .await?;

    let root = job
        .out_dir
        .canonicalize()
        .map_err(|e| FerryError::io("output folder", &e))?;
    let files: Vec<Option<WFile>> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Some(p) if p.accepted && !entries[i].dir => Some(WFile {
                size: entries[i].size,
                dest: p.dest.clone(),
                start: p.start,
                m: RecvFile::new(entries[i].size, p.start),
                open: None,
                unacked: 0,
                since_ckpt: 0,
            }),
            _ => None,
        })
        .collect();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let (w_tx, w_rx) = mpsc::channel(PIPELINE);
    let writer = Writer {
        root,
        files,
        store: job.store.clone(),
        transfer_id: transfer_id.clone(),
        overwrite: job.overwrite,
        tx: out_tx,
    };
    let thread = std::thread::Builder::new()
        .name("ferry-write".into())
        .spawn(move || writer_thread(writer, w_rx))
        .map_err(|e| FerryError::Io(format!("cannot start writer thread: {e}")))?;

    let mut att = RecvAttempt {
        transfer_id,
        total,
        resumed_from: resumable,
        failed,
        ..Default::default()
    };
    let mut progress = Progress::new(resumable, total);
    let mut remaining: HashSet<u32> = accepts.iter().map(|a| a.file).collect();
    let r = pump(
        &mut link,
        &entries,
        handle,
        ev,
        w_tx,
        &mut out_rx,
        &mut att,
        &mut progress,
        &mut remaining,
    )
    .await;
    drop(out_rx);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    att.secs = progress.secs();
    r.map(|()| att)
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    link: &mut crate::link::Link,
    entries: &[FileEntry],
    handle: &TransferHandle,
    ev: &EventSink,
    w_tx: mpsc::Sender<WIn>,
    out_rx: &mut mpsc::UnboundedReceiver<WOut>,
    att: &mut RecvAttempt,
    progress: &mut Progress,
    remaining: &mut HashSet<u32>,
) -> Result<(), FerryError> {
    let cancel = handle.cancelled_token();
    let mut pause_rx = handle.pause_rx();
    let mut local_paused = false;
    let mut ctrl_q: VecDeque<Bytes> = VecDeque::new();
    if *pause_rx.borrow_and_update() {
        local_paused = true;
        ctrl_q.push_back(ctl(Control::Pause));
        ev.emit(Event::Paused);
    }
    let mut pending: Option<WIn> = None;
    let mut done_bytes = att.resumed_from;
    let mut sender_done = false;
    loop {
        if sender_done && pending.is_none() && ctrl_q.is_empty() {
            if remaining.is_empty() {
                return Ok(());
            }
            return Err(FerryError::Protocol(
                "sender finished before every file was confirmed".into(),
            ));
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                super::send_parting(link, [], Some(Control::Cancel { reason: "receiver cancelled".into() })).await;
                return Err(FerryError::Cancelled("by the user".into()));
            }
            out = out_rx.recv() => {
                let Some(out) = out else {
                    return Err(FerryError::Io("writer thread stopped".into()));
                };
                match out {
                    WOut::Written { file, offset, bytes } => {
                        done_bytes += bytes;
                        att.bytes_written += bytes;
                        if offset != u64::MAX {
                            ctrl_q.push_back(ctl(Control::Ack { file, offset }));
                        }
                        progress.emit(ev, &entries[file as usize].path, done_bytes, false);
                    }
                    WOut::Rejected { file, offset } => {
                        ctrl_q.push_back(ctl(Control::Resend { file, offset }));
                        ev.emit(Event::ChunkRejected { file: entries[file as usize].path.clone(), offset });
                    }
                    WOut::FileDone { file, hash, dest } => {
                        remaining.remove(&file);
                        ctrl_q.push_back(ctl(Control::FileDone { file }));
                        let path = entries[file as usize].path.clone();
                        progress.emit(ev, &path, done_bytes, true);
                        ev.emit(Event::FileDone { path: path.clone(), hash: hash.clone() });
                        att.files.push(ReceivedFile { path, dest, hash });
                    }
                    WOut::Fatal(err) => {
                        tracing::error!(%err, "receiving failed");
                        let last = Control::Error { code: err.peer_code(), message: err.to_string(), file: None };
                        super::send_parting(link, ctrl_q.drain(..), Some(last)).await;
                        return Err(err);
                    }
                }
            }
            permit = link.tx.reserve(), if !ctrl_q.is_empty() => {
                let Ok(permit) = permit else {
                    return Err(FerryError::PeerGone("link closed during the transfer".into()));
                };
                if let Some(c) = ctrl_q.pop_front() {
                    permit.send(c);
                }
            }
            permit = w_tx.reserve(), if pending.is_some() => {
                let Ok(permit) = permit else {
                    return Err(FerryError::Io("writer thread stopped".into()));
                };
                if let Some(p) = pending.take() {
                    permit.send(p);
                }
            }
            msg = link.rx.recv(), if pending.is_none() && !sender_done => {
                let Some(msg) = msg else {
                    return Err(FerryError::PeerGone("link closed during the transfer".into()));
                };
                match peer::decode(&msg).map_err(|e| FerryError::Protocol(e.to_string()))? {
                    Frame::Chunk(_) => pending = Some(WIn::Chunk(msg)),
                    Frame::Control(c) => match c {
                        Control::FileEnd { file, hash } => pending = Some(WIn::End { file, hash }),
                        Control::Done => sender_done = true,
                        Control::Pause => ev.emit(Event::Paused),
                        Control::Resume => ev.emit(Event::Resumed),
                        Control::Cancel { reason } => {
                            return Err(FerryError::Cancelled(format!("by the sender: {reason}")));
                        }
                        Control::Error { code, message, file: Some(file) } => {
                            remaining.remove(&file);
                            let err = FerryError::from_peer(code, &message);
                            let path = entries.get(file as usize).map(|e| e.path.clone()).unwrap_or_default();
                            ev.emit(Event::FileFailed { path: path.clone(), code: err.code().into(), message: err.to_string() });
                            att.failed.push((path, err));
                        }
                        Control::Error { code, message, file: None } => {
                            return Err(FerryError::from_peer(code, &message));
                        }
                        Control::Hello { .. } => {}
                        other => return Err(FerryError::Protocol(format!("unexpected {other:?} from the sender"))),
                    },
                }
            }
            changed = pause_rx.changed() => {
                if changed.is_ok() {
                    let p = *pause_rx.borrow_and_update();
                    if p != local_paused {
                        local_paused = p;
                        ctrl_q.push_back(ctl(if p { Control::Pause } else { Control::Resume }));
                        ev.emit(if p { Event::Paused } else { Event::Resumed });
                    }
                }
            }
        }
    }
}
