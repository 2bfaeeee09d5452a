//! The pumps that turn one open data channel into a [`Link`], and the count of links still
//! closing that a binary waits for before it exits.
//!
//! Flow control: the out-pump sends with webrtc's per-channel send-buffer limit set to
//! `buffered_high`, so `send` parks until SCTP has released enough acknowledged bytes. That is
//! the same pause/resume as waiting for `OnBufferedAmountLow`, but it does not depend on the
//! event stream, which the in-pump may hold up while the receiver of the Link is slow.
//! Receive side: the in-pump awaits space in the Link's channel; while it waits, webrtc's
//! driver stops pulling from SCTP and the peer's window closes. Memory stays bounded both ways.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::RTCPeerConnectionState;

use crate::defaults::DRAIN_TIMEOUT;
use crate::link::{Link, LinkInfo, PathKind};
use crate::rtc::Peer;
use crate::session::RtcTuning;

/// Turn an open data channel into a [`Link`]. The connection lives while either half of the
/// Link does; `rx` yields `None` once the channel or connection closes or fails. `early` are
/// messages that arrived before the channel opened (see [`crate::rtc::wait_open`]); the Link
/// yields them first.
pub(crate) fn spawn_link(
    peer: Peer,
    dc: Arc<dyn DataChannel>,
    early: Vec<Bytes>,
    tuning: &RtcTuning,
    info: LinkInfo,
) -> Link {
    let cap = tuning.link_capacity.max(1);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(cap);
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(cap);
    let (out_done_tx, mut out_done) = watch::channel(false);
    let Peer {
        pc,
        mut state,
        turn_bridge,
        path_hold,
        ..
    } = peer;
    let path_hold = match info.path {
        PathKind::Host | PathKind::Srflx | PathKind::Prflx | PathKind::Memory => None,
        PathKind::Relay | PathKind::Unknown => path_hold,
    };
    // Neither peer accepts a message above what it advertised; webrtc would refuse it and a
    // quietly dropped frame leaves both sides waiting for each other forever.
    let max_frame = tuning.max_message_size.clamp(16 * 1024, 256 * 1024);
    let failed = tokio_util::sync::CancellationToken::new();
    let out_failed = failed.clone();

    let dc_out = dc.clone();
    let out_state = state.clone();
    let out_pump = tokio::spawn(async move {
        let mut state = out_state;
        loop {
            tokio::select! {
                frame = out_rx.recv() => match frame {
                    Some(f) => {
                        if f.len() > max_frame {
                            tracing::error!(
                                "link frame of {} bytes exceeds the {max_frame}-byte message limit; closing the link",
                                f.len()
                            );
                            out_failed.cancel();
                            break;
                        }
                        // Frames are built uniquely owned, so this is a move, not a copy.
                        let f = f.try_into_mut().unwrap_or_else(|f| BytesMut::from(&f[..]));
                        if let Err(e) = dc_out.send(f).await {
                            tracing::warn!("link send failed, closing the link: {e}");
                            out_failed.cancel();
                            break;
                        }
                    }
                    None => {
                        // Our sending half is dropped: let what is queued reach the peer.
                        let start = Instant::now();
                        while start.elapsed() < DRAIN_TIMEOUT {
                            match dc_out.outstanding_bytes().await {
                                Ok(0) | Err(_) => break,
                                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                            }
                        }
                        break;
                    }
                },
                r = state.changed() => {
                    if r.is_err() || is_dead(*state.borrow()) {
                        break;
                    }
                }
            }
        }
        let _ = out_done_tx.send(true);
    });

    let in_pump = tokio::spawn(async move {
        let mut rx_gone = false;
        for m in early {
            if !rx_gone && in_tx.send(m).await.is_err() {
                rx_gone = true;
            }
        }
        let mut out_finished = false;
        loop {
            if rx_gone && out_finished {
                break;
            }
            tokio::select! {
                ev = dc.poll() => match ev {
                    Some(DataChannelEvent::OnMessage(m)) => {
                        if !rx_gone && in_tx.send(m.data.freeze()).await.is_err() {
                            rx_gone = true;
                        }
                    }
                    Some(DataChannelEvent::OnClose) | None => break,
                    Some(_) => {}
                },
                _ = in_tx.closed(), if !rx_gone => rx_gone = true,
                // A frame that could not be sent is lost: end the link so both transfer
                // sides see it gone (and may reconnect) instead of waiting on each other.
                _ = failed.cancelled() => break,
                r = out_done.changed(), if !out_finished => {
                    out_finished = r.is_err() || *out_done.borrow();
                }
                r = state.changed() => {
                    if r.is_err() || is_dead(*state.borrow()) {
                        break;
                    }
                }
            }
        }
        drop(in_tx);
        dc
    });

    let closing = ClosingLink::new();
    tokio::spawn(async move {
        let _closing = closing;
        let dc = in_pump.await.ok();
        let _ = out_pump.await;
        if let Some(dc) = dc {
            let _ = dc.close().await;
        }
        let _ = pc.close().await;
        drop(turn_bridge);
        drop(path_hold);
        tracing::debug!("link closed");
    });

    Link {
        tx: out_tx,
        rx: in_rx,
        info,
    }
}

/// Links whose last frames may still be on their way: counted from `spawn_link` until the
/// connection is closed (or its closing task is dropped with the runtime).
static OPEN_LINKS: AtomicUsize = AtomicUsize::new(0);

struct ClosingLink;

impl ClosingLink {
    fn new() -> Self {
        OPEN_LINKS.fetch_add(1, Ordering::AcqRel);
        ClosingLink
    }
}

impl Drop for ClosingLink {
    fn drop(&mut self) {
        OPEN_LINKS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Wait, at most `max`, until every link this process opened has closed. A process that ends
/// right after a transfer stops (a decline, a cancel, an error) drops the task that sends
/// what was queued last; the peer then never learns why, sees a dropped link, and waits to
/// reconnect. Binaries call this before they exit.
pub async fn links_closed(max: Duration) {
    let deadline = Instant::now() + max;
    while OPEN_LINKS.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn is_dead(s: RTCPeerConnectionState) -> bool {
    matches!(
        s,
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
    )
}
