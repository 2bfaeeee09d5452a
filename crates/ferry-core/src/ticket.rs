//! What a link or QR code carries to let someone join a room.
//!
//! `ferry://join/ABCDE-FGHJK?server=<urlencoded ws url>#<password>`. The password rides in
//! the fragment so that, if the link is ever opened through a web page, browsers do not send
//! it to any server.

use ferry_proto::RoomId;
use url::Url;

use crate::password::Password;

/// What a receiver needs to join: a `ferry://join/...` link, or a bare room id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTicket {
    /// Signaling server (`ws(s)://host:port/ws`); empty when only a room id was given.
    pub server: String,
    /// The room.
    pub room: RoomId,
    /// The password, when the link carries it.
    pub password: Option<Password>,
}

/// Why a ticket could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Neither a `ferry://join/...` link nor a room id.
    #[error("not a ferry link or room id: {0}")]
    Malformed(String),
    /// The room id in it is not one.
    #[error("bad room id: {0}")]
    Room(#[from] ferry_proto::room::RoomIdError),
}

/// The URL scheme of Ferry links.
pub(crate) const SCHEME: &str = "ferry";

impl JoinTicket {
    /// The `ferry://join/ROOM?server=...#password` link for this ticket.
    pub fn to_url(&self) -> String {
        // `Url` does the percent-encoding of the query and fragment.
        let base = format!("{SCHEME}://join/{}", self.room.display());
        let Ok(mut url) = Url::parse(&base) else {
            return base;
        };
        if !self.server.is_empty() {
            url.query_pairs_mut().append_pair("server", &self.server);
        }
        if let Some(p) = &self.password {
            url.set_fragment(Some(p.expose()));
        }
        url.to_string()
    }

    /// Accepts a `ferry://join/...` link or a bare room id.
    pub fn parse(s: &str) -> Result<JoinTicket, TicketError> {
        let s = s.trim();
        if !s.contains("://") {
            return Ok(JoinTicket {
                server: String::new(),
                room: s.parse()?,
                password: None,
            });
        }
        let url = Url::parse(s).map_err(|e| TicketError::Malformed(e.to_string()))?;
        if url.scheme() != SCHEME || url.host_str() != Some("join") {
            return Err(TicketError::Malformed(format!(
                "expected {SCHEME}://join/<room>"
            )));
        }
        let room = url.path().trim_start_matches('/').parse()?;
        let server = url
            .query_pairs()
            .find(|(k, _)| k == "server")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let password = url
            .fragment()
            .map(|f| {
                percent_decode(f).map_err(|_| TicketError::Malformed("password encoding".into()))
            })
            .transpose()?
            .filter(|p| !p.is_empty())
            .map(Password::new);
        Ok(JoinTicket {
            server,
            room,
            password,
        })
    }
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        "ABCDE-FGHJK".parse().unwrap()
    }

    #[test]
    fn url_roundtrip_with_password_in_fragment() {
        let t = JoinTicket {
            server: "wss://example.invalid:8443/ws".into(),
            room: room(),
            password: Some(Password::new("gladly-wildly-brave otter#%")),
        };
        let url = t.to_url();
        assert!(
            url.starts_with("ferry://join/ABCDE-FGHJK?server=wss%3A%2F%2F"),
            "{url}"
        );
        let (before, frag) = url.split_once('#').unwrap();
        assert!(!before.contains("otter"));
        assert!(frag.contains("otter"));
        assert_eq!(JoinTicket::parse(&url).unwrap(), t);
    }

    #[test]
    fn bare_room_and_no_password() {
        let t = JoinTicket::parse(" abcde fghjk ").unwrap();
        assert_eq!(t.room, room());
        assert!(t.server.is_empty() && t.password.is_none());
        let t2 = JoinTicket {
            server: String::new(),
            room: room(),
            password: None,
        };
        assert_eq!(JoinTicket::parse(&t2.to_url()).unwrap(), t2);
    }

    #[test]
    fn rejects_other_links() {
        assert!(JoinTicket::parse("https://join/ABCDE-FGHJK").is_err());
        assert!(JoinTicket::parse("ferry://other/ABCDE-FGHJK").is_err());
        assert!(JoinTicket::parse("ferry://join/nope").is_err());
        assert!(JoinTicket::parse("ABC").is_err());
    }
}
