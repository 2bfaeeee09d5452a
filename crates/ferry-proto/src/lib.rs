//! Ferry's wire types, shared by the signaling server, the engine and the apps.
//!
//! Nothing here does I/O: every type is plain data with (de)serialisation and
//! validation, so the protocol can be tested without sockets.

pub mod peer;
pub mod room;
pub mod signal;

pub use room::{RoomId, RoomIdError};

/// Version of the signaling protocol (JSON over WebSocket / REST). 2: the guest sends its
/// key-confirmation tag first and the host answers only a valid one, so one run gives a
/// guessing guest nothing to test offline; v1 hosts revealed their tag to any guest.
pub const SIGNAL_VERSION: u16 = 2;
/// Signaling version 3 adds rooms that serve several guests (`create-shared-room`, with the
/// host's traffic addressed by `to-guest` / `from-guest`). A server that speaks it takes v2
/// requests as before and still greets with `v: 2`, so older clients keep working; a host
/// must say v3 to create or re-attach to a shared room.
pub const SIGNAL_SHARED_VERSION: u16 = 3;
/// Version of the peer protocol (binary frames on the data channel). 2: chunk hashes are
/// BLAKE3 subtree chaining values and chunks follow the hash tree's shape.
pub const PEER_VERSION: u16 = 2;
