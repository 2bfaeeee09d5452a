//! Moving files over a [`crate::link::Link`]: pure state machines (`machine`) and the async
//! drivers that feed them (`sender`, `receiver`). Disk reads, writes and hashing run on
//! dedicated threads behind bounded channels so they overlap with the network.

mod checkpoint;
pub mod compress;
#[cfg(feature = "test-hooks")]
mod hooks;
pub mod machine;
mod reader;
pub mod receiver;
mod recv_plan;
pub mod sender;
pub mod text;
pub mod tree;
mod writer;

use std::sync::Arc;

use ferry_proto::peer::{CHUNK_HEADER_LEN, MAX_CHUNK, MIN_CHUNK};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "test-hooks")]
pub use hooks::TestHooks;

/// The statements given, only in builds with the `test-hooks` feature: a binary reads its
/// hidden test settings inside it, so a release build does not even look for them.
#[cfg(feature = "test-hooks")]
#[macro_export]
macro_rules! with_test_hooks {
    ($($t:tt)*) => { $($t)* };
}

/// The statements given, only in builds with the `test-hooks` feature (here: none).
#[cfg(not(feature = "test-hooks"))]
#[macro_export]
macro_rules! with_test_hooks {
    ($($t:tt)*) => {};
}

pub use crate::defaults::{ACK_EVERY, PIPELINE, WINDOW};
use crate::defaults::{CHUNK_TIME, PARTING_TIMEOUT};

/// Largest chunk payload that fits the link's message size, within the protocol's bounds.
/// A power of two, because chunks are BLAKE3 subtrees (see `tree`).
pub fn chunk_size(max_message_size: usize) -> usize {
    let fits = max_message_size
        .saturating_sub(CHUNK_HEADER_LEN)
        .clamp(MIN_CHUNK, MAX_CHUNK);
    1 << fits.ilog2()
}

/// Chunk size for a measured send rate: about [`CHUNK_TIME`] of data, a power of two between
/// `MIN_CHUNK` and `max`. No measurement yet (0) keeps the largest.
pub fn adaptive_chunk(rate_bps: u64, max: usize) -> usize {
    if rate_bps == 0 {
        return max;
    }
    let want = (rate_bps as f64 * CHUNK_TIME.as_secs_f64()) as usize;
    let pow2 = if want == 0 { 1 } else { 1 << want.ilog2() };
    pow2.clamp(MIN_CHUNK.min(max), max)
}

/// Send a control message that may not fit in one link message (manifest, accept), split
/// into parts no larger than the link's negotiated message size.
pub(crate) async fn send_control(
    link: &crate::link::Link,
    c: &ferry_proto::peer::Control,
) -> Result<(), crate::error::FerryError> {
    for f in c.encode_frames(link.info.max_message_size) {
        link.tx
            .send(bytes::Bytes::from(f))
            .await
            .map_err(|_| crate::error::FerryError::PeerGone("link closed".into()))?;
    }
    Ok(())
}

/// The peer's next whole control message (parts joined, `hello` skipped) before the data
/// phase. On the user's cancel, tells the peer `tell_peer` if given; `gone` says what the
/// link closed before; `expected` names what a chunk arrived instead of.
pub(crate) async fn next_control(
    link: &mut crate::link::Link,
    parts: &mut ferry_proto::peer::ControlReassembler,
    cancel: &CancellationToken,
    tell_peer: Option<&str>,
    gone: &str,
    expected: &str,
) -> Result<ferry_proto::peer::Control, crate::error::FerryError> {
    use crate::error::FerryError;
    use ferry_proto::peer::{Control, Frame};
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => {
                let last = tell_peer.map(|r| Control::Cancel { reason: r.into() });
                send_parting(link, [], last).await;
                return Err(FerryError::Cancelled("by the user".into()));
            }
            m = link.rx.recv() => m,
        };
        let Some(msg) = msg else {
            return Err(FerryError::PeerGone(format!("link closed before {gone}")));
        };
        match parts
            .push(&msg)
            .map_err(|e| FerryError::Protocol(e.to_string()))?
        {
            None | Some(Frame::Control(Control::Hello { .. })) => {}
            Some(Frame::Control(c)) => return Ok(c),
            Some(Frame::Chunk(_)) => {
                return Err(FerryError::Protocol(format!(
                    "expected {expected}, got a chunk"
                )));
            }
        }
    }
}

/// On the way out of a transfer (cancel, fatal error): hand the peer what is queued, then
/// `last`, so it learns why we stopped. Bounded: a peer that no longer reads cannot hold us.
pub(crate) async fn send_parting(
    link: &crate::link::Link,
    queued: impl IntoIterator<Item = bytes::Bytes>,
    last: Option<ferry_proto::peer::Control>,
) {
    let frames: Vec<bytes::Bytes> = queued
        .into_iter()
        .chain(last.map(|c| bytes::Bytes::from(c.encode())))
        .collect();
    let _ = tokio::time::timeout(PARTING_TIMEOUT, async {
        for f in frames {
            if link.tx.send(f).await.is_err() {
                break;
            }
        }
    })
    .await;
}

/// Longest piece of peer-supplied text (an error's message, a cancel's reason, a message we
/// did not expect) that goes into our errors and events: a peer may send 256 KiB of it.
const PEER_TEXT: usize = 300;

/// `text` from the peer, cut to [`PEER_TEXT`] bytes on a character boundary.
pub(crate) fn clip(text: &str) -> String {
    if text.len() <= PEER_TEXT {
        return text.to_string();
    }
    let mut end = PEER_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `Debug` of a peer's message, formatted only as far as [`PEER_TEXT`] bytes (a manifest
/// in the wrong place may be 64 MiB of entries).
pub(crate) fn brief(c: &impl std::fmt::Debug) -> String {
    use std::fmt::Write;
    struct Capped(String);
    impl Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = PEER_TEXT.saturating_sub(self.0.len());
            if s.len() <= room {
                self.0.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.0.push_str(&s[..end]);
            self.0.push('…');
            Err(std::fmt::Error)
        }
    }
    let mut w = Capped(String::new());
    let _ = write!(w, "{c:?}");
    w.0
}

/// The error a peer's `error` message stands for, its text clipped.
pub(crate) fn peer_error(
    code: ferry_proto::peer::PeerErrorCode,
    message: &str,
) -> crate::error::FerryError {
    crate::error::FerryError::from_peer(code, &clip(message))
}

/// The user's levers on a running transfer. Cheap to clone; every clone controls the same
/// transfer.
#[derive(Clone, Debug)]
pub struct TransferHandle {
    cancel: CancellationToken,
    pause: Arc<watch::Sender<bool>>,
    room: Arc<RoomLevers>,
}

/// The sender's levers on its waiting room: the room takes the commands' receiving end.
#[derive(Debug)]
struct RoomLevers {
    tx: tokio::sync::mpsc::UnboundedSender<crate::session::RoomCommand>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::session::RoomCommand>>>,
    close: CancellationToken,
}

impl Default for TransferHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl TransferHandle {
    /// A handle for a transfer not started yet: running, not paused.
    pub fn new() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            cancel: CancellationToken::new(),
            pause: Arc::new(watch::channel(false).0),
            room: Arc::new(RoomLevers {
                tx,
                rx: std::sync::Mutex::new(Some(rx)),
                close: CancellationToken::new(),
            }),
        }
    }
    /// Sender: ask the server for a new room lifetime of `ttl_secs` from now (it clamps it
    /// to its maximum). Heard while the room waits for a receiver; the `room-extended` event
    /// gives the new end.
    pub fn extend_room(&self, ttl_secs: u64) {
        let _ = self
            .room
            .tx
            .send(crate::session::RoomCommand::Extend { ttl_secs });
    }
    /// Sender: close the waiting room at once; a receiver opening its link is told it is
    /// gone. The send ends as cancelled.
    pub fn close_room(&self) {
        self.room.close.cancel();
    }
    pub(crate) fn room_commands(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<crate::session::RoomCommand>> {
        self.room
            .rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
    pub(crate) fn room_closed_token(&self) -> CancellationToken {
        self.room.close.clone()
    }
    /// Pauses the transfer until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.pause.send_replace(true);
    }
    /// Undoes [`pause`](Self::pause).
    pub fn resume(&self) {
        self.pause.send_replace(false);
    }
    /// Ends the transfer (the peer is told).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
    /// Whether [`cancel`](Self::cancel) was called on this handle or a clone of it.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
    pub(crate) fn cancelled_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
    pub(crate) fn pause_rx(&self) -> watch::Receiver<bool> {
        self.pause.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_clipped() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(1000);
        let c = clip(&long);
        assert!(
            c.len() <= PEER_TEXT + '…'.len_utf8() && c.ends_with('…'),
            "{c}"
        );
        let b = brief(&vec!["x".repeat(100); 100_000]);
        assert!(b.len() <= PEER_TEXT + '…'.len_utf8() && b.ends_with('…'));
        assert_eq!(brief(&Some(1)), "Some(1)");
    }

    #[test]
    fn chunk_size_respects_bounds() {
        assert_eq!(
            chunk_size(64 * 1024),
            32 * 1024,
            "the header pushes it below 64 KiB"
        );
        assert_eq!(chunk_size(256 * 1024), 128 * 1024);
        assert_eq!(chunk_size(1024), MIN_CHUNK);
        assert_eq!(chunk_size(10 << 20), MAX_CHUNK);
    }

    #[test]
    fn chunk_size_follows_the_rate() {
        let max = 128 * 1024;
        assert_eq!(adaptive_chunk(0, max), max, "no measurement yet");
        assert_eq!(adaptive_chunk(200_000_000, max), max, "loopback/LAN");
        assert_eq!(adaptive_chunk(2_000_000, max), 32 * 1024, "16 Mbit/s");
        assert_eq!(adaptive_chunk(100_000, max), MIN_CHUNK, "a crawl");
        assert_eq!(
            adaptive_chunk(100_000, 8 * 1024),
            8 * 1024,
            "never above max"
        );
    }
}
