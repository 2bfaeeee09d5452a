//! Relaying between the two sides of an ordinary room against Redis, and the host's
//! `handshake-failed` that counts a failed guess. In-memory counterpart: `rooms/relaying.rs`
//! (a shared room's host addressing one guest is in [`super::shared`]).

use ferry_proto::signal::ServerMsg;

use super::ops::{Counted, ok_or_refusal, role_name};
use super::{Peer, RedisError, RedisRooms, busy, num, refusal_of};
use crate::rooms::{ConnId, Notices, Refusal, locked_notice};

impl RedisRooms {
    /// Relay `frame` to the peer of `conn`. With the peer's seat known, one PUBLISH to its
    /// node; a confirmation tag (it moves the guess state) or an unknown peer takes the script,
    /// which checks both seats in Redis. The socket's task awaits each relay before reading
    /// its next message, so its messages reach Redis, and the peer, in order either way.
    pub(crate) async fn relay(
        &self,
        conn: ConnId,
        pake_confirm: Option<bool>,
        frame: &str,
    ) -> Result<(), Refusal> {
        let Some(m) = self.members().get(&conn).copied() else {
            return Err(refusal_of("not-member"));
        };
        if pake_confirm != Some(true)
            && let Peer::At { node, conn: to } = m.peer
        {
            let channel = format!("ferry:node:{node:016x}");
            let msg = format!("{to} {} F {}:{conn} {frame}", m.room.as_str(), self.node);
            let mut inv = self.scripts.publish.prepare_invoke();
            inv.arg(channel).arg(msg);
            let mut c = self.conn.clone();
            return self
                .timed(inv.invoke_async::<i64>(&mut c))
                .await
                .map(|_| ())
                .map_err(|_: RedisError| busy());
        }
        let pake = match pake_confirm {
            None => 0u8,
            Some(false) => 1,
            Some(true) => 2,
        };
        let seat = self.seat(conn);
        let guest = m.guest.map(|n| n.to_string()).unwrap_or_default();
        let r = self
            .script(
                &self.scripts.relay,
                &[
                    &m.room.as_str(),
                    &seat,
                    &role_name(m.role),
                    &pake,
                    &frame,
                    &guest,
                ],
            )
            .await
            .and_then(ok_or_refusal);
        match &r {
            Err(e) => self.dropped(conn, e),
            // Learn the peer only if nothing was heard since: an event is never older.
            Ok(v) => {
                if let Some(p) = v.get(1).and_then(|s| Peer::parse(s))
                    && let Some(me) = self.members().get_mut(&conn)
                    && me.room == m.room
                    && me.peer == Peer::Unknown
                {
                    me.peer = p;
                }
            }
        }
        r.map(|_| ())
    }

    /// Host only: the guest failed key confirmation.
    pub(crate) async fn handshake_failed(&self, conn: ConnId) -> Result<Counted<Notices>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .script(
                &self.scripts.failed,
                &[&room.as_str(), &seat, &self.limits.fail_limit, &""],
            )
            .await;
        let v = r?;
        // The guest may have been removed: relay by script until this node hears who is
        // there (its `P` event can trail this reply).
        if let Some(m) = self.members().get_mut(&conn)
            && m.room == room
        {
            m.peer = Peer::Unknown;
        }
        let attempts_left = num(&v, 1) as u32;
        let mut notices = vec![(conn, ServerMsg::HandshakeFailed { attempts_left })];
        if v.get(2).map(String::as_str) == Some("1") {
            notices.push((conn, locked_notice()));
        }
        Ok(Counted {
            value: notices,
            guesses: num(&v, 3),
        })
    }
}
