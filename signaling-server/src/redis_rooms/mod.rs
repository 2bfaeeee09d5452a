//! The room registry in Redis, for several `ferry-signal` nodes sharing rooms (`--redis`).
//!
//! Every room lives in one Redis hash (token hash, lifetime, seats, failed guesses, lock,
//! guess state) whose key expires when the room ends; a tombstone key outlives it so a late
//! join hears `room-expired`, not `room-not-found`. Each mutation is one Lua script, so two
//! nodes never interleave halfway through one (a join racing a join, guesses through
//! different nodes). A seat names the node and connection holding it (`node:conn`).
//!
//! Delivery crosses nodes by pub/sub: each node subscribes to its own channel, and a script
//! that must tell a peer something publishes to the peer's node (see [`events`]). One node
//! connection issues a socket's scripts in order and one subscription receives them in
//! order, so relayed messages keep their order end to end.
//!
//! The operations are split by concern as the in-memory registry's are: `seats`, `relaying`,
//! `lifetime`, `shared`; `ops` holds what they share.
//!
//! Node-local, as before: the connection cap, sockets per address and the HTTP-phase cap (they
//! bound this node's descriptors). Shared here: rooms, the per-address room cap, the per-address
//! create/join rate and the server-wide create rate.

pub(crate) mod events;
mod lifetime;
mod ops;
mod relaying;
mod seats;
mod shared;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role};
use rand::RngCore;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Config;
use crate::limits::IpKey;
use crate::rooms::{ConnId, Refusal};

/// Longest one Redis call may take before the request is answered "server busy".
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// A node's heartbeat key lives this long; seats of a node silent for longer are free.
pub(crate) const ALIVE_MS: u64 = 3_000;
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// What this node remembers about one of its sockets in a room.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub room: RoomId,
    pub role: Role,
    /// When the room ends as far as this node last heard (Redis clock, unix ms).
    pub deadline_ms: u64,
    /// Who holds the other seat, as the node's channel last said (see [`Peer`]).
    pub peer: Peer,
    /// A guest of a shared room: its number there (its relays to the host are addressed).
    pub guest: Option<u32>,
}

/// The other seat of a socket's room, cached so a relayed message is one PUBLISH to the
/// peer's node instead of a script. Only this node's subscription changes it (scripts publish
/// `P`/`PL` to every seat whose peer they change, the caller's own included), so it follows
/// Redis's own order of changes; the receiving node delivers a published frame only when the
/// sender is the peer it knows, so a stale sender (a host replaced an instant ago) is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// Not heard yet (just seated, or the subscription was re-established): relay by script.
    Unknown,
    /// The other seat is empty.
    Absent,
    /// The other seat: its node's id and its connection there.
    At { node: u64, conn: ConnId },
    /// The host of a shared room: frames from any of its guests are delivered (each names its
    /// guest inside), and its own relays are addressed, by script.
    Guests,
}

impl Peer {
    /// A seat as the scripts write it, `"<node hex>:<conn>"`; `-` is an empty seat.
    pub(crate) fn parse(seat: &str) -> Option<Peer> {
        if seat == "-" {
            return Some(Peer::Absent);
        }
        if seat == "*" {
            return Some(Peer::Guests);
        }
        let (node, conn) = seat.split_once(':')?;
        Some(Peer::At {
            node: u64::from_str_radix(node, 16).ok()?,
            conn: conn.parse().ok()?,
        })
    }
}

pub(crate) struct Scripts {
    rate: redis::Script,
    create: redis::Script,
    join: redis::Script,
    attach: redis::Script,
    leave: redis::Script,
    relay: redis::Script,
    publish: redis::Script,
    failed: redis::Script,
    close: redis::Script,
    kick: redis::Script,
    extend: redis::Script,
    check: redis::Script,
    reap: redis::Script,
}

impl Scripts {
    fn load() -> Scripts {
        let prelude = include_str!("prelude.lua");
        let s = |body: &str| redis::Script::new(&format!("{prelude}\n{body}"));
        Scripts {
            rate: s(include_str!("rate.lua")),
            create: s(include_str!("create.lua")),
            join: s(include_str!("join.lua")),
            attach: s(include_str!("attach.lua")),
            leave: s(include_str!("leave.lua")),
            relay: s(include_str!("relay.lua")),
            // Alone, without the prelude: the relay hot path.
            publish: redis::Script::new(include_str!("publish.lua")),
            failed: s(include_str!("failed.lua")),
            close: s(include_str!("close.lua")),
            kick: s(include_str!("kick.lua")),
            extend: s(include_str!("extend.lua")),
            check: s(include_str!("check.lua")),
            reap: s(include_str!("reap.lua")),
        }
    }
}

/// Upper bounds (seconds) of the Redis latency histogram.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

/// Redis health as `/metrics` shows it.
#[derive(Debug, Default)]
pub struct RedisMetrics {
    pub errors: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl RedisMetrics {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, a) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if s <= *b {
                a.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self, up: bool, out: &mut String) {
        use std::fmt::Write;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP ferry_signal_redis_up Whether this node reaches Redis and is subscribed.\n\
             # TYPE ferry_signal_redis_up gauge\nferry_signal_redis_up {}",
            u8::from(up)
        );
        let _ = writeln!(
            out,
            "# HELP ferry_signal_redis_errors_total Redis calls that failed or timed out.\n\
             # TYPE ferry_signal_redis_errors_total counter\nferry_signal_redis_errors_total {}",
            g(&self.errors)
        );
        let _ = writeln!(
            out,
            "# HELP ferry_signal_redis_latency_seconds Time of Redis calls.\n\
             # TYPE ferry_signal_redis_latency_seconds histogram"
        );
        for (b, a) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "ferry_signal_redis_latency_seconds_bucket{{le=\"{b}\"}} {}",
                g(a)
            );
        }
        let n = g(&self.count);
        let _ = writeln!(
            out,
            "ferry_signal_redis_latency_seconds_bucket{{le=\"+Inf\"}} {n}\n\
             ferry_signal_redis_latency_seconds_sum {}\n\
             ferry_signal_redis_latency_seconds_count {n}",
            g(&self.sum_us) as f64 / 1e6
        );
    }
}

/// Limits the scripts enforce, from the node's config (every node should run the same).
#[derive(Debug, Clone)]
struct Limits {
    fail_limit: u32,
    grace_ms: u64,
    tomb_ms: u64,
    max_rooms: usize,
    max_rooms_per_ip: usize,
}

pub struct RedisRooms {
    node: String,
    conn: ConnectionManager,
    client: redis::Client,
    scripts: Scripts,
    limits: Limits,
    pub(crate) members: Mutex<HashMap<ConnId, Member>>,
    /// Per-deployment salt for address keys: addresses are never stored in Redis in the clear.
    salt: Mutex<String>,
    pub(crate) subscribed: AtomicBool,
    /// Last heartbeat reached Redis.
    pub(crate) reachable: AtomicBool,
    /// Open rooms in the whole deployment, refreshed by the sweeper.
    pub(crate) room_count: AtomicUsize,
    pub metrics: RedisMetrics,
}

pub(crate) fn busy() -> Refusal {
    Refusal {
        code: ErrorCode::ServerFull,
        message: "server busy: its room store is unreachable; retry shortly",
    }
}

impl RedisRooms {
    /// Connect (and fail the start when Redis is not there); later outages are survived.
    pub async fn connect(url: &str, cfg: &Config) -> Result<RedisRooms, RedisError> {
        let client = redis::Client::open(url)?;
        let mgr_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(
            OP_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), mgr_cfg),
        )
        .await
        .map_err(|_| RedisError::Timeout(OP_TIMEOUT * 2))??;
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        // The same 16 hex digits a `Peer` parses back.
        let node = format!("{:016x}", u64::from_be_bytes(id));
        let me = RedisRooms {
            node,
            conn,
            client,
            scripts: Scripts::load(),
            limits: Limits {
                fail_limit: cfg.handshake_fail_limit,
                grace_ms: cfg.host_grace.as_millis().min(u64::MAX as u128) as u64,
                tomb_ms: cfg.tombstone_ttl.as_millis() as u64,
                max_rooms: cfg.max_rooms,
                max_rooms_per_ip: cfg.max_rooms_per_ip,
            },
            members: Mutex::new(HashMap::new()),
            salt: Mutex::new(String::new()),
            subscribed: AtomicBool::new(false),
            reachable: AtomicBool::new(false),
            room_count: AtomicUsize::new(0),
            metrics: RedisMetrics::default(),
        };
        me.heartbeat().await?;
        tracing::info!(node = %me.node, "room registry in redis");
        Ok(me)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    pub(crate) fn channel(&self) -> String {
        format!("ferry:node:{}", self.node)
    }

    /// Forget every cached peer: events may have been missed while unsubscribed.
    pub(crate) fn forget_peers(&self) {
        for m in self.members().values_mut() {
            m.peer = Peer::Unknown;
        }
    }

    fn seat(&self, conn: ConnId) -> String {
        format!("{}:{conn}", self.node)
    }

    pub(crate) fn members(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, Member>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time and count one Redis call, bounded by [`OP_TIMEOUT`].
    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        let t0 = Instant::now();
        let r = match tokio::time::timeout(OP_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RedisError::Redis(e)),
            Err(_) => Err(RedisError::Timeout(OP_TIMEOUT)),
        };
        self.metrics.observe(t0.elapsed());
        if let Err(e) = &r {
            self.metrics.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "redis call failed");
        }
        r
    }

    /// Run a script; its reply is a list of strings, the first `ok` or a refusal's name.
    async fn script(
        &self,
        s: &redis::Script,
        args: &[&(dyn std::fmt::Display + Sync)],
    ) -> Result<Vec<String>, Refusal> {
        let mut inv = s.prepare_invoke();
        for a in args {
            inv.arg(a.to_string());
        }
        let mut c = self.conn.clone();
        self.timed(inv.invoke_async::<Vec<String>>(&mut c))
            .await
            .map_err(|_| busy())
    }

    /// Refresh this node's heartbeat and read the deployment's address salt.
    pub(crate) async fn heartbeat(&self) -> Result<(), RedisError> {
        let mut fresh = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let mut c = self.conn.clone();
        let mut p = redis::pipe();
        p.cmd("SET")
            .arg(format!("ferry:alive:{}", self.node))
            .arg(1)
            .arg("PX")
            .arg(ALIVE_MS)
            .ignore()
            .cmd("SADD")
            .arg("ferry:nodes")
            .arg(&self.node)
            .ignore()
            .cmd("SET")
            .arg("ferry:salt")
            .arg(&fresh)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg("ferry:salt");
        let r = self.timed(p.query_async::<(String,)>(&mut c)).await;
        match r {
            Ok((salt,)) => {
                *self.salt.lock().unwrap_or_else(|p| p.into_inner()) = salt;
                self.reachable.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.reachable.store(false, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Free the seats of nodes that died; returns the failed guesses that counted.
    pub(crate) async fn reap(&self) -> u64 {
        let l = &self.limits;
        match self
            .script(
                &self.scripts.reap,
                &[&self.node, &l.fail_limit, &l.grace_ms],
            )
            .await
        {
            Ok(v) => {
                if num(&v, 1) > 0 {
                    tracing::info!(nodes = num(&v, 1), "freed the seats of nodes that died");
                }
                num(&v, 2)
            }
            Err(_) => 0,
        }
    }

    /// What an address is counted under in Redis: a keyed hash of its key, never the address.
    fn owner(&self, ip: IpKey) -> String {
        let salt = self.salt.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut h = blake3::Hasher::new();
        h.update(salt.as_bytes());
        h.update(ip.to_string().as_bytes());
        h.finalize().to_hex()[..32].to_string()
    }

    /// Remove this node's heartbeat so other nodes free its seats at once (drain on shutdown).
    pub(crate) async fn retire(&self) {
        let mut c = self.conn.clone();
        let _ = self
            .timed(
                redis::cmd("DEL")
                    .arg(format!("ferry:alive:{}", self.node))
                    .query_async::<()>(&mut c),
            )
            .await;
    }

    /// Open rooms in the deployment (dropping ended ones from the index first).
    pub(crate) async fn refresh_room_count(&self) {
        let mut c = self.conn.clone();
        let now_ms = crate::state::now_ms();
        let mut p = redis::pipe();
        p.cmd("ZREMRANGEBYSCORE")
            .arg("ferry:rooms")
            .arg("-inf")
            .arg(now_ms)
            .ignore()
            .cmd("ZCARD")
            .arg("ferry:rooms");
        if let Ok((n,)) = self.timed(p.query_async::<(usize,)>(&mut c)).await {
            self.room_count.store(n, Ordering::Relaxed);
        }
    }

    /// A liveness probe for `/healthz`.
    pub(crate) async fn ping(&self) -> bool {
        let mut c = self.conn.clone();
        self.timed(redis::cmd("PING").query_async::<String>(&mut c))
            .await
            .is_ok()
            && self.subscribed.load(Ordering::Relaxed)
    }
}

fn refusal_of(name: &str) -> Refusal {
    let (code, message) = match name {
        "room-not-found" => (ErrorCode::RoomNotFound, "no such room"),
        "room-expired" => (ErrorCode::RoomExpired, "the room has expired or was closed"),
        "room-locked" => (
            ErrorCode::RoomLocked,
            "the room is locked after failed handshakes",
        ),
        "room-full" => (ErrorCode::RoomFull, "the room already has two peers"),
        "shared-full" => (
            ErrorCode::RoomFull,
            "the room is seating as many receivers as it can at once; try again shortly",
        ),
        "old-host" => (
            ErrorCode::UnsupportedVersion,
            "this room serves several receivers; its host needs a newer Ferry",
        ),
        "bad-address" => (
            ErrorCode::BadMessage,
            "address relays with to-guest in a shared room, and only there",
        ),
        "no-guest" => (ErrorCode::NotInRoom, "that guest is not in the room"),
        "server-full" => (ErrorCode::ServerFull, "the server has too many open rooms"),
        "owner-full" => (
            ErrorCode::RateLimited,
            "too many open rooms from this address; close one first",
        ),
        "global-rate" => (
            ErrorCode::RateLimited,
            "the server is creating too many rooms right now; try again shortly",
        ),
        "rate-limited" => (
            ErrorCode::RateLimited,
            "too many rooms created or joined from this address; slow down",
        ),
        "no-peer" => (ErrorCode::NotInRoom, "the other peer is not connected"),
        "not-member" => (ErrorCode::NotInRoom, "not in a room"),
        _ => (ErrorCode::Internal, "unexpected room store reply"),
    };
    Refusal { code, message }
}

fn num(v: &[String], i: usize) -> u64 {
    v.get(i)
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |f| f.max(0.0) as u64)
}
