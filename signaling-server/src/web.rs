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
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A dist like Vite's: the page, hashed assets, and a secret beside the directory.
    fn dist() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("secret.txt"), "outside").unwrap();
        let d = t.path().join("dist");
        std::fs::create_dir_all(d.join("assets")).unwrap();
        std::fs::write(d.join("web.html"), "<!doctype html><p>page").unwrap();
        std::fs::write(d.join("assets/web-Ab12.js"), "console.log(1)").unwrap();
        std::fs::write(d.join("assets/ferry-Cd34.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(d.join("assets/web-Ef56.css"), "p{}").unwrap();
        std::fs::write(d.join(".env"), "hidden").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(t.path().join("secret.txt"), d.join("assets/link.txt")).unwrap();
        (t, d)
    }

    /// The page's router on a real loopback socket.
    async fn serve(d: &Path) -> std::net::SocketAddr {
        let app = WebApp::load(Some(d)).unwrap().unwrap().router();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        addr
    }

    /// One raw HTTP/1.1 GET: the path goes out exactly as written, dots and all.
    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, HeaderMap, Vec<u8>) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: ferry.example:8443\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut raw))
            .await
            .unwrap()
            .unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        for l in lines {
            let (k, v) = l.split_once(": ").unwrap();
            headers.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        (status, headers, raw[split + 4..].to_vec())
    }

    #[tokio::test]
    async fn page_at_root_and_join_paths() {
        let (_t, d) = dist();
        let app = serve(&d).await;
        for p in ["/", "/j/ABCDE-FGHJK", "/j/ABCDEFGHJK/"] {
            let (s, h, b) = get(app, p).await;
            assert_eq!(s, 200, "{p}");
            assert_eq!(b, b"<!doctype html><p>page", "{p}");
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        }
        // Files are only ever read.
        let mut s = tokio::net::TcpStream::connect(app).await.unwrap();
        s.write_all(b"POST /assets/web-Ab12.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        assert!(
            raw.starts_with(b"HTTP/1.1 405"),
            "{}",
            String::from_utf8_lossy(&raw)
        );
        // One address per page; the join path takes exactly one segment.
        assert_eq!(get(app, "/web.html").await.0, 404);
        assert_eq!(get(app, "/j/").await.0, 404);
        assert_eq!(get(app, "/j/A/B").await.0, 404);
    }

    #[tokio::test]
    async fn assets_have_their_types_and_are_cached_forever() {
        let (_t, d) = dist();
        let app = serve(&d).await;
        for (p, mime) in [
            ("/assets/web-Ab12.js", "text/javascript; charset=utf-8"),
            ("/assets/ferry-Cd34.wasm", "application/wasm"),
            ("/assets/web-Ef56.css", "text/css; charset=utf-8"),
        ] {
            let (s, h, _) = get(app, p).await;
            assert_eq!(s, 200, "{p}");
            assert_eq!(h[header::CONTENT_TYPE], mime, "{p}");
            assert_eq!(
                h[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable"
            );
        }
    }

    #[tokio::test]
    async fn strict_headers_on_every_response() {
        let (_t, d) = dist();
        let app = serve(&d).await;
        for p in ["/", "/assets/web-Ab12.js", "/nope"] {
            let (_, h, _) = get(app, p).await;
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("default-src 'none'"), "{csp}");
            assert!(
                csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
                "{csp}"
            );
            assert!(
                csp.contains(
                    "connect-src 'self' ws://ferry.example:8443 wss://ferry.example:8443;"
                ),
                "{csp}"
            );
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        }
    }

    /// The streamed-download Service Worker: served at the root (so its scope may be `/ferry-dl/`) as
    /// JavaScript, revalidated so a new build replaces it, and the page may register it and
    /// frame the downloads it answers, while nothing from here can itself be framed.
    #[tokio::test]
    async fn the_service_worker_is_served_and_allowed() {
        let (_t, d) = dist();
        std::fs::write(d.join("sw.js"), "self.addEventListener('fetch', () => {});").unwrap();
        let app = serve(&d).await;
        let (s, h, b) = get(app, "/sw.js").await;
        assert_eq!(s, 200);
        assert_eq!(b, b"self.addEventListener('fetch', () => {});");
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let (_, page, _) = get(app, "/").await;
        let csp = page[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("worker-src 'self';"), "{csp}");
        assert!(csp.contains("frame-src 'self';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page[header::X_FRAME_OPTIONS], "DENY");
        // A download address the Service Worker did not answer (it is not running) is a plain 404.
        let (s, _, _) = get(app, "/ferry-dl/0123456789abcdef0123456789abcdef/a.bin").await;
        assert_eq!(s, 404);
    }

    #[test]
    fn a_hostile_host_header_is_not_echoed_into_the_policy() {
        let evil = HeaderValue::from_static("x; script-src *");
        let p = csp(Some(&evil));
        assert!(!p.contains('*'), "{p}");
        assert!(p.contains("connect-src 'self';"), "{p}");
    }

    #[test]
    fn same_origin_is_host_and_port() {
        let host = HeaderValue::from_static("ferry.example:8443");
        assert!(same_origin("https://ferry.example:8443", Some(&host)));
        assert!(same_origin("http://FERRY.example:8443", Some(&host)));
        assert!(!same_origin("https://ferry.example", Some(&host)));
        assert!(!same_origin("https://evil.example:8443", Some(&host)));
        assert!(!same_origin("https://ferry.example:8443.evil", Some(&host)));
        assert!(!same_origin("null", Some(&host)));
        assert!(!same_origin("https://ferry.example:8443", None));
    }

    #[tokio::test]
    async fn no_directory_traversal() {
        let (_t, d) = dist();
        let app = serve(&d).await;
        for p in [
            "/../secret.txt",
            "/assets/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/assets/%2e%2e/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/assets/..%5c..%5csecret.txt",
            "//etc/passwd",
            "/assets//web-Ab12.js",
            "/./web.html",
            "/.env",
            "/assets/link.txt",
            "/assets/",
        ] {
            let (s, _, b) = get(app, p).await;
            assert_eq!(s, 404, "{p}");
            assert!(!String::from_utf8_lossy(&b).contains("outside"), "{p}");
            assert!(!String::from_utf8_lossy(&b).contains("hidden"), "{p}");
        }
    }

    #[test]
    fn a_directory_without_the_page_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("other.js"), "x").unwrap();
        assert!(matches!(
            WebApp::load(Some(t.path())),
            Err(WebError::NoEntry(_))
        ));
        assert!(matches!(
            WebApp::load(Some(&t.path().join("missing"))),
            Err(WebError::Read(..))
        ));
    }
}
