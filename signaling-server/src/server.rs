//! Binding, background tasks and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::config::Config;
use crate::state::AppState;
use crate::store::Store;
use crate::{ServerError, rest, ws};

/// The HTTP surface: REST, `/ws`, health and metrics.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    let origins = &state.config().allowed_origins;
    let cors = if origins.is_empty() || origins.iter().any(|o| o == "*") {
        cors.allow_origin(Any)
    } else {
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
        .route("/metrics", get(rest::metrics))
        .layer(cors)
        .with_state(state)
}

/// A server running in background tasks of the current tokio runtime.
pub struct RunningServer {
    addr: SocketAddr,
    state: AppState,
    serve: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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
        self.sweeper.abort();
        let _ = self.sweeper.await;
    }

    /// Resolves when the server has been told to stop (e.g. by a signal handler elsewhere).
    pub async fn stopped(&self) {
        self.state.0.shutdown.cancelled().await
    }
}

/// Open the store, bind `config.listen`, and serve in the background.
pub async fn spawn(config: Config) -> Result<RunningServer, ServerError> {
    let store = Store::open(&config.db)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Bind(config.listen, e))?;
    let addr = listener.local_addr().map_err(ServerError::Io)?;
    let sweep_every = config.sweep_interval.max(Duration::from_millis(10));
    let state = AppState::new(config, store)?;

    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let token = state.0.shutdown.clone();
    // Signaling is small request/response messages; with Nagle on, a reply queued behind an
    // unacknowledged one waits for the peer's delayed ACK (40 ms on Linux), several times per
    // connection set-up.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let serve = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "server stopped with an error");
        }
    });

    let st = state.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = st.0.shutdown.cancelled() => return,
                _ = tick.tick() => {}
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
    Ok(RunningServer {
        addr,
        state,
        serve,
        sweeper,
    })
}
