//! Receiver driver: one attempt over one link. Chunks go, in order, to a writer thread that
//! verifies each chunk's BLAKE3 before writing, keeps the running whole-file hash, fsyncs
//! at checkpoints and only then raises the stored resume offset.

use std::path::PathBuf;
use std::time::Instant;

use ferry_proto::peer::{self, Control, FileAccept, FileEntry};
use serde::Serialize;
use tokio::sync::mpsc;

use super::machine::{RecvOutput, RecvSession, WriteIn, WriteOut};
use super::recv_plan::{plan_blocking, resumable_of};
use super::writer::{PartFile, Writer, writer_thread};
use super::{PIPELINE, TransferHandle};
use crate::error::FerryError;
use crate::events::{Event, EventSink, OfferFile};
use crate::store::Store;

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
