//! A room's lifetime against Redis: the host closes or extends it, and the sweep asks Redis
//! which of this node's rooms have ended (Redis expires the room key and keeps the tombstone).
//! In-memory counterpart: `rooms/lifetime.rs`.

use ferry_proto::RoomId;
use ferry_proto::signal::{Role, ServerMsg};

use super::ops::Counted;
use super::{Member, RedisRooms, num};
use crate::rooms::{ConnId, Notices, Refusal};

impl RedisRooms {
    /// Host only: end the room now.
    pub(crate) async fn close(&self, conn: ConnId) -> Result<Counted<(RoomId, Notices)>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .member_script(conn, &self.scripts.close, &[&room.as_str(), &seat])
            .await;
        let v = r?;
        self.members().remove(&conn);
        Ok(Counted {
            value: (room, vec![(conn, ServerMsg::RoomClosed)]),
            guesses: num(&v, 1),
        })
    }

    /// Host only: a new lifetime from now. Returns the new expiry.
    pub(crate) async fn extend(&self, conn: ConnId, ttl_ms: u64) -> Result<u64, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let l = &self.limits;
        let r = self
            .member_script(
                conn,
                &self.scripts.extend,
                &[&room.as_str(), &seat, &ttl_ms, &l.tomb_ms, &l.grace_ms],
            )
            .await;
        let v = r?;
        if let Some(m) = self.members().get_mut(&conn) {
            m.deadline_ms = num(&v, 2);
        }
        Ok(num(&v, 1))
    }

    /// Rooms of this node's sockets whose known end has passed: ask Redis whether they did
    /// end (the key is gone) and return the sockets to tell `room-expired`. Sockets whose seat
    /// went to someone else are forgotten quietly.
    pub(crate) async fn expire_due(&self, now_ms: u64) -> Notices {
        const BATCH: usize = 1024;
        let due: Vec<(ConnId, Member)> = self
            .members()
            .iter()
            .filter(|(_, m)| m.deadline_ms <= now_ms)
            .take(BATCH)
            .map(|(c, m)| (*c, *m))
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        let mut p = redis::pipe();
        for (_, m) in &due {
            // A shared room's guest holds `g:<n>`, not `gs`.
            let guest_seat = m
                .guest
                .map_or_else(|| "gs".to_string(), |n| format!("g:{n}"));
            p.cmd("HMGET")
                .arg(format!("ferry:room:{}", m.room.as_str()))
                .arg("d")
                .arg("hs")
                .arg(guest_seat);
        }
        let mut c = self.conn.clone();
        type Row = (Option<u64>, Option<String>, Option<String>);
        let Ok(rows) = self.timed(p.query_async::<Vec<Row>>(&mut c)).await else {
            return Vec::new();
        };
        let mut notices = Vec::new();
        let mut members = self.members();
        for ((conn, m), (d, hs, gs)) in due.into_iter().zip(rows) {
            // Only if it is still the same membership this pass looked at.
            let Some(cur) = members.get_mut(&conn) else {
                continue;
            };
            if cur.room != m.room {
                continue;
            }
            let held = match m.role {
                Role::Host => hs,
                Role::Guest => gs,
            };
            match d {
                None => {
                    members.remove(&conn);
                    notices.push((conn, ServerMsg::RoomExpired { room: m.room }));
                }
                Some(_) if held.as_deref() != Some(self.seat(conn).as_str()) => {
                    members.remove(&conn);
                }
                // Not ended by Redis's clock yet (clocks differ a little): look again then.
                Some(d) => cur.deadline_ms = d.max(now_ms.saturating_add(50)),
            }
        }
        notices
    }
}
