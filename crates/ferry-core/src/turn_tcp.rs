//! TURN over TCP and TLS for webrtc 0.21, whose relayer allocates over UDP only.
//!
//! webrtc 0.21.1's `RTCTurnRelayer` skips every `turns:` URL and every `turn:` URL whose
//! transport is not UDP, so a network that lets out nothing but TCP/443 yields no relay
//! candidate at all. Rather than patch webrtc, each such URL gets a local bridge: a UDP socket
//! on 127.0.0.1 that webrtc is pointed at instead (`turn:127.0.0.1:<port>?transport=udp`). Every
//! UDP source (one per webrtc socket, so one per TURN client) gets its own TCP or TLS connection
//! to the real server, which is what RFC 8656 makes an allocation's identity over TCP. Datagrams
//! from webrtc are whole STUN messages or ChannelData (padded to 4 bytes, as TCP requires), so
//! they are written as they are; the server's byte stream is cut back into those frames and each
//! is sent to webrtc as one datagram. The server sees an ordinary TURN-over-TCP/TLS client and
//! relays over UDP to the peer; only the leg to the server is a stream.
//!
//! TLS trusts the platform's roots (`rustls-native-certs`, which also honours `SSL_CERT_FILE`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferry_proto::signal::IceServer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::defaults::{
    TURN_CONNECT_TIMEOUT as CONNECT_TIMEOUT, TURN_QUEUE as QUEUE, TURN_SEND_WAIT as SEND_WAIT,
    TURN_UDP_BUFFER as UDP_BUFFER,
};

/// The largest frame either side may send: a STUN message or ChannelData is at most
/// 4 + 65535 bytes.
const MAX_FRAME: usize = 4 + 65536;

/// Why the bridge to a TURN server over TCP/TLS failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BridgeError {
    /// A socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake or the server's certificate failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// Connecting took longer than the bridge's connect timeout.
    #[error("connecting to the TURN server timed out")]
    Timeout,
    /// The stream lost its framing.
    #[error("the TURN server sent a frame that is neither STUN nor ChannelData")]
    Desync,
}

/// A `turn:…?transport=tcp` or `turns:` server, reached over a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamTurn {
    /// Host name (also the TLS server name).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `turns:` (TLS) rather than plain TCP.
    pub tls: bool,
}

/// The stream target of a TURN URL, or `None` for UDP TURN (webrtc handles it) and non-TURN URLs.
pub(crate) fn parse_stream_turn(url: &str) -> Option<StreamTurn> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("turns:") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("turn:") {
        (false, r)
    } else {
        return None;
    };
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let transport = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("transport="))
        .map(str::to_ascii_lowercase);
    match transport.as_deref() {
        Some("tcp") => {}
        // `turns:` without a transport means TLS over TCP (RFC 7065).
        None if tls => {}
        _ => return None,
    }
    let default_port = if tls { 5349 } else { 3478 };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (h.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (hostport.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(StreamTurn { host, port, tls })
}

/// Length of the complete frame at the start of `buf`: `Ok(None)` while its header is
/// incomplete. STUN messages start with two zero bits and carry their body length after the
/// type; ChannelData (channels 0x4000–0x4FFF) carries its payload length, padded to 4 over TCP.
pub(crate) fn frame_len(buf: &[u8]) -> Result<Option<usize>, BridgeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    match buf[0] {
        0x00..=0x3f => Ok(Some(20 + len)),
        0x40..=0x4f => Ok(Some(4 + len.div_ceil(4) * 4)),
        _ => Err(BridgeError::Desync),
    }
}

/// Running bridges; dropping this stops them and closes their connections (and so the
/// allocations on the server).
pub(crate) struct TurnBridge {
    cancel: CancellationToken,
}

impl Drop for TurnBridge {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Replace each stream TURN URL in `servers` with a local UDP bridge to it. Returns the servers
/// to give webrtc and the bridges to keep alive with the connection (`None` when there are none).
/// A URL whose bridge cannot be set up is dropped with a log line; the rest still work.
pub(crate) async fn bridge_ice_servers(
    servers: &[IceServer],
) -> (Vec<IceServer>, Option<TurnBridge>) {
    let cancel = CancellationToken::new();
    let mut any = false;
    let mut out = Vec::with_capacity(servers.len());
    for server in servers {
        let mut urls = Vec::with_capacity(server.urls.len());
        for url in &server.urls {
            let Some(target) = parse_stream_turn(url) else {
                urls.push(url.clone());
                continue;
            };
            match UdpSocket::bind("127.0.0.1:0").await.and_then(|s| {
                // A burst from webrtc (a whole SCTP window) must not overflow the default
                // buffer while the stream drains: every drop costs SCTP a window halving.
                let sock = socket2::SockRef::from(&s);
                let _ = sock.set_recv_buffer_size(UDP_BUFFER);
                let _ = sock.set_send_buffer_size(UDP_BUFFER);
                let local = s.local_addr()?;
                Ok((s, local))
            }) {
                Ok((sock, local)) => {
                    tracing::debug!("TURN {url} bridged at udp {local}");
                    tokio::spawn(run_bridge(sock, target, cancel.clone()));
                    urls.push(format!("turn:{local}?transport=udp"));
                    any = true;
                }
                Err(e) => tracing::warn!("no local bridge for TURN {url}: {e}"),
            }
        }
        if !urls.is_empty() {
            out.push(IceServer {
                urls,
                ..server.clone()
            });
        }
    }
    let bridge = any.then_some(TurnBridge { cancel });
    (out, bridge)
}

async fn run_bridge(sock: UdpSocket, target: StreamTurn, cancel: CancellationToken) {
    let sock = Arc::new(sock);
    let tls = if target.tls {
        match tls_connector() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("TURN over TLS to {}: {e}", target.host);
                return;
            }
        }
    } else {
        None
    };
    let mut conns: HashMap<SocketAddr, mpsc::Sender<Bytes>> = HashMap::new();
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let (n, src) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on Linux; the socket is fine.
                    tracing::trace!("TURN bridge recv: {e}");
                    continue;
                }
            },
        };
        let datagram = Bytes::copy_from_slice(&buf[..n]);
        let tx = match conns.get(&src) {
            Some(tx) if !tx.is_closed() => tx,
            _ => {
                let (tx, rx) = mpsc::channel(QUEUE);
                let (sock, target, tls, cancel) =
                    (sock.clone(), target.clone(), tls.clone(), cancel.clone());
                tokio::spawn(async move {
                    let end = run_conn(sock, src, &target, tls, rx, cancel.clone()).await;
                    // The allocation dies with its connection; worth a line unless we hung up.
                    if !cancel.is_cancelled() {
                        let how = if target.tls { "tls" } else { "tcp" };
                        match end {
                            Ok(()) => tracing::info!(
                                "TURN {}:{} ({how}) closed the connection for {src}",
                                target.host,
                                target.port
                            ),
                            Err(e) => tracing::warn!(
                                "TURN {}:{} ({how}) for {src}: {e}",
                                target.host,
                                target.port
                            ),
                        }
                    }
                });
                conns.insert(src, tx);
                &conns[&src]
            }
        };
        // Wait for room rather than drop: a burst then waits in this socket's (large) buffer
        // instead of being lost, and SCTP never sees a loss the network did not cause. Bounded,
        // so a connection that stopped draining cannot hold up the bridge for long.
        if tokio::time::timeout(SEND_WAIT, tx.send(datagram))
            .await
            .is_err()
        {
            tracing::debug!(
                "TURN bridge for {src}: the connection is not draining; datagram dropped"
            );
        }
    }
}

async fn run_conn(
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    target: &StreamTurn,
    tls: Option<tokio_rustls::TlsConnector>,
    rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) -> Result<(), BridgeError> {
    let connect = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        // Checks and small control messages must not wait for Nagle.
        tcp.set_nodelay(true)?;
        Ok::<_, BridgeError>(tcp)
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| BridgeError::Timeout)??;
    // A second handle on the socket, to re-arm quick ACKs after each read (see `pump`).
    let std_tcp = tcp.into_std()?;
    let acker = socket2::Socket::from(std_tcp.try_clone()?);
    let tcp = TcpStream::from_std(std_tcp)?;
    match tls {
        None => pump(tcp, &acker, sock, client, rx, cancel).await,
        Some(connector) => {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| BridgeError::Tls(e.to_string()))?;
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| BridgeError::Timeout)??;
            pump(stream, &acker, sock, client, rx, cancel).await
        }
    }
}

/// Datagrams from webrtc go out as they are; the stream from the server is cut into frames.
///
/// The server's small writes (check responses, SACKs) must not wait for our ACKs (Nagle on the
/// server's side, delayed ACK on ours): in traces relayed exchanges then came ~200 ms apart.
/// Quick ACK mode is re-armed after every read because the kernel leaves it on its own.
async fn pump<S: AsyncRead + AsyncWrite>(
    stream: S,
    acker: &socket2::Socket,
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    mut rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) -> Result<(), BridgeError> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = async {
        while let Some(d) = rx.recv().await {
            wr.write_all(&d).await?;
            // Write whatever else is already queued before flushing (one TLS record, one segment).
            while let Ok(d) = rx.try_recv() {
                wr.write_all(&d).await?;
            }
            wr.flush().await?;
        }
        Ok::<_, BridgeError>(())
    };
    let reader = async {
        let mut buf = BytesMut::with_capacity(MAX_FRAME);
        loop {
            while let Some(len) = frame_len(&buf)? {
                if buf.len() < len {
                    break;
                }
                let frame = buf.split_to(len);
                sock.send_to(&frame, client).await?;
            }
            buf.reserve(MAX_FRAME);
            if rd.read_buf(&mut buf).await? == 0 {
                return Ok::<_, BridgeError>(());
            }
            quick_ack(acker);
        }
    };
    tokio::select! {
        r = writer => r,
        r = reader => r,
        _ = cancel.cancelled() => Ok(()),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quick_ack(s: &socket2::Socket) {
    let _ = s.set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quick_ack(_: &socket2::Socket) {}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, BridgeError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!("loading platform certificates: {e}");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(BridgeError::Tls(
            "no trusted root certificates found".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BridgeError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_stream_turn_urls_are_bridged() {
        let t = |h: &str, p, tls| {
            Some(StreamTurn {
                host: h.into(),
                port: p,
                tls,
            })
        };
        assert_eq!(
            parse_stream_turn("turn:1.2.3.4:443?transport=tcp"),
            t("1.2.3.4", 443, false)
        );
        assert_eq!(
            parse_stream_turn("turns:turn.example:443?transport=tcp"),
            t("turn.example", 443, true)
        );
        assert_eq!(
            parse_stream_turn("turns:turn.example"),
            t("turn.example", 5349, true)
        );
        assert_eq!(
            parse_stream_turn("turn:[::1]:3478?transport=TCP"),
            t("::1", 3478, false)
        );
        assert_eq!(
            parse_stream_turn("turn:h?transport=tcp"),
            t("h", 3478, false)
        );
        assert_eq!(parse_stream_turn("turn:1.2.3.4:3478"), None);
        assert_eq!(parse_stream_turn("turn:1.2.3.4:3478?transport=udp"), None);
        assert_eq!(parse_stream_turn("turns:1.2.3.4:443?transport=udp"), None);
        assert_eq!(parse_stream_turn("stun:1.2.3.4:3478"), None);
        assert_eq!(parse_stream_turn("turn::443?transport=tcp"), None);
        assert_eq!(parse_stream_turn("turn:h:x?transport=tcp"), None);
    }

    #[test]
    fn frames_are_cut_at_stun_and_padded_channel_data_boundaries() {
        // STUN header: type, length 8, cookie, transaction id.
        let mut stun = vec![0x01, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
        stun.extend([0u8; 12 + 8]);
        assert_eq!(frame_len(&stun).unwrap(), Some(28));
        assert_eq!(frame_len(&stun[..3]).unwrap(), None);
        // ChannelData with 5 payload bytes is padded to 8 on a stream.
        assert_eq!(frame_len(&[0x40, 0x01, 0x00, 0x05]).unwrap(), Some(12));
        assert_eq!(frame_len(&[0x4f, 0xff, 0x00, 0x08]).unwrap(), Some(12));
        assert!(frame_len(&[0x80, 0, 0, 0]).is_err());
        assert!(frame_len(&[0x50, 0, 0, 0]).is_err());
    }

    /// A stand-in TURN server on a loopback TCP port: whatever arrives as one write is echoed
    /// back split across writes, and the bridge must deliver it to the UDP client as one
    /// datagram per frame, in order.
    #[tokio::test]
    async fn bridge_relays_datagrams_over_tcp_and_reframes_replies() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = vec![0u8; 4 + 8 + 20];
            s.read_exact(&mut got).await.unwrap();
            // Back in three uneven pieces.
            for piece in [&got[..3], &got[3..15], &got[15..]] {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let servers = vec![IceServer {
            urls: vec![
                format!("turn:127.0.0.1:{port}?transport=tcp"),
                "stun:192.0.2.1:3478".into(),
            ],
            username: Some("u".into()),
            credential: Some("c".into()),
        }];
        let (rewritten, bridge) = bridge_ice_servers(&servers).await;
        assert!(bridge.is_some());
        assert_eq!(rewritten[0].urls[1], "stun:192.0.2.1:3478");
        assert_eq!(rewritten[0].username.as_deref(), Some("u"));
        let url = &rewritten[0].urls[0];
        let local: SocketAddr = url
            .strip_prefix("turn:")
            .and_then(|r| r.strip_suffix("?transport=udp"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(local.ip().is_loopback());

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let chan = [0x40u8, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
        let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        stun.extend([7u8; 12]);
        client.send_to(&chan, local).await.unwrap();
        client.send_to(&stun, local).await.unwrap();
        let mut buf = [0u8; 128];
        for want in [&chan[..], &stun[..]] {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                .await
                .expect("a reframed datagram in time")
                .unwrap();
            assert_eq!(&buf[..n], want);
        }
        drop(bridge);
    }
}
