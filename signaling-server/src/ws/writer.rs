//! The write half of a `/ws` socket.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use ferry_proto::signal::ServerMsg;
use futures::SinkExt;
use futures::stream::SplitSink;
use tokio_util::sync::CancellationToken;

/// The write half of a socket. Every write is bounded: by `write_timeout`, and by the kill
/// and shutdown signals, so a peer that stops reading cannot park its task in a write where
/// neither the idle timeout, nor the overflow kill, nor shutdown would ever be seen.
pub(super) struct Writer {
    pub(super) sink: SplitSink<WebSocket, Message>,
    pub(super) timeout: Duration,
    pub(super) kill: CancellationToken,
    pub(super) shutdown: CancellationToken,
}

impl Writer {
    pub(super) async fn write(&mut self, m: Message) -> bool {
        tokio::select! {
            biased;
            _ = self.kill.cancelled() => false,
            _ = self.shutdown.cancelled() => false,
            r = tokio::time::timeout(self.timeout, self.sink.send(m)) => matches!(r, Ok(Ok(()))),
        }
    }

    pub(super) async fn send(&mut self, msg: &ServerMsg) -> bool {
        self.write(Message::Text(msg.to_json().into())).await
    }

    /// Best effort, and bounded: a peer that does not read does not get to delay its own close.
    pub(super) async fn close_with(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let bound = self.timeout.min(Duration::from_secs(1));
        let sink = &mut self.sink;
        let _ = tokio::time::timeout(bound, async {
            let _ = sink.send(Message::Close(Some(frame))).await;
            let _ = sink.close().await;
        })
        .await;
    }
}
