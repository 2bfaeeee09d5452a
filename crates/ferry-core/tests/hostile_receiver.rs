//! A hostile receiver end to end: a hand-driven peer on a real WebRTC link (through a real
//! `ferry-signal` on loopback) answers the real sender with offsets it never sent, endless
//! resend requests, repeated confirmations and more files than were offered. Each must end in
//! a specific error, in bounded time and memory. A hostile sender: `hostile_peer.rs`.

mod hostile;
mod session_common;

use ferry_core::EventSink;
use ferry_core::FerryError;
use ferry_core::link::Link;
use ferry_core::manifest;
use ferry_core::transfer::TransferHandle;
use ferry_core::transfer::sender::{self, SendAttempt, SendJob};
use ferry_proto::peer::{self, Control, FileAccept};
use hostile::{Hostile, SERIAL, connect, entry, protocol_error, victim_beside, within};

/// The real sender offering two 5000-byte files against `script` on the other link.
async fn send_against<T>(
    script: impl AsyncFnOnce(&mut Hostile) -> T,
) -> (Result<SendAttempt, FerryError>, Option<T>) {
    let p = connect().await;
    let src = tempfile::tempdir().unwrap();
    let f = src.path().join("a.bin");
    std::fs::write(&f, vec![9u8; 5000]).unwrap();
    let g = src.path().join("b.bin");
    std::fs::write(&g, vec![8u8; 5000]).unwrap();
    let m = manifest::build(&[f, g]).unwrap();
    let job = SendJob::new(manifest::transfer_id("HOSTILE", &m.entries), m);
    let handle = TransferHandle::new();
    let ev = EventSink::none();
    let mut h = Hostile::new(p.guest);
    within(
        60,
        victim_beside(sender::run(p.host, &job, &handle, &ev), script(&mut h)),
    )
    .await
}

/// An accept of both offered files from their first byte.
fn both_from_the_start() -> Control {
    Control::Accept {
        files: vec![
            FileAccept { file: 0, offset: 0 },
            FileAccept { file: 1, offset: 0 },
        ],
    }
}

async fn manifest_then(h: &mut Hostile, reply: Control) {
    assert!(matches!(h.recv(30).await, Some(Control::Manifest { .. })));
    assert!(h.control(&reply).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_refuses_accept_offsets_past_eof_or_off_the_grid() {
    let _serial = SERIAL.lock().await;
    let accept = |offset| Control::Accept {
        files: vec![FileAccept { file: 0, offset }],
    };
    let (r, _) = send_against(async |h: &mut Hostile| {
        manifest_then(h, accept(5001)).await;
        h.drain(5).await
    })
    .await;
    protocol_error(&r, "accept offset 5001 past the end of file 0");
    let (r, _) = send_against(async |h: &mut Hostile| {
        manifest_then(h, accept(100)).await;
        h.drain(5).await
    })
    .await;
    protocol_error(&r, "is not on a 1024-byte boundary");
    let (r, _) = send_against(async |h: &mut Hostile| {
        manifest_then(
            h,
            Control::Accept {
                files: vec![FileAccept { file: 3, offset: 0 }],
            },
        )
        .await;
        h.drain(5).await
    })
    .await;
    protocol_error(&r, "accept names unknown file 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_refuses_resend_and_ack_offsets_it_never_sent() {
    let _serial = SERIAL.lock().await;
    for (bad, says) in [
        (
            Control::Resend {
                file: 0,
                offset: 1 << 40,
            },
            "resend of file 0 at 1099511627776 is out of range",
        ),
        (
            Control::Resend {
                file: 0,
                offset: 100,
            },
            "resend of file 0 at 100 is out of range",
        ),
        (
            Control::Ack {
                file: 0,
                offset: 1 << 40,
            },
            "ack 1099511627776 beyond what was sent of file 0",
        ),
        (
            Control::Resend { file: 9, offset: 0 },
            "names file 9 that was not accepted",
        ),
    ] {
        let (r, _) = send_against(async |h: &mut Hostile| {
            manifest_then(
                h,
                Control::Accept {
                    files: vec![FileAccept { file: 0, offset: 0 }],
                },
            )
            .await;
            h.control(&bad).await;
            h.drain(5).await
        })
        .await;
        protocol_error(&r, says);
    }
}

/// A receiver that asks for the same file again and again cannot keep the sender sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_stops_an_endless_resend_loop() {
    let _serial = SERIAL.lock().await;
    let (r, asked) = send_against(async |h: &mut Hostile| {
        manifest_then(
            h,
            Control::Accept {
                files: vec![FileAccept { file: 0, offset: 0 }],
            },
        )
        .await;
        let mut asked = 0;
        for _ in 0..2000 {
            match h.link.rx.recv().await {
                Some(f) if f.first() == Some(&peer::KIND_CHUNK) => {
                    asked += 1;
                    if !h.control(&Control::Resend { file: 0, offset: 0 }).await {
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        asked
    })
    .await;
    protocol_error(&r, "asked for file 0 again");
    let asked = asked.unwrap_or(0);
    assert!(asked < 100, "sent the file {asked} times");
}

/// A receiver repeating a confirmation or a per-file error is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_refuses_repeated_confirmations_and_file_errors() {
    let _serial = SERIAL.lock().await;
    let (r, _) = send_against(async |h: &mut Hostile| {
        manifest_then(h, both_from_the_start()).await;
        // Confirm without checking, twice.
        while let Some(c) = h.recv(10).await {
            if let Control::FileEnd { file: 0, .. } = c {
                let file = 0;
                h.control(&Control::FileDone { file }).await;
                h.control(&Control::FileDone { file }).await;
                break;
            }
        }
        h.drain(5).await
    })
    .await;
    protocol_error(&r, "file 0 confirmed twice");
    let big = "e".repeat(200 * 1024);
    // Both files accepted, so the first error leaves the sender something to do.
    let (r, _) = send_against(async |h: &mut Hostile| {
        manifest_then(h, both_from_the_start()).await;
        h.repeat_file_error(300, &big).await;
        h.drain(5).await
    })
    .await;
    protocol_error(&r, "error for file 0, which is not in progress");
}

/// The other side of the entry cap: a sender with more files than any receiver accepts says
/// so before offering anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_refuses_more_files_than_a_receiver_accepts() {
    let _serial = SERIAL.lock().await;
    let n = peer::MAX_FILES + 1;
    let m = manifest::Manifest {
        entries: vec![entry("f", 0); n],
        sources: vec![None; n],
        skipped: Vec::new(),
    };
    let job = SendJob::new("ab".repeat(16), m);
    let (a, mut b) = Link::memory_pair(4, 256 * 1024);
    let r = within(
        30,
        sender::run(a, &job, &TransferHandle::new(), &EventSink::none()),
    )
    .await;
    match r {
        Err(e @ FerryError::Io(_)) => assert!(
            e.to_string().contains("more than one transfer can carry"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(b.rx.try_recv().is_err(), "something was offered");
}
