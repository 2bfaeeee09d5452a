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
            csp.contains("connect-src 'self' ws://ferry.example:8443 wss://ferry.example:8443;"),
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
