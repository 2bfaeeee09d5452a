//! The part both roles share once both are in the room: PAKE and key confirmation, sealed
//! offer/answer/trickle ICE, data channel, and the hello with the fingerprint MAC.

use bytes::Bytes;
use ferry_proto::RoomId;
use ferry_proto::peer::{self, Control, Frame};
use ferry_proto::signal::{ClientMsg, ErrorCode, IceServer, Role, ServerMsg};
use futures::future::OptionFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use webrtc::peer_connection::{RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription};

use super::confirm::{PakeOut, PakeStep};
use super::{ConnectConfig, ConnectError, Connected, SessionEvent};
use crate::crypto::{self, Pake, RoomKeys, SealKind, Sealer};
use crate::defaults::PEER_LEFT_GRACE;
use crate::link::LinkInfo;
use crate::password::Password;
use crate::rtc::{self, PcEvent};
use crate::rtc_link;
use crate::signaling::SignalClient;

pub(super) struct Handshake<'a> {
    pub sig: &'a mut SignalClient,
    pub role: Role,
    pub room: RoomId,
    pub password: &'a Password,
    pub cfg: &'a ConnectConfig,
    pub ice_servers: Vec<IceServer>,
    pub events: Option<&'a mpsc::UnboundedSender<SessionEvent>>,
    /// Frames that follow our hello before the peer's is in (`HostRoom::open_with`).
    pub opening: &'a [Bytes],
}

pub(super) async fn recv_by(
    sig: &mut SignalClient,
    deadline: Instant,
) -> Result<ServerMsg, ConnectError> {
    match tokio::time::timeout_at(deadline, sig.recv()).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(ConnectError::Timeout),
    }
}

/// Room-level messages that end a handshake; everything else is ignored.
pub(super) fn room_event(m: ServerMsg) -> Result<(), ConnectError> {
    match m {
        ServerMsg::PeerLeft { .. } => Err(ConnectError::PeerLeft),
        // A relay refused because the other peer's socket is gone: it raced the server's
        // `peer-left` notice, and means the same (we are in the room, or we would not be here).
        ServerMsg::Error {
            code: ErrorCode::NotInRoom,
            ..
        } => Err(ConnectError::PeerLeft),
        ServerMsg::HandshakeFailed { .. } => Err(ConnectError::WrongPassword),
        ServerMsg::RoomExpired { .. } => Err(ConnectError::RoomExpired),
        ServerMsg::RoomClosed => Err(ConnectError::RoomClosed),
        ServerMsg::Error { code, message, .. } => Err(ConnectError::from_server(code, message)),
        other => {
            tracing::debug!("ignoring {other:?} during handshake");
            Ok(())
        }
    }
}

fn emit(events: Option<&mpsc::UnboundedSender<SessionEvent>>, e: SessionEvent) {
    if let Some(tx) = events {
        let _ = tx.send(e);
    }
}

impl Handshake<'_> {
    pub(super) async fn run(mut self) -> Result<Connected, ConnectError> {
        let keys = self.pake().await.map_err(|e| match (self.role, e) {
            (Role::Host, ConnectError::Protocol(m)) => ConnectError::BadGuest(m),
            (_, e) => e,
        })?;
        emit(self.events, SessionEvent::Connecting);
        let Handshake {
            sig,
            role,
            cfg,
            ice_servers,
            events,
            opening,
            ..
        } = self;
        let (peer, dc, early, agreed) = negotiate(sig, role, cfg, &ice_servers, &keys).await?;
        // Only on the agreed stream do the opening frames gain anything: on a channel opened
        // in band our channel opens with the guest's hello in hand, as in older builds.
        let opening = if agreed { opening } else { &[] };
        let connected = hello(peer, dc, early, opening, cfg, &keys).await?;
        emit(
            events,
            SessionEvent::Connected {
                path: connected.link.info.path,
            },
        );
        Ok(connected)
    }

    /// SPAKE2 and key confirmation. Nothing but the PAKE messages and the confirmation tags
    /// leaves before both sides have proved they hold the same key.
    ///
    /// The guest proves the key first and the host answers only a valid tag: a tag lets its
    /// holder test a password guess offline, so the side that reveals one must already have
    /// been checked. A guessing guest therefore learns the outcome only from the host's
    /// verdict, which the host counts (and reports) whatever the guest does next. A guest
    /// whose tag went out and got no valid answer calls the run a wrong password too: a
    /// server posing as the host could have tested one guess against it.
    async fn pake(&mut self) -> Result<RoomKeys, ConnectError> {
        let (pake, msg) = Pake::start(self.role, &self.room, self.password);
        self.sig.send(ClientMsg::Pake { payload: msg })?;
        let deadline = Instant::now() + self.cfg.connect_timeout;
        let mut step = PakeStep::new(self.role, pake);
        loop {
            let incoming = match recv_by(self.sig, deadline).await {
                Ok(ServerMsg::Pake { payload }) => payload,
                // Only a guest is told its run failed; a host hearing it (a late notice
                // about an earlier guest's run) decides for itself.
                Ok(ServerMsg::HandshakeFailed { .. }) if self.role == Role::Host => continue,
                Ok(other) => match room_event(other) {
                    Ok(()) => continue,
                    Err(e) => return Err(step.ended(e)),
                },
                Err(e) => return Err(step.ended(e)),
            };
            match step.on_message(&incoming) {
                Ok(PakeOut::Wait) => {}
                Ok(PakeOut::Send(payload)) => self.sig.send(ClientMsg::Pake { payload })?,
                Ok(PakeOut::Done(keys, reply)) => {
                    if let Some(payload) = reply {
                        self.sig.send(ClientMsg::Pake { payload })?;
                    }
                    return Ok(keys);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn open_json<T: serde::de::DeserializeOwned>(
    sealer: &mut Sealer,
    kind: SealKind,
    payload: &str,
) -> Result<T, ConnectError> {
    let pt = sealer
        .open(kind, payload)
        .map_err(|e| ConnectError::Protocol(format!("sealed {kind:?}: {e}")))?;
    serde_json::from_slice(&pt).map_err(|e| ConnectError::Protocol(format!("{kind:?}: {e}")))
}

/// A sealed offer or answer: the description; whether its sender put Ferry's channel on
/// [`rtc::AGREED_STREAM`] (`stream`); and the largest SCTP packet the peer's stack takes,
/// when it says (`max_packet`, sent by the browser peer). Builds that know neither field
/// drop them (serde ignores unknown keys), which is what keeps them connecting.
fn open_description(
    sealer: &mut Sealer,
    kind: SealKind,
    payload: &str,
    tuning: &super::RtcTuning,
) -> Result<(RTCSessionDescription, bool), ConnectError> {
    let v: serde_json::Value = open_json(sealer, kind, payload)?;
    if let Some(max) = v.get("max_packet").and_then(serde_json::Value::as_u64) {
        // What `rtc::new_peer` set for this connection.
        cap_probe_mtu(tuning.max_probe_mtu, max);
    }
    let agreed = tuning.agreed_channel
        && v.get("stream").and_then(serde_json::Value::as_u64)
            == Some(u64::from(rtc::AGREED_STREAM));
    let desc = serde_json::from_value(v)
        .map_err(|e| ConnectError::Protocol(format!("{kind:?}: {e}")))?;
    Ok((desc, agreed))
}

/// Seal an offer or answer, saying `stream` when Ferry's channel is on the agreed stream.
fn seal_description(
    sealer: &mut Sealer,
    kind: SealKind,
    desc: &RTCSessionDescription,
    agreed: bool,
) -> String {
    let mut v = serde_json::to_value(desc).unwrap_or_default();
    if agreed && let Some(o) = v.as_object_mut() {
        o.insert("stream".into(), rtc::AGREED_STREAM.into());
    }
    seal_json(sealer, kind, &v)
}

/// Keep SCTP path MTU probing at or below what the peer accepts. A browser's DTLS transport
/// (Chromium's, at least) tears the connection down on a record past ~2 KiB instead of
/// dropping it, so an 8192-byte probe would end the session. Process-wide like the rest of
/// rtc-sctp's tuning (`rtc::new_peer` sets it for each connection); read when the
/// association is created, which is after this description is applied.
fn cap_probe_mtu(ours: u32, peer_max: u64) {
    let cap = u32::try_from(peer_max).unwrap_or(u32::MAX);
    if ours != 0 && cap < ours {
        tracing::debug!("the peer takes SCTP packets up to {cap} bytes; probing no further");
        rtc_sctp::set_default_max_probe_mtu(cap);
    }
}

fn seal_json<T: serde::Serialize>(sealer: &mut Sealer, kind: SealKind, v: &T) -> String {
    let pt = zeroize::Zeroizing::new(serde_json::to_vec(v).unwrap_or_default());
    sealer.seal(kind, &pt)
}

type Channel = std::sync::Arc<dyn webrtc::data_channel::DataChannel>;

/// Ferry's channel while it opens: the channel, the wait for its open, and whether it is on
/// the agreed stream (which decides whether the host's opening frames go).
struct Opening {
    ch: Channel,
    open: oneshot::Receiver<Result<Vec<Bytes>, rtc::RtcError>>,
    agreed: bool,
}

/// Sealed offer/answer and trickle ICE until the data channel is open. The host offers.
/// Also says whether the channel is on the agreed stream.
async fn negotiate(
    sig: &mut SignalClient,
    role: Role,
    cfg: &ConnectConfig,
    ice_servers: &[IceServer],
    keys: &RoomKeys,
) -> Result<(rtc::Peer, Channel, Vec<Bytes>, bool), ConnectError> {
    let mut sealer = keys.sealer();
    let mut peer = rtc::new_peer(&cfg.tuning, ice_servers, &cfg.bind_addrs).await?;
    let pc = peer.pc.clone();
    let mut deadline = Instant::now() + cfg.connect_timeout;
    let mut chan: Option<Opening> = None;
    let mut remote_set = false;
    let mut pending: Vec<RTCIceCandidateInit> = Vec::new();
    let mut sig_alive = true;
    let mut peer_left = false;

    let watch_open = |ch: Channel, agreed: bool| {
        let (tx, open) = oneshot::channel();
        let dc = ch.clone();
        let t = cfg.connect_timeout;
        tokio::spawn(async move {
            let _ = tx.send(rtc::wait_open(&dc, t).await);
        });
        Opening { ch, open, agreed }
    };

    if role == Role::Host {
        // On the agreed stream when this build offers it; a guest that does not take it up
        // gets a channel opened in band instead, once its answer says so.
        let agreed = cfg.tuning.agreed_channel;
        chan = Some(watch_open(rtc::create_channel(&pc, agreed).await?, agreed));
        let offer = pc.create_offer(None).await.map_err(rtc::RtcError::from)?;
        pc.set_local_description(offer.clone())
            .await
            .map_err(rtc::RtcError::from)?;
        sig.send(ClientMsg::Offer {
            payload: seal_description(&mut sealer, SealKind::Offer, &offer, agreed),
        })?;
    }

    let early = loop {
        tokio::select! {
            m = sig.recv(), if sig_alive => match m {
                Ok(ServerMsg::Offer { payload }) if role == Role::Guest && !remote_set => {
                    let (offer, agreed) = open_description(&mut sealer, SealKind::Offer, &payload, &cfg.tuning)?;
                    pc.set_remote_description(offer).await.map_err(rtc::RtcError::from)?;
                    remote_set = true;
                    for c in pending.drain(..) {
                        pc.add_ice_candidate(c).await.map_err(rtc::RtcError::from)?;
                    }
                    if agreed {
                        chan = Some(watch_open(rtc::create_channel(&pc, true).await?, true));
                    }
                    let answer = pc.create_answer(None).await.map_err(rtc::RtcError::from)?;
                    pc.set_local_description(answer.clone()).await.map_err(rtc::RtcError::from)?;
                    sig.send(ClientMsg::Answer { payload: seal_description(&mut sealer, SealKind::Answer, &answer, agreed) })?;
                }
                Ok(ServerMsg::Answer { payload }) if role == Role::Host && !remote_set => {
                    let (answer, agreed) = open_description(&mut sealer, SealKind::Answer, &payload, &cfg.tuning)?;
                    pc.set_remote_description(answer).await.map_err(rtc::RtcError::from)?;
                    remote_set = true;
                    if cfg.tuning.agreed_channel && !agreed {
                        // An older guest (native, or an older page) waits for an in-band open. The
                        // channel on the agreed stream stays unused: it sends nothing by itself.
                        chan = Some(watch_open(rtc::create_channel(&pc, false).await?, false));
                    }
                    for c in pending.drain(..) {
                        pc.add_ice_candidate(c).await.map_err(rtc::RtcError::from)?;
                    }
                }
                Ok(ServerMsg::IceCandidate { payload }) => {
                    let c: RTCIceCandidateInit = open_json(&mut sealer, SealKind::Ice, &payload)?;
                    if c.candidate.is_empty() {
                        continue;
                    }
                    if remote_set {
                        if let Err(e) = pc.add_ice_candidate(c).await {
                            tracing::debug!("remote candidate refused: {e}");
                        }
                    } else {
                        pending.push(c);
                    }
                }
                Ok(ServerMsg::PeerLeft { .. }) => {
                    // The peer may have finished its side and closed its socket; give ICE a moment.
                    deadline = deadline.min(Instant::now() + PEER_LEFT_GRACE);
                    peer_left = true;
                }
                Ok(ServerMsg::HandshakeFailed { .. }) if role == Role::Host => {}
                Ok(other) => room_event(other)?,
                Err(_) => {
                    // Signaling gone mid-ICE: what was exchanged may be enough to connect.
                    tracing::debug!("signaling closed during ICE");
                    sig_alive = false;
                }
            },
            ev = peer.events.recv() => match ev {
                Some(PcEvent::Candidate(c)) => {
                    // The host's go out right behind its offer, so the guest checks as soon as
                    // it has them, half a round trip before the host has the answer; ICE
                    // answers a check that outruns the answer, and a signaled candidate takes
                    // over the peer-reflexive one the check revealed (vendor/README.md, rtc-ice).
                    if sig_alive && !c.candidate.is_empty() {
                        sig.send(ClientMsg::IceCandidate { payload: seal_json(&mut sealer, SealKind::Ice, &c) })?;
                    }
                }
                Some(PcEvent::State(RTCPeerConnectionState::Failed)) => {
                    return Err(ConnectError::Rtc("connection failed (no usable ICE path)".into()));
                }
                Some(PcEvent::State(_)) => {}
                Some(PcEvent::DataChannel(ch)) => {
                    if role == Role::Guest && chan.is_none() {
                        chan = Some(watch_open(ch, false));
                    }
                }
                None => return Err(ConnectError::Rtc("peer connection gone".into())),
            },
            Some(r) = OptionFuture::from(chan.as_mut().map(|c| &mut c.open)), if chan.is_some() => {
                match r {
                    Ok(Ok(early)) => {
                        let agreed = chan.as_ref().is_some_and(|c| c.agreed);
                        let how = if agreed { "on the agreed stream" } else { "opened in band" };
                        tracing::debug!("data channel open, {how} ({} early message(s))", early.len());
                        break early;
                    }
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => return Err(ConnectError::Rtc("data channel watcher ended".into())),
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = pc.close().await;
                // Not a timeout: the peer went away (a crash, a closed app), which a new
                // attempt can outlive; the receiver retries a `PeerLeft`, not a `Timeout`.
                return Err(if peer_left { ConnectError::PeerLeft } else { ConnectError::Timeout });
            }
        }
    };
    let chan = chan.ok_or_else(|| ConnectError::Rtc("no data channel".into()))?;
    Ok((peer, chan.ch, early, chan.agreed))
}

/// Start the link and exchange `hello`s; each side's MAC binds its role and both DTLS
/// fingerprints (ours from our SDP, theirs from the certificate DTLS actually presented).
/// `opening` follows our hello at once: the certificate already matched the sealed SDP.
async fn hello(
    peer: rtc::Peer,
    dc: Channel,
    early: Vec<Bytes>,
    opening: &[Bytes],
    cfg: &ConnectConfig,
    keys: &RoomKeys,
) -> Result<Connected, ConnectError> {
    let pc = peer.pc.clone();
    let local_fp = rtc::local_fingerprint(&pc)
        .await
        .ok_or_else(|| ConnectError::Protocol("no local DTLS fingerprint".into()))?;
    let remote_fp = rtc::remote_cert_fingerprint(&pc)
        .await
        .ok_or_else(|| ConnectError::Protocol("peer presented no DTLS certificate".into()))?;
    let sdp_fp = rtc::remote_sdp_fingerprint(&pc)
        .await
        .ok_or_else(|| ConnectError::Protocol("no DTLS fingerprint in the peer's SDP".into()))?;
    if crypto::normalize_fp(&sdp_fp) != crypto::normalize_fp(&remote_fp) {
        let _ = pc.close().await;
        return Err(ConnectError::Protocol(
            "DTLS certificate does not match the sealed SDP".into(),
        ));
    }
    let (path, local_addr, remote_addr) = rtc::selected_path(&pc).await;
    let ours = cfg.tuning.max_message_size.clamp(16 * 1024, 256 * 1024);
    let info = LinkInfo {
        max_message_size: ours,
        path,
        caps: vec![peer::CAP_LZ4.to_string(), peer::CAP_TEXT.to_string()],
        local_addr,
        remote_addr,
        opened: !opening.is_empty(),
    };
    let mut link = rtc_link::spawn_link(peer, dc, early, &cfg.tuning, info);
    let mac = keys.fingerprint_mac(&local_fp, &remote_fp);
    let hello = Control::Hello {
        version: ferry_proto::PEER_VERSION,
        caps: vec![peer::CAP_LZ4.to_string(), peer::CAP_TEXT.to_string()],
        max_message_size: ours as u32,
        mac: data_encoding::HEXLOWER.encode(&mac),
    };
    for frame in std::iter::once(Bytes::from(hello.encode())).chain(opening.iter().cloned()) {
        link.tx
            .send(frame)
            .await
            .map_err(|_| ConnectError::Rtc("link closed before hello".into()))?;
    }
    let first = tokio::time::timeout(cfg.connect_timeout, link.rx.recv())
        .await
        .map_err(|_| ConnectError::Timeout)?
        .ok_or_else(|| ConnectError::Rtc("link closed before the peer's hello".into()))?;
    let (version, caps, theirs, mac) = match peer::decode(&first) {
        Ok(Frame::Control(Control::Hello {
            version,
            caps,
            max_message_size,
            mac,
        })) => (version, caps, max_message_size, mac),
        _ => return Err(ConnectError::Protocol("first message was not hello".into())),
    };
    let mac = data_encoding::HEXLOWER_PERMISSIVE
        .decode(mac.as_bytes())
        .map_err(|_| ConnectError::Protocol("hello MAC is not hex".into()))?;
    if !keys.verify_fingerprint_mac(&local_fp, &remote_fp, &mac) {
        // Dropping `link` closes the connection.
        return Err(ConnectError::Protocol(
            "fingerprint MAC mismatch: the DTLS connection is not with the PAKE peer".into(),
        ));
    }
    if version != ferry_proto::PEER_VERSION {
        return Err(ConnectError::Protocol(format!(
            "peer speaks version {version}, we speak {}",
            ferry_proto::PEER_VERSION
        )));
    }
    tracing::debug!("the peer's hello checks out");
    link.info.max_message_size = ours.min(theirs as usize).max(1024);
    link.info.caps = caps
        .into_iter()
        .filter(|c| link.info.caps.contains(c))
        .collect();
    Ok(Connected {
        link,
        verification: keys.verification_code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: ErrorCode) -> ServerMsg {
        ServerMsg::Error {
            rid: None,
            code,
            message: String::new(),
        }
    }

    #[test]
    fn a_refused_relay_to_a_vanished_peer_means_the_peer_left() {
        assert!(matches!(
            room_event(refusal(ErrorCode::NotInRoom)),
            Err(ConnectError::PeerLeft)
        ));
        assert!(matches!(
            room_event(ServerMsg::PeerLeft { role: Role::Host }),
            Err(ConnectError::PeerLeft)
        ));
        assert!(matches!(
            room_event(refusal(ErrorCode::RoomLocked)),
            Err(ConnectError::RoomLocked)
        ));
    }
}
