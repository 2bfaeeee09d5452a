//! A sender's room lifetime through the engine's public API and a real `ferry-signal` on
//! loopback: the lifetime asked for, extending it while the room waits, closing it at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_core::{
    Decision, Event, EventSink, FerryError, ReceiveOptions, SendOptions, Store, TransferHandle,
};
use tokio::sync::mpsc;

/// The room expiry the store recorded for transfer `id`.
fn room_expiry(db: &std::path::Path, id: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT room_expires_at FROM transfers WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>, f: impl Fn(&Event) -> bool) -> Event {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let e = rx.recv().await.expect("events ended");
            if f(&e) {
                return e;
            }
        }
    })
    .await
    .expect("timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_moves_the_deadline_and_close_ends_the_room_at_once() {
    let srv = ferry_signal::spawn(ferry_signal::Config {
        max_room_ttl: Duration::from_secs(7200),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let mut opts = SendOptions::new(srv.ws_url(), store.clone());
    opts.password = Some("pw-life".into());
    opts.ttl_secs = Some(60);
    opts.bind_addrs = Some(vec!["127.0.0.1:0".into()]);
    let handle = TransferHandle::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let h = handle.clone();
    let sending = tokio::spawn(async move {
        ferry_core::send_text(opts, "hi".into(), &h, EventSink::new(tx)).await
    });

    let Event::RoomCreated {
        room,
        expires_at,
        capped,
        ..
    } = next(&mut rx, |e| matches!(e, Event::RoomCreated { .. })).await
    else {
        unreachable!()
    };
    assert!((55..=61).contains(&(expires_at - now())), "{expires_at}");
    assert!(!capped);

    handle.extend_room(3600);
    let Event::RoomExtended { expires_at: later } =
        next(&mut rx, |e| matches!(e, Event::RoomExtended { .. })).await
    else {
        unreachable!()
    };
    assert!(later >= expires_at + 3500, "{expires_at} -> {later}");
    assert!((3595..=3601).contains(&(later - now())), "{later}");
    // Past the server's maximum it is clamped, and still moves.
    handle.extend_room(u64::MAX);
    let Event::RoomExtended {
        expires_at: capped_at,
    } = next(&mut rx, |e| matches!(e, Event::RoomExtended { .. })).await
    else {
        unreachable!()
    };
    assert!((7195..=7201).contains(&(capped_at - now())), "{capped_at}");
    // The store keeps the room's token as long as the room now lives, so a resume after a
    // crash can reattach until then.
    let id = store.history(1).unwrap()[0].id.clone();
    assert_eq!(room_expiry(&dir.path().join("s.db"), &id), capped_at);

    handle.close_room();
    let r = tokio::time::timeout(Duration::from_secs(10), sending)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&r, Err(FerryError::Cancelled(m)) if m.contains("closed the room")),
        "{r:?}"
    );

    // The link no longer leads anywhere, and the receiver is told it is gone.
    let mut ropts = ReceiveOptions::new(
        dir.path().join("out"),
        Store::open(&dir.path().join("r.db")).unwrap(),
    );
    ropts.server = Some(srv.ws_url());
    ropts.password = Some("pw-life".into());
    ropts.bind_addrs = Some(vec!["127.0.0.1:0".into()]);
    let r = ferry_core::receive(
        ropts,
        &room,
        |_: &ferry_core::Offer| Decision::Decline,
        &TransferHandle::new(),
        EventSink::none(),
    )
    .await;
    assert!(matches!(r, Err(FerryError::RoomExpired)), "{r:?}");
}
