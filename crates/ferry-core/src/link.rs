//! The seam between connecting and transferring.
//!
//! A [`Link`] is an authenticated, ordered, reliable pipe of whole peer-protocol frames
//! (see `ferry_proto::peer`). The connect layer (`session`) produces one from a real WebRTC
//! data channel after PAKE and the fingerprint-MAC hello; the transfer layer consumes it and
//! never learns what carries it. [`Link::memory_pair`] gives two ends joined in memory so the
//! transfer state machines can be tested without sockets.
//!
//! Backpressure: `tx` is bounded and its pump only takes the next frame once the data
//! channel's buffered amount is under its threshold, so awaiting `tx.send` is the flow
//! control and memory is bounded by (channel capacity x max frame size) + SCTP buffers.
//! The link is gone when `rx.recv()` returns `None`; dropping `tx` closes our sending half.

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

/// How the two peers reach each other (the selected ICE candidate pair's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Direct, host candidates (LAN or loopback).
    Host,
    /// Direct through NAT, server-reflexive or peer-reflexive candidates.
    Srflx,
    /// Direct through NAT, learned from the peer's checks (peer-reflexive).
    Prflx,
    /// Through a TURN relay.
    Relay,
    /// In-process (tests).
    Memory,
    /// Not reported by the connection.
    Unknown,
}

impl PathKind {
    /// Whether bytes go peer to peer (true) or through a relay (false).
    pub fn is_direct(self) -> bool {
        !matches!(self, PathKind::Relay)
    }
}

/// What is known about a link once it is up.
#[derive(Debug, Clone, Serialize)]
pub struct LinkInfo {
    /// Largest frame either side may send (negotiated in `hello`).
    pub max_message_size: usize,
    /// How the bytes travel.
    pub path: PathKind,
    /// Capabilities both sides announced in `hello`.
    pub caps: Vec<String>,
    /// Our end of the selected candidate pair, `ip:port`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_addr: Option<String>,
    /// The peer's end of the selected candidate pair, `ip:port`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// The host's opening frames (`HostRoom::open_with`) went out behind its hello on this
    /// link; they do only on the agreed stream.
    #[serde(skip)]
    pub opened: bool,
}

/// An authenticated, reliable, ordered message channel to the other peer.
pub struct Link {
    /// Frames to the peer; bounded, so a slow peer slows the sender down.
    pub tx: mpsc::Sender<Bytes>,
    /// Frames from the peer; `None` once the link is gone.
    pub rx: mpsc::Receiver<Bytes>,
    /// What is known about the link.
    pub info: LinkInfo,
}

impl Link {
    /// Two ends joined in memory: what one sends the other receives.
    pub fn memory_pair(capacity: usize, max_message_size: usize) -> (Link, Link) {
        let (a_tx, b_rx) = mpsc::channel(capacity);
        let (b_tx, a_rx) = mpsc::channel(capacity);
        let info = LinkInfo {
            max_message_size,
            path: PathKind::Memory,
            caps: Vec::new(),
            local_addr: None,
            remote_addr: None,
            opened: false,
        };
        (
            Link {
                tx: a_tx,
                rx: a_rx,
                info: info.clone(),
            },
            Link {
                tx: b_tx,
                rx: b_rx,
                info,
            },
        )
    }
}
