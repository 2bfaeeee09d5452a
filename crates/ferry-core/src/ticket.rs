//! What a link or QR code carries to let someone join a room.
//!
//! `ferry://join/ABCDE-FGHJK?server=<urlencoded ws url>#<password>` for the native apps, and
//! `https://SERVER/j/ABCDE-FGHJK#<password>` where the signaling server also serves the
//! browser page (its socket is then `wss://SERVER/ws`). The password rides in the fragment,
//! which browsers never send to any server.

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

    /// The `https://SERVER/j/ROOM#password` link a browser opens, for a `wss://SERVER/ws`
    /// server (any path ending in `/ws`: the page sits beside it). A `ws://` server gives an
    /// `http://` link only when `plain_http` (loopback or a LAN, where no certificate is).
    pub fn web_url(&self, plain_http: bool) -> Option<String> {
        let server = Url::parse(&self.server).ok()?;
        let scheme = match server.scheme() {
            "wss" => "https",
            "ws" if plain_http => "http",
            _ => return None,
        };
        if server.query().is_some() || !server.username().is_empty() {
            return None;
        }
        let prefix = server.path().strip_suffix("/ws")?;
        let host = server.host_str()?;
        let port = server.port().map(|p| format!(":{p}")).unwrap_or_default();
        let mut url = format!("{scheme}://{host}{port}{prefix}/j/{}", self.room.display());
        if let Some(p) = &self.password {
            url.push('#');
            url.push_str(&component_encode(p.expose()));
        }
        Some(url)
    }

    /// Accepts a `ferry://join/...` link, an `https://SERVER/j/ROOM#password` link (also
    /// `http://`, as on a LAN), or a bare room id.
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
        if matches!(url.scheme(), "https" | "http") {
            return parse_web(&url);
        }
        if url.scheme() != SCHEME || url.host_str() != Some("join") {
            return Err(TicketError::Malformed(format!(
                "expected {SCHEME}://join/<room>"
            )));
        }
        let room = url.path().trim_start_matches('/').parse()?;
        Ok(JoinTicket {
            server: server_param(&url).unwrap_or_default(),
            room,
            password: password_of(&url)?,
        })
    }
}

/// `https://HOST[:PORT][/prefix]/j/ROOM[/]#password`: the socket is `wss://HOST[:PORT][/prefix]/ws`
/// unless the link names another with `?server=` (a page hosted apart from its server).
fn parse_web(url: &Url) -> Result<JoinTicket, TicketError> {
    let bad = || TicketError::Malformed("expected https://<server>/j/<room>".into());
    let path = url.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    let (prefix, room) = path.rsplit_once("/j/").ok_or_else(bad)?;
    if room.is_empty() || room.contains('/') {
        return Err(bad());
    }
    let room = percent_decode(room).map_err(|_| bad())?.parse()?;
    let server = match server_param(url) {
        Some(s) => s,
        None => {
            let host = url.host_str().ok_or_else(bad)?;
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let ws = if url.scheme() == "https" { "wss" } else { "ws" };
            format!("{ws}://{host}{port}{prefix}/ws")
        }
    };
    Ok(JoinTicket {
        server,
        room,
        password: password_of(url)?,
    })
}

fn server_param(url: &Url) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == "server")
        .map(|(_, v)| v.into_owned())
}

fn password_of(url: &Url) -> Result<Option<Password>, TicketError> {
    Ok(url
        .fragment()
        .map(|f| percent_decode(f).map_err(|_| TicketError::Malformed("password encoding".into())))
        .transpose()?
        .filter(|p| !p.is_empty())
        .map(Password::new))
}

/// What JavaScript's `encodeURIComponent` gives, so the page's `decodeURIComponent` reads
/// back any password (a bare `%` in a fragment would make it throw).
fn component_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

    fn ticket(server: &str, password: Option<&str>) -> JoinTicket {
        JoinTicket {
            server: server.into(),
            room: room(),
            password: password.map(Password::new),
        }
    }

    #[test]
    fn web_link_for_a_tls_server_and_back() {
        let t = ticket(
            "wss://ferry.example/ws",
            Some("gladly-wildly brave 50%#?/é"),
        );
        let url = t.web_url(false).unwrap();
        assert_eq!(
            url,
            "https://ferry.example/j/ABCDE-FGHJK#gladly-wildly%20brave%2050%25%23%3F%2F%C3%A9"
        );
        assert_eq!(JoinTicket::parse(&url).unwrap(), t);
        // A port and a path prefix ride along, both ways.
        let t = ticket("wss://ferry.example:8443/signal/ws", Some("pw"));
        let url = t.web_url(false).unwrap();
        assert_eq!(url, "https://ferry.example:8443/signal/j/ABCDE-FGHJK#pw");
        assert_eq!(JoinTicket::parse(&url).unwrap(), t);
    }

    #[test]
    fn plain_http_links_only_when_asked() {
        let t = ticket("ws://127.0.0.1:8080/ws", Some("pw"));
        assert_eq!(t.web_url(false), None);
        let url = t.web_url(true).unwrap();
        assert_eq!(url, "http://127.0.0.1:8080/j/ABCDE-FGHJK#pw");
        assert_eq!(JoinTicket::parse(&url).unwrap(), t);
        let v6 = ticket("ws://[::1]:9/ws", None);
        assert_eq!(JoinTicket::parse(&v6.web_url(true).unwrap()).unwrap(), v6);
        // A server the page cannot sit beside has no web link.
        assert_eq!(ticket("wss://x.example/other", None).web_url(true), None);
        assert_eq!(ticket("", None).web_url(true), None);
    }

    #[test]
    fn web_links_as_people_paste_them() {
        let t = JoinTicket::parse(" https://ferry.example/j/abcde-fghjk/#pw ").unwrap();
        assert_eq!(t, ticket("wss://ferry.example/ws", Some("pw")));
        // The page hosted apart from its server names the server.
        let t = JoinTicket::parse(
            "https://app.example/j/ABCDEFGHJK?server=wss%3A%2F%2Fsignal.example%2Fws#pw",
        )
        .unwrap();
        assert_eq!(t, ticket("wss://signal.example/ws", Some("pw")));
        // No fragment: the password is asked for.
        let t = JoinTicket::parse("https://ferry.example/j/ABCDE-FGHJK").unwrap();
        assert!(t.password.is_none());
        assert!(JoinTicket::parse("https://ferry.example/").is_err());
        assert!(JoinTicket::parse("https://ferry.example/j/").is_err());
        assert!(JoinTicket::parse("https://ferry.example/j/ABCDE-FGHJK/x").is_err());
        assert!(matches!(
            JoinTicket::parse("https://ferry.example/j/nope"),
            Err(TicketError::Room(_))
        ));
    }

    #[test]
    fn rejects_other_links() {
        assert!(JoinTicket::parse("https://join/ABCDE-FGHJK").is_err());
        assert!(JoinTicket::parse("ftp://x/j/ABCDE-FGHJK").is_err());
        assert!(JoinTicket::parse("ferry://other/ABCDE-FGHJK").is_err());
        assert!(JoinTicket::parse("ferry://join/nope").is_err());
        assert!(JoinTicket::parse("ABC").is_err());
    }
}
