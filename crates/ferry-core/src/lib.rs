//! Ferry's transfer engine. Layers, bottom up:
//! - `crypto`: SPAKE2 room key, key confirmation, sealing of SDP/ICE, fingerprint MAC.
//! - `signaling`: WebSocket client for `ferry-signal`.
//! - `rtc`: webrtc-rs peer connection and data channel, tuned.
//! - `session`: host/join a room and come out with an authenticated [`link::Link`].
//! - `transfer`, `store`, `fsio`, `events`: move files over a link, resumably.

pub mod link;
// connect half
pub mod crypto;
pub mod password;
pub mod rtc;
pub mod rtc_runtime;
pub mod session;
pub mod signaling;
pub mod ticket;
pub mod turn_tcp;

pub use defaults::Tuning;
pub use password::Password;
pub use session::{
    ConnectConfig, ConnectError, Connected, HostRoom, RoomTicket, RtcTuning, SessionEvent, join,
};
pub use ticket::{JoinTicket, TicketError};

// transfer half
pub mod api;
pub mod defaults;
pub mod error;
pub mod events;
pub mod fsio;
pub mod manifest;
pub mod process;
pub mod status;
pub mod store;
pub mod transfer;
