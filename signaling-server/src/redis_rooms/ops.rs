//! Helpers every group of registry operations against Redis shares; the operations
//! themselves are split by concern as the in-memory registry's are (`rooms.rs` and `rooms/`):
//! [`super::seats`], [`super::relaying`], [`super::lifetime`] and [`super::shared`]. They keep
//! the shapes the socket layer already uses (`Attached`, `Notices`, `Refusal`). Notices for
//! other sockets are published by the scripts; what comes back here is only for the caller's
//! own socket. In-memory counterpart of these helpers: `rooms.rs` (`hosted_room`, `refuse`).

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role};

use super::{Member, RedisRooms, refusal_of};
use crate::rooms::{ConnId, Refusal};

pub(super) fn role_name(r: Role) -> &'static str {
    match r {
        Role::Host => "host",
        Role::Guest => "guest",
    }
}

pub(super) fn ok_or_refusal(v: Vec<String>) -> Result<Vec<String>, Refusal> {
    match v.first().map(String::as_str) {
        Some("ok") => Ok(v),
        Some(other) => Err(refusal_of(other)),
        None => Err(refusal_of("")),
    }
}

/// Outcome of a script that may have counted a failed guess.
pub(crate) struct Counted<T> {
    pub value: T,
    pub guesses: u64,
}

impl RedisRooms {
    /// The room `conn` hosts; a guest is refused.
    pub(super) fn hosted(&self, conn: ConnId) -> Result<RoomId, Refusal> {
        match self.members().get(&conn) {
            Some(Member {
                room,
                role: Role::Host,
                ..
            }) => Ok(*room),
            Some(_) => Err(Refusal {
                code: ErrorCode::Unauthorized,
                message: "only the host may do this",
            }),
            None => Err(Refusal {
                code: ErrorCode::NotInRoom,
                message: "not in a room",
            }),
        }
    }

    /// Run a room script for member `conn`: its refusal as a `Refusal`, and a member the
    /// script no longer finds in a room forgotten here too.
    pub(super) async fn member_script(
        &self,
        conn: ConnId,
        s: &redis::Script,
        args: &[&(dyn std::fmt::Display + Sync)],
    ) -> Result<Vec<String>, Refusal> {
        let r = self.script(s, args).await.and_then(ok_or_refusal);
        if let Err(e) = &r {
            self.dropped(conn, e);
        }
        r
    }

    /// A script said `conn` no longer holds its seat: forget it here too.
    pub(super) fn dropped(&self, conn: ConnId, r: &Refusal) {
        if r.message == "not in a room" {
            self.members().remove(&conn);
        }
    }
}
