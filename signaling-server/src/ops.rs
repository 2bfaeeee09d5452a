//! The room operations of the socket and REST layers, on whichever registry this node uses:
//! its own ([`crate::rooms::Registry`] + SQLite) or the shared one in Redis.

use ferry_proto::RoomId;
use ferry_proto::signal::{Role, ServerMsg};

use crate::rooms::{Attached, ConnId, Notices, Refusal};
use crate::state::{AppState, now_ms, push};

impl AppState {
    /// Where a connection currently is.
    pub(crate) fn membership(&self, conn: ConnId) -> Option<(RoomId, Role)> {
        match self.redis() {
            Some(r) => r.members().get(&conn).map(|m| (m.room, m.role)),
            None => self.hub().rooms.membership(conn),
        }
    }

    pub(crate) async fn join(&self, conn: ConnId, room: &RoomId) -> Result<Attached, Refusal> {
        let r = match self.redis() {
            Some(r) => r.join(conn, room).await.map(|c| {
                self.count_guesses(c.guesses);
                c.value
            }),
            None => self.hub().rooms.join(conn, room, now_ms()),
        };
        r.map_err(|e| self.reject(e))
    }

    /// Seat `conn` as the host of `room`; the token has been verified.
    pub(crate) async fn attach_host(
        &self,
        conn: ConnId,
        room: &RoomId,
        v: u16,
    ) -> Result<Attached, Refusal> {
        // In memory the socket layer checks the version first (`is_shared`); in Redis the
        // attach script does, in the same step as the attach.
        let r = match self.redis() {
            Some(r) => r.attach_host(conn, room, v).await.map(|c| {
                self.count_guesses(c.guesses);
                c.value
            }),
            None => self.hub().rooms.attach_host(conn, room, now_ms()),
        };
        r.map_err(|e| self.reject(e))
    }

    /// Whether a guest could join `room` now (the REST check); its expiry.
    pub(crate) async fn check_joinable(&self, room: &RoomId) -> Result<u64, Refusal> {
        let r = match self.redis() {
            Some(r) => r.check_joinable(room).await,
            None => self.hub().rooms.check_joinable(room, now_ms()),
        };
        r.map_err(|e| self.reject(e))
    }

    /// Host only: a new lifetime from now; returns the new expiry.
    pub(crate) async fn extend(&self, conn: ConnId, ttl_secs: u64) -> Result<u64, Refusal> {
        let ttl = self.config().clamp_ttl(Some(ttl_secs)).as_millis() as u64;
        if let Some(r) = self.redis() {
            return r.extend(conn, ttl).await.map_err(|e| self.reject(e));
        }
        let exp = now_ms().saturating_add(ttl);
        let room = self
            .hub()
            .rooms
            .extend(conn, exp)
            .map_err(|e| self.reject(e))?;
        if let Err(e) = self.store().set_expiry(room, exp).await {
            tracing::error!(error = %e, "could not store a new expiry");
        }
        Ok(exp)
    }

    /// Host only: end the room now. Returns the room and the notices (the caller's included).
    pub(crate) async fn close(&self, conn: ConnId) -> Result<(RoomId, Notices), Refusal> {
        if let Some(r) = self.redis() {
            let c = r.close(conn).await.map_err(|e| self.reject(e))?;
            self.count_guesses(c.guesses);
            return Ok(c.value);
        }
        let closed = {
            let mut hub = self.hub();
            let closed = hub.rooms.close(conn, now_ms());
            self.sync_failures(&hub);
            closed
        };
        let (room, notices) = closed.map_err(|e| self.reject(e))?;
        if let Err(e) = self.store().delete(vec![room]).await {
            tracing::error!(error = %e, "could not delete a closed session");
        }
        Ok((room, notices))
    }

    /// Host only: the guest failed key confirmation.
    pub(crate) async fn handshake_failed(&self, conn: ConnId) -> Result<Notices, Refusal> {
        if let Some(r) = self.redis() {
            let c = r.handshake_failed(conn).await.map_err(|e| self.reject(e))?;
            self.count_guesses(c.guesses);
            return Ok(c.value);
        }
        let failed = {
            let mut hub = self.hub();
            let failed = hub.rooms.handshake_failed(conn);
            self.sync_failures(&hub);
            failed
        };
        failed.map_err(|e| self.reject(e))
    }

    /// Forward a relayed message to the other peer of `conn`, wherever it is.
    pub(crate) async fn relay(
        &self,
        conn: ConnId,
        kind: usize,
        pake_confirm: Option<bool>,
        out: ServerMsg,
    ) -> Result<(), Refusal> {
        if let Some(r) = self.redis() {
            // A shared room's guest: its relays reach the host addressed.
            let guest = r.members().get(&conn).and_then(|m| m.guest);
            let out = match guest {
                Some(guest) => ServerMsg::FromGuest {
                    guest,
                    msg: Box::new(out),
                },
                None => out,
            };
            r.relay(conn, pake_confirm, &out.to_json())
                .await
                .map_err(|e| self.reject(e))?;
            self.metrics().relayed(kind);
            return Ok(());
        }
        let mut hub = self.hub();
        let (to, guest) = hub
            .rooms
            .relay_route(conn, pake_confirm)
            .map_err(|e| self.reject(e))?;
        let out = match guest {
            Some(guest) => ServerMsg::FromGuest {
                guest,
                msg: Box::new(out),
            },
            None => out,
        };
        if let Some(h) = hub.conns.get(&to) {
            push(h, out.to_json());
            self.metrics().relayed(kind);
        }
        Ok(())
    }

    /// Whether `room` seats several guests (its host must speak signaling v3). Redis: the
    /// attach script checks that itself (see `attach_host`).
    pub(crate) fn is_shared(&self, room: &RoomId) -> bool {
        self.redis().is_none() && self.hub().rooms.is_shared(room)
    }

    /// Host of a shared room: forward a relay to its guest `guest`.
    pub(crate) async fn relay_to_guest(
        &self,
        conn: ConnId,
        guest: u32,
        kind: usize,
        pake_confirm: Option<bool>,
        out: ServerMsg,
    ) -> Result<(), Refusal> {
        if let Some(r) = self.redis() {
            r.relay_to_guest(conn, guest, pake_confirm, &out.to_json())
                .await
                .map_err(|e| self.reject(e))?;
            self.metrics().relayed(kind);
            return Ok(());
        }
        let mut hub = self.hub();
        let to = hub
            .rooms
            .relay_to_guest(conn, guest, pake_confirm)
            .map_err(|e| self.reject(e))?;
        if let Some(h) = hub.conns.get(&to) {
            push(h, out.to_json());
            self.metrics().relayed(kind);
        }
        Ok(())
    }

    /// Host of a shared room: guest `guest` failed key confirmation.
    pub(crate) async fn guest_failed(&self, conn: ConnId, guest: u32) -> Result<Notices, Refusal> {
        if let Some(r) = self.redis() {
            let c = r
                .guest_failed(conn, guest)
                .await
                .map_err(|e| self.reject(e))?;
            self.count_guesses(c.guesses);
            return Ok(c.value);
        }
        let mut hub = self.hub();
        let failed = hub.rooms.handshake_failed_for(conn, Some(guest));
        self.sync_failures(&hub);
        failed.map_err(|e| self.reject(e))
    }

    /// Host of a shared room: turn guest `guest` away.
    pub(crate) async fn remove_guest(&self, conn: ConnId, guest: u32) -> Result<Notices, Refusal> {
        if let Some(r) = self.redis() {
            let c = r
                .remove_guest(conn, guest)
                .await
                .map_err(|e| self.reject(e))?;
            self.count_guesses(c.guesses);
            return Ok(c.value);
        }
        let mut hub = self.hub();
        let removed = hub.rooms.remove_guest(conn, guest);
        self.sync_failures(&hub);
        removed.map_err(|e| self.reject(e))
    }
}
