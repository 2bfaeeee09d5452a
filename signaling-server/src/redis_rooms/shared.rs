//! What only shared rooms (several guests at once) add against Redis: the host addressing
//! one guest by number (relay, failed handshake, turning it away). In-memory counterpart:
//! `rooms/shared.rs` (there a guest's failed handshake is `handshake_failed_for`, in
//! `rooms/relaying.rs`).

use ferry_proto::signal::{Role, ServerMsg};

use super::ops::Counted;
use super::{RedisRooms, num};
use crate::rooms::{ConnId, Notices, Refusal, locked_notice};

impl RedisRooms {
    /// Host of a shared room: relay `frame` to its guest `guest` (always by script: the host
    /// has no one peer to cache).
    pub(crate) async fn relay_to_guest(
        &self,
        conn: ConnId,
        guest: u32,
        pake_confirm: Option<bool>,
        frame: &str,
    ) -> Result<(), Refusal> {
        let room = self.hosted(conn)?;
        let pake = match pake_confirm {
            None => 0u8,
            Some(false) => 1,
            Some(true) => 2,
        };
        let seat = self.seat(conn);
        let r = self
            .member_script(
                conn,
                &self.scripts.relay,
                &[&room.as_str(), &seat, &"host", &pake, &frame, &guest],
            )
            .await;
        r.map(|_| ())
    }

    /// Host of a shared room: guest `guest` failed key confirmation.
    pub(crate) async fn guest_failed(
        &self,
        conn: ConnId,
        guest: u32,
    ) -> Result<Counted<Notices>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .member_script(
                conn,
                &self.scripts.failed,
                &[&room.as_str(), &seat, &self.limits.fail_limit, &guest],
            )
            .await;
        let v = r?;
        let attempts_left = num(&v, 1) as u32;
        let mut notices = vec![(
            conn,
            about(guest, ServerMsg::HandshakeFailed { attempts_left }),
        )];
        if v.get(2).map(String::as_str) == Some("1") {
            notices.push((conn, locked_notice()));
        }
        Ok(Counted {
            value: notices,
            guesses: num(&v, 3),
        })
    }

    /// Host of a shared room: turn guest `guest` away (it hears `room-full`).
    pub(crate) async fn remove_guest(
        &self,
        conn: ConnId,
        guest: u32,
    ) -> Result<Counted<Notices>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .member_script(
                conn,
                &self.scripts.kick,
                &[&room.as_str(), &seat, &guest, &self.limits.fail_limit],
            )
            .await;
        let v = r?;
        let counted = num(&v, 3);
        let mut notices = vec![(
            conn,
            about(guest, ServerMsg::PeerLeft { role: Role::Guest }),
        )];
        if counted > 0 {
            let attempts_left = num(&v, 1) as u32;
            notices.push((
                conn,
                about(guest, ServerMsg::HandshakeFailed { attempts_left }),
            ));
            if v.get(2).map(String::as_str) == Some("1") {
                notices.push((conn, locked_notice()));
            }
        }
        Ok(Counted {
            value: notices,
            guesses: counted,
        })
    }
}

/// `msg` about guest `guest`, as the host of a shared room hears it.
fn about(guest: u32, msg: ServerMsg) -> ServerMsg {
    ServerMsg::FromGuest {
        guest,
        msg: Box::new(msg),
    }
}
