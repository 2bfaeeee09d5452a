//! Host or join a room and come out with an authenticated [`Link`].
//!
//! Steps, both sides: signaling socket → room → SPAKE2 over `pake` relays → key confirmation
//! (a wrong password stops here, within one round trip) → sealed offer/answer/trickle ICE →
//! one reliable ordered data channel → `hello` with the fingerprint MAC, checked against the
//! DTLS certificate actually presented → [`Connected`].

use std::time::Duration;

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, IceServer};

use crate::link::{Link, PathKind};

mod confirm;
mod handshake;
mod host;
mod shared;

pub use host::{HostRoom, RoomCommand, join};
pub use shared::{GuestRun, RoomNews, SharedRoom};

/// Everything needed to reach the other peer.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// Signaling server, `ws(s)://host:port/ws`.
    pub server: String,
    /// Added to the ICE servers the signaling server hands out.
    pub ice_servers: Vec<IceServer>,
    /// Data-channel settings (defaults: `defaults.rs`).
    pub tuning: RtcTuning,
    /// Local UDP binds; `0.0.0.0:0` means every interface (tests use `127.0.0.1:0`).
    pub bind_addrs: Vec<String>,
    /// Bound on each wait for the other side (signaling replies, ICE, DTLS, hello).
    pub connect_timeout: Duration,
    /// Failed password guesses the host takes before it gives the room up by itself, whatever
    /// the server says: a malicious server can ignore the host's reports, so the lock that
    /// bounds online guessing cannot rest on the server alone.
    pub guess_limit: u32,
}

/// Default [`ConnectConfig::guess_limit`]; the same as the server's default room lock.
pub const DEFAULT_GUESS_LIMIT: u32 = crate::defaults::GUESS_LIMIT;

impl ConnectConfig {
    /// The defaults for reaching `server`.
    pub fn new(server: impl Into<String>) -> Self {
        ConnectConfig {
            server: server.into(),
            ice_servers: Vec::new(),
            tuning: RtcTuning::default(),
            bind_addrs: vec!["0.0.0.0:0".into()],
            connect_timeout: crate::defaults::CONNECT_TIMEOUT,
            guess_limit: DEFAULT_GUESS_LIMIT,
        }
    }
}

/// Data-channel tuning (docs/BENCHMARKS.md, "Raw ceiling"). Defaults (in
/// `defaults.rs`) are the measured best on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcTuning {
    /// Largest message we accept and advertise (SCTP max-message-size). 64 KiB..=256 KiB.
    pub max_message_size: usize,
    /// SCTP receive window (rwnd); caps one connection at about rwnd / RTT.
    pub sctp_receive_buffer: usize,
    /// SCTP MTU override (default 1191 keeps TURN over IPv6 working).
    pub mtu: Option<usize>,
    /// Run the connection's driver on a dedicated reactor thread.
    pub dedicated_reactor: bool,
    /// Sender pauses once this many bytes are outstanding on the channel...
    pub buffered_high: usize,
    /// ...and the low-water mark reported by the channel.
    pub buffered_low: usize,
    /// Frames queued in each direction of the `Link`.
    pub link_capacity: usize,
    /// `SO_RCVBUF`/`SO_SNDBUF` for the connection's UDP sockets (0 = OS default); see
    /// `rtc_runtime.rs`.
    pub udp_buffer: usize,
    /// Pause between ICE connectivity checks; also how soon webrtc sends each handshake
    /// step, so it sets the time to connect (see `rtc::new_peer`).
    pub ice_check_interval: Duration,
    /// SCTP congestion controller (benchmark knob `FERRY_SCTP_CC=bbr`). Process-wide, last
    /// writer wins: webrtc builds the SCTP config from rtc-sctp's global default rather than
    /// from anything we pass, so `rtc::new_peer` sets that default from this field and two
    /// peers in one process with different values race. Only the sender's choice matters.
    pub congestion_control: crate::rtc::CongestionControl,
    /// Largest SCTP packet path MTU discovery may probe for; 0 keeps the starting MTU
    /// (benchmark knob `FERRY_SCTP_MAX_MTU`). Process-wide, like the controller.
    pub max_probe_mtu: u32,
    /// Connect only through a TURN relay (ICE policy "relay"): the peer then never learns
    /// this device's addresses, at the cost of the relay's path. Fails at once when the
    /// signaling server offers no TURN server.
    pub relay_only: bool,
    /// Offer (host) or take up (guest) Ferry's channel on a stream both sides agree in the
    /// sealed offer and answer, instead of DCEP's in-band open: a round trip less before the
    /// host can send. Off (benchmark knob `FERRY_AGREED_CHANNEL=0`), this build acts as older
    /// ones do.
    pub agreed_channel: bool,
}

impl Default for RtcTuning {
    fn default() -> Self {
        use crate::defaults as d;
        RtcTuning {
            max_message_size: d::MAX_MESSAGE_SIZE,
            sctp_receive_buffer: d::SCTP_RECEIVE_BUFFER,
            mtu: None,
            dedicated_reactor: d::DEDICATED_REACTOR,
            buffered_high: d::BUFFERED_HIGH,
            buffered_low: d::BUFFERED_LOW,
            link_capacity: d::LINK_CAPACITY,
            udp_buffer: d::UDP_BUFFER,
            ice_check_interval: d::ICE_CHECK_INTERVAL,
            congestion_control: d::CONGESTION_CONTROL,
            max_probe_mtu: d::SCTP_MAX_PROBE_MTU,
            relay_only: false,
            agreed_channel: true,
        }
    }
}

/// A room the host holds: shown to the user (room id, expiry) and kept to reattach.
#[derive(Debug, Clone)]
pub struct RoomTicket {
    /// Signaling server the room lives on.
    pub server: String,
    /// The room's id.
    pub room: RoomId,
    /// Secret that lets the host reattach after a crash. Persist it, never show it.
    pub host_token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What a waiting host hears of its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A guest joined; its password is being checked.
    PeerJoined,
    /// A guest tried a wrong password; the room locks when `attempts_left` reaches 0.
    WrongPassword {
        /// Wrong guesses left before the room locks.
        attempts_left: u32,
    },
    /// The guest left the room.
    PeerLeft,
    /// A guest's connection attempt failed (it went silent, or WebRTC found no path). The
    /// room stays open and the host waits for the next attempt.
    AttemptFailed {
        /// Stable code of the failure ([`ConnectError::code`]).
        code: &'static str,
        /// What happened, for a person.
        message: String,
    },
    /// The server moved the room's end (the host asked to extend it).
    RoomExtended {
        /// The new end, Unix seconds.
        expires_at: u64,
    },
    /// Passwords matched; WebRTC is being set up.
    Connecting,
    /// The devices are connected.
    Connected {
        /// The kind of path ICE chose.
        path: PathKind,
    },
}

/// The result of connecting.
pub struct Connected {
    /// The authenticated channel to the other peer.
    pub link: Link,
    /// Short code both users may compare (equal on both sides iff no one is in the middle).
    pub verification: String,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("info", &self.link.info)
            .field("verification", &self.verification)
            .finish()
    }
}

/// Why connecting to the other peer failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The peer's key-confirmation tag did not match ours, or the run ended after ours went
    /// out without a valid answer. Both peers see only ciphertext they cannot tell apart from
    /// a tampering server's, so the message names both causes.
    #[error("wrong password, or the server interfered")]
    WrongPassword,
    /// No such room on the server.
    #[error("room not found")]
    RoomNotFound,
    /// The room's lifetime ran out.
    #[error("room expired")]
    RoomExpired,
    /// Both seats are taken.
    #[error("room already has two peers")]
    RoomFull,
    /// Too many wrong passwords: the room takes no more joins.
    #[error("room locked after too many wrong passwords")]
    RoomLocked,
    /// The host closed the room.
    #[error("room closed by its host")]
    RoomClosed,
    /// The server refused: too many requests from this address.
    #[error("rate limited by the signaling server; try again later")]
    RateLimited,
    /// The other peer left mid-handshake.
    #[error("the other peer left")]
    PeerLeft,
    /// The other side did not answer within the connect timeout.
    #[error("timed out waiting for the other peer")]
    Timeout,
    /// The signaling connection failed or closed.
    #[error("signaling server: {0}")]
    Signaling(String),
    /// The signaling server answered with an error not named above.
    #[error("signaling server refused: {code}: {message}")]
    Server {
        /// The server's code.
        code: ErrorCode,
        /// The server's words.
        message: String,
    },
    /// WebRTC found no path, or the connection failed.
    #[error("WebRTC: {0}")]
    Rtc(String),
    /// The other peer or the server broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A guest broke the PAKE exchange before proving anything (garbage, a tag before its
    /// key). The host drops that guest and keeps the room: a stranger must not be able to end
    /// it with one bad message. Never leaves [`HostRoom::accept`].
    #[error("a guest broke the PAKE exchange: {0}")]
    BadGuest(String),
}

impl ConnectError {
    /// Stable kebab-case code for exit codes, JSON events and UI messages.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::WrongPassword => "wrong-password",
            ConnectError::RoomNotFound => "room-not-found",
            ConnectError::RoomExpired => "room-expired",
            ConnectError::RoomFull => "room-full",
            ConnectError::RoomLocked => "room-locked",
            ConnectError::RoomClosed => "room-closed",
            ConnectError::RateLimited => "rate-limited",
            ConnectError::PeerLeft => "peer-left",
            ConnectError::Timeout => "timeout",
            ConnectError::Signaling(_) => "signaling",
            ConnectError::Server { code, .. } => code.as_str(),
            ConnectError::Rtc(_) => "rtc",
            ConnectError::Protocol(_) | ConnectError::BadGuest(_) => "protocol",
        }
    }

    pub(crate) fn from_server(code: ErrorCode, message: String) -> ConnectError {
        match code {
            ErrorCode::RoomNotFound => ConnectError::RoomNotFound,
            ErrorCode::RoomExpired => ConnectError::RoomExpired,
            ErrorCode::RoomFull => ConnectError::RoomFull,
            ErrorCode::RoomLocked => ConnectError::RoomLocked,
            ErrorCode::RateLimited => ConnectError::RateLimited,
            code => ConnectError::Server { code, message },
        }
    }
}

impl From<crate::signaling::SignalError> for ConnectError {
    fn from(e: crate::signaling::SignalError) -> Self {
        ConnectError::Signaling(e.to_string())
    }
}

impl From<crate::rtc::RtcError> for ConnectError {
    fn from(e: crate::rtc::RtcError) -> Self {
        ConnectError::Rtc(e.0)
    }
}
