//! The browser page served beside the socket (`--web-dir`), over real loopback sockets: the
//! page, its join path and headers next to the signaling routes, and its own origin let in
//! on `/ws` while other browser origins still are not.

mod common;

use std::time::Duration;

use common::{Client, config, start};
use ferry_proto::signal::ServerMsg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn dist() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("assets")).unwrap();
    std::fs::write(d.path().join("web.html"), "<!doctype html>join page").unwrap();
    std::fs::write(d.path().join("assets/ferry-0a1b.wasm"), b"\0asm\x01\0\0\0").unwrap();
    d
}

/// Raw HTTP/1.1 GET; returns the head (lower-cased) and body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn page_and_assets_beside_the_signaling_routes() {
    let d = dist();
    let mut cfg = config();
    cfg.web_dir = Some(d.path().to_path_buf());
    let srv = start(cfg).await;
    let addr = srv.local_addr();

    let (head, body) = get(addr, "/j/ABCDE-FGHJK").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "<!doctype html>join page");
    assert!(
        head.contains(
            "content-security-policy: default-src 'none'; script-src 'self' 'wasm-unsafe-eval';"
        ),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    let (head, _) = get(addr, "/assets/ferry-0a1b.wasm").await;
    assert!(head.contains("content-type: application/wasm"), "{head}");
    let (head, _) = get(addr, "/assets/../../etc/passwd").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    // The signaling routes are still theirs.
    let (head, body) = get(addr, "/healthz").await;
    assert!(
        head.starts_with("http/1.1 200") && !body.contains("join page"),
        "{head}{body}"
    );
    Client::connect(&srv.ws_url()).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn the_page_own_origin_may_open_the_socket_others_may_not() {
    let srv = start(config()).await;
    let own = format!("http://{}", srv.local_addr());
    let with_origin = |o: &str| {
        let mut r = srv.ws_url().into_client_request().unwrap();
        r.headers_mut().insert("origin", o.parse().unwrap());
        r
    };
    let (ws, _) = tokio_tungstenite::connect_async(with_origin(&own))
        .await
        .unwrap();
    let mut c = Client { ws };
    assert!(matches!(c.recv().await, ServerMsg::Welcome { .. }));
    // Same host, another port: another origin.
    let other = format!("http://127.0.0.1:{}", srv.local_addr().port() ^ 1);
    assert!(
        tokio_tungstenite::connect_async(with_origin(&other))
            .await
            .is_err()
    );
    assert!(
        tokio_tungstenite::connect_async(with_origin("https://evil.test"))
            .await
            .is_err()
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn no_web_dir_no_page_and_a_bad_one_stops_the_start() {
    let srv = start(config()).await;
    let (head, _) = get(srv.local_addr(), "/").await;
    // Unless this binary was built with FERRY_WEB_EMBED, it serves no page of its own.
    if !ferry_signal::web::WebApp::embedded() {
        assert!(head.starts_with("http/1.1 404"), "{head}");
    }
    srv.shutdown().await;
    let empty = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.web_dir = Some(empty.path().to_path_buf());
    let err = common::try_start(cfg)
        .await
        .err()
        .expect("a dir without the page is refused");
    assert!(err.to_string().contains("web.html"), "{err}");
}
