//! The receiver's disk thread: verifies each chunk against its chaining value, writes it into
//! the `.part` file, hands a checkpoint (fsync, then the stored offset) to its own thread
//! every window, and checks and moves a file into place at its end. It reports back to the
//! async driver in `receiver.rs` over a channel; blocking I/O never runs on the executor.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use ferry_proto::peer::{self, Frame};
use tokio::sync::mpsc;

use super::checkpoint::{self, Checkpoint, Checkpointer};
use super::compress;
use super::machine::{ChunkVerdict, EndVerdict, RecvFile, WriteIn, WriteOut};
use super::tree::{self, FileTree};
use super::{ACK_EVERY, WINDOW};
use crate::error::FerryError;
use crate::fsio;
use crate::store::Store;

/// One accepted file on its way to disk: where it goes, its machine, its open `.part`.
pub(super) struct PartFile {
    pub(super) size: u64,
    pub(super) dest: PathBuf,
    pub(super) start: u64,
    pub(super) m: RecvFile,
    /// The `.part` file and the whole-file hash tree over what is verified in it.
    open: Option<(File, FileTree)>,
    /// Where the `.part` file is (recorded in the store as this transfer's).
    part: PathBuf,
    unacked: u64,
    since_ckpt: u64,
}

impl PartFile {
    pub(super) fn new(size: u64, dest: PathBuf, start: u64) -> Self {
        PartFile {
            size,
            dest,
            start,
            m: RecvFile::new(size, start),
            open: None,
            part: PathBuf::new(),
            unacked: 0,
            since_ckpt: 0,
        }
    }
}

// Verified files being moved into place at once. Each needs an fsync before it may count
// as done, and a journaling file system commits concurrent fsyncs together: for 10,000
// small files the serial fsyncs were most of the transfer.
use crate::defaults::FINISHERS;

/// A verified file on its way into place: fsync, rename, record, report.
struct Finish {
    file: u32,
    handle: File,
    part: PathBuf,
    dest: PathBuf,
    hash: String,
    bytes: u64,
}

/// What finishing a file needs; the writer holds one and each finishing thread a clone.
#[derive(Clone)]
struct Finisher {
    store: Store,
    transfer_id: String,
    overwrite: bool,
    tx: mpsc::UnboundedSender<WriteOut>,
}

impl Finisher {
    fn finish(&self, job: Finish) -> Result<(), FerryError> {
        let name = job.dest.display().to_string();
        let dest = fsio::finish_part(job.handle, &job.part, &job.dest, self.overwrite)
            .map_err(|e| FerryError::io(&name, &e))?;
        self.store.set_file_state(
            &self.transfer_id,
            job.file,
            crate::store::FileState::Done,
            Some(&job.hash),
            Some(&dest.display().to_string()),
        )?;
        let _ = self.tx.send(WriteOut::Written {
            file: job.file,
            offset: u64::MAX,
            bytes: job.bytes,
        });
        let _ = self.tx.send(WriteOut::FileDone {
            file: job.file,
            hash: job.hash,
            dest,
        });
        Ok(())
    }

    fn run(&self, jobs: &Mutex<Receiver<Finish>>) {
        loop {
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(job) = job else { return };
            if let Err(e) = self.finish(job) {
                let _ = self.tx.send(WriteOut::Fatal(e));
            }
        }
    }
}

pub(super) struct Writer {
    root: PathBuf,
    files: Vec<Option<PartFile>>,
    /// The store, transfer, overwrite policy and report channel, shared with the finishers.
    ctx: Finisher,
    /// LZ4 chunks were negotiated (`hello` caps).
    lz4: bool,
    /// Reused buffer for decompressed chunks.
    scratch: Vec<u8>,
    /// The finishing threads' queue; `None` finishes on this thread.
    finish_q: Option<SyncSender<Finish>>,
    /// Window checkpoints in flight; `None` checkpoints on this thread.
    ckpt: Option<Checkpointer>,
}

impl Writer {
    fn file(&mut self, file: u32) -> Result<&mut PartFile, FerryError> {
        match self.files.get_mut(file as usize) {
            Some(Some(f)) => Ok(f),
            _ => Err(FerryError::Protocol(format!(
                "data for file {file}, which was not accepted"
            ))),
        }
    }

    /// Open file `idx`'s `.part` on its first data. Only the `.part` this transfer's record
    /// names is reused; a `.part` of that name found without a record is someone else's and
    /// the download goes to a fresh stand-in name, which is recorded before any byte lands.
    fn ensure_open(
        root: &Path,
        store: &Store,
        transfer_id: &str,
        idx: u32,
        f: &mut PartFile,
    ) -> Result<(), FerryError> {
        if f.open.is_none() {
            let name = f.dest.display().to_string();
            fsio::create_parents(root, &f.dest).map_err(|e| FerryError::io(&name, &e))?;
            // Records from before `.part` names were stored: a verified offset means the
            // default name was written by this transfer.
            let ours = store
                .part(transfer_id, idx)?
                .or_else(|| (f.start > 0).then(|| fsio::part_path(&f.dest)));
            let part = fsio::open_part(&f.dest, f.size, f.start, ours.as_deref())
                .map_err(|e| FerryError::io(&name, &e))?;
            if ours.as_deref() != Some(part.path.as_path()) {
                store.set_part(transfer_id, idx, &part.path)?;
            }
            if part.at != f.start {
                return Err(FerryError::Io(format!("{name}.part changed under us")));
            }
            f.open = Some((part.file, part.tree));
            f.part = part.path;
        }
        Ok(())
    }

    /// Make `f` durable up to what is written and record that offset: on the checkpoint
    /// thread when there is one (`wait` false), here otherwise.
    fn checkpoint(&self, file: u32, f: &mut PartFile, wait: bool) -> Result<(), FerryError> {
        if let Some((h, _)) = &f.open {
            let name = f.dest.display().to_string();
            let c = Checkpoint {
                file,
                handle: h.try_clone().map_err(|e| FerryError::io(&name, &e))?,
                offset: f.m.expected,
                dest: f.dest.clone(),
            };
            let c = match &self.ckpt {
                Some(t) if !wait => t.submit(c)?,
                _ => Some(c),
            };
            if let Some(c) = c {
                checkpoint::apply(&self.ctx.store, &self.ctx.transfer_id, &c)?;
            }
        }
        f.since_ckpt = 0;
        Ok(())
    }

    pub(super) fn handle(&mut self, msg: WriteIn) -> Result<(), FerryError> {
        match msg {
            WriteIn::Chunk(buf) => {
                let Ok(Frame::Chunk(c)) = peer::decode(&buf) else {
                    return Err(FerryError::Protocol("bad chunk frame".into()));
                };
                if c.flags & !peer::FLAG_COMPRESSED != 0 {
                    return Err(FerryError::Protocol(format!(
                        "unknown chunk flags {:#04x}",
                        c.flags
                    )));
                }
                let compressed = c.flags & peer::FLAG_COMPRESSED != 0;
                if compressed && !self.lz4 {
                    return Err(FerryError::Protocol(
                        "compressed chunk, but compression was not negotiated".into(),
                    ));
                }
                let mut scratch = std::mem::take(&mut self.scratch);
                let data = if compressed {
                    compress::decompress(c.data, &mut scratch, peer::MAX_CHUNK)
                } else {
                    Ok(c.data)
                };
                let root = self.root.clone();
                let (store, id) = (self.ctx.store.clone(), self.ctx.transfer_id.clone());
                let f = self.file(c.file)?;
                let data = match data {
                    Ok(d) => d,
                    // A length past any chunk is no accident of transit.
                    Err(e @ compress::DecompressError::TooLarge(..)) => {
                        return Err(FerryError::Protocol(e.to_string()));
                    }
                    Err(e) => {
                        // Damaged in transit like a bad hash: ask for it again (bounded by
                        // the machine's bad-chunk limit).
                        tracing::warn!(file = c.file, offset = c.offset, %e, "undecodable chunk");
                        if let ChunkVerdict::Resend(offset) = f.m.on_corrupt(c.offset)? {
                            let _ = self.ctx.tx.send(WriteOut::Rejected {
                                file: c.file,
                                offset,
                            });
                        }
                        self.scratch = scratch;
                        return Ok(());
                    }
                };
                let len = data.len() as u64;
                // Only the next expected piece is hashed, and only once its shape is known to
                // be a subtree (the hasher asserts on shapes); `on_chunk` rejects bad shapes.
                let cv = (c.offset == f.m.expected && tree::valid_piece(c.offset, len, f.size))
                    .then(|| tree::piece_cv(c.offset, data));
                let hash_ok = cv.is_none_or(|cv| cv == c.hash);
                match f.m.on_chunk(c.offset, len, hash_ok)? {
                    ChunkVerdict::Write => {
                        Self::ensure_open(&root, &store, &id, c.file, f)?;
                        let name = f.dest.display().to_string();
                        if let (Some((h, tree)), Some(cv)) = (&mut f.open, cv) {
                            fsio::write_all_at(h, data, c.offset)
                                .map_err(|e| FerryError::io(&name, &e))?;
                            tree.push(c.offset, data, cv)
                                .map_err(|e| FerryError::Protocol(format!("{name}: {e}")))?;
                        }
                        f.unacked += len;
                        f.since_ckpt += len;
                        let (offset, ack) = (f.m.expected, f.unacked >= ACK_EVERY);
                        if f.since_ckpt >= WINDOW {
                            let mut tmp = self.files[c.file as usize].take();
                            if let Some(wf) = tmp.as_mut() {
                                let r = self.checkpoint(c.file, wf, false);
                                self.files[c.file as usize] = tmp;
                                r?;
                            }
                        }
                        if ack && let Some(Some(f)) = self.files.get_mut(c.file as usize) {
                            let bytes = std::mem::take(&mut f.unacked);
                            let _ = self.ctx.tx.send(WriteOut::Written {
                                file: c.file,
                                offset,
                                bytes,
                            });
                        }
                    }
                    ChunkVerdict::Resend(offset) => {
                        let _ = self.ctx.tx.send(WriteOut::Rejected {
                            file: c.file,
                            offset,
                        });
                    }
                    ChunkVerdict::Duplicate | ChunkVerdict::Stale => {}
                }
                self.scratch = scratch;
            }
            WriteIn::End { file, hash } => {
                let root = self.root.clone();
                let (store, id) = (self.ctx.store.clone(), self.ctx.transfer_id.clone());
                let f = self.file(file)?;
                Self::ensure_open(&root, &store, &id, file, f)?;
                let ours = f
                    .open
                    .as_ref()
                    .and_then(|(_, t)| t.finalize().ok())
                    .map(|h| h.to_hex().to_string())
                    .unwrap_or_default();
                match f.m.on_end(ours == hash)? {
                    EndVerdict::Complete => {
                        let bytes = std::mem::take(&mut f.unacked);
                        if let Some((handle, _)) = f.open.take() {
                            let job = Finish {
                                file,
                                handle,
                                part: f.part.clone(),
                                dest: f.dest.clone(),
                                hash,
                                bytes,
                            };
                            let job = match &self.finish_q {
                                Some(q) => q.send(job).err().map(|e| e.0),
                                None => Some(job),
                            };
                            if let Some(job) = job {
                                self.ctx.finish(job)?;
                            }
                        }
                    }
                    EndVerdict::Restart => {
                        tracing::warn!(file, "whole-file hash mismatch; fetching the file again");
                        if let Some((_, t)) = &mut f.open {
                            *t = FileTree::new(f.size);
                        }
                        f.start = 0;
                        let _ = self.ctx.tx.send(WriteOut::Rejected { file, offset: 0 });
                    }
                    EndVerdict::Stale => {}
                }
            }
        }
        Ok(())
    }

    pub(super) fn new(
        root: PathBuf,
        files: Vec<Option<PartFile>>,
        store: Store,
        transfer_id: String,
        overwrite: bool,
        lz4: bool,
        tx: mpsc::UnboundedSender<WriteOut>,
    ) -> Self {
        Writer {
            root,
            files,
            ctx: Finisher {
                store,
                transfer_id,
                overwrite,
                tx,
            },
            lz4,
            scratch: Vec::new(),
            finish_q: None,
            ckpt: None,
        }
    }

    /// On the way out (link gone, error, done): make what was written durable and record it.
    fn close(&mut self) {
        // Queued checkpoints land first, so the final ones below are the last word.
        if let Some(mut t) = self.ckpt.take() {
            t.finish();
            if t.failed() {
                return;
            }
        }
        for i in 0..self.files.len() {
            let mut tmp = self.files[i].take();
            if let Some(f) = tmp.as_mut()
                && !f.m.done
                && f.open.is_some()
                && let Err(e) = self.checkpoint(i as u32, f, true)
            {
                tracing::warn!(%e, "final checkpoint failed");
            }
            self.files[i] = tmp;
        }
    }
}

pub(super) fn writer_thread(mut w: Writer, mut rx: mpsc::Receiver<WriteIn>) {
    // Bounded, so a slow disk holds the writer back instead of piling up open files.
    let (q, jobs) = sync_channel::<Finish>(FINISHERS * 4);
    let jobs = Arc::new(Mutex::new(jobs));
    let pool: Vec<_> = (0..FINISHERS)
        .filter_map(|i| {
            let (f, jobs) = (w.ctx.clone(), jobs.clone());
            std::thread::Builder::new()
                .name(format!("ferry-finish{i}"))
                .spawn(move || f.run(&jobs))
                .ok()
        })
        .collect();
    if !pool.is_empty() {
        w.finish_q = Some(q);
    }
    let fatal = w.ctx.tx.clone();
    w.ckpt = Some(Checkpointer::start(
        w.ctx.store.clone(),
        w.ctx.transfer_id.clone(),
        move |e| {
            let _ = fatal.send(WriteOut::Fatal(e));
        },
    ));
    while let Some(msg) = rx.blocking_recv() {
        if let Err(e) = w.handle(msg) {
            let _ = w.ctx.tx.send(WriteOut::Fatal(e));
            break;
        }
    }
    w.close();
    // Queued files still finish: each was verified and is owed its fsync and rename.
    w.finish_q = None;
    for t in pool {
        let _ = t.join();
    }
}
