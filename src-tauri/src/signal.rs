//! The signaling server the app runs inside itself when Settings name none, so two devices
//! on one network need no setup at all.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ferry_signal::{Config, RunningServer, ServerError};

/// Fixed by default so links and QR codes stay valid across restarts of the app.
pub(crate) const DEFAULT_PORT: u16 = 7390;

pub(crate) struct Embedded {
    // Kept so the server lives as long as the app.
    _server: RunningServer,
    url: String,
}

impl Embedded {
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

/// Where to listen: `FERRY_SIGNAL_BIND` if set, else every interface on the default port,
/// else any free port.
fn candidates() -> Vec<SocketAddr> {
    if let Some(addr) = std::env::var("FERRY_SIGNAL_BIND")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![addr];
    }
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    vec![SocketAddr::new(any, DEFAULT_PORT), SocketAddr::new(any, 0)]
}

/// The address another device uses to reach this one: the bound address, or for a wildcard
/// bind the address of the interface that holds the default route.
fn advertised(addr: SocketAddr) -> SocketAddr {
    if !addr.ip().is_unspecified() {
        return addr;
    }
    SocketAddr::new(
        lan_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        addr.port(),
    )
}

/// A connected UDP socket reveals the source address the OS would pick; connecting a UDP
/// socket sends no packet. 192.0.2.1 is TEST-NET-1, used only for the routing lookup.
fn lan_ip() -> Option<IpAddr> {
    let sock = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

pub(crate) async fn start() -> Result<Embedded, ServerError> {
    let mut last = None;
    for listen in candidates() {
        let config = Config {
            listen,
            ..Config::default()
        };
        match ferry_signal::spawn(config).await {
            Ok(server) => {
                let url = format!("ws://{}/ws", advertised(server.local_addr()));
                tracing::info!(%url, "built-in signaling server listening");
                return Ok(Embedded {
                    _server: server,
                    url,
                });
            }
            Err(e) => {
                tracing::debug!(%listen, "built-in signaling server: {e}");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| ServerError::Io(std::io::Error::other("no address to listen on"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_bind_is_advertised_as_is() {
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(advertised(a), a);
        let any: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        let adv = advertised(any);
        assert_eq!(adv.port(), 4000);
        assert!(!adv.ip().is_unspecified());
    }

    #[tokio::test]
    async fn serves_on_loopback_and_answers_http() {
        // SAFETY: only this test reads the variable in this process's test binary.
        unsafe { std::env::set_var("FERRY_SIGNAL_BIND", "127.0.0.1:0") };
        let e = start().await.unwrap();
        assert!(e.url().starts_with("ws://127.0.0.1:"), "{}", e.url());
        let port = e
            .url()
            .trim_start_matches("ws://127.0.0.1:")
            .trim_end_matches("/ws");
        let mut s = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
}
