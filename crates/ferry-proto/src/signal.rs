//! Signaling protocol: JSON text frames on `/ws`, plus the REST bodies.
//!
//! Every frame is a serde-tagged object: `{"type":"join-room","v":2,"rid":7,"room":"ABCDE-FGHJK"}`.
//! Requests may carry a client-chosen `rid`; the server echoes it in the reply
//! (or in the `error`) so a client can match answers to questions.
//!
//! `pake`, `offer`, `answer` and `ice-candidate` carry an opaque `payload` string
//! that the server forwards verbatim to the other peer of the room. Clients put
//! PAKE messages and ciphertext there; the server never parses, stores or logs it.

use serde::{Deserialize, Serialize};

use crate::RoomId;

/// Largest text frame a client may send; the server closes the socket with 1009 past it.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The query parameter that carries a guest's room on `/ws` (with `v` and `rid` beside it).
pub const JOIN_QUERY: &str = "join";

/// Messages from a client to the signaling server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMsg {
    /// Create a room; the sender becomes its host.
    CreateRoom {
        /// Signaling protocol version.
        #[serde(default = "crate::signal::default_v")]
        v: u16,
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// Requested lifetime; the server clamps it to its own bounds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_secs: Option<u64>,
    },
    /// Join an existing room as its guest.
    JoinRoom {
        /// Signaling protocol version.
        #[serde(default = "crate::signal::default_v")]
        v: u16,
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// The room.
        room: RoomId,
    },
    /// Re-attach as host (after a dropped socket, a restart, or a REST create).
    ReconnectHost {
        /// Signaling protocol version.
        #[serde(default = "crate::signal::default_v")]
        v: u16,
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// The room.
        room: RoomId,
        /// The host's secret for reconnect, extend and close.
        host_token: String,
    },
    /// Host only: extend the room's lifetime (clamped to the server's maximum).
    ExtendRoom {
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// Requested lifetime in seconds; the server clamps it to its bounds.
        ttl_secs: u64,
    },
    /// Host only: close the room for good.
    CloseRoom {
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
    },
    /// Create a room that serves several guests (signaling v3; the sender becomes its host).
    /// The host's traffic with each guest is addressed: it sends [`ClientMsg::ToGuest`] and
    /// hears [`ServerMsg::FromGuest`]. Guests see an ordinary room.
    CreateSharedRoom {
        /// Signaling protocol version: [`crate::SIGNAL_SHARED_VERSION`] or later.
        #[serde(default = "crate::signal::default_v")]
        v: u16,
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// Requested lifetime; the server clamps it to its own bounds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_secs: Option<u64>,
        /// Most guests in the room at once (clamped to the server's bound); a guest's seat is
        /// free again once it leaves (after its peer connection is up, or on failure).
        guests: u32,
    },
    /// Host of a shared room only: `msg` (a relay, `handshake-failed` or `leave`) concerns
    /// guest `guest`. `leave` removes that guest (it gets `room-full`: the host is busy).
    ToGuest {
        /// The guest, as the server numbered it in `from-guest`.
        guest: u32,
        /// What for that guest.
        msg: Box<ClientMsg>,
    },
    /// Leave the room (the socket may stay open for another room).
    Leave,
    /// Host only: the guest's PAKE confirmation failed (wrong password).
    /// The server drops the guest, counts the failure and locks the room past its limit.
    HandshakeFailed,
    /// Opaque relays to the other peer of the room: a PAKE message...
    Pake {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
    /// ...the sealed SDP offer...
    Offer {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
    /// ...the sealed SDP answer...
    Answer {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
    /// ...or a sealed ICE candidate.
    IceCandidate {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
}

/// Messages from the signaling server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMsg {
    /// Sent once on connect: what this server speaks and its limits.
    Welcome {
        /// Signaling protocol version.
        v: u16,
        /// Largest text frame the server accepts.
        max_frame_bytes: usize,
        /// The server took a `join-room` from this socket's upgrade request
        /// (`/ws?join=ROOM&v=2&rid=N`, see [`JOIN_QUERY`]) and answers it right after this
        /// welcome, so a guest saves the round trip of sending the join as a frame. Absent
        /// when the request carried none, or reached the server without its query (a proxy
        /// that drops it), or from an older server: the guest then sends its frame.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        join_in_url: bool,
    },
    /// Reply to `create-room`.
    RoomCreated {
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// The room.
        room: RoomId,
        /// Secret that lets the host reconnect, extend or close. Shown once; the server keeps only a hash.
        host_token: String,
        /// Unix seconds.
        expires_at: u64,
        /// STUN/TURN servers for the room's peers.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    /// Reply to `join-room` and `reconnect-host`.
    Joined {
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// The room.
        room: RoomId,
        /// Which side of the room.
        role: Role,
        /// Unix seconds.
        expires_at: u64,
        /// Whether the other peer is already in the room.
        peer_present: bool,
        /// STUN/TURN servers for the room's peers.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    /// Reply to `extend-room`.
    RoomExtended {
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// Unix seconds.
        expires_at: u64,
    },
    /// The room was closed by its host; sent to the guest.
    RoomClosed,
    /// The other peer joined the room.
    PeerJoined {
        /// Which side of the room.
        role: Role,
    },
    /// The other peer left the room.
    PeerLeft {
        /// Which side of the room.
        role: Role,
    },
    /// To the guest: the host rejected the handshake (wrong password); the guest has been removed.
    /// To the host: acknowledgement with the number of attempts left before the room locks.
    HandshakeFailed {
        /// Failed guesses left before the room locks.
        attempts_left: u32,
    },
    /// The room's lifetime ended; everyone in it is removed.
    RoomExpired {
        /// The room.
        room: RoomId,
    },
    /// A PAKE message from the other peer, relayed.
    Pake {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
    /// The other peer's sealed SDP offer, relayed.
    Offer {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
    /// The other peer's sealed SDP answer, relayed.
    Answer {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
    /// One of the other peer's sealed ICE candidates, relayed.
    IceCandidate {
        /// Opaque to the server, forwarded verbatim.
        payload: String,
    },
    /// To the host of a shared room: `msg` (`peer-joined`, `peer-left`, `handshake-failed`, a
    /// relay, or an `error` about a `to-guest`) concerns guest `guest`.
    FromGuest {
        /// The guest's number in this room (from 1, never reused while the room lives).
        guest: u32,
        /// What about that guest.
        msg: Box<ServerMsg>,
    },
    /// A request failed (`rid` names it when it had one).
    Error {
        /// Request id chosen by the client; the reply (or `error`) echoes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// What went wrong.
        code: ErrorCode,
        /// What went wrong, for a person.
        message: String,
    },
}

/// Which side of a room a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Created the room: the sender.
    Host,
    /// Joined it: the receiver.
    Guest,
}

impl Role {
    /// The other side.
    pub fn other(self) -> Role {
        match self {
            Role::Host => Role::Guest,
            Role::Guest => Role::Host,
        }
    }
    /// Stable name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Guest => "guest",
        }
    }
}

/// Typed error codes shared by the WS and REST APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// No such room.
    RoomNotFound,
    /// Both seats are taken.
    RoomFull,
    /// The room's lifetime ended.
    RoomExpired,
    /// Too many failed handshakes: the room takes no more joins.
    RoomLocked,
    /// Too many requests from this address.
    RateLimited,
    /// A frame that does not parse or does not fit the protocol.
    BadMessage,
    /// A frame past the size limit.
    TooLarge,
    /// A host-only request without the host's token.
    Unauthorized,
    /// A protocol version this server does not speak.
    UnsupportedVersion,
    /// A room request from a socket that is in no room.
    NotInRoom,
    /// The server is at one of its caps (rooms, connections).
    ServerFull,
    /// The server failed.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::RoomNotFound,
        ErrorCode::RoomFull,
        ErrorCode::RoomExpired,
        ErrorCode::RoomLocked,
        ErrorCode::RateLimited,
        ErrorCode::BadMessage,
        ErrorCode::TooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::UnsupportedVersion,
        ErrorCode::NotInRoom,
        ErrorCode::ServerFull,
        ErrorCode::Internal,
    ];

    /// Stable kebab-case name, as on the wire and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RoomNotFound => "room-not-found",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::RoomExpired => "room-expired",
            ErrorCode::RoomLocked => "room-locked",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnsupportedVersion => "unsupported-version",
            ErrorCode::NotInRoom => "not-in-room",
            ErrorCode::ServerFull => "server-full",
            ErrorCode::Internal => "internal",
        }
    }

    /// HTTP status used by the REST API for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::RoomNotFound => 404,
            ErrorCode::RoomFull | ErrorCode::RoomLocked => 409,
            ErrorCode::RoomExpired => 410,
            ErrorCode::RateLimited => 429,
            ErrorCode::BadMessage | ErrorCode::UnsupportedVersion => 400,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotInRoom => 409,
            ErrorCode::ServerFull => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ICE server as handed to clients (`RTCIceServer` shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `POST /api/room/create` body (all optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CreateRoomRequest {
    /// Requested lifetime in seconds; the server clamps it to its bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// `POST /api/room/create` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoomResponse {
    /// The room.
    pub room: RoomId,
    /// The host's secret for reconnect, extend and close.
    pub host_token: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// STUN/TURN servers for the room's peers.
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
}

/// `POST /api/room/join` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRoomRequest {
    /// The room.
    pub room: RoomId,
}

/// `POST /api/room/join` reply: the room can be joined over `/ws` now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRoomResponse {
    /// The room.
    pub room: RoomId,
    /// Unix seconds.
    pub expires_at: u64,
    /// STUN/TURN servers for the room's peers.
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
}

/// Error body of the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
}

/// Prefix of a `pake` relay payload that carries a SPAKE2 message.
pub const PAKE_MSG_PREFIX: &str = "spake2:";
/// Prefix of a `pake` relay payload that carries a key-confirmation tag. The server looks at
/// this prefix (never past it) to count a guest's confirmation that the host did not answer
/// with its own as a failed password guess, whether or not the host reports it.
pub const PAKE_CONFIRM_PREFIX: &str = "confirm:";

pub(crate) fn default_v() -> u16 {
    crate::SIGNAL_VERSION
}

impl ClientMsg {
    /// Parse a text frame. Errors carry a message safe to echo back (it never quotes the payload).
    pub fn parse(text: &str) -> Result<ClientMsg, String> {
        serde_json::from_str(text).map_err(|e| {
            // serde's message can quote input; keep only its category and position.
            format!(
                "malformed message ({:?} at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })
    }

    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The request id, for requests that have one.
    pub fn rid(&self) -> Option<u64> {
        match self {
            ClientMsg::CreateRoom { rid, .. }
            | ClientMsg::CreateSharedRoom { rid, .. }
            | ClientMsg::JoinRoom { rid, .. }
            | ClientMsg::ReconnectHost { rid, .. }
            | ClientMsg::ExtendRoom { rid, .. }
            | ClientMsg::CloseRoom { rid } => *rid,
            _ => None,
        }
    }
}

impl ServerMsg {
    /// Parse a text frame from the server.
    pub fn parse(text: &str) -> Result<ServerMsg, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An `error` reply.
    pub fn error(rid: Option<u64>, code: ErrorCode, message: impl Into<String>) -> ServerMsg {
        ServerMsg::Error {
            rid,
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
