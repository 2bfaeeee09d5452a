//! Receiver driver: one attempt over one link. Chunks go, in order, to a writer thread that
//! verifies each chunk's BLAKE3 before writing, keeps the running whole-file hash, fsyncs
//! at checkpoints and only then raises the stored resume offset.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use ferry_proto::peer::{self, Control, FileAccept, FileEntry};
use serde::Serialize;
use tokio::sync::mpsc;

use super::machine::{RecvOutput, RecvSession, WriteIn, WriteOut};
use super::writer::{PartFile, Writer, writer_thread};
use super::{PIPELINE, TransferHandle};
use crate::error::FerryError;
use crate::events::{Event, EventSink, OfferFile};
use crate::fsio;
use crate::store::{self, Direction, FileRow, Store, TransferRow};
use crate::transfer::tree;

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
    /// The sender's id for this transfer; the same id again means a resume.
    pub transfer_id: String,
    /// Every file offered, in the sender's order.
    pub files: Vec<FileEntry>,
    /// Sum of the files' sizes, in bytes.
    pub total: u64,
    /// Bytes already on disk from an earlier attempt of the same transfer.
    pub resumable: u64,
}

/// The receiver's answer to an [`Offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Take the files.
    Accept,
    /// Refuse them; the sender is told and nothing is written.
    Decline,
}

/// One file received and verified.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedFile {
    /// Its path as the sender named it (relative, `/`-separated).
    pub path: String,
    /// Where it landed on this machine.
    pub dest: PathBuf,
    /// Its BLAKE3 hash, hex.
    pub hash: String,
}

/// What one attempt did.
#[derive(Debug, Clone, Default)]
pub struct RecvAttempt {
    pub transfer_id: String,
    pub total: u64,
    pub resumed_from: u64,
    pub bytes_written: u64,
    pub files: Vec<ReceivedFile>,
    pub failed: Vec<(String, FerryError)>,
    pub secs: f64,
    /// A text snippet, when that is what the sender sent instead of files.
    pub text: Option<String>,
}

struct PlanFile {
    dest: PathBuf,
    start: u64,
    accepted: bool,
}

/// Per manifest entry (None: refused name), and the refusals.
type Plan = (Vec<Option<PlanFile>>, Vec<(String, FerryError)>);

/// Map the manifest onto the output folder and the resume store. Only with `commit` (the
/// user accepted) does it create folders or store rows: before that it only looks.
fn plan(
    job: &RecvJob,
    transfer_id: &str,
    entries: &[FileEntry],
    commit: bool,
) -> Result<Plan, FerryError> {
    if commit {
        std::fs::create_dir_all(&job.out_dir).map_err(|e| FerryError::io("output folder", &e))?;
    }
    let root = match job.out_dir.canonicalize() {
        Ok(r) => r,
        // Not there yet (nothing in it to resume): where it will be.
        Err(e) if !commit && e.kind() == std::io::ErrorKind::NotFound => {
            std::path::absolute(&job.out_dir).map_err(|e| FerryError::io("output folder", &e))?
        }
        Err(e) => return Err(FerryError::io("output folder", &e)),
    };
    let mut failed = Vec::new();
    let mut used = HashSet::new();
    // Per clashing name, the next suffix to try: a hostile manifest of one name repeated
    // 100,000 times must not cost 100,000 tries per entry.
    let mut next_suffix: HashMap<String, u32> = HashMap::new();
    let mut dests = Vec::with_capacity(entries.len());
    for e in entries {
        let comps = fsio::sanitize_rel_path(&e.path).and_then(|mut comps| {
            // Two names that sanitise to the same path must not share a `.part` file.
            let base = comps.pop().unwrap_or_default();
            let mut name = base.clone();
            let key = format!("{}/{base}", comps.join("/")).to_lowercase();
            if !used.insert(key.clone()) {
                let n = next_suffix.entry(key).or_insert(1);
                loop {
                    name = format!("{base} ({n})");
                    *n += 1;
                    if used.insert(format!("{}/{name}", comps.join("/")).to_lowercase()) {
                        break;
                    }
                }
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
    // `run` checked that the sizes add up (see `manifest::checked_total`).
    let total = crate::manifest::checked_total(entries).unwrap_or(u64::MAX);
    let row = TransferRow {
        id: transfer_id.to_string(),
        direction: Direction::Receive,
        kind: store::TransferKind::Files,
        room: job.room.clone(),
        peer: String::new(),
        server: job.server.clone(),
        host_token: String::new(),
        out_dir: root.display().to_string(),
        state: store::TransferState::Active,
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
            state: store::FileState::Pending,
        })
        .collect();
    if commit {
        job.store.insert_if_new(&row, &rows)?;
        job.store
            .set_transfer_state(transfer_id, store::TransferState::Active, None, None)?;
    }
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
            if commit {
                fsio::create_dirs(&root, &dest).map_err(|err| FerryError::io(&e.path, &err))?;
            }
            out.push(Some(PlanFile {
                dest,
                start: 0,
                accepted: false,
            }));
            continue;
        }
        let row = stored.iter().find(|r| r.idx == i as u32);
        let done = row.is_some_and(|r| r.state == store::FileState::Done);
        let mut start = row.map(|r| r.verified_offset).unwrap_or(0).min(e.size);
        // Chunks start on the hash tree's 1 KiB grid; a row from an older version may not.
        if start != e.size {
            start -= start % tree::UNIT;
        }
        if start > 0 {
            // The `.part` this transfer recorded (older records: the default name), and only
            // as a plain file: the writer will not open a symlink either.
            let part = job
                .store
                .part(transfer_id, i as u32)?
                .unwrap_or_else(|| fsio::part_path(&dest));
            let have = std::fs::symlink_metadata(part)
                .ok()
                .filter(|m| m.is_file())
                .map_or(0, |m| m.len());
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

async fn plan_blocking(
    job: &RecvJob,
    transfer_id: &str,
    entries: &[FileEntry],
    commit: bool,
) -> Result<Plan, FerryError> {
    let (job, id, entries) = (job.clone(), transfer_id.to_string(), entries.to_vec());
    tokio::task::spawn_blocking(move || plan(&job, &id, &entries, commit))
        .await
        .map_err(|e| FerryError::Io(e.to_string()))?
}

/// Bytes already held: finished files whole, the rest up to their resume offsets.
fn resumable_of(plan: &[Option<PlanFile>], entries: &[FileEntry]) -> u64 {
    plan.iter()
        .zip(entries)
        .map(|(p, e)| match p {
            Some(p) if !p.accepted && !e.dir => e.size,
            Some(p) => p.start,
            None => 0,
        })
        .sum()
}

/// A transfer id from the peer keys our store: short, and nothing but letters, digits, `-`.
fn check_transfer_id(id: &str) -> Result<(), FerryError> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(FerryError::Protocol("bad transfer id".into()));
    }
    Ok(())
}

fn ctl(c: Control) -> bytes::Bytes {
    bytes::Bytes::from(c.encode())
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
    let (transfer_id, entries) = match super::next_control(
        &mut link,
        &mut parts,
        &cancel,
        None,
        "the offer",
        "a manifest",
    )
    .await?
    {
        Control::Manifest { transfer_id, files } => (transfer_id, files),
        Control::Text { transfer_id, text } => {
            check_transfer_id(&transfer_id)?;
            let (transfer_id, text) =
                super::text::receive(&link, format!("{transfer_id}-r"), text, job, ev).await?;
            return Ok(RecvAttempt {
                transfer_id,
                total: text.len() as u64,
                text: Some(text),
                ..Default::default()
            });
        }
        Control::Cancel { reason } => return Err(FerryError::Cancelled(super::clip(&reason))),
        other => {
            return Err(FerryError::Protocol(format!(
                "expected a manifest, got {}",
                super::brief(&other)
            )));
        }
    };
    check_transfer_id(&transfer_id)?;
    // The sender keys its row by the manifest's id; the receiving side of the same transfer
    // gets its own row, or a machine that is both ends (app and CLI sharing one store) would
    // have the receiver's offsets land on the sender's record.
    let transfer_id = format!("{transfer_id}-r");
    let total = crate::manifest::checked_total(&entries).ok_or_else(|| {
        FerryError::Protocol(format!(
            "the offer's file sizes add up to more than {} bytes",
            crate::manifest::MAX_TOTAL
        ))
    })?;
    // Looked at, not touched, until the user says yes: a declined offer leaves no folder
    // and no store row behind.
    let (plan, _) = plan_blocking(job, &transfer_id, &entries, false).await?;
    let resumable = resumable_of(&plan, &entries);
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
    let (plan, failed) = plan_blocking(job, &transfer_id, &entries, true).await?;
    let resumable = resumable_of(&plan, &entries);
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
    let files: Vec<Option<PartFile>> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Some(p) if p.accepted && !entries[i].dir => {
                Some(PartFile::new(entries[i].size, p.dest.clone(), p.start))
            }
            _ => None,
        })
        .collect();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (w_tx, w_rx) = mpsc::channel(PIPELINE);
    let writer = Writer::new(
        root,
        files,
        job.store.clone(),
        transfer_id.clone(),
        job.overwrite,
        link.info.caps.iter().any(|c| c == peer::CAP_LZ4),
        out_tx,
    );
    let thread = std::thread::Builder::new()
        .name("ferry-write".into())
        .spawn(move || writer_thread(writer, w_rx))
        .map_err(|e| FerryError::Io(format!("cannot start writer thread: {e}")))?;

    let mut pause_rx = handle.pause_rx();
    let session = RecvSession::new(
        Instant::now(),
        entries.iter().map(|e| e.path.clone()).collect(),
        accepts.iter().map(|a| a.file),
        RecvAttempt {
            transfer_id,
            total,
            resumed_from: resumable,
            failed,
            ..Default::default()
        },
        *pause_rx.borrow_and_update(),
    );
    let mut pump = Pump {
        link: &mut link,
        handle,
        pause_rx: &mut pause_rx,
        ev,
        w_tx,
        out_rx,
        s: session,
    };
    let r = pump.run().await;
    let Pump {
        s, out_rx, w_tx, ..
    } = pump;
    // The writer finishes what it holds and stops once its queue closes.
    drop(w_tx);
    drop(out_rx);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    let att = s.into_attempt(Instant::now());
    r.map(|()| att)
}

/// Moves what the session asks for between it, the link, the writer thread and the user.
struct Pump<'a> {
    link: &'a mut crate::link::Link,
    handle: &'a TransferHandle,
    pause_rx: &'a mut tokio::sync::watch::Receiver<bool>,
    ev: &'a EventSink,
    w_tx: mpsc::Sender<WriteIn>,
    out_rx: mpsc::UnboundedReceiver<WriteOut>,
    s: RecvSession,
}

impl Pump<'_> {
    async fn run(&mut self) -> Result<(), FerryError> {
        let cancel = self.handle.cancelled_token();
        loop {
            while let Some(o) = self.s.poll_output() {
                match o {
                    RecvOutput::Event(e) => self.ev.emit(e),
                    RecvOutput::End { parting, result } => {
                        if !parting.is_empty() {
                            super::send_parting(self.link, parting, None).await;
                        }
                        return result;
                    }
                }
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => self.s.cancel(),
                out = self.out_rx.recv() => match out {
                    Some(out) => self.s.handle_write(Instant::now(), out),
                    None => self.s.writer_gone(),
                },
                permit = self.link.tx.reserve(), if self.s.has_transmit() => match permit {
                    Ok(permit) => {
                        if let Some(frame) = self.s.poll_transmit() {
                            permit.send(frame);
                        }
                    }
                    Err(_) => self.s.link_closed(),
                },
                permit = self.w_tx.reserve(), if self.s.has_write() => match permit {
                    Ok(permit) => {
                        if let Some(w) = self.s.poll_write() {
                            permit.send(w);
                        }
                    }
                    Err(_) => self.s.writer_gone(),
                },
                msg = self.link.rx.recv(), if self.s.wants_frame() => match msg {
                    Some(msg) => self.s.handle_frame(msg),
                    None => self.s.link_closed(),
                },
                changed = self.pause_rx.changed() => {
                    if changed.is_ok() {
                        let p = *self.pause_rx.borrow_and_update();
                        self.s.set_paused(p);
                    }
                }
            }
        }
    }
}
