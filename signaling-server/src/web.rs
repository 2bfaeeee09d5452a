//! The browser peer's page, served next to the signaling socket: `/` and `/j/ROOM` answer
//! with the built page (`ui/`'s `npm run build:web`), everything else with the built assets.
//!
//! The files are read once, at start, from `--web-dir` (or from the copy embedded at build
//! time with `FERRY_WEB_EMBED=<dist>`), and served from memory by exact name: a request can
//! only ever get one of those files, so no path it sends reaches the file system.
//!
//! The page holds the room password (from the link's fragment, which browsers never send),
//! so every response carries a Content-Security-Policy that lets it run only this origin's
//! scripts and wasm and talk only to this origin's socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

// `EMBEDDED: &[(&str, &[u8])]`, written by build.rs: empty unless FERRY_WEB_EMBED named a dist.
include!(concat!(env!("OUT_DIR"), "/web_embed.rs"));

/// The page's entry, as Vite names it (`web.html`), or a conventional `index.html`.
const ENTRIES: [&str; 2] = ["web.html", "index.html"];
/// Bounds on what a directory may hold: the built app is a few MB.
const MAX_FILES: usize = 2_000;
const MAX_TOTAL_BYTES: u64 = 128 * 1024 * 1024;
const MAX_DEPTH: usize = 8;

/// Why the web directory could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot read the web directory {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} holds no web.html or index.html (build it with `npm run build:web` in ui/)")]
    NoEntry(PathBuf),
    #[error("{0} holds more than {MAX_FILES} files or {MAX_TOTAL_BYTES} bytes")]
    TooBig(PathBuf),
}

/// The built web app, in memory.
#[derive(Debug)]
pub struct WebApp {
    files: HashMap<String, Asset>,
    entry: String,
}

#[derive(Debug)]
struct Asset {
    /// Shared: putting it in a response body costs a reference count.
    body: Bytes,
    mime: &'static str,
    /// Vite puts content-hashed names under `assets/`: they never change, so cache forever.
    immutable: bool,
}

impl WebApp {
    /// What to serve: `dir` when given, else the build-time copy, else nothing.
    pub fn load(dir: Option<&Path>) -> Result<Option<Arc<WebApp>>, WebError> {
        match dir {
            Some(d) => Ok(Some(Arc::new(Self::from_dir(d)?))),
            None if EMBEDDED.is_empty() => Ok(None),
            None => Ok(Self::from_files(
                EMBEDDED
                    .iter()
                    .map(|(n, b)| ((*n).to_string(), Bytes::from_static(b))),
            )
            .map(Arc::new)),
        }
    }

    /// Whether this binary carries a built page of its own.
    pub fn embedded() -> bool {
        !EMBEDDED.is_empty()
    }

    fn from_dir(dir: &Path) -> Result<WebApp, WebError> {
        let mut found = Vec::new();
        let mut total = 0u64;
        walk(dir, dir, 0, &mut found, &mut total)?;
        Self::from_files(found.into_iter()).ok_or_else(|| WebError::NoEntry(dir.to_path_buf()))
    }

    fn from_files(files: impl Iterator<Item = (String, Bytes)>) -> Option<WebApp> {
        let files: HashMap<String, Asset> = files
            .map(|(name, body)| {
                let asset = Asset {
                    mime: mime_of(&name),
                    immutable: name.starts_with("assets/"),
                    body,
                };
                (name, asset)
            })
            .collect();
        let entry = ENTRIES
            .iter()
            .find(|e| files.contains_key(**e))?
            .to_string();
        Some(WebApp { files, entry })
    }

    /// `/`, `/j/ROOM` and the assets. Merged under the signaling routes, which win.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(page_response))
            .route("/j/{room}", get(page_response))
            .route("/j/{room}/", get(page_response))
            .fallback(asset_response)
            .with_state(self)
    }

    fn respond(&self, name: &str, headers: &HeaderMap) -> Response {
        let Some(a) = self.files.get(name) else {
            return not_found(headers);
        };
        let mut r = Response::new(Body::from(a.body.clone()));
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if a.immutable {
                "public, max-age=31536000, immutable"
            } else {
                // The page names the current hashed assets: always ask whether it changed.
                "no-cache"
            }),
        );
        security_headers(h, headers);
        r
    }
}

async fn page_response(State(app): State<Arc<WebApp>>, headers: HeaderMap) -> Response {
    app.respond(&app.entry, &headers)
}

async fn asset_response(
    State(app): State<Arc<WebApp>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
        security_headers(r.headers_mut(), &headers);
        return r;
    }
    match asset_name(uri.path()) {
        Some(name) if !ENTRIES.contains(&name) => app.respond(name, &headers),
        // The entry is served at `/` only, so there is one address per page.
        _ => not_found(&headers),
    }
}

/// The file a request path names: its segments as they came, none of them empty, `.`, `..`
/// or hidden. Nothing is decoded, so `%2e%2e` is just a name no file has.
fn asset_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix('/')?;
    let ok = !name.is_empty()
        && name
            .split('/')
            .all(|s| !s.is_empty() && !s.starts_with('.') && !s.contains('\\'));
    ok.then_some(name)
}

fn not_found(headers: &HeaderMap) -> Response {
    let mut r = (StatusCode::NOT_FOUND, "not found\n").into_response();
    security_headers(r.headers_mut(), headers);
    r
}

/// What every response of the page carries.
fn security_headers(h: &mut HeaderMap, request: &HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&csp(request.get(header::HOST))) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    );
}

/// Scripts, the Workers and wasm from this origin only (wasm needs 'wasm-unsafe-eval' to
/// compile); no inline script or style; sockets to this host only. Downloads are `blob:`
/// URLs, which are navigations, not fetches, so they need no grant. A streamed download is a
/// hidden frame on this origin that the Service Worker (`/sw.js`) answers with an attachment,
/// hence `frame-src 'self'`; every response from here still refuses to be framed.
fn csp(host: Option<&HeaderValue>) -> String {
    // 'self' covers ws(s) to the same host in current browsers; the host is also named for
    // those that predate that. Only a plain host[:port] is echoed back into the policy.
    let host = host
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
         frame-src 'self'; connect-src 'self'{host}; style-src 'self'; img-src 'self' data: blob:; \
         font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Whether `origin` is the page this server serves: same host and port as the request's
/// `Host` (a browser sets it; a proxy in front passes it on). The scheme is not compared,
/// since TLS usually ends at that proxy.
pub(crate) fn same_origin(origin: &str, host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty()) else {
        return false;
    };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

fn mime_of(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Regular files under `root`, by `/`-joined relative name. Symbolic links and hidden
/// entries are skipped: only what the build wrote is served.
fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, Bytes)>,
    total: &mut u64,
) -> Result<(), WebError> {
    let read = |e| WebError::Read(dir.to_path_buf(), e);
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(read)?;
        let path = entry.path();
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(root, &path, depth + 1, out, total)?;
        } else if kind.is_file() {
            let body = std::fs::read(&path).map_err(|e| WebError::Read(path.clone(), e))?;
            *total += body.len() as u64;
            if out.len() >= MAX_FILES || *total > MAX_TOTAL_BYTES {
                return Err(WebError::TooBig(root.to_path_buf()));
            }
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel: Vec<&str> = rel
                .components()
                .filter_map(|c| c.as_os_str().to_str())
                .collect();
            out.push((rel.join("/"), body.into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
