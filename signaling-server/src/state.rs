//! Shared server state and the operations both front doors (WebSocket and REST) use.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, IceServer, ServerMsg};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::rooms::{ConnId, Notices, Refusal, Registry, RoomRecord};
use crate::store::Store;
use crate::{token, turn};

/// Frames queued for one socket.
#[derive(Debug)]
pub(crate) enum Out {
    Text(String),
}

/// Bound on frames queued for one socket; a peer that falls this far behind is disconnected
/// rather than letting its partner grow the server's memory.
pub(crate) const OUT_QUEUE: usize = 1024;

pub(crate) struct ConnHandle {
    pub tx: mpsc::Sender<Out>,
    /// Cancelled to make the socket's task close it (slow consumer).
    pub kill: CancellationToken,
}

pub(crate) struct Hub {
    pub rooms: Registry,
    pub conns: HashMap<ConnId, ConnHandle>,
}

pub(crate) struct Shared {
    pub config: Config,
    pub hub: Mutex<Hub>,
    pub store: Store,
    pub limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// argon2 runs on the blocking pool; without a bound, a burst of creates would run hundreds
    /// of 8 MiB hashes at once (measured: ~3 GB peak RSS for 500 simultaneous creates).
    hash_permits: tokio::sync::Semaphore,
    next_conn: AtomicU64,
}

/// Handle to one server instance's state; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Shared>);

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix seconds for the wire, rounded up so a client never believes a room outlives its expiry
/// by less than it does.
pub(crate) fn ms_to_unix(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

fn nonzero(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n.max(1)).unwrap_or(std::num::NonZeroU32::MIN)
}

impl AppState {
    /// Build the state: open the store and load the unexpired sessions it holds.
    pub fn new(config: Config, store: Store) -> Result<AppState, crate::ServerError> {
        let tomb_ms = config.tombstone_ttl.as_millis() as u64;
        let mut rooms = Registry::new(config.max_rooms, config.handshake_fail_limit, tomb_ms);
        let loaded = store.load_unexpired(now_ms())?;
        let n = loaded.len();
        for rec in loaded {
            if rooms.insert(rec).is_err() {
                break;
            }
        }
        if n > 0 {
            tracing::info!(rooms = n, "restored unexpired sessions");
        }
        let quota = Quota::per_second(nonzero(config.rate_limit.per_second))
            .allow_burst(nonzero(config.rate_limit.burst));
        Ok(AppState(Arc::new(Shared {
            limiter: RateLimiter::keyed(quota),
            hub: Mutex::new(Hub {
                rooms,
                conns: HashMap::new(),
            }),
            store,
            metrics: Metrics::default(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            hash_permits: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            next_conn: AtomicU64::new(1),
            config,
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Open rooms and attached peers right now.
    pub fn counts(&self) -> (usize, usize) {
        let hub = self.hub();
        (hub.rooms.room_count(), hub.rooms.peer_count())
    }

    pub(crate) fn hub(&self) -> MutexGuard<'_, Hub> {
        // A panic while holding the lock leaves plain bookkeeping behind; keep serving.
        self.0.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.0.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn reject(&self, r: Refusal) -> Refusal {
        self.0.metrics.reject(r.code);
        r
    }

    /// Per-IP limit on create/join/reconnect.
    pub(crate) fn rate_check(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.0.limiter.check_key(&ip).map_err(|_| {
            self.reject(Refusal {
                code: ErrorCode::RateLimited,
                message: "too many rooms created or joined from this address; slow down",
            })
        })
    }

    pub(crate) fn ice_servers(&self, room: &RoomId) -> Vec<IceServer> {
        turn::ice_servers(&self.0.config, room, now_ms() / 1000)
    }

    /// Create a room (no host attached yet). Returns its record and the one-time host token.
    pub(crate) async fn create_room(
        &self,
        ip: IpAddr,
        ttl_secs: Option<u64>,
    ) -> Result<(RoomRecord, String), Refusal> {
        self.rate_check(ip)?;
        self.hub()
            .rooms
            .has_capacity()
            .map_err(|r| self.reject(r))?;
        let token = token::generate();
        let t = token.clone();
        let _permit = self
            .0
            .hash_permits
            .acquire()
            .await
            .map_err(|_| internal("shutting down"))?;
        let hash = tokio::task::spawn_blocking(move || token::hash(&t))
            .await
            .ok()
            .and_then(|r| r.ok())
            .ok_or_else(|| internal("could not hash the host token"))?;
        let now = now_ms();
        let ttl = self.0.config.clamp_ttl(ttl_secs);
        let mut rec = RoomRecord {
            room: RoomId::random(),
            host_token_hash: hash,
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ttl.as_millis() as u64),
        };
        {
            let mut hub = self.hub();
            let mut tries = 0;
            loop {
                match hub.rooms.insert(rec.clone()) {
                    Ok(()) => break,
                    Err(r) if r.code == ErrorCode::Internal && tries < 5 => {
                        tries += 1;
                        rec.room = RoomId::random();
                    }
                    Err(r) => return Err(self.reject(r)),
                }
            }
        }
        if let Err(e) = self.0.store.insert(rec.clone()).await {
            tracing::error!(error = %e, "could not persist a session");
            self.hub().rooms.discard(&rec.room);
            return Err(internal("could not store the room"));
        }
        self.0.metrics.rooms_created.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(room = %rec.room, "room created");
        Ok((rec, token))
    }

    /// Verify a host token against the stored hash (on the blocking pool: argon2 is slow on purpose).
    pub(crate) async fn verify_host(&self, room: &RoomId, token: String) -> Result<(), Refusal> {
        let hash = self
            .hub()
            .rooms
            .host_token_hash(room, now_ms())
            .map_err(|r| self.reject(r))?;
        let _permit = self
            .0
            .hash_permits
            .acquire()
            .await
            .map_err(|_| internal("shutting down"))?;
        let ok = tokio::task::spawn_blocking(move || token::verify(&token, &hash))
            .await
            .unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(self.reject(Refusal {
                code: ErrorCode::Unauthorized,
                message: "wrong host token",
            }))
        }
    }

    /// Queue notices for their sockets. Ones addressed to `skip` are returned for the caller
    /// to write itself (it is the task that owns that socket).
    pub(crate) fn deliver(&self, notices: Notices, skip: Option<ConnId>) -> Vec<ServerMsg> {
        let mut mine = Vec::new();
        let hub = self.hub();
        for (conn, msg) in notices {
            if Some(conn) == skip {
                mine.push(msg);
            } else if let Some(h) = hub.conns.get(&conn) {
                push(h, msg.to_json());
            }
        }
        mine
    }

    /// Expire due rooms: tell their peers, drop their rows, forget old rate-limit keys.
    pub(crate) async fn sweep(&self) {
        let (gone, notices) = self.hub().rooms.expire_due(now_ms());
        if gone.is_empty() {
            return;
        }
        self.0
            .metrics
            .rooms_expired
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
        tracing::debug!(rooms = gone.len(), "rooms expired");
        self.deliver(notices, None);
        if let Err(e) = self.0.store.delete(gone).await {
            tracing::error!(error = %e, "could not delete expired sessions");
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.0.store
    }
}

/// Queue a frame for a socket; a full queue means the reader is too slow: cut it off.
pub(crate) fn push(h: &ConnHandle, text: String) {
    if h.tx.try_send(Out::Text(text)).is_err() {
        h.kill.cancel();
    }
}

pub(crate) fn internal(message: &'static str) -> Refusal {
    Refusal {
        code: ErrorCode::Internal,
        message,
    }
}
