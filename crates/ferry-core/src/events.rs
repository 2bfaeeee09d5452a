//! What a transfer reports while it runs. The CLI prints these (one JSON object per line
//! with `--json`); the desktop app forwards them to its UI over a channel. The JSON shape
//! (`{"event":"progress",...}`) is part of the CLI's scripting interface: add, don't rename.

use serde::Serialize;
use tokio::sync::mpsc;

use crate::link::PathKind;
use crate::session::SessionEvent;

/// Byte counts in `Resuming`, `Progress` and `Done` are over the whole transfer, never one
/// file; `file` only names where the latest bytes landed. The UI's copy of these types is
/// `ui/src/ipc.ts`, checked against fixtures by `tests/ui_contract.rs` (docs/ARCHITECTURE.md §5).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Sender: the room is open; show these to the person who will receive.
    RoomCreated {
        /// Room id as people type it.
        room: String,
        /// The room's password (generated, or the one given).
        password: String,
        /// `ferry://join/...` link carrying the server, room and password.
        link: String,
        /// Unix seconds.
        expires_at: i64,
        /// Signaling server the receiver should use (ws URL).
        server: String,
        /// The transfer's id (for `ferry send --resume`).
        transfer_id: String,
        /// The server granted less than the lifetime asked for (its maximum).
        capped: bool,
    },
    /// Sender: the room's lifetime was extended; it now ends at `expires_at`.
    RoomExtended {
        /// Unix seconds.
        expires_at: i64,
    },
    /// The sender waits for a receiver.
    Waiting,
    /// Sender: a receiver joined the room; its password is being checked.
    PeerJoined,
    /// Sender: the receiver proved the password (key confirmation passed); the devices are
    /// being connected. Before this, a failed attempt may have been a password guess.
    Connecting,
    /// Sender: someone tried a wrong password.
    WrongPasswordAttempt {
        /// Tries left before the room locks, when the server says.
        attempts_left: Option<u32>,
    },
    /// Sender: a receiver's connection attempt failed; the room stays open for the next.
    AttemptFailed {
        /// Stable code of the failure (`rtc`, `timeout`, ...).
        code: String,
        /// What happened, for a person.
        message: String,
    },
    /// Receiver: a join attempt failed before the first link in a way another try can
    /// cure (no WebRTC path formed, the sender left mid-handshake); trying again.
    Retrying {
        /// Stable code of the failure, as in `Error`.
        code: String,
        /// What happened, for a person.
        message: String,
    },
    /// The devices are connected.
    Connected {
        /// "direct" or "relayed".
        path: String,
        /// The kind of path ICE chose.
        kind: PathKind,
    },
    /// Words both devices show; they match unless someone sits in the middle.
    Verification {
        /// Three numbers derived from the session key.
        words: String,
    },
    /// Receiver: what the sender offers (before the user accepts).
    Offer {
        /// The transfer's id.
        transfer_id: String,
        /// Files and folders, in manifest order.
        files: Vec<OfferFile>,
        /// Bytes of every file in the offer together.
        total: u64,
    },
    /// Where this attempt starts (resume): bytes already held by the receiver.
    Resuming {
        /// Over the whole transfer, as in `Progress`.
        bytes_done: u64,
        /// As in `Progress`.
        total: u64,
    },
    /// How far the transfer is (at most every 100 ms, and at each file's end).
    Progress {
        /// The file the latest bytes belong to; the numbers are not per file.
        file: String,
        /// Bytes done over the whole transfer, counting what was held before a resume.
        /// Sender: acknowledged by the receiver, finished files whole. Receiver: verified and
        /// written.
        bytes_done: u64,
        /// Bytes of the whole transfer. Sender: the files the receiver accepted. Receiver:
        /// the whole offer (`Offer::total`).
        total: u64,
        /// Bytes (not bits) per second over this attempt, bytes held before it excluded.
        rate_bps: u64,
        /// Seconds left at that rate; `None` until there is a rate.
        eta_secs: Option<u64>,
    },
    /// A file arrived whole and verified (receiver), or was confirmed (sender).
    FileDone {
        /// Relative path as offered.
        path: String,
        /// The file's BLAKE3 hash, hex (what `b3sum` prints).
        hash: String,
    },
    /// One file could not be transferred; the others go on.
    FileFailed {
        /// Relative path as offered.
        path: String,
        /// Stable error code, as in `Error`.
        code: String,
        /// What happened, for a person.
        message: String,
    },
    /// A chunk failed its BLAKE3 check and was asked for again.
    ChunkRejected {
        /// Relative path of the file the chunk belongs to.
        file: String,
        /// Byte offset within `file` of the chunk that failed.
        offset: u64,
    },
    /// The transfer is paused (by either side).
    Paused,
    /// The transfer goes on after a pause.
    Resumed,
    /// The link dropped; trying to get it back.
    Reconnecting,
    /// Sender: symlinks inside picked folders that were left out (not followed; see
    /// `manifest`), named as the receiver would have seen them.
    SkippedSymlinks {
        /// The links' relative paths.
        paths: Vec<String>,
    },
    /// Receiver: a text snippet arrived (sent instead of files). Shown, never written to
    /// disk; `done` follows.
    Text {
        /// The transfer's id.
        transfer_id: String,
        /// The snippet, exactly as sent.
        text: String,
    },
    /// The transfer finished: every accepted file is in place and verified.
    Done {
        /// Over the whole transfer, held bytes included. Sender: acknowledged by the
        /// receiver. Receiver: the offer's total.
        bytes: u64,
        /// Seconds data moved in the last attempt: from the receiver's accept to the end. The
        /// wait for a receiver, for its user's answer and for connecting is not counted.
        secs: f64,
        /// The transfer's id.
        transfer_id: String,
        /// Sender only: chunk payload bytes that crossed the link in the last attempt, after
        /// compression (below `bytes` when data compressed).
        #[serde(skip_serializing_if = "Option::is_none")]
        link_bytes: Option<u64>,
    },
    /// The transfer ended with an error (the last event).
    Error {
        /// Stable code: an [`crate::error::ErrorKind`]'s, which also picks the CLI's exit code.
        code: String,
        /// What happened, for a person.
        message: String,
    },
    /// About one receiver of a room that serves several (`ferry send --receivers`): `inner`
    /// is what that receiver's own run reports (`peer-joined`, `connected`, `progress`, its
    /// `done` or `error`...). The room's own events stay unwrapped.
    Receiver {
        /// The receiver's number in the room (from 1), as `stop <n>` takes it.
        receiver: u32,
        /// The event, as a one-receiver send would report it.
        inner: Box<Event>,
    },
}

/// One entry of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferFile {
    /// Relative path (`/`-separated).
    pub path: String,
    /// Bytes (0 for a folder).
    pub size: u64,
    /// A folder; left out of the JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
}

/// Where events go. Sending never blocks and never fails the transfer: a consumer that
/// went away just stops hearing about it.
#[derive(Clone, Debug)]
pub struct EventSink(Option<mpsc::UnboundedSender<Event>>);

impl EventSink {
    /// Events go to `tx`.
    pub fn new(tx: mpsc::UnboundedSender<Event>) -> Self {
        Self(Some(tx))
    }
    /// Events go nowhere.
    pub fn none() -> Self {
        Self(None)
    }
    /// Report `e`.
    pub fn emit(&self, e: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(e);
        }
    }
}

impl Event {
    /// What the user hears of a session step while a sender waits; `None` for the steps that
    /// the transfer reports itself (`connected` carries the path it knows by then).
    pub fn from_session(e: SessionEvent) -> Option<Event> {
        match e {
            SessionEvent::PeerJoined => Some(Event::PeerJoined),
            SessionEvent::WrongPassword { attempts_left } => Some(Event::WrongPasswordAttempt {
                attempts_left: Some(attempts_left),
            }),
            SessionEvent::AttemptFailed { code, message } => Some(Event::AttemptFailed {
                code: code.to_string(),
                message,
            }),
            // The receiver left before the devices connected: the sender is back to waiting,
            // not stuck on "connecting" for a peer that is gone.
            SessionEvent::PeerLeft => Some(Event::Waiting),
            SessionEvent::Connecting => Some(Event::Connecting),
            SessionEvent::RoomExtended { expires_at } => Some(Event::RoomExtended {
                expires_at: expires_at as i64,
            }),
            SessionEvent::Connected { .. } => None,
        }
    }
}

impl EventSink {
    /// A sink whose events reach this one wrapped as [`Event::Receiver`] for `receiver`.
    pub(crate) fn for_receiver(&self, receiver: u32) -> EventSink {
        let Some(parent) = self.0.clone() else {
            return EventSink::none();
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let wrapped = Event::Receiver {
                    receiver,
                    inner: Box::new(e),
                };
                if parent.send(wrapped).is_err() {
                    break;
                }
            }
        });
        EventSink::new(tx)
    }
}

impl From<mpsc::UnboundedSender<Event>> for EventSink {
    fn from(tx: mpsc::UnboundedSender<Event>) -> Self {
        Self::new(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_tagged_kebab() {
        let e = Event::Progress {
            file: "a.bin".into(),
            bytes_done: 1,
            total: 2,
            rate_bps: 3,
            eta_secs: Some(4),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"progress","file":"a.bin","bytes_done":1,"total":2,"rate_bps":3,"eta_secs":4}"#
        );
        let e = Event::Connected {
            path: "direct".into(),
            kind: PathKind::Host,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"connected","path":"direct","kind":"host"}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::WrongPasswordAttempt {
                attempts_left: None
            })
            .unwrap(),
            r#"{"event":"wrong-password-attempt","attempts_left":null}"#
        );
    }

    #[test]
    fn a_receivers_event_nests_the_one_receiver_shape() {
        let e = Event::Receiver {
            receiver: 2,
            inner: Box::new(Event::Done {
                bytes: 5,
                secs: 0.5,
                transfer_id: "t".into(),
                link_bytes: None,
            }),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"receiver","receiver":2,"inner":{"event":"done","bytes":5,"secs":0.5,"transfer_id":"t"}}"#
        );
    }

    #[test]
    fn a_receiver_leaving_before_connecting_puts_the_sender_back_to_waiting() {
        assert_eq!(
            Event::from_session(SessionEvent::PeerLeft),
            Some(Event::Waiting)
        );
        assert_eq!(
            Event::from_session(SessionEvent::PeerJoined),
            Some(Event::PeerJoined)
        );
        assert_eq!(
            Event::from_session(SessionEvent::WrongPassword { attempts_left: 2 }),
            Some(Event::WrongPasswordAttempt {
                attempts_left: Some(2)
            })
        );
        assert_eq!(
            Event::from_session(SessionEvent::AttemptFailed {
                code: "timeout",
                message: "went quiet".into()
            }),
            Some(Event::AttemptFailed {
                code: "timeout".into(),
                message: "went quiet".into()
            })
        );
        assert_eq!(
            Event::from_session(SessionEvent::Connecting),
            Some(Event::Connecting)
        );
    }
}
