//! Shared server state and the operations both front doors (WebSocket and REST) use.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, IceServer, ServerMsg};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, RateLimit};
use crate::limits::{IpKey, PerKey};
use crate::metrics::Metrics;
use crate::redis_rooms::RedisRooms;
use crate::rooms::{ConnId, Notices, Refusal, Registry, RoomRecord};
use crate::store::Store;
use crate::{token, turn};

/// Frames queued for one socket.
#[derive(Debug)]
pub(crate) enum Out {
    Text(String),
}

impl Out {
    pub(crate) fn len(&self) -> usize {
        match self {
            Out::Text(t) => t.len(),
        }
    }
}

/// Bound on frames queued for one socket, on top of the byte bound (`max_queue_bytes`): a
/// peer that falls this far behind is disconnected rather than letting its partner grow the
/// server's memory.
pub(crate) const OUT_QUEUE: usize = 1024;

pub(crate) struct ConnHandle {
    pub tx: mpsc::Sender<Out>,
    /// Bytes queued and not yet written; the socket's task subtracts what it has written.
    pub queued: Arc<AtomicUsize>,
    pub max_queued: usize,
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
    /// The shared registry when running as one of several nodes (`--redis`); the local
    /// `hub.rooms` and `store` are then unused.
    pub redis: Option<Arc<RedisRooms>>,
    pub limiter: DefaultKeyedRateLimiter<IpKey>,
    /// Server-wide bound on room creation: per-address limits multiply with addresses.
    create_limiter: DefaultDirectRateLimiter,
    /// WebSocket sockets held per address key.
    sockets: Mutex<PerKey>,
    /// Connections per peer address still in their HTTP phase (before any upgrade).
    http_conns: Mutex<PerKey>,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// Legacy argon2 verifies run on the blocking pool; without a bound, a burst of them would
    /// run hundreds of 8 MiB hashes at once (measured: ~3 GB peak RSS for 500 at once).
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

fn quota(r: RateLimit) -> Quota {
    Quota::per_second(nonzero(r.per_second)).allow_burst(nonzero(r.burst))
}

/// One WebSocket slot of an address; given back when dropped.
pub(crate) struct SocketSlot {
    state: AppState,
    key: IpKey,
    http: bool,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let s = &self.state.0;
        let counter = if self.http { &s.http_conns } else { &s.sockets };
        counter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .give_back(self.key);
    }
}

impl AppState {
    /// Build the state: open the store and load the unexpired sessions it holds.
    pub fn new(
        config: Config,
        store: Store,
        redis: Option<Arc<RedisRooms>>,
    ) -> Result<AppState, crate::ServerError> {
        let tomb_ms = config.tombstone_ttl.as_millis() as u64;
        let mut rooms = Registry::new(config.max_rooms, config.handshake_fail_limit, tomb_ms)
            .with_rooms_per_owner(config.max_rooms_per_ip)
            .with_host_grace(config.host_grace.as_millis() as u64);
        let now = now_ms();
        let loaded = store.load_unexpired(now)?;
        let n = loaded.len();
        for rec in loaded {
            // Restored rooms have no owner on record; their hosts have the grace period to
            // come back, as after any disconnect.
            if rooms.insert(rec, None, now).is_err() {
                break;
            }
        }
        if n > 0 {
            tracing::info!(rooms = n, "restored unexpired sessions");
        }
        Ok(AppState(Arc::new(Shared {
            limiter: RateLimiter::keyed(quota(config.rate_limit)),
            create_limiter: RateLimiter::direct(quota(config.global_create_rate)),
            sockets: Mutex::new(PerKey::default()),
            http_conns: Mutex::new(PerKey::default()),
            hub: Mutex::new(Hub {
                rooms,
                conns: HashMap::new(),
            }),
            store,
            redis,
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

    /// The shared registry, when this node is one of several.
    pub fn redis(&self) -> Option<&Arc<RedisRooms>> {
        self.0.redis.as_ref()
    }

    /// Open rooms and attached peers right now. With Redis: rooms in the whole deployment
    /// (as of the last sweep), peers on this node.
    pub fn counts(&self) -> (usize, usize) {
        if let Some(r) = self.redis() {
            return (r.room_count.load(Ordering::Relaxed), r.members().len());
        }
        let hub = self.hub();
        (hub.rooms.room_count(), hub.rooms.peer_count())
    }

    pub(crate) fn hub(&self) -> MutexGuard<'_, Hub> {
        // A panic while holding the lock leaves plain bookkeeping behind; keep serving.
        self.0.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sockets(&self) -> MutexGuard<'_, PerKey> {
        self.0.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A socket slot for `ip`, unless its address already holds `max_sockets_per_ip`.
    pub(crate) fn take_socket_slot(&self, ip: IpAddr) -> Option<SocketSlot> {
        let key = IpKey::of(ip);
        let cap = self.0.config.max_sockets_per_ip;
        self.sockets().try_take(key, cap).then(|| SocketSlot {
            state: self.clone(),
            key,
            http: false,
        })
    }

    /// A slot for a new TCP connection from `peer` while it is in its HTTP phase (the header
    /// timeout bounds how long; this bounds how many). Connections from a trusted proxy are
    /// not counted: they carry many clients, each counted by its socket slot.
    pub(crate) fn take_http_slot(&self, peer: IpAddr) -> Result<Option<SocketSlot>, ()> {
        let peer = peer.to_canonical();
        if self.0.config.trusted_proxies.contains(&peer) {
            return Ok(None);
        }
        let key = IpKey::of(peer);
        let cap = self.0.config.max_sockets_per_ip;
        let mut c = self.0.http_conns.lock().unwrap_or_else(|p| p.into_inner());
        if !c.try_take(key, cap) {
            return Err(());
        }
        Ok(Some(SocketSlot {
            state: self.clone(),
            key,
            http: true,
        }))
    }

    /// Detach `conn` from its room (leave or socket closed); notices for the others.
    pub(crate) async fn leave(&self, conn: ConnId) -> Notices {
        if let Some(r) = self.redis() {
            let counted = r.leave(conn).await;
            self.count_guesses(counted);
            return Vec::new();
        }
        let mut hub = self.hub();
        let notices = hub.rooms.leave(conn, now_ms());
        self.sync_failures(&hub);
        notices
    }

    /// Mirror the registry's count of failed guesses into the metric, which embedders and
    /// tests read directly. Called under the hub lock after anything that may count one.
    pub(crate) fn sync_failures(&self, hub: &Hub) {
        self.0
            .metrics
            .handshake_failures
            .store(hub.rooms.guesses_counted(), Ordering::Relaxed);
    }

    /// Guesses counted by a Redis script this node ran (the metric is per node).
    pub(crate) fn count_guesses(&self, n: u64) {
        if n > 0 {
            self.0
                .metrics
                .handshake_failures
                .fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.0.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn reject(&self, r: Refusal) -> Refusal {
        self.0.metrics.reject(r.code);
        r
    }

    /// Per-IP limit on create/join/reconnect.
    pub(crate) async fn rate_check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if let Some(r) = self.redis() {
            let rl = self.0.config.rate_limit;
            return r
                .rate_check(IpKey::of(ip), rl.per_second, rl.burst)
                .await
                .map_err(|e| self.reject(e));
        }
        self.0.limiter.check_key(&IpKey::of(ip)).map_err(|_| {
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
        self.create_room_for(ip, ttl_secs, None).await
    }

    /// [`AppState::create_room`], shared by up to `guests` guests at once when `Some`.
    pub(crate) async fn create_room_for(
        &self,
        ip: IpAddr,
        ttl_secs: Option<u64>,
        guests: Option<usize>,
    ) -> Result<(RoomRecord, String), Refusal> {
        self.rate_check(ip).await?;
        let owner = IpKey::of(ip);
        if let Some(r) = self.redis() {
            return self.create_shared(r, owner, ttl_secs, guests).await;
        }
        self.hub()
            .rooms
            .has_capacity(Some(owner))
            .map_err(|r| self.reject(r))?;
        if self.0.create_limiter.check().is_err() {
            return Err(self.reject(Refusal {
                code: ErrorCode::RateLimited,
                message: "the server is creating too many rooms right now; try again shortly",
            }));
        }
        let token = token::generate();
        let hash = token::hash(&token);
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
                let inserted = match guests {
                    Some(n) => hub.rooms.insert_shared(rec.clone(), Some(owner), now, n),
                    None => hub.rooms.insert(rec.clone(), Some(owner), now),
                };
                match inserted {
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

    /// Verify a host token against the stored hash. A legacy argon2 row is verified on the
    /// blocking pool (it is slow on purpose), a bounded number at a time.
    pub(crate) async fn verify_host(&self, room: &RoomId, token: String) -> Result<(), Refusal> {
        let hash = match self.redis() {
            Some(r) => r.host_token_hash(room).await,
            None => self.hub().rooms.host_token_hash(room, now_ms()),
        }
        .map_err(|r| self.reject(r))?;
        let ok = if token::is_legacy(&hash) {
            let _permit = self
                .0
                .hash_permits
                .acquire()
                .await
                .map_err(|_| internal("shutting down"))?;
            tokio::task::spawn_blocking(move || token::verify(&token, &hash))
                .await
                .unwrap_or(false)
        } else {
            token::verify(&token, &hash)
        };
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
        if let Some(r) = self.redis() {
            let notices = r.expire_due(now_ms()).await;
            if !notices.is_empty() {
                self.0
                    .metrics
                    .rooms_expired
                    .fetch_add(notices.len() as u64, Ordering::Relaxed);
                self.deliver(notices, None);
            }
            r.refresh_room_count().await;
            return;
        }
        let (gone, notices) = {
            let mut hub = self.hub();
            let due = hub.rooms.expire_due(now_ms());
            self.sync_failures(&hub);
            due
        };
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

    async fn create_shared(
        &self,
        r: &RedisRooms,
        owner: IpKey,
        ttl_secs: Option<u64>,
        guests: Option<usize>,
    ) -> Result<(RoomRecord, String), Refusal> {
        let token = token::generate();
        let hash = token::hash(&token);
        let ttl = self.0.config.clamp_ttl(ttl_secs).as_millis() as u64;
        let g = self.0.config.global_create_rate;
        for _ in 0..5 {
            let rec = r
                .create(
                    RoomId::random(),
                    &hash,
                    ttl,
                    owner,
                    (g.per_second, g.burst),
                    guests.unwrap_or(0),
                )
                .await
                .map_err(|e| self.reject(e))?;
            if let Some(rec) = rec {
                self.0.metrics.rooms_created.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(room = %rec.room, "room created");
                return Ok((rec, token));
            }
        }
        Err(self.reject(internal("room id collision")))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.0.store
    }
}

/// Queue a frame for a socket; a full queue (in bytes or frames) means the reader is too
/// slow: cut it off rather than hold its partner's messages in memory.
pub(crate) fn push(h: &ConnHandle, text: String) {
    let len = text.len();
    let before = h.queued.fetch_add(len, Ordering::AcqRel);
    if before.saturating_add(len) > h.max_queued || h.tx.try_send(Out::Text(text)).is_err() {
        h.queued.fetch_sub(len, Ordering::AcqRel);
        h.kill.cancel();
    }
}

pub(crate) fn internal(message: &'static str) -> Refusal {
    Refusal {
        code: ErrorCode::Internal,
        message,
    }
}
