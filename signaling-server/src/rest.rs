//! REST endpoints and the request helpers both front doors share (client IP, origin check).

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_proto::signal::{
    CreateRoomRequest, CreateRoomResponse, ErrorBody, JoinRoomRequest, JoinRoomResponse,
};

use crate::config::Config;
use crate::rooms::Refusal;
use crate::state::{AppState, ms_to_unix};

/// The address rate limits are keyed on. `X-Forwarded-For` is believed only from a configured
/// proxy (anyone else could forge it to dodge the limit); its last entry is the one our proxy saw.
pub(crate) fn client_ip(config: &Config, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let ip = peer.ip().to_canonical();
    if !config.trusted_proxies.contains(&ip) {
        return ip;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
        .unwrap_or(ip)
}

/// Browsers send `Origin`; native clients do not and are always allowed. A browser origin
/// is allowed when listed (or when the list holds `*`), or when it is this server's own
/// (the page it serves at `/`, see web.rs); by default no other is.
pub(crate) fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(o) => {
            crate::web::same_origin(o, headers.get(header::HOST))
                || allowed
                    .iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
        }
    }
}

pub(crate) struct ApiError(Refusal);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.0.code,
            message: self.0.message.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError(r)
    }
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "origin not allowed").into_response()
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|_| {
        ApiError(state.reject(Refusal {
            code: ferry_proto::signal::ErrorCode::BadMessage,
            message: "malformed JSON body",
        }))
    })
}

/// `POST /api/room/create` → room id, host token (shown once), expiry. The host then attaches
/// over `/ws` with `reconnect-host`.
pub(crate) async fn create(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !origin_allowed(&state.config().allowed_origins, &headers) {
        return forbidden();
    }
    let req: CreateRoomRequest = match parse_body(&state, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let ip = client_ip(state.config(), addr, &headers);
    match state.create_room(ip, req.ttl_secs).await {
        Ok((rec, host_token)) => Json(CreateRoomResponse {
            room: rec.room,
            host_token,
            expires_at: ms_to_unix(rec.expires_at_ms),
            ice_servers: state.ice_servers(&rec.room),
        })
        .into_response(),
        Err(r) => ApiError(r).into_response(),
    }
}

/// `POST /api/room/join` → whether the room can be joined now (exists, live, not full, not
/// locked). The join itself happens over `/ws` with `join-room`.
pub(crate) async fn join(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !origin_allowed(&state.config().allowed_origins, &headers) {
        return forbidden();
    }
    let req = match serde_json::from_slice::<JoinRoomRequest>(&body) {
        Ok(r) => r,
        Err(_) => {
            return ApiError(state.reject(Refusal {
                code: ferry_proto::signal::ErrorCode::BadMessage,
                message: "body must be {\"room\":\"XXXXX-XXXXX\"}",
            }))
            .into_response();
        }
    };
    let ip = client_ip(state.config(), addr, &headers);
    if let Err(r) = state.rate_check(ip).await {
        return ApiError(r).into_response();
    }
    match state.check_joinable(&req.room).await {
        Ok(exp) => Json(JoinRoomResponse {
            room: req.room,
            expires_at: ms_to_unix(exp),
            ice_servers: state.ice_servers(&req.room),
        })
        .into_response(),
        Err(r) => ApiError(r).into_response(),
    }
}

pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    // Healthy while the session table answers (with Redis: while Redis answers and this
    // node is subscribed to its channel).
    if let Some(r) = state.redis() {
        return if r.ping().await {
            (StatusCode::OK, "ok\n").into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable\n").into_response()
        };
    }
    match state.store().count() {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "session store unavailable\n",
        )
            .into_response(),
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let (rooms, peers) = state.counts();
    let mut text = state.metrics().render(rooms, peers);
    if let Some(r) = state.redis() {
        let up = r.reachable.load(std::sync::atomic::Ordering::Relaxed)
            && r.subscribed.load(std::sync::atomic::Ordering::Relaxed);
        r.metrics.render(up, &mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
