//! Ferry's transfer engine. Layers, bottom up:
//! - `crypto`: SPAKE2 room key, key confirmation, sealing of SDP/ICE, fingerprint MAC.
//! - `signaling`: WebSocket client for `ferry-signal`.
//! - `rtc`: webrtc-rs peer connection and data channel, tuned.
//! - `session`: host/join a room and come out with an authenticated link.
//! - `transfer`, `store`, `fsio`, `events`: move files over a link, resumably.
//!
//! The modules are crate-private; what the CLI, the desktop app and the bench use is
//! re-exported here, so this page is the whole public API. Start with [`send`] and
//! [`receive`].
//!
//! With the `test-hooks` feature (tests only), the modules that ferry-core's own integration
//! tests drive directly (`crypto`, `defaults`, `link`, `manifest`, `session`, `signaling`,
//! `transfer`) are public too, hidden from the docs: internals, not API. Their items are `pub`
//! for that reason, so in a build without the feature they are not reachable, and
//! `unreachable_pub` is allowed on them.

// Tests reach into these; see the crate docs. Without the feature, what only those tests use
// is dead here, which is expected rather than a warning.
macro_rules! test_visible {
    ($($name:ident),+ $(,)?) => {$(
        #[cfg(feature = "test-hooks")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "test-hooks"))]
        #[allow(unreachable_pub, dead_code, unused_imports)]
        mod $name;
    )+};
}

test_visible!(
    crypto, defaults, link, manifest, session, signaling, transfer
);

// connect half
mod password;
mod rtc;
mod rtc_link;
mod rtc_runtime;
mod ticket;
mod turn_tcp;

// transfer half
mod api;
mod error;
mod events;
mod fsio;
mod lifetime;
mod nearby;
mod process;
mod status;
mod store;

pub use api::{
    DEFAULT_RECEIVERS_AT_ONCE, Decision, ManyOptions, ManyReport, Offer, ReceiveOptions,
    ReceiveReport, ReceivedFile, SendOptions, SendReport, check_text_size, receive, send,
    send_many, send_text,
};
pub use defaults::{TEXT_MAX_BYTES, Tuning};
pub use error::{ConnectKind, ErrorKind, FerryError, exit_codes};
pub use events::{Event, EventSink, OfferFile};
pub use fsio::escape_display;
pub use lifetime::{LIFETIME_PRESETS, LifetimeError, format_lifetime, parse_lifetime};
pub use nearby::{
    Announcer, DEVICE_NAME_MAX_CHARS, NearbyError, NearbyRoom, browse as nearby_rooms,
    default_device_name, sanitize_device_name,
};
pub use password::Password;
pub use process::tune_allocator;
pub use rtc_link::links_closed;
pub use rtc_runtime::BufferedUdpRuntime;
pub use session::{
    ConnectConfig, ConnectError, Connected, HostRoom, RoomTicket, RtcTuning, SessionEvent, join,
};
pub use status::{FileState, TransferState, UnknownState};
pub use store::{Direction, FileRow, Store, StoreError, TransferKind, TransferRow};
pub use ticket::{JoinTicket, TicketError};
#[cfg(feature = "test-hooks")]
pub use transfer::TestHooks;
pub use transfer::TransferHandle;
