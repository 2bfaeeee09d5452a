//! What the session tests share: a real `ferry-signal` on an ephemeral loopback port, a
//! connect configuration bound to 127.0.0.1, and waits that fail instead of hanging.

// Each test crate that mounts this module uses a different part of it.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use ferry_core::{ConnectConfig, SessionEvent};
use tokio::sync::mpsc;

pub(crate) async fn server() -> ferry_signal::RunningServer {
    let cfg = ferry_signal::Config {
        rate_limit: ferry_signal::RateLimit {
            per_second: 1000,
            burst: 1000,
        },
        ..Default::default()
    };
    ferry_signal::spawn(cfg).await.expect("signaling server")
}

pub(crate) fn cfg(url: &str) -> ConnectConfig {
    let mut c = ConnectConfig::new(url);
    c.bind_addrs = vec!["127.0.0.1:0".into()];
    c.connect_timeout = Duration::from_secs(15);
    c
}

pub(crate) async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("timed out")
}

/// Both directions carry frames intact and in order.
pub(crate) async fn exchange(
    a: &mut ferry_core::link::Link,
    b: &mut ferry_core::link::Link,
    n: usize,
) {
    for i in 0..n {
        let f = Bytes::from(vec![i as u8; 1000 + i]);
        a.tx.send(f.clone()).await.unwrap();
        assert_eq!(within(10, b.rx.recv()).await.unwrap(), f);
        b.tx.send(f.clone()).await.unwrap();
        assert_eq!(within(10, a.rx.recv()).await.unwrap(), f);
    }
}

/// The first event `pick` maps to a value, within `secs`; panics if the events end first.
pub(crate) async fn next_event<T>(
    rx: &mut mpsc::UnboundedReceiver<SessionEvent>,
    secs: u64,
    mut pick: impl FnMut(SessionEvent) -> Option<T>,
) -> T {
    within(secs, async {
        loop {
            let e = rx.recv().await.expect("events closed");
            if let Some(v) = pick(e) {
                break v;
            }
        }
    })
    .await
}

pub(crate) fn drain(rx: &mut mpsc::UnboundedReceiver<SessionEvent>) -> Vec<SessionEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}
