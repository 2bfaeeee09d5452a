//! webrtc-rs 0.21 peer connection and data channel, tuned. `rtc_link` turns the open
//! channel into a [`crate::link::Link`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferry_proto::signal::IceServer;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceCandidateType, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, SettingEngineBuilder,
};

use crate::link::PathKind;
use crate::session::RtcTuning;

/// Label of Ferry's one data channel.
pub(crate) const CHANNEL_LABEL: &str = "ferry";

/// A WebRTC failure, as webrtc-rs worded it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RtcError(pub String);

/// Which SCTP congestion controller the vendored rtc-sctp runs (vendor/README.md,
/// "Selectable congestion control"). Only the sending side's choice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// Loss-based, with Ferry's delay-based slow-start exit (upstream's controller), kept
    /// for A/B runs (`FERRY_SCTP_CC=reno`).
    Reno,
    /// Model-based and paced: keeps long lossy paths full where Reno halves its window on
    /// every random loss. The default.
    #[default]
    Bbr,
}

/// A congestion controller name that is neither `reno` nor `bbr`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SCTP congestion control {0:?} (expected reno or bbr)")]
pub struct UnknownCongestionControl(pub String);

impl std::str::FromStr for CongestionControl {
    type Err = UnknownCongestionControl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reno" => Ok(CongestionControl::Reno),
            "bbr" => Ok(CongestionControl::Bbr),
            _ => Err(UnknownCongestionControl(s.to_string())),
        }
    }
}

/// The `FERRY_SCTP_CC` benchmark knob: unset keeps the tuning as it is; a value that is not
/// a controller is reported and ignored, as the other `FERRY_*` knobs ignore bad numbers.
pub(crate) fn congestion_control_knob(value: Option<&str>) -> Option<CongestionControl> {
    let v = value?;
    match v.parse() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("FERRY_SCTP_CC ignored: {e}");
            None
        }
    }
}

impl From<CongestionControl> for rtc_sctp::CongestionControlKind {
    fn from(c: CongestionControl) -> Self {
        match c {
            CongestionControl::Reno => rtc_sctp::CongestionControlKind::Reno,
            CongestionControl::Bbr => rtc_sctp::CongestionControlKind::Bbr,
        }
    }
}

impl From<webrtc::error::Error> for RtcError {
    fn from(e: webrtc::error::Error) -> Self {
        RtcError(e.to_string())
    }
}

/// What the connection's event handler reports.
#[derive(Clone)]
pub(crate) enum PcEvent {
    /// A local ICE candidate, ready to trickle.
    Candidate(RTCIceCandidateInit),
    /// The connection's state changed.
    State(RTCPeerConnectionState),
    /// The offerer's data channel arrived (answerer side).
    DataChannel(Arc<dyn DataChannel>),
}

struct Handler {
    tx: mpsc::UnboundedSender<PcEvent>,
    state: watch::Sender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.tx.send(PcEvent::Candidate(init));
            }
            Err(e) => tracing::debug!("unserialisable local candidate: {e}"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!("peer connection state: {state}");
        let _ = self.state.send(state);
        let _ = self.tx.send(PcEvent::State(state));
    }

    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.tx.send(PcEvent::DataChannel(dc));
    }
}

/// A peer connection plus what its handler reports.
pub(crate) struct Peer {
    /// The connection.
    pub pc: Arc<dyn PeerConnection>,
    /// What its handler reports, in order.
    pub events: mpsc::UnboundedReceiver<PcEvent>,
    /// Its latest state.
    pub state: watch::Receiver<RTCPeerConnectionState>,
    /// Local bridges for TURN over TCP/TLS (see `turn_tcp`); they must live as long as `pc`.
    pub turn_bridge: Option<crate::turn_tcp::TurnBridge>,
    /// Keeps SCTP from probing for larger packets until the selected candidate pair proves
    /// direct (`spawn_link`); a relayed connection keeps it for its life.
    pub path_hold: Option<rtc_sctp::PathHold>,
}

fn to_rtc_ice(s: &IceServer) -> RTCIceServer {
    RTCIceServer {
        urls: s.urls.clone(),
        username: s.username.clone().unwrap_or_default(),
        credential: s.credential.clone().unwrap_or_default(),
    }
}

/// Binding requests per candidate pair so that checks span as long as webrtc's default
/// (7 × 200 ms): a slow path gets the same chance to answer at any check interval.
fn ice_attempts(interval: Duration) -> u16 {
    let ms = interval.as_millis().max(1);
    (1400 / ms).clamp(7, 200) as u16
}

/// Build a tuned peer connection. A fresh DTLS certificate is generated for each (webrtc's
/// default when none is configured), so fingerprints never repeat across sessions.
pub(crate) async fn new_peer(
    tuning: &RtcTuning,
    ice_servers: &[IceServer],
    bind_addrs: &[String],
) -> Result<Peer, RtcError> {
    // webrtc's `rtc` crate builds each association's SCTP config from
    // `TransportConfig::default()`, so the process-wide default is the only way in; it is
    // read when the association is created, after this call.
    rtc_sctp::set_default_congestion_control(tuning.congestion_control.into());
    // Larger packets only where the path is direct: a TURN relay gives each allocation a small
    // socket buffer (coturn: 128 KiB), and through it even 1400-byte packets ran at a third of
    // what the 1191-byte base carries (netsim's symmetric-NAT case). Which pair ICE selects is
    // known only after webrtc built the association, so every connection starts held and
    // `spawn_link` lets go once the pair is direct.
    rtc_sctp::set_default_max_probe_mtu(tuning.max_probe_mtu);
    let path_hold = Some(rtc_sctp::PathHold::new());
    // The DTLS server answers the first ClientHello directly instead of sending a cookie
    // (HelloVerifyRequest) first: one round trip less. The cookie only proves that the client
    // receives at its source address; ICE's authenticated connectivity checks on the selected
    // pair proved that already, and who the peer is rests on the fingerprint MAC in `hello`
    // (docs/CRYPTO.md §5), which the cookie never touched.
    rtc_dtls::config::set_skip_hello_verify(true);
    let max_msg = tuning.max_message_size.clamp(16 * 1024, 256 * 1024) as u32;
    let loopback = bind_addrs
        .iter()
        .any(|a| a.starts_with("127.") || a.starts_with("[::1]"));
    let mut se = SettingEngineBuilder::new()
        .with_sctp_max_message_size(
            ::rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize::Bounded(
                max_msg,
            ),
        )
        // The window must hold at least one whole message for reassembly.
        .with_sctp_max_receive_buffer_size(tuning.sctp_receive_buffer.max(max_msg as usize) as u32)
        .with_include_loopback_candidate(loopback)
        // webrtc flushes a handshake step's packets on its next timer tick, and while ICE runs
        // that tick is the check interval: at the default 200 ms, ICE + DTLS + SCTP cost four
        // ticks (~0.8 s) even on loopback. A shorter interval with proportionally more
        // attempts keeps the same ~1.4 s per candidate pair before giving up.
        .with_ice_connection_attempts(
            Some(tuning.ice_check_interval),
            Some(ice_attempts(tuning.ice_check_interval)),
        );
    if let Some(mtu) = tuning.mtu {
        se = se.with_sctp_mtu(mtu as u32);
    }
    if tuning.relay_only {
        // ICE holds a valid relay pair back for 2 s in case a direct one succeeds; relay-only
        // there is none to wait for. On a 150 ms path that wait was half of set-up.
        se = se.with_relay_acceptance_min_wait(Some(Duration::ZERO));
    }
    let offers_turn = ice_servers
        .iter()
        .flat_map(|s| s.urls.iter())
        .any(|u| u.starts_with("turn:") || u.starts_with("turns:"));
    if tuning.relay_only && !offers_turn {
        return Err(RtcError(
            "relay-only: the signaling server offers no TURN relay to connect through".into(),
        ));
    }
    // webrtc allocates over UDP only; stream TURN URLs are pointed at local bridges instead.
    let (ice_servers, turn_bridge) = crate::turn_tcp::bridge_ice_servers(ice_servers).await;
    let policy = if tuning.relay_only {
        RTCIceTransportPolicy::Relay
    } else {
        RTCIceTransportPolicy::All
    };
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers.iter().map(to_rtc_ice).collect())
        .with_ice_transport_policy(policy)
        .build();
    let (tx, events) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(se.build())
        .with_handler(Arc::new(Handler {
            tx,
            state: state_tx,
        }))
        .with_runtime(crate::rtc_runtime::BufferedUdpRuntime::shared(
            tuning.udp_buffer,
        ))
        .with_udp_addrs(bind_addrs.to_vec())
        .with_dedicated_reactor_pool_size(if tuning.dedicated_reactor { 2 } else { 0 })
        .with_data_channel_send_buffer_limit(tuning.buffered_high.max(max_msg as usize))
        .build()
        .await?;
    Ok(Peer {
        pc: Arc::new(pc),
        events,
        state,
        turn_bridge,
        path_hold,
    })
}

/// The stream both peers put Ferry's channel on when they agree it in the sealed offer and
/// answer, instead of opening it in band (docs/CRYPTO.md §4, `stream`). DCEP's own ids skip
/// it, so a fallback channel beside it never collides.
pub(crate) const AGREED_STREAM: u16 = 0;

/// Ferry's channel: reliable and ordered. `agreed`: on [`AGREED_STREAM`], without DCEP's
/// OPEN and ACK, so each side may send as soon as its SCTP association is up (a round trip
/// sooner on the side that opens in band); otherwise the offerer opens it in band.
pub(crate) async fn create_channel(
    pc: &Arc<dyn PeerConnection>,
    agreed: bool,
) -> Result<Arc<dyn DataChannel>, RtcError> {
    let init = RTCDataChannelInit {
        ordered: true,
        negotiated: agreed.then_some(AGREED_STREAM),
        ..Default::default()
    };
    Ok(pc.create_data_channel(CHANNEL_LABEL, Some(init)).await?)
}

/// Messages the peer may get in ahead of our `OnOpen`. Ferry's protocol sends one (hello)
/// and then waits, so more than this is a peer misbehaving, not a race.
const MAX_EARLY_MESSAGES: usize = 16;

/// Wait for `OnOpen` (bounded) and return the messages that arrived before it, in order.
///
/// They can: webrtc raises the opener's `OnOpen` when the peer's DCEP ACK arrives, as a
/// connection event, but hands the messages behind the ACK straight to the channel. When
/// both land in one read pass (relayed packets come in bursts, more so on a loaded machine)
/// the peer's hello is queued before our open. Dropping it left the guest connected and the
/// host waiting 30 s for a hello it had thrown away (netsim, TURN over TCP, under CPU load).
pub(crate) async fn wait_open(
    dc: &Arc<dyn DataChannel>,
    timeout: Duration,
) -> Result<Vec<Bytes>, RtcError> {
    let early = tokio::time::timeout(timeout, until_open(|| dc.poll()))
        .await
        .map_err(|_| RtcError("data channel did not open in time".into()))??;
    if !early.is_empty() {
        tracing::debug!(
            "{} message(s) arrived before the channel opened",
            early.len()
        );
    }
    Ok(early)
}

async fn until_open<F, Fut>(mut next: F) -> Result<Vec<Bytes>, RtcError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<DataChannelEvent>>,
{
    let mut early = Vec::new();
    loop {
        match next().await {
            Some(DataChannelEvent::OnOpen) => return Ok(early),
            Some(DataChannelEvent::OnMessage(m)) => {
                if early.len() == MAX_EARLY_MESSAGES {
                    return Err(RtcError(format!(
                        "peer sent more than {MAX_EARLY_MESSAGES} messages before the channel opened"
                    )));
                }
                early.push(m.data.freeze());
            }
            Some(DataChannelEvent::OnClose) | None => {
                return Err(RtcError("data channel closed before it opened".into()));
            }
            Some(_) => {}
        }
    }
}

/// `sha-256 AB:..` from an SDP's `a=fingerprint:` line.
pub(crate) fn sdp_fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_owned())
}

/// The DTLS fingerprint our local description announces.
pub(crate) async fn local_fingerprint(pc: &Arc<dyn PeerConnection>) -> Option<String> {
    sdp_fingerprint(&pc.local_description().await?.sdp)
}

/// The DTLS fingerprint the peer's description announces (checked against what it presents).
pub(crate) async fn remote_sdp_fingerprint(pc: &Arc<dyn PeerConnection>) -> Option<String> {
    sdp_fingerprint(&pc.remote_description().await?.sdp)
}

/// Fingerprint of the certificate the peer actually presented in the DTLS handshake.
pub(crate) async fn remote_cert_fingerprint(pc: &Arc<dyn PeerConnection>) -> Option<String> {
    let sctp = pc.sctp().await?;
    let certs = sctp.transport().get_remote_certificates().await.ok()?;
    certs
        .first()
        .map(|der| crate::crypto::cert_fingerprint(der))
}

fn kind(t: RTCIceCandidateType) -> PathKind {
    match t {
        RTCIceCandidateType::Host => PathKind::Host,
        RTCIceCandidateType::Srflx => PathKind::Srflx,
        RTCIceCandidateType::Prflx => PathKind::Prflx,
        RTCIceCandidateType::Relay => PathKind::Relay,
        _ => PathKind::Unknown,
    }
}

/// Type of the selected candidate pair (the "least direct" of its two ends) and its addresses.
pub(crate) async fn selected_path(
    pc: &Arc<dyn PeerConnection>,
) -> (PathKind, Option<String>, Option<String>) {
    let Some(sctp) = pc.sctp().await else {
        return (PathKind::Unknown, None, None);
    };
    let ice = sctp.transport().ice_transport();
    match ice.get_selected_candidate_pair().await {
        Ok(Some(pair)) => {
            let (l, r) = (pair.local(), pair.remote());
            let rank = |k: PathKind| match k {
                PathKind::Relay => 4,
                PathKind::Prflx => 3,
                PathKind::Srflx => 2,
                PathKind::Host => 1,
                _ => 0,
            };
            let mut kr = kind(r.typ);
            // A check can arrive before the candidate it comes from has trickled in; the pair
            // is then recorded as peer-reflexive although the address is one the peer did
            // announce. Report what the address really is.
            if kr == PathKind::Prflx
                && let Ok(remotes) = ice.get_remote_candidates().await
                && let Some(c) = remotes.iter().find(|c| {
                    c.typ != RTCIceCandidateType::Prflx
                        && c.address == r.address
                        && c.port == r.port
                })
            {
                kr = kind(c.typ);
            }
            let kl = kind(l.typ);
            let path = if rank(kl) >= rank(kr) { kl } else { kr };
            (
                path,
                Some(format!("{}:{}", l.address, l.port)),
                Some(format!("{}:{}", r.address, r.port)),
            )
        }
        _ => (PathKind::Unknown, None, None),
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use std::collections::VecDeque;

    use webrtc::data_channel::RTCDataChannelMessage;

    use super::*;

    #[test]
    fn congestion_control_knob_parses_and_the_default_is_bbr() {
        assert_eq!(
            RtcTuning::default().congestion_control,
            CongestionControl::Bbr
        );
        assert_eq!(CongestionControl::default(), CongestionControl::Bbr);
        assert_eq!(
            congestion_control_knob(Some("bbr")),
            Some(CongestionControl::Bbr)
        );
        assert_eq!(
            congestion_control_knob(Some(" BBR ")),
            Some(CongestionControl::Bbr)
        );
        assert_eq!(
            congestion_control_knob(Some("reno")),
            Some(CongestionControl::Reno)
        );
        assert_eq!(congestion_control_knob(Some("cubic")), None);
        assert_eq!(congestion_control_knob(None), None);
        assert_eq!(
            rtc_sctp::CongestionControlKind::from(CongestionControl::Bbr),
            rtc_sctp::CongestionControlKind::Bbr
        );
        // rtc-sctp's own default stays Reno (its upstream tests rely on it); Ferry picks
        // per peer, so only the mapping matters here. (Comparing with rtc-sctp's default
        // would race: `new_peer` sets it process-wide in other tests.)
        assert_eq!(
            rtc_sctp::CongestionControlKind::from(CongestionControl::Reno),
            rtc_sctp::CongestionControlKind::Reno
        );
    }

    fn msg(b: &[u8]) -> DataChannelEvent {
        DataChannelEvent::OnMessage(RTCDataChannelMessage {
            is_string: false,
            data: BytesMut::from(b),
        })
    }

    async fn run(events: Vec<DataChannelEvent>) -> Result<Vec<Bytes>, RtcError> {
        let mut q: VecDeque<_> = events.into();
        until_open(|| std::future::ready(q.pop_front())).await
    }

    #[tokio::test]
    async fn messages_ahead_of_open_are_kept_in_order() {
        let early = run(vec![
            msg(b"hello"),
            DataChannelEvent::OnBufferedAmountLow,
            msg(b"second"),
            DataChannelEvent::OnOpen,
            msg(b"after open: the link's to read"),
        ])
        .await
        .unwrap();
        assert_eq!(early, vec![Bytes::from("hello"), Bytes::from("second")]);
        assert!(
            run(vec![DataChannelEvent::OnOpen])
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn close_or_a_flood_before_open_is_an_error() {
        let closed = run(vec![msg(b"x"), DataChannelEvent::OnClose]).await;
        assert!(closed.unwrap_err().0.contains("closed before it opened"));
        assert!(run(vec![]).await.is_err());
        let mut flood: Vec<_> = (0..=MAX_EARLY_MESSAGES).map(|_| msg(b"x")).collect();
        flood.push(DataChannelEvent::OnOpen);
        assert!(
            run(flood)
                .await
                .unwrap_err()
                .0
                .contains("before the channel opened")
        );
    }
}
