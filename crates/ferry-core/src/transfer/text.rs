//! Text snippets: one `text` message in place of a manifest, answered by `done` (or an
//! `error`). The decisions (size, what a reply means, what to answer) are plain functions
//! tested without a link; `send` and `receive` only carry them over one.

use ferry_proto::peer::{self, Control, PeerErrorCode};

use super::receiver::RecvJob;
use super::{TransferHandle, clip, next_control, peer_error, send_control, send_parting};
use crate::defaults::TEXT_MAX_BYTES;
use crate::error::FerryError;
use crate::events::{Event, EventSink};
use crate::link::Link;
use crate::store::{self, Direction, TransferKind, TransferRow, TransferState};

/// Whether a snippet may go: the sender checks before it opens a room.
pub fn check_size(text: &str) -> Result<(), FerryError> {
    if text.len() > TEXT_MAX_BYTES {
        return Err(FerryError::TooLarge(format!(
            "the text is {} bytes; a snippet carries at most {TEXT_MAX_BYTES} bytes (send it as a file)",
            text.len()
        )));
    }
    Ok(())
}

/// The id both sides record a snippet under: the room and the text, like a manifest's.
pub fn transfer_id(room: &str, text: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"ferry-text-v1\0");
    h.update(room.as_bytes());
    h.update(b"\0");
    h.update(text.as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

/// What a sender tells a receiver that did not announce [`peer::CAP_TEXT`], in place of the
/// snippet: an older receiver shows it as the reason the transfer stopped.
pub fn unsupported_notice() -> Control {
    Control::Error {
        code: PeerErrorCode::Unsupported,
        message: "the sender is sending a text snippet, which needs a newer Ferry on this device"
            .into(),
        file: None,
    }
}

/// The receiver's answer to a snippet, and how its side ends: `done` and the text, or a
/// refusal the sender can read and an error of our own (never a `done`).
pub fn judge(text: String) -> (Control, Result<String, FerryError>) {
    if text.len() > TEXT_MAX_BYTES {
        let why = format!(
            "a text snippet of {} bytes is over the receiver's limit of {TEXT_MAX_BYTES} bytes",
            text.len()
        );
        let reply = Control::Error {
            code: PeerErrorCode::TooLarge,
            message: why.clone(),
            file: None,
        };
        return (reply, Err(FerryError::TooLarge(format!("refused: {why}"))));
    }
    (Control::Done, Ok(text))
}

/// What the receiver's reply to a snippet means for the sender.
pub fn outcome(reply: Control) -> Result<(), FerryError> {
    match reply {
        Control::Done => Ok(()),
        Control::Error { code, message, .. } => Err(peer_error(code, &message)),
        Control::Cancel { reason } => Err(FerryError::Cancelled(clip(&reason))),
        Control::Decline { reason } => Err(FerryError::Declined(clip(&reason))),
        other => Err(FerryError::Protocol(format!(
            "expected done, got {}",
            super::brief(&other)
        ))),
    }
}

/// Sender: one attempt at handing `text` over `link`.
pub async fn send(
    mut link: Link,
    transfer_id: &str,
    text: &str,
    handle: &TransferHandle,
) -> Result<(), FerryError> {
    if !link.info.caps.iter().any(|c| c == peer::CAP_TEXT) {
        send_parting(&link, [], Some(unsupported_notice())).await;
        return Err(FerryError::Protocol(
            "the receiver's Ferry is too old to receive text snippets; ask them to update it"
                .into(),
        ));
    }
    send_control(
        &link,
        &Control::Text {
            transfer_id: transfer_id.to_string(),
            text: text.to_string(),
        },
    )
    .await?;
    let mut parts = peer::ControlReassembler::new();
    let reply = next_control(
        &mut link,
        &mut parts,
        &handle.cancelled_token(),
        Some("sender cancelled"),
        "the text was confirmed",
        "done",
    )
    .await?;
    outcome(reply)
}

/// Receiver: a snippet arrived in place of a manifest. Answers the sender, records the
/// transfer by its size (the text itself goes to the event only, never to disk) and returns
/// the text.
pub(crate) async fn receive(
    link: &Link,
    transfer_id: String,
    text: String,
    job: &RecvJob,
    ev: &EventSink,
) -> Result<(String, String), FerryError> {
    let (reply, result) = judge(text);
    send_parting(link, [], Some(reply)).await;
    let text = result?;
    let row = TransferRow {
        id: transfer_id.clone(),
        direction: Direction::Receive,
        kind: TransferKind::Text,
        room: job.room.clone(),
        peer: String::new(),
        server: job.server.clone(),
        host_token: String::new(),
        out_dir: String::new(),
        state: TransferState::Active,
        created_at: store::now(),
        updated_at: store::now(),
        total_bytes: text.len() as u64,
        done_bytes: 0,
        error: None,
    };
    let st = job.store.clone();
    tokio::task::spawn_blocking(move || st.insert_if_new(&row, &[]))
        .await
        .map_err(|e| FerryError::Io(e.to_string()))??;
    ev.emit(Event::Text {
        transfer_id: transfer_id.clone(),
        text: text.clone(),
    });
    Ok((transfer_id, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_refuses_past_the_limit_before_anything_else() {
        assert!(check_size(&"x".repeat(TEXT_MAX_BYTES)).is_ok());
        let e = check_size(&"x".repeat(TEXT_MAX_BYTES + 1)).unwrap_err();
        assert_eq!(e.code(), "too-large");
        assert_eq!(e.exit_code(), 24);
        assert!(e.to_string().contains("at most 65536 bytes"), "{e}");
        // Bytes of UTF-8, not characters: 16,385 four-byte emoji are over.
        assert!(check_size(&"🚢".repeat(TEXT_MAX_BYTES / 4 + 1)).is_err());
    }

    #[test]
    fn the_receiver_refuses_an_oversized_snippet_and_never_says_done() {
        let (reply, r) = judge("y".repeat(TEXT_MAX_BYTES + 1));
        match reply {
            Control::Error { code, message, .. } => {
                assert_eq!(code, PeerErrorCode::TooLarge);
                assert!(message.contains("over the receiver's limit"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let e = r.unwrap_err();
        assert_eq!(e.code(), "too-large");
        // The refusal reaches the sender as its own too-large error.
        let theirs = outcome(Control::Error {
            code: PeerErrorCode::TooLarge,
            message: "over".into(),
            file: None,
        })
        .unwrap_err();
        assert_eq!(theirs.code(), "too-large");
        assert_eq!(theirs.to_string(), "too large: peer: over");
    }

    #[test]
    fn a_snippet_within_the_limit_is_kept_exactly() {
        let t = "a\r\nb\n\u{1f6a2} é\n".to_string();
        let (reply, r) = judge(t.clone());
        assert_eq!(reply, Control::Done);
        assert_eq!(r.unwrap(), t);
        assert!(outcome(Control::Done).is_ok());
        assert_eq!(
            outcome(Control::Accept { files: vec![] })
                .unwrap_err()
                .code(),
            "protocol"
        );
    }

    /// A peer that ignores the limit, over a real link pair and the real receiver driver: the
    /// receiver refuses with `too-large`, tells the peer so, shows nothing and records nothing.
    #[tokio::test]
    async fn a_hostile_oversized_snippet_is_refused_by_the_receiver() {
        use crate::link::Link;
        use crate::transfer::receiver::{self, Decision};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("r.db")).unwrap();
        let job = RecvJob {
            out_dir: dir.path().join("out"),
            overwrite: false,
            store: store.clone(),
            room: "R".into(),
            server: "ws://x".into(),
        };
        let (hostile, ours) = Link::memory_pair(64, 256 * 1024);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let big = Control::Text {
            transfer_id: "abcd".into(),
            text: "z".repeat(TEXT_MAX_BYTES + 1),
        };
        for f in big.encode_frames(64 * 1024) {
            hostile.tx.send(bytes::Bytes::from(f)).await.unwrap();
        }
        let mut decide = |_: &receiver::Offer| Decision::Accept;
        let r = receiver::run(
            ours,
            &job,
            &mut decide,
            &TransferHandle::new(),
            &EventSink::new(tx),
        )
        .await;
        let e = r.unwrap_err();
        assert_eq!(e.code(), "too-large", "{e}");
        let mut hostile = hostile;
        let reply = hostile.rx.recv().await.unwrap();
        match peer::decode(&reply).unwrap() {
            peer::Frame::Control(Control::Error { code, .. }) => {
                assert_eq!(code, PeerErrorCode::TooLarge)
            }
            other => panic!("{other:?}"),
        }
        while let Ok(ev) = rx.try_recv() {
            assert!(
                !matches!(ev, Event::Text { .. } | Event::Done { .. }),
                "{ev:?}"
            );
        }
        assert!(store.history(10).unwrap().is_empty());
        assert!(!dir.path().join("out").exists());
    }

    /// A receiver that did not announce `text` (an older Ferry) is never sent the snippet: it
    /// gets an `unsupported` error it can show, and the sender says what to do.
    #[tokio::test]
    async fn an_older_receiver_gets_a_clear_refusal_not_the_snippet() {
        use crate::link::Link;
        let (ours, mut old) = Link::memory_pair(8, 64 * 1024);
        assert!(ours.info.caps.is_empty(), "a memory link announces nothing");
        // Bounded: a sender that offered the snippet anyway would wait for an answer forever.
        let handle = TransferHandle::new();
        let sent = send(ours, "id", "secret note", &handle);
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), sent)
            .await
            .expect("the sender refuses at once")
            .unwrap_err();
        assert_eq!(e.code(), "protocol");
        assert!(e.to_string().contains("too old to receive text"), "{e}");
        let got = old.rx.recv().await.unwrap();
        match peer::decode(&got).unwrap() {
            peer::Frame::Control(Control::Error { code, message, .. }) => {
                assert_eq!(code, PeerErrorCode::Unsupported);
                assert!(message.contains("needs a newer Ferry"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(old.rx.try_recv().is_err(), "nothing else was sent");
    }

    #[test]
    fn ids_differ_by_room_and_text() {
        let a = transfer_id("R1", "hi");
        assert_eq!(a.len(), 32);
        assert_ne!(a, transfer_id("R2", "hi"));
        assert_ne!(a, transfer_id("R1", "hi "));
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
