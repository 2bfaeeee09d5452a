//! Host and guest connect through a real `ferry-signal` on an ephemeral loopback port, over
//! real WebRTC on 127.0.0.1: the link, its flow control, and what survives the server going
//! away. Password guessing has its own file, `connect_guessing.rs`.

mod session_common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_core::link::PathKind;
use ferry_core::{ConnectError, HostRoom, Password, SessionEvent, join};
use session_common::{cfg, drain, exchange, server, within};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_guest_connect_and_exchange_frames() {
    let srv = server().await;
    let pw = Password::generate();
    let mut host = HostRoom::create(cfg(&srv.ws_url()), pw.clone())
        .await
        .unwrap();
    let room = host.ticket().room;
    assert!(!host.ticket().host_token.is_empty());
    let (etx, mut erx) = mpsc::unbounded_channel();
    let (h, g) = within(30, async {
        tokio::join!(
            host.accept(&etx),
            join(cfg(&srv.ws_url()), room, pw.clone())
        )
    })
    .await;
    let (mut h, mut g) = (h.unwrap(), g.unwrap());
    assert_eq!(h.verification, g.verification);
    assert_eq!(h.link.info.path, PathKind::Host);
    assert_eq!(g.link.info.path, PathKind::Host);
    // Both sides advertise the same default, so that is what the hello settles on.
    assert_eq!(h.link.info.max_message_size, 256 * 1024);
    assert_eq!(g.link.info.max_message_size, 256 * 1024);
    assert!(
        h.link
            .info
            .remote_addr
            .as_deref()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let evs = drain(&mut erx);
    assert_eq!(evs.first(), Some(&SessionEvent::PeerJoined), "{evs:?}");
    assert!(evs.contains(&SessionEvent::Connecting), "{evs:?}");
    assert!(
        evs.contains(&SessionEvent::Connected {
            path: PathKind::Host
        }),
        "{evs:?}"
    );
    exchange(&mut h.link, &mut g.link, 50).await;
    // A maximum-size frame passes.
    let big = Bytes::from(vec![7u8; h.link.info.max_message_size]);
    h.link.tx.send(big.clone()).await.unwrap();
    assert_eq!(within(10, g.link.rx.recv()).await.unwrap(), big);

    // Dropping one side ends the other's rx.
    drop(h.link);
    assert!(within(20, g.link.rx.recv()).await.is_none());
    host.close().await;
    srv.shutdown().await;
}

/// Whichever side opens Ferry's channel in band (an older build, an older page, or
/// `FERRY_AGREED_CHANNEL=0`) or both take up the agreed stream, the peers connect and the
/// link carries frames both ways. On the agreed stream the frames the host opens with (its
/// manifest, sent before the guest's hello is in) reach the guest first and whole; on a
/// channel opened in band they stay with the host, whose channel opens with the guest's
/// hello in hand anyway, and the link says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_opens_with_its_frames_on_the_agreed_stream_only() {
    let srv = server().await;
    for (host_agrees, guest_agrees) in [(true, true), (true, false), (false, true)] {
        let side = |agrees: bool| {
            let mut c = cfg(&srv.ws_url());
            c.tuning.agreed_channel = agrees;
            c
        };
        let pw = Password::generate();
        let mut host = HostRoom::create(side(host_agrees), pw.clone())
            .await
            .unwrap();
        let opening: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![i; 16 * 1024])).collect();
        host.open_with(opening.clone());
        let room = host.ticket().room;
        let (etx, _erx) = mpsc::unbounded_channel();
        let (h, g) = within(30, async {
            tokio::join!(
                host.accept(&etx),
                join(side(guest_agrees), room, pw.clone())
            )
        })
        .await;
        let (mut h, mut g) = (h.unwrap(), g.unwrap());
        assert_eq!(h.verification, g.verification);
        let agreed = host_agrees && guest_agrees;
        assert_eq!(h.link.info.opened, agreed, "{host_agrees} {guest_agrees}");
        if agreed {
            for f in &opening {
                assert_eq!(&within(10, g.link.rx.recv()).await.unwrap(), f);
            }
        }
        exchange(&mut h.link, &mut g.link, 5).await;
        host.close().await;
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_room_is_room_not_found() {
    let srv = server().await;
    let e = join(
        cfg(&srv.ws_url()),
        ferry_proto::RoomId::random(),
        Password::new("x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ConnectError::RoomNotFound), "{e:?}");
    assert_eq!(e.code(), "room-not-found");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_survives_the_server_going_away_and_host_accepts_again() {
    let srv = server().await;
    let url = srv.ws_url();
    let pw = Password::generate();
    let mut host = HostRoom::create(cfg(&url), pw.clone()).await.unwrap();
    let room = host.ticket().room;
    let (etx, _erx) = mpsc::unbounded_channel();
    let (h, g) = within(30, async {
        tokio::join!(host.accept(&etx), join(cfg(&url), room, pw.clone()))
    })
    .await;
    let (mut h, mut g) = (h.unwrap(), g.unwrap());

    // A second guest (resume after a dropped link) while the first link is still up.
    let (h2, g2) = within(30, async {
        tokio::join!(host.accept(&etx), join(cfg(&url), room, pw.clone()))
    })
    .await;
    let (mut h2, mut g2) = (h2.unwrap(), g2.unwrap());
    exchange(&mut h2.link, &mut g2.link, 3).await;
    drop((h2, g2));

    srv.shutdown().await;
    exchange(&mut h.link, &mut g.link, 20).await;
    let payload = Bytes::from(vec![1u8; 60_000]);
    for _ in 0..50 {
        h.link.tx.send(payload.clone()).await.unwrap();
    }
    for _ in 0..50 {
        assert_eq!(within(10, g.link.rx.recv()).await.unwrap().len(), 60_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_control_bounds_what_a_stalled_receiver_can_be_sent() {
    let srv = server().await;
    let url = srv.ws_url();
    let pw = Password::generate();
    let mut host = HostRoom::create(cfg(&url), pw.clone()).await.unwrap();
    let room = host.ticket().room;
    let (etx, _erx) = mpsc::unbounded_channel();
    let (h, g) = within(30, async {
        tokio::join!(host.accept(&etx), join(cfg(&url), room, pw.clone()))
    })
    .await;
    let (h, mut g) = (h.unwrap(), g.unwrap());
    let frame = Bytes::from(vec![3u8; 64 * 1024]);
    // The guest does not read: sends must start blocking after a bounded amount.
    let mut sent = 0usize;
    while let Ok(r) =
        tokio::time::timeout(Duration::from_millis(1500), h.link.tx.send(frame.clone())).await
    {
        r.unwrap();
        sent += 1;
        assert!(sent < 1000, "no backpressure after {sent} frames");
    }
    // Bound, measured at about 675 frames (42 MiB) with the default tuning: both Link queues
    // (64 frames each), webrtc's per-channel event queue (256 messages) plus the batch its
    // driver retains when that queue is full, the send-buffer limit and the SCTP window.
    assert!(sent >= 64, "only {sent} frames before blocking");
    // Everything sent arrives once the receiver reads.
    for _ in 0..sent {
        assert_eq!(
            within(10, g.link.rx.recv()).await.unwrap().len(),
            frame.len()
        );
    }
    srv.shutdown().await;
}

/// Throughput over a connected link on loopback; `FERRY_LINK_MB` (default 32) sets the size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_throughput() {
    let mb: usize = std::env::var("FERRY_LINK_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let srv = server().await;
    let url = srv.ws_url();
    let pw = Password::generate();
    let mut host = HostRoom::create(cfg(&url), pw.clone()).await.unwrap();
    let room = host.ticket().room;
    let (etx, _erx) = mpsc::unbounded_channel();
    let (h, g) = within(30, async {
        tokio::join!(host.accept(&etx), join(cfg(&url), room, pw.clone()))
    })
    .await;
    let (h, mut g) = (h.unwrap(), g.unwrap());
    let size = h.link.info.max_message_size;
    let frames = mb * 1024 * 1024 / size;
    let frame = Bytes::from(vec![5u8; size]);
    let t0 = Instant::now();
    let tx = h.link.tx.clone();
    let sender = tokio::spawn(async move {
        for _ in 0..frames {
            tx.send(frame.clone()).await.unwrap();
        }
    });
    let mut got = 0usize;
    for _ in 0..frames {
        got += within(30, g.link.rx.recv()).await.unwrap().len();
    }
    let secs = t0.elapsed().as_secs_f64();
    sender.await.unwrap();
    assert_eq!(got, frames * size);
    println!(
        "link throughput: {frames} frames of {size} B in {secs:.2} s = {:.0} frames/s, {:.1} MB/s",
        frames as f64 / secs,
        got as f64 / secs / 1e6
    );
    srv.shutdown().await;
}
