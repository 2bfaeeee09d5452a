//! Server configuration. Plain data: the binary fills it from flags/env, embedders and tests
//! build it in code starting from `Config::default()`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Where the session table lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// In-process only: a restart forgets every room.
    Memory,
    /// A SQLite file (WAL); rooms survive a restart until they expire.
    File(PathBuf),
}

/// A rate: per-IP on room creation and joining (also counts `reconnect-host`), or the
/// server-wide cap on creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second per IP.
    pub per_second: u32,
    /// Requests allowed in a burst before the sustained rate applies.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 5,
            burst: 20,
        }
    }
}

/// TURN REST API (coturn `use-auth-secret`): the server hands out short-lived credentials,
/// username = `<expiry-unix>:<room>`, credential = base64(HMAC-SHA1(secret, username)).
#[derive(Clone, PartialEq, Eq)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    pub secret: String,
    pub ttl: Duration,
}

/// `--turn-url` without `--turn-secret`, or the other way round.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--turn-url and --turn-secret go together")]
pub struct TurnHalfConfigured;

impl TurnConfig {
    /// Lifetime of issued credentials when the operator does not choose one.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

    /// TURN from a server's flags (`ferry-signal` and `ferry serve` alike): both URLs and the
    /// secret, or neither.
    pub fn from_flags(
        urls: Vec<String>,
        secret: Option<String>,
        ttl: Duration,
    ) -> Result<Option<TurnConfig>, TurnHalfConfigured> {
        match (urls.is_empty(), secret) {
            (true, None) => Ok(None),
            (false, Some(secret)) => Ok(Some(TurnConfig { urls, secret, ttl })),
            _ => Err(TurnHalfConfigured),
        }
    }
}

impl std::fmt::Debug for TurnConfig {
    // The shared secret must never reach a log line through `{:?}` of the config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: DbLocation,
    /// Lifetime of a room when the client does not ask for one.
    pub room_ttl: Duration,
    /// Upper bound for any requested lifetime (create or extend).
    pub max_room_ttl: Duration,
    pub max_rooms: usize,
    pub max_connections: usize,
    /// WebSocket sockets open at once from one address (an IPv6 /64 counts as one address).
    pub max_sockets_per_ip: usize,
    /// Rooms open at once that one address created.
    pub max_rooms_per_ip: usize,
    /// A room whose host socket has been gone (or never came) this long is removed; the host
    /// reconnects with its token within it.
    pub host_grace: Duration,
    /// Server-wide cap on room creation, whatever the addresses.
    pub global_create_rate: RateLimit,
    /// Bytes queued for one socket; a peer whose queue would grow past this is closed (1008).
    pub max_queue_bytes: usize,
    /// Longest a single write to a socket may take before the socket is dropped.
    pub write_timeout: Duration,
    /// A connection must send its complete HTTP request headers within this.
    pub header_read_timeout: Duration,
    /// A WebSocket must send its first message within this after the upgrade.
    pub first_message_timeout: Duration,
    /// Where `/metrics` is served; `None` = nowhere. Never on the public listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Largest text frame accepted; a larger one closes that socket with 1009.
    pub max_frame_bytes: usize,
    /// Failed handshakes reported by the host before the room locks.
    pub handshake_fail_limit: u32,
    pub rate_limit: RateLimit,
    /// A socket that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    /// Browser origins allowed to open `/ws` and call the REST API. Empty = no browser origin;
    /// `*` = any. Requests without an `Origin` header (native clients) are always allowed.
    pub allowed_origins: Vec<String>,
    pub turn: Option<TurnConfig>,
    pub stun_urls: Vec<String>,
    /// Malformed messages tolerated on one socket before it is closed with 1008.
    pub max_bad_messages: u32,
    /// Proxies whose `X-Forwarded-For` is believed when keying rate limits.
    pub trusted_proxies: Vec<IpAddr>,
    /// How often expired rooms are swept.
    pub sweep_interval: Duration,
    /// How long an expired room id is remembered so joins get `room-expired`, not `room-not-found`.
    pub tombstone_ttl: Duration,
    /// `redis://…`: rooms live in Redis, shared with every node pointed at it, instead of in
    /// this process and `db`. `None` (the default): one node, SQLite.
    pub redis: Option<String>,
    /// The built browser page (`npm run build:web`) to serve at `/` and `/j/ROOM`. `None`:
    /// the copy embedded at build time, if any (see `web.rs`).
    pub web_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            db: DbLocation::Memory,
            room_ttl: Duration::from_secs(3600),
            max_room_ttl: Duration::from_secs(24 * 3600),
            max_rooms: 10_000,
            max_connections: 20_000,
            max_sockets_per_ip: 64,
            max_rooms_per_ip: 32,
            host_grace: Duration::from_secs(120),
            global_create_rate: RateLimit {
                per_second: 500,
                burst: 2000,
            },
            max_queue_bytes: 256 * 1024,
            write_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(10),
            first_message_timeout: Duration::from_secs(10),
            metrics_listen: None,
            max_frame_bytes: ferry_proto::signal::MAX_FRAME_BYTES,
            handshake_fail_limit: 3,
            rate_limit: RateLimit::default(),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            allowed_origins: Vec::new(),
            turn: None,
            stun_urls: Vec::new(),
            max_bad_messages: 8,
            trusted_proxies: Vec::new(),
            sweep_interval: Duration::from_millis(250),
            tombstone_ttl: Duration::from_secs(24 * 3600),
            redis: None,
            web_dir: None,
        }
    }
}

impl Config {
    /// Lifetime for a request: the default when absent, never zero, never past the maximum.
    pub fn clamp_ttl(&self, requested_secs: Option<u64>) -> Duration {
        let want = requested_secs
            .map(Duration::from_secs)
            .unwrap_or(self.room_ttl);
        want.clamp(
            Duration::from_secs(1).min(self.max_room_ttl),
            self.max_room_ttl,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_clamped() {
        let c = Config::default();
        assert_eq!(c.clamp_ttl(None), Duration::from_secs(3600));
        assert_eq!(c.clamp_ttl(Some(0)), Duration::from_secs(1));
        assert_eq!(c.clamp_ttl(Some(10)), Duration::from_secs(10));
        assert_eq!(c.clamp_ttl(Some(u64::MAX)), Duration::from_secs(24 * 3600));
    }

    #[test]
    fn turn_flags_come_in_pairs() {
        let ttl = TurnConfig::DEFAULT_TTL;
        assert_eq!(TurnConfig::from_flags(vec![], None, ttl), Ok(None));
        let both = TurnConfig::from_flags(vec!["turn:x".into()], Some("s".into()), ttl);
        assert_eq!(
            both.map(|t| t.map(|t| t.urls)),
            Ok(Some(vec!["turn:x".to_string()]))
        );
        assert_eq!(
            TurnConfig::from_flags(vec!["turn:x".into()], None, ttl),
            Err(TurnHalfConfigured)
        );
        assert_eq!(
            TurnConfig::from_flags(vec![], Some("s".into()), ttl),
            Err(TurnHalfConfigured)
        );
    }

    #[test]
    fn turn_secret_is_not_debug_printed() {
        let t = TurnConfig {
            urls: vec!["turn:x".into()],
            secret: "hunter2".into(),
            ttl: Duration::from_secs(60),
        };
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
