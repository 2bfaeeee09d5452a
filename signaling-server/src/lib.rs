//! Ferry signaling server: rooms for two peers, an opaque relay for their PAKE messages and
//! sealed SDP/ICE, and nothing else. It never sees file data, passwords or keys.
//!
//! Embed it with [`spawn`] (the engine does for zero-setup LAN use and in tests), or run the
//! `ferry-signal` binary.

pub mod client;
pub mod config;
pub mod guess;
pub mod limits;
pub mod metrics;
mod ops;
pub mod redis_rooms;
pub mod relay;
mod rest;
pub mod rooms;
mod server;
mod state;
pub mod store;
pub mod token;
pub mod turn;
pub mod web;
mod ws;

use std::net::SocketAddr;

pub use config::{Config, DbLocation, RateLimit, TurnConfig, TurnHalfConfigured};
pub use server::{RunningServer, router, spawn};
pub use state::AppState;
pub use ws::close as close_code;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Io(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot reach redis: {0}")]
    Redis(#[from] redis_rooms::RedisError),
    #[error(transparent)]
    Web(#[from] web::WebError),
}

/// The log filter the binary uses: `FERRY_SIGNAL_LOG` (EnvFilter syntax) or `default`.
///
/// The WebSocket library is capped at `info` whatever the operator asks for: its trace and
/// debug lines print whole frames, which would put relayed payloads in the log.
pub fn log_filter(default: &str) -> tracing_subscriber::EnvFilter {
    let mut f = tracing_subscriber::EnvFilter::try_from_env("FERRY_SIGNAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    for cap in ["tungstenite=info", "tokio_tungstenite=info"] {
        if let Ok(d) = cap.parse() {
            f = f.add_directive(d);
        }
    }
    f
}
