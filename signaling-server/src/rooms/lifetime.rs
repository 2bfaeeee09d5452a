//! A room's lifetime: the host extends or closes it, the sweep expires it (or reaps it after
//! its host has been gone for the grace period), and a tombstone remembers it for a while so
//! a late join hears `room-expired` rather than `room-not-found`.

use ferry_proto::RoomId;
use ferry_proto::signal::ServerMsg;

use super::{ConnId, Notices, Refusal, Registry};

impl Registry {
    /// Host only: set a new expiry (already clamped by the caller). Returns the room for the store.
    pub fn extend(&mut self, conn: ConnId, expires_at_ms: u64) -> Result<RoomId, Refusal> {
        let (room, r) = self.hosted_room(conn)?;
        r.rec.expires_at_ms = expires_at_ms;
        Ok(room)
    }

    /// Host only: end the room now. Both peers get `room-closed` (the host's is the acknowledgement).
    pub fn close(&mut self, conn: ConnId, now_ms: u64) -> Result<(RoomId, Notices), Refusal> {
        let (room, _) = self.hosted_room(conn)?;
        let notices = self.remove_room(&room, now_ms, |_| ServerMsg::RoomClosed);
        Ok((room, notices))
    }

    /// Remove every room whose lifetime has ended, or whose host has been gone longer than the
    /// grace period; tell its peers. Also forgets old tombstones. Returns the removed room ids
    /// (for the store) and the notices.
    pub fn expire_due(&mut self, now_ms: u64) -> (Vec<RoomId>, Notices) {
        let grace = self.host_grace_ms;
        let due: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| {
                r.rec.expires_at_ms <= now_ms
                    || r.host_gone_since
                        .is_some_and(|t| now_ms.saturating_sub(t) >= grace)
            })
            .map(|(id, _)| *id)
            .collect();
        let mut notices = Vec::new();
        for room in &due {
            notices.extend(self.remove_room(room, now_ms, |r| ServerMsg::RoomExpired { room: *r }));
        }
        let ttl = self.tombstone_ttl_ms;
        self.tombstones
            .retain(|_, ended| now_ms.saturating_sub(*ended) < ttl);
        (due, notices)
    }

    /// Tombstones are bounded so a create/close flood cannot grow them without limit; past
    /// the bound a late join gets `room-not-found` instead of `room-expired`.
    fn max_tombstones(&self) -> usize {
        self.max_rooms.saturating_mul(10).max(1024)
    }

    fn remove_room(
        &mut self,
        room: &RoomId,
        now_ms: u64,
        msg: impl Fn(&RoomId) -> ServerMsg,
    ) -> Notices {
        let mut notices = Vec::new();
        if let Some(mut r) = self.rooms.remove(room) {
            for c in r.host.into_iter().chain(r.guests.iter().map(|s| s.conn)) {
                self.members.remove(&c);
                notices.push((c, msg(room)));
            }
            // The guests' runs end with the room; an unanswered tag is still a failed guess
            // (for the count; the room that would lock is gone).
            for seat in &mut r.guests {
                if seat.guess.ended() {
                    self.guesses_counted += 1;
                }
            }
            if let Some(o) = r.owner {
                self.owned.give_back(o);
            }
            if self.tombstones.len() < self.max_tombstones() {
                self.tombstones.insert(*room, now_ms);
            }
        }
        notices
    }
}
