//! One peer connection of the loop and the two ends of its data channel: a sender that
//! paces on buffered-amount events (or webrtc's blocking send limit) and a receiver that
//! only counts bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use crate::knobs::Knobs;

/// Events the loop needs from a connection, forwarded out of webrtc's callbacks (which must
/// return quickly: they run on the connection driver).
struct Handler {
    gathered: mpsc::UnboundedSender<()>,
    channels: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
    label: String,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Failed {
            eprintln!("raw-ceiling: {} connection failed", self.label);
        }
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let _ = self.channels.send(data_channel);
    }
}

/// A built connection plus the streams its handler feeds.
pub(crate) struct Peer<P> {
    pub pc: P,
    gathered: mpsc::UnboundedReceiver<()>,
    pub channels: mpsc::UnboundedReceiver<Arc<dyn DataChannel>>,
}

pub(crate) async fn build(knobs: &Knobs, label: &str) -> Result<Peer<impl PeerConnection + use<>>> {
    let (gathered_tx, gathered) = mpsc::unbounded_channel();
    let (channels_tx, channels) = mpsc::unbounded_channel();
    let mut settings = SettingEngineBuilder::new();
    if let Some(size) = knobs.max_message_size {
        let size = u32::try_from(size).context("--max-message-size too large")?;
        settings = settings.with_sctp_max_message_size(SctpMaxMessageSize::Bounded(size));
    }
    if let Some(size) = knobs.recv_buffer {
        let size = u32::try_from(size).context("--recv-buffer too large")?;
        settings = settings.with_sctp_max_receive_buffer_size(size);
    }
    if let Some(mtu) = knobs.mtu {
        settings = settings.with_sctp_mtu(mtu);
    }
    let mut builder = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings.build())
        .with_handler(Arc::new(Handler {
            gathered: gathered_tx,
            channels: channels_tx,
            label: label.to_string(),
        }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .with_runtime(ferry_core::BufferedUdpRuntime::shared(usize::try_from(
            knobs.udp_buffer.unwrap_or(0),
        )?))
        .with_dedicated_reactor_pool_size(knobs.reactor.unwrap_or(0));
    if let Some(limit) = knobs.send_buffer_limit {
        builder = builder.with_data_channel_send_buffer_limit(usize::try_from(limit)?);
    }
    let pc = builder.build().await.context("building peer connection")?;
    Ok(Peer {
        pc,
        gathered,
        channels,
    })
}

impl<P: PeerConnection> Peer<P> {
    /// Sets `desc` as local description and returns it with all (loopback) candidates
    /// gathered, so one message per side is the whole signaling exchange.
    pub(crate) async fn finish_local(
        &mut self,
        desc: RTCSessionDescription,
    ) -> Result<RTCSessionDescription> {
        self.pc.set_local_description(desc).await?;
        self.gathered
            .recv()
            .await
            .context("ICE gathering never completed")?;
        self.pc
            .local_description()
            .await
            .context("no local description after gathering")
    }

    /// The engine's channel: reliable and ordered.
    pub(crate) async fn open_channel(&self) -> Result<Arc<dyn DataChannel>> {
        let init = RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        Ok(self.pc.create_data_channel("bulk", Some(init)).await?)
    }
}

/// Waits for `dc` to open, then sends `share` bytes taken from `pool` in `msg_size` messages.
/// Returns the instant the channel opened.
pub(crate) async fn pump(
    dc: Arc<dyn DataChannel>,
    share: u64,
    knobs: &Knobs,
    pool: Arc<Vec<u8>>,
    opened: mpsc::UnboundedSender<Instant>,
) -> Result<()> {
    dc.set_buffered_amount_high_threshold(u32::try_from(knobs.high)?)
        .await?;
    dc.set_buffered_amount_low_threshold(u32::try_from(knobs.low)?)
        .await?;
    loop {
        match dc.poll().await {
            Some(DataChannelEvent::OnOpen) => break,
            Some(DataChannelEvent::OnClose) | None => bail!("channel closed before opening"),
            _ => {}
        }
    }
    let _ = opened.send(Instant::now());

    // Events are drained on their own task so the send loop only looks at a flag; a
    // select! around `send` could drop a send future halfway.
    let (paused_tx, mut paused) = watch::channel(false);
    let events = {
        let dc = dc.clone();
        tokio::spawn(async move {
            while let Some(ev) = dc.poll().await {
                match ev {
                    DataChannelEvent::OnBufferedAmountHigh => {
                        let _ = paused_tx.send(true);
                    }
                    DataChannelEvent::OnBufferedAmountLow => {
                        let _ = paused_tx.send(false);
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
        })
    };
    let threshold_pacing = knobs.send_buffer_limit.is_none();
    let msg = usize::try_from(knobs.msg())?.max(1);
    let mut offset = 0usize;
    let mut sent = 0u64;
    while sent < share {
        if threshold_pacing {
            while *paused.borrow_and_update() {
                paused.changed().await?;
            }
        }
        let n = msg.min(usize::try_from(share - sent)?);
        if offset + n > pool.len() {
            offset = 0;
        }
        dc.send(BytesMut::from(&pool[offset..offset + n])).await?;
        offset += n;
        sent += n as u64;
    }
    // Keep draining events until the caller tears the connection down.
    drop(events);
    Ok(())
}

/// Receiver side totals shared by all channels of the loop.
#[derive(Default)]
pub(crate) struct Tally {
    pub bytes: AtomicU64,
    pub messages: AtomicU64,
}

/// Counts every message on `dc`; signals `done` once the loop's total reaches `expected`.
pub(crate) async fn drain(
    dc: Arc<dyn DataChannel>,
    tally: Arc<Tally>,
    expected: u64,
    first_byte: mpsc::UnboundedSender<Instant>,
    done: mpsc::UnboundedSender<Instant>,
) {
    let mut first = true;
    while let Some(ev) = dc.poll().await {
        match ev {
            DataChannelEvent::OnMessage(m) => {
                if first {
                    first = false;
                    let _ = first_byte.send(Instant::now());
                }
                tally.messages.fetch_add(1, Ordering::Relaxed);
                let len = m.data.len() as u64;
                let total = tally.bytes.fetch_add(len, Ordering::AcqRel) + len;
                if total >= expected && total - len < expected {
                    let _ = done.send(Instant::now());
                }
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
}
