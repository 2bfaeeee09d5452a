//! Binding, background tasks and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tower_http::add_extension::AddExtension;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::config::Config;
use crate::state::AppState;
use crate::store::Store;
use crate::{ServerError, rest, ws};

/// The public HTTP surface: REST, `/ws` and health. Metrics are on their own listener.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    let origins = &state.config().allowed_origins;
    let cors = if origins.iter().any(|o| o == "*") {
        cors.allow_origin(Any)
    } else {
        // Empty list: no origin is allowed, so browsers get no CORS grant at all.
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        cors.allow_origin(AllowOrigin::list(list))
    };
    Router::new()
        .route("/ws", get(ws::handler))
        .route("/api/room/create", post(rest::create))
        .route("/api/room/join", post(rest::join))
        .route("/healthz", get(rest::healthz))
        .layer(cors)
        .with_state(state)
}

/// `/metrics` (and `/healthz`), for the metrics listener only.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(rest::metrics))
        .route("/healthz", get(rest::healthz))
        .with_state(state)
}

/// Accept and serve HTTP/1.1 (with upgrades) until `stop`. Each connection must deliver its
/// request headers within `header_read_timeout`, including the first request: a half-sent
/// or silent connection is closed instead of holding a socket forever.
///
/// Served here rather than through `axum::serve` for that timeout, and because the latter
/// logs each peer's address at trace level, which this server promises not to keep.
async fn serve_http(listener: TcpListener, app: Router, state: AppState) {
    let stop = state.0.shutdown.clone();
    let header_read_timeout = state.config().header_read_timeout;
    let conns = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, mostly: back off instead of spinning on the error.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Signaling is small request/response messages; with Nagle on, a reply queued behind
        // an unacknowledged one waits for the peer's delayed ACK (40 ms on Linux), several
        // times per connection set-up.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        // Upgraded sockets are counted by their own slots; this bounds half-open requests.
        let Ok(slot) = state.take_http_slot(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let svc = TowerToHyperService::new(AddExtension::new(app.clone(), ConnectInfo(peer)));
        let stop = stop.clone();
        conns.spawn(async move {
            let _slot = slot;
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = b.serve_connection(TokioIo::new(tcp), svc).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
    conns.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), conns.wait()).await;
}

/// A server running in background tasks of the current tokio runtime.
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    state: AppState,
    serve: JoinHandle<()>,
    metrics: Option<JoinHandle<()>>,
    sweeper: JoinHandle<()>,
    subscriber: Option<JoinHandle<()>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, when `metrics_listen` was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `ws://ADDR/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://ADDR`
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stop accepting, close every socket with 1001, wait for the tasks (bounded), release the store.
    pub async fn shutdown(self) {
        self.state.0.shutdown.cancel();
        let tracker = self.state.0.tracker.clone();
        tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.serve).await;
        if let Some(m) = self.metrics {
            let _ = tokio::time::timeout(Duration::from_secs(5), m).await;
        }
        self.sweeper.abort();
        let _ = self.sweeper.await;
        if let Some(s) = self.subscriber {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
        // Other nodes may hand this node's seats to reconnecting clients at once.
        if let Some(r) = self.state.redis() {
            r.retire().await;
        }
    }

    /// Resolves when the server has been told to stop (e.g. by a signal handler elsewhere).
    pub async fn stopped(&self) {
        self.state.0.shutdown.cancelled().await
    }
}

/// Open the store, bind `config.listen`, and serve in the background.
pub async fn spawn(config: Config) -> Result<RunningServer, ServerError> {
    let redis = match &config.redis {
        Some(url) => Some(std::sync::Arc::new(
            crate::redis_rooms::RedisRooms::connect(url, &config).await?,
        )),
        None => None,
    };
    // With Redis the local table is never used; keep it off the disk.
    let store = match redis {
        Some(_) => Store::open(&crate::config::DbLocation::Memory)?,
        None => Store::open(&config.db)?,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Bind(config.listen, e))?;
    let addr = listener.local_addr().map_err(ServerError::Io)?;
    let metrics_listener = match config.metrics_listen {
        Some(m) => Some(
            TcpListener::bind(m)
                .await
                .map_err(|e| ServerError::Bind(m, e))?,
        ),
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr().map_err(ServerError::Io)?),
        None => None,
    };
    let sweep_every = config.sweep_interval.max(Duration::from_millis(10));
    let state = AppState::new(config, store, redis)?;
    let subscriber = state
        .redis()
        .is_some()
        .then(|| tokio::spawn(crate::redis_rooms::events::subscriber(state.clone())));
    // A client served before this node hears its channel could miss its peer's arrival, and
    // /healthz would call a node that just started unhealthy. Redis answered the connect a
    // moment ago, so the subscription normally follows within milliseconds; past the bound
    // the node serves anyway and /healthz says why.
    if let Some(r) = state.redis() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !r.subscribed.load(std::sync::atomic::Ordering::Relaxed)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let app = match crate::web::WebApp::load(state.config().web_dir.as_deref())? {
        Some(web) => router(state.clone()).merge(web.router()),
        None => router(state.clone()),
    };
    let serve = tokio::spawn(serve_http(listener, app, state.clone()));
    let metrics = metrics_listener
        .map(|l| tokio::spawn(serve_http(l, metrics_router(state.clone()), state.clone())));

    let st = state.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        let mut beat = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = st.0.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Some(r) = st.redis()
                && beat.elapsed() >= crate::redis_rooms::HEARTBEAT
            {
                beat = tokio::time::Instant::now();
                if r.heartbeat().await.is_ok() {
                    let n = r.reap().await;
                    st.count_guesses(n);
                }
            }
            st.sweep().await;
            n += 1;
            // Rate-limit keys of quiet addresses are dropped now and then to bound memory.
            if n.is_multiple_of(240) {
                st.0.limiter.retain_recent();
            }
        }
    });
    tracing::info!(%addr, "signaling server listening");
    if let Some(m) = metrics_addr {
        tracing::info!(addr = %m, "metrics listening");
    }
    Ok(RunningServer {
        addr,
        metrics_addr,
        state,
        serve,
        metrics,
        sweeper,
        subscriber,
    })
}
