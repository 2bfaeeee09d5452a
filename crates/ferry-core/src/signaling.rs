//! WebSocket client for `ferry-signal` (tokio-tungstenite).
//!
//! One task owns the socket: it writes what [`SignalClient::send`] queues and forwards every
//! parsed [`ServerMsg`] to [`SignalClient::recv`], so a session can `select!` between the
//! server and its peer connection. Pings are answered by tungstenite itself.

use std::time::Duration;

use ferry_proto::RoomId;
use ferry_proto::signal::{ClientMsg, JOIN_QUERY, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What can go wrong talking to the signaling server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The WebSocket could not be opened.
    #[error("cannot reach the signaling server: {0}")]
    Connect(String),
    /// The server closed the socket.
    #[error("the signaling server closed the connection")]
    Closed,
    /// A reply that does not fit the protocol.
    #[error("unexpected reply from the signaling server: {0}")]
    Unexpected(String),
    /// The server speaks another protocol version: `(server, client)`.
    #[error("signaling server speaks version {0}, this client {1}")]
    Version(u16, u16),
}

/// A connected signaling socket.
pub struct SignalClient {
    tx: mpsc::UnboundedSender<ClientMsg>,
    rx: mpsc::UnboundedReceiver<ServerMsg>,
    next_rid: u64,
    /// `max_frame_bytes` from the server's welcome.
    pub max_frame_bytes: usize,
}

impl SignalClient {
    /// Connect and wait for the server's `welcome` (bounded by `timeout`).
    pub async fn connect(url: &str, timeout: Duration) -> Result<SignalClient, SignalError> {
        Ok(Self::dial(url, url, timeout).await?.0)
    }

    /// Connect as the guest of `room` and ask to join it; the reply (`joined` or an `error`)
    /// echoes the returned rid. The join rides in the upgrade request, which saves a round
    /// trip on a long path; when the `welcome` does not say the server took it (an older
    /// server, or a proxy that dropped the query) the join goes as a frame instead.
    pub async fn connect_joining(
        url: &str,
        room: RoomId,
        timeout: Duration,
    ) -> Result<(SignalClient, u64), SignalError> {
        let rid = 1;
        let dial = url::Url::parse(url).map(|mut u| {
            u.query_pairs_mut()
                .append_pair(JOIN_QUERY, room.as_str())
                .append_pair("v", &ferry_proto::SIGNAL_VERSION.to_string())
                .append_pair("rid", &rid.to_string());
            u
        });
        let (mut client, joined) = match &dial {
            Ok(u) => Self::dial(u.as_str(), url, timeout).await?,
            Err(_) => Self::dial(url, url, timeout).await?,
        };
        client.next_rid = rid + 1;
        if !joined {
            client.send(ClientMsg::JoinRoom {
                v: ferry_proto::SIGNAL_VERSION,
                rid: Some(rid),
                room,
            })?;
        }
        Ok((client, rid))
    }

    /// Opens `url` (errors name `shown`), reads the welcome; also returns whether the server
    /// took a join from this socket's URL.
    async fn dial(
        url: &str,
        shown: &str,
        timeout: Duration,
    ) -> Result<(SignalClient, bool), SignalError> {
        // Nagle off: see the server's listener (small request/response messages).
        let connect = tokio_tungstenite::connect_async_with_config(url, None, true);
        let (ws, _resp) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| SignalError::Connect(format!("{shown}: timed out")))?
            .map_err(|e| SignalError::Connect(format!("{shown}: {e}")))?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ClientMsg>();
        let (in_tx, in_rx) = mpsc::unbounded_channel::<ServerMsg>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = out_rx.recv() => match out {
                        Some(m) => {
                            if sink.send(Message::text(m.to_json())).await.is_err() {
                                break;
                            }
                        }
                        None => {
                            let _ = sink.send(Message::Close(None)).await;
                            break;
                        }
                    },
                    inc = stream.next() => match inc {
                        Some(Ok(Message::Text(t))) => match ServerMsg::parse(t.as_str()) {
                            Ok(m) => {
                                if in_tx.send(m).is_err() {
                                    break;
                                }
                            }
                            Err(e) => tracing::warn!("ignoring unparsable server frame: {e}"),
                        },
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
        });
        let mut client = SignalClient {
            tx: out_tx,
            rx: in_rx,
            next_rid: 1,
            max_frame_bytes: ferry_proto::signal::MAX_FRAME_BYTES,
        };
        match tokio::time::timeout(timeout, client.recv()).await {
            Ok(Ok(ServerMsg::Welcome {
                v,
                max_frame_bytes,
                join_in_url,
            })) => {
                if v != ferry_proto::SIGNAL_VERSION {
                    return Err(SignalError::Version(v, ferry_proto::SIGNAL_VERSION));
                }
                client.max_frame_bytes = max_frame_bytes;
                Ok((client, join_in_url))
            }
            Ok(Ok(other)) => Err(SignalError::Unexpected(format!("{other:?}"))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SignalError::Connect(format!("{shown}: no welcome"))),
        }
    }

    /// A client over channels instead of a socket: what a shared room's host hands each
    /// guest's run (its messages are addressed to that guest on the room's one socket).
    pub(crate) fn from_channels(
        tx: mpsc::UnboundedSender<ClientMsg>,
        rx: mpsc::UnboundedReceiver<ServerMsg>,
        max_frame_bytes: usize,
    ) -> SignalClient {
        SignalClient {
            tx,
            rx,
            next_rid: 1,
            max_frame_bytes,
        }
    }

    /// Another handle on the outgoing queue.
    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<ClientMsg> {
        self.tx.clone()
    }

    /// A fresh request id.
    pub fn rid(&mut self) -> u64 {
        let r = self.next_rid;
        self.next_rid += 1;
        r
    }

    /// Queue `msg` for the server.
    pub fn send(&self, msg: ClientMsg) -> Result<(), SignalError> {
        self.tx.send(msg).map_err(|_| SignalError::Closed)
    }

    /// Next message from the server; `Err(Closed)` once the socket is gone.
    pub async fn recv(&mut self) -> Result<ServerMsg, SignalError> {
        self.rx.recv().await.ok_or(SignalError::Closed)
    }
}

/// Delays between reconnect attempts: 100 ms doubling to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    use crate::defaults::{SIGNAL_BACKOFF_FIRST, SIGNAL_BACKOFF_MAX};
    SIGNAL_BACKOFF_FIRST
        .saturating_mul(1u32 << attempt.min(6))
        .min(SIGNAL_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert!(backoff(5) > backoff(4));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }

    /// What a server from before URL joins does: its welcome has no `join_in_url`, so the
    /// client must send its join as the first frame.
    #[tokio::test]
    async fn a_server_without_url_joins_gets_the_join_as_a_frame() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let welcome = r#"{"type":"welcome","v":2,"max_frame_bytes":65536}"#;
            ws.send(Message::text(welcome)).await.unwrap();
            let first = ws.next().await.unwrap().unwrap();
            ClientMsg::parse(first.to_text().unwrap()).unwrap()
        });
        let room: RoomId = "ABCDE-FGHJK".parse().unwrap();
        let url = format!("ws://{addr}/ws");
        let (_client, rid) = SignalClient::connect_joining(&url, room, Duration::from_secs(5))
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        let want = ClientMsg::JoinRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(rid),
            room,
        };
        assert_eq!(first, want);
    }

    #[tokio::test]
    async fn unreachable_server_is_a_connect_error() {
        // Bind then drop to get a loopback port with nothing listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err =
            SignalClient::connect(&format!("ws://127.0.0.1:{port}/ws"), Duration::from_secs(2))
                .await
                .err()
                .unwrap();
        assert!(matches!(err, SignalError::Connect(_)), "{err:?}");
    }
}
