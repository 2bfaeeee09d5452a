//! Sender driver: one attempt over one link. A reader thread reads and hashes (per chunk and
//! per file) ahead of the network, up to [`PIPELINE`] chunks; the machine decides what to
//! read next within the window.

use std::time::Instant;

use ferry_proto::peer::{self, Control};
use tokio::sync::mpsc;

use super::compress::Compressor;
use super::machine::{ReadIn, ReadOut, SendOutput, SendSession, SendSetup};
use super::reader::{Reader, reader};
use super::{PIPELINE, TransferHandle, chunk_size};
use crate::error::FerryError;
use crate::events::EventSink;
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
    /// The host sends the manifest behind its hello (`HostRoom::open_with`); an attempt
    /// over a link that says it went (`LinkInfo::opened`) goes straight to its answer.
    pub manifest_opens: bool,
    /// Fault injection for tests.
    #[cfg(feature = "test-hooks")]
    pub hooks: super::TestHooks,
}

impl SendJob {
    pub fn new(transfer_id: String, manifest: Manifest) -> Self {
        Self {
            transfer_id,
            manifest,
            window: super::WINDOW,
            compress: true,
            manifest_opens: false,
            #[cfg(feature = "test-hooks")]
            hooks: super::TestHooks::default(),
        }
    }

    /// The manifest as frames a host can send behind its hello (`HostRoom::open_with`),
    /// and marks the job so attempts over a link they went out on do not send it again.
    /// `None` (and unmarked) when it is more than those few small frames: it then follows
    /// the peer's hello as before.
    pub fn opening_frames(&mut self) -> Option<Vec<bytes::Bytes>> {
        use crate::defaults::{OPENING_FRAME, OPENING_FRAMES};
        if self.manifest.entries.len() > peer::MAX_FILES {
            return None;
        }
        let frames = self.manifest_control().encode_frames(OPENING_FRAME);
        if frames.len() > OPENING_FRAMES {
            return None;
        }
        self.manifest_opens = true;
        Some(frames.into_iter().map(bytes::Bytes::from).collect())
    }

    fn manifest_control(&self) -> Control {
        Control::Manifest {
            transfer_id: self.transfer_id.clone(),
            files: self.manifest.entries.clone(),
        }
    }
}

/// What one attempt did.
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
    if !(job.manifest_opens && link.info.opened) {
        super::send_control(&link, &job.manifest_control()).await?;
    }
    let accepts = await_accept(&mut link, handle).await?;

    let mut pause_rx = handle.pause_rx();
    let session = SendSession::new(
        Instant::now(),
        SendSetup {
            entries,
            accepts: &accepts,
            window: job.window,
            chunk: chunk_size(link.info.max_message_size),
            paused: *pause_rx.borrow_and_update(),
            #[cfg(feature = "test-hooks")]
            hooks: job.hooks.clone(),
        },
    )?;

    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::channel(PIPELINE);
    let reader_entries = entries.clone();
    let reader_sources = job.manifest.sources.clone();
    let compressor =
        (job.compress && link.info.caps.iter().any(|c| c == peer::CAP_LZ4)).then(Compressor::new);
    let reader_thread = std::thread::Builder::new()
        .name("ferry-read".into())
        .spawn(move || {
            let r = Reader::new(reader_entries, reader_sources, compressor);
            reader(r, req_rx, out_tx)
        })
        .map_err(|e| FerryError::Io(format!("cannot start reader thread: {e}")))?;

    let mut pump = Pump {
        link: &mut link,
        handle,
        pause_rx: &mut pause_rx,
        ev,
        req_tx,
        out_rx,
        s: session,
    };
    let result = pump.run().await;
    let Pump {
        s, req_tx, out_rx, ..
    } = pump;
    drop(req_tx);
    drop(out_rx);
    let _ = tokio::task::spawn_blocking(move || reader_thread.join()).await;
    let att = s.into_attempt(Instant::now());
    result.map(|()| att)
}

/// Moves what the session asks for between it, the link, the reader thread and the user.
struct Pump<'a> {
    link: &'a mut Link,
    handle: &'a TransferHandle,
    pause_rx: &'a mut tokio::sync::watch::Receiver<bool>,
    ev: &'a EventSink,
    req_tx: mpsc::UnboundedSender<ReadIn>,
    out_rx: mpsc::Receiver<ReadOut>,
    s: SendSession,
}

impl Pump<'_> {
    async fn run(&mut self) -> Result<(), FerryError> {
        let cancel = self.handle.cancelled_token();
        loop {
            while let Some(o) = self.s.poll_output() {
                match o {
                    SendOutput::Read(r) => {
                        let _ = self.req_tx.send(r);
                    }
                    SendOutput::Event(e) => self.ev.emit(e),
                    SendOutput::End { parting, result } => {
                        if !parting.is_empty() {
                            super::send_parting(self.link, parting, None).await;
                        }
                        return result;
                    }
                }
            }
            let timeout = self.s.poll_timeout();
            let now = Instant::now();
            let can_send = self.s.has_transmit(now);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => self.s.cancel(),
                msg = self.link.rx.recv(), if self.s.wants_frame() => match msg {
                    Some(msg) => self.s.handle_frame(Instant::now(), &msg),
                    None => self.s.link_closed(),
                },
                permit = self.link.tx.reserve(), if can_send => match permit {
                    Ok(permit) => {
                        if let Some(frame) = self.s.poll_transmit(Instant::now()) {
                            permit.send(frame);
                        }
                    }
                    Err(_) => self.s.link_closed(),
                },
                out = self.out_rx.recv(), if self.s.wants_read() => match out {
                    Some(out) => self.s.handle_read(Instant::now(), out),
                    None => self.s.reader_gone(),
                },
                changed = self.pause_rx.changed() => {
                    if changed.is_ok() {
                        let p = *self.pause_rx.borrow_and_update();
                        self.s.set_paused(Instant::now(), p);
                    }
                }
                _ = tokio::time::sleep_until(timeout.unwrap_or(now).into()), if timeout.is_some() => {
                    self.s.handle_timeout(Instant::now());
                }
            }
        }
    }
}
