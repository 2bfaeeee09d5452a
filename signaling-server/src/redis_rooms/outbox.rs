//! The relay hot path's publisher: one task per node takes every relayed message waiting at
//! that moment and publishes them in one pipeline, one message per destination node with the
//! frames on separate lines. Under load this turns thousands of PUBLISHes a second into a few
//! hundred; with nothing else waiting a message goes out alone, at once (no timer).
//!
//! Order: a socket's task awaits its message's acknowledgement before it reads its next one,
//! so it never has two messages here and its messages reach Redis in the order it sent them.

use tokio::sync::{mpsc, oneshot};

/// Messages that may wait for the publisher; a socket's task waits beyond that.
const QUEUE: usize = 8192;
/// Messages taken into one pipeline at most.
const BATCH: usize = 512;

struct Item {
    node: u64,
    msg: String,
    done: oneshot::Sender<bool>,
}

pub(crate) struct Outbox {
    tx: mpsc::Sender<Item>,
}

impl Outbox {
    /// Start the publisher task; it ends when the outbox is dropped.
    pub(crate) fn start(conn: redis::aio::ConnectionManager) -> Outbox {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, conn));
        Outbox { tx }
    }

    /// Publish `msg` to `node`'s channel; true once Redis has taken it.
    pub(crate) async fn publish(&self, node: u64, msg: String) -> bool {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Item { node, msg, done }).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

async fn run(mut rx: mpsc::Receiver<Item>, mut conn: redis::aio::ConnectionManager) {
    let script = include_str!("publish.lua");
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // One payload per destination node, each in the order its messages came.
        let mut payloads: Vec<(u64, String)> = Vec::new();
        for it in &mut batch {
            let msg = std::mem::take(&mut it.msg);
            match payloads.iter_mut().find(|p| p.0 == it.node) {
                Some(p) => {
                    p.1.push('\n');
                    p.1.push_str(&msg);
                }
                None => payloads.push((it.node, msg)),
            }
        }
        let mut p = redis::pipe();
        for (node, payload) in &payloads {
            // EVAL, not EVALSHA: Redis caches the script by its hash either way, and a Redis
            // that restarted empty needs no reload here.
            p.cmd("EVAL")
                .arg(script)
                .arg(0)
                .arg(format!("ferry:node:{node:016x}"))
                .arg(payload)
                .ignore();
        }
        let ok = matches!(
            tokio::time::timeout(super::OP_TIMEOUT, p.query_async::<()>(&mut conn)).await,
            Ok(Ok(()))
        );
        for it in batch.drain(..) {
            let _ = it.done.send(ok);
        }
    }
}
