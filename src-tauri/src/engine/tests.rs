use super::*;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

async fn next_matching(
    rx: &mut UnboundedReceiver<Event>,
    what: &str,
    mut f: impl FnMut(&Event) -> bool,
) -> Event {
    let wait = async {
        while let Some(e) = rx.recv().await {
            if f(&e) {
                return Some(e);
            }
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(60), wait).await {
        Ok(Some(e)) => e,
        other => panic!("no {what} event: {other:?}"),
    }
}

/// The environment is one per process, so every test here shares one history database;
/// the store is safe to open from concurrent tests.
fn loopback_env() {
    static DB: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let db = DB
        .get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join("ferry.db");
    // SAFETY: every test in this binary sets these to the same values.
    unsafe {
        std::env::set_var("FERRY_SIGNAL_BIND", "127.0.0.1:0");
        std::env::set_var("FERRY_BIND", "127.0.0.1:0");
        std::env::set_var("FERRY_DB", db);
    }
}

/// The adapter end to end: the built-in server, a send, a wrong password that keeps the
/// room open, a receive that waits for Accept, the bytes on disk, and the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_wrong_password_then_receive_through_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    loopback_env();
    let engine = Engine::new();
    let settings = Settings::default();
    let src = dir.path().join("notes.bin");
    let data: Vec<u8> = (0..700_001u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();

    let (tx, mut send_ev) = unbounded_channel();
    let _sending = engine
        .send(&settings, vec![src.clone()], None, None, None, tx)
        .await
        .unwrap();
    let Event::RoomCreated {
        room,
        password,
        server,
        ..
    } = next_matching(&mut send_ev, "room-created", |e| {
        matches!(e, Event::RoomCreated { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(server, engine.signal_url(&settings).await.unwrap());

    let out = dir.path().join("out");
    let (tx, mut bad_ev) = unbounded_channel();
    let _bad = engine
        .receive(
            &settings,
            room.clone(),
            format!("{password}x"),
            None,
            out.clone(),
            tx,
        )
        .await
        .unwrap();
    let err = next_matching(&mut bad_ev, "error", |e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(&err, Event::Error { code, .. } if code == "wrong-password"),
        "{err:?}"
    );
    next_matching(&mut send_ev, "wrong-password-attempt", |e| {
        matches!(e, Event::WrongPasswordAttempt { .. })
    })
    .await;

    let (tx, mut recv_ev) = unbounded_channel();
    let mut receiving = engine
        .receive(&settings, room, password, None, out.clone(), tx)
        .await
        .unwrap();
    next_matching(&mut recv_ev, "offer", |e| matches!(e, Event::Offer { .. })).await;
    // Nothing is written before the user accepts.
    assert!(!out.join("notes.bin").exists());
    receiving.accept().unwrap();
    next_matching(&mut recv_ev, "done", |e| matches!(e, Event::Done { .. })).await;
    next_matching(&mut send_ev, "done", |e| matches!(e, Event::Done { .. })).await;
    assert_eq!(std::fs::read(out.join("notes.bin")).unwrap(), data);

    let history = engine.history().unwrap();
    assert!(
        history
            .iter()
            .any(|h| matches!(h.direction, Direction::Receive)
                && h.state == TransferState::Done
                && h.name == "notes.bin"),
        "{history:?}"
    );
}

/// The app's text path: what the `send_text` command runs, over the built-in server, to a
/// receiver running the engine's `receive` as `ferry receive` does. The snippet arrives
/// exactly; nothing lands in the folder; history shows it as text. Over the limit, the
/// command fails before a room opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_snippet_from_the_app_arrives_exactly() {
    let dir = tempfile::tempdir().unwrap();
    loopback_env();
    let engine = Engine::new();
    let settings = Settings::default();
    let snippet = "from the app: ünïcödé 🚢\r\nline two\n\n".to_string();
    let (tx, mut send_ev) = unbounded_channel();
    let _s = engine
        .send_text(
            &settings,
            snippet.clone(),
            Some("pw-app-text".into()),
            None,
            tx,
        )
        .await
        .unwrap();
    let Event::RoomCreated { room, server, .. } =
        next_matching(&mut send_ev, "room-created", |e| {
            matches!(e, Event::RoomCreated { .. })
        })
        .await
    else {
        unreachable!()
    };
    let out = dir.path().join("out");
    let mut opts = ReceiveOptions::new(&out, Store::open(&dir.path().join("r.db")).unwrap());
    opts.server = Some(server);
    opts.password = Some("pw-app-text".into());
    opts.bind_addrs = bind_addrs();
    let report = ferry_core::receive(
        opts,
        &room,
        |_: &Offer| Decision::Decline,
        &TransferHandle::new(),
        EventSink::none(),
    )
    .await
    .unwrap();
    assert_eq!(report.text.as_deref(), Some(snippet.as_str()));
    assert!(report.files.is_empty());
    assert!(!out.exists(), "a snippet is never written to disk");
    next_matching(&mut send_ev, "done", |e| matches!(e, Event::Done { .. })).await;
    let history = engine.history().unwrap();
    assert!(
        history.iter().any(|h| h.kind == TransferKind::Text
            && h.direction == Direction::Send
            && h.state == TransferState::Done
            && h.bytes == snippet.len() as u64),
        "{history:?}"
    );

    let (tx, _rx) = unbounded_channel();
    let refused = engine
        .send_text(
            &settings,
            "x".repeat(ferry_core::TEXT_MAX_BYTES + 1),
            None,
            None,
            tx,
        )
        .await;
    let Err(e) = refused else {
        panic!("over the limit must fail")
    };
    assert_eq!(e.code, "too-large");
}

/// What the room screen's picker, Extend and Close run: the lifetime asked for, a new
/// one from now, and the room gone at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_lifetime_is_picked_extended_and_closed_through_the_adapter() {
    loopback_env();
    let engine = Engine::new();
    let settings = Settings::default();
    let (tx, mut ev) = unbounded_channel();
    let mut running = engine
        .send_text(&settings, "hi".into(), None, Some(120), tx)
        .await
        .unwrap();
    let Event::RoomCreated { expires_at, .. } = next_matching(&mut ev, "room-created", |e| {
        matches!(e, Event::RoomCreated { .. })
    })
    .await
    else {
        unreachable!()
    };
    running.extend_room(1800);
    let Event::RoomExtended { expires_at: later } = next_matching(&mut ev, "room-extended", |e| {
        matches!(e, Event::RoomExtended { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert!(later >= expires_at + 1600, "{expires_at} -> {later}");
    running.close_room();
    let e = next_matching(&mut ev, "error", |e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(&e, Event::Error { code, .. } if code == "cancelled"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_by_cancel_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    loopback_env();
    let engine = Engine::new();
    let settings = Settings::default();
    let src = dir.path().join("a.txt");
    std::fs::write(&src, b"hello").unwrap();
    let (tx, mut send_ev) = unbounded_channel();
    let _s = engine
        .send(&settings, vec![src], None, None, None, tx)
        .await
        .unwrap();
    let Event::RoomCreated { room, password, .. } =
        next_matching(&mut send_ev, "room-created", |e| {
            matches!(e, Event::RoomCreated { .. })
        })
        .await
    else {
        unreachable!()
    };
    let out = dir.path().join("out");
    let (tx, mut recv_ev) = unbounded_channel();
    let mut r = engine
        .receive(&settings, room, password, None, out.clone(), tx)
        .await
        .unwrap();
    next_matching(&mut recv_ev, "offer", |e| matches!(e, Event::Offer { .. })).await;
    r.cancel();
    let e = next_matching(&mut recv_ev, "error", |e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(&e, Event::Error { code, .. } if code == "declined" || code == "cancelled"),
        "{e:?}"
    );
    assert!(!out.join("a.txt").exists());
}
