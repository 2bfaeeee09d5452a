//! Nearby devices: a sending device announces its room on the local network over DNS-SD
//! (multicast DNS), and a receiver lists the rooms announced around it.
//!
//! An announcement carries three things: the device name the user chose to show, the room
//! id and the signaling server's URL. Never the password, never what is offered: file names
//! and sizes are sealed under the room key as before, so they are seen only after the
//! password. Joining an announced room still runs the PAKE with the password the person
//! types, so a stranger on the same network learns a device name and a room id, no more.
//!
//! The record shape (TXT build and parse) and the name sanitising are plain code, tested
//! without sockets; [`Announcer`] and [`browse`] are the edge that touches the network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferry_proto::RoomId;
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::Serialize;

use crate::fsio::is_invisible;
use crate::ticket::JoinTicket;

/// The DNS-SD service type Ferry rooms are announced under.
pub(crate) const SERVICE_TYPE: &str = "_ferry._udp.local.";
/// A device name is cut to this many characters (and [`DEVICE_NAME_MAX_BYTES`] bytes), so
/// the instance label "NAME (ROOM)" stays inside DNS's 63-byte label.
pub const DEVICE_NAME_MAX_CHARS: usize = 32;
const DEVICE_NAME_MAX_BYTES: usize = 40;
/// What a device is called when the user's name has nothing showable left.
const FALLBACK_NAME: &str = "Ferry device";
/// A server URL longer than this is not one a sender would announce; it also keeps the TXT
/// string under its 255-byte limit.
const SERVER_MAX_BYTES: usize = 200;
/// The record version this build writes and reads; a later format takes a new number, and
/// rooms announced in it are skipped rather than misread.
const TXT_VERSION: &str = "1";
/// How long a stopping announcer waits for its goodbye packet to go out.
const GOODBYE_WAIT: Duration = Duration::from_millis(250);

/// Why announcing or listing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NearbyError {
    /// Multicast DNS could not start on this device (no usable interface, port refused).
    #[error("cannot use the local network for nearby devices: {0}")]
    Start(String),
    /// The room could not be announced.
    #[error("cannot announce the room on the local network: {0}")]
    Announce(String),
    /// A record heard on the network is not a Ferry room this build reads.
    #[error("not a Ferry room announcement: {0}")]
    BadRecord(&'static str),
}

/// A room announced on the local network: what the announcement carries, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearbyRoom {
    /// The device name the sender chose to show (sanitised on both ends).
    pub device: String,
    /// The room to join.
    pub room: RoomId,
    /// The signaling server (`ws(s)://host:port/ws`) the room lives on.
    pub server: String,
}

impl NearbyRoom {
    /// What a sender announces; `device` is sanitised here, so a caller cannot forget to.
    pub fn new(device: &str, room: RoomId, server: impl Into<String>) -> Self {
        NearbyRoom {
            device: sanitize_device_name(device),
            room,
            server: server.into(),
        }
    }

    /// The TXT record's key/value pairs.
    pub fn txt(&self) -> Vec<(&'static str, String)> {
        vec![
            ("v", TXT_VERSION.to_string()),
            ("dev", self.device.clone()),
            ("room", self.room.as_str().to_string()),
            ("srv", self.server.clone()),
        ]
    }

    /// Reads a TXT record heard on the network. Anyone on the LAN can announce anything, so
    /// every field is checked: the version, a room id that parses, a `ws`/`wss` URL of
    /// bounded size, and a device name sanitised as the sender's own would be.
    pub fn from_txt<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, NearbyError> {
        if get("v") != Some(TXT_VERSION) {
            return Err(NearbyError::BadRecord("unknown record version"));
        }
        let room: RoomId = get("room")
            .ok_or(NearbyError::BadRecord("no room"))?
            .parse()
            .map_err(|_| NearbyError::BadRecord("bad room id"))?;
        let server = get("srv").ok_or(NearbyError::BadRecord("no server"))?;
        if !valid_server(server) {
            return Err(NearbyError::BadRecord("bad server URL"));
        }
        Ok(NearbyRoom::new(get("dev").unwrap_or(""), room, server))
    }

    /// The instance name on the network: unique per room, readable in generic DNS-SD
    /// browsers.
    pub fn instance_name(&self) -> String {
        format!("{} ({})", self.device, self.room.display())
    }

    /// What `receive` takes to join this room (the password is still the person's to give).
    pub fn ticket(&self) -> JoinTicket {
        JoinTicket {
            server: self.server.clone(),
            room: self.room,
            password: None,
        }
    }
}

fn valid_server(s: &str) -> bool {
    if s.len() > SERVER_MAX_BYTES || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    url::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "ws" | "wss") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// A device name as it may be announced and shown: control and invisible characters
/// dropped (nothing in it can steer a terminal or reorder what is shown), whitespace runs
/// made one space, at most [`DEVICE_NAME_MAX_CHARS`] characters; "Ferry device" when
/// nothing is left.
pub fn sanitize_device_name(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut pending_space = false;
    for ch in raw.chars() {
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if ch.is_control() || is_invisible(ch) {
            continue;
        }
        let extra = usize::from(pending_space);
        if chars + 1 + extra > DEVICE_NAME_MAX_CHARS
            || out.len() + ch.len_utf8() + extra > DEVICE_NAME_MAX_BYTES
        {
            break;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        out.push(ch);
        chars += 1;
    }
    if out.is_empty() {
        FALLBACK_NAME.to_string()
    } else {
        out
    }
}

/// The name shown by default: this machine's host name, without its domain.
pub fn default_device_name() -> String {
    let raw = gethostname::gethostname().to_string_lossy().into_owned();
    let short = raw.split('.').next().unwrap_or("");
    sanitize_device_name(short)
}

/// A room being announced; dropping it (or [`stop`](Self::stop)) says goodbye on the
/// network and stops the multicast DNS responder.
pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("fullname", &self.fullname)
            .finish()
    }
}

impl Announcer {
    /// Starts announcing `room` on every local interface that does multicast, or, when
    /// `only_on` names addresses (the ones the transfer is bound to), on the interfaces
    /// that carry them: a device that cannot be reached elsewhere is not announced there.
    pub fn start(room: &NearbyRoom, only_on: &[IpAddr]) -> Result<Self, NearbyError> {
        let daemon = ServiceDaemon::new().map_err(|e| NearbyError::Start(e.to_string()))?;
        let only: Vec<IfKind> = only_on
            .iter()
            .filter(|ip| !ip.is_unspecified())
            .map(|ip| IfKind::Addr(*ip))
            .collect();
        if !only.is_empty() && only.len() == only_on.len() {
            daemon
                .disable_interface(IfKind::All)
                .and_then(|()| daemon.enable_interface(only.clone()))
                .map_err(|e| NearbyError::Start(e.to_string()))?;
        }
        // The host record names the room, not the machine: the device name the user chose
        // is all that should identify it, so the real host name stays out of the packets.
        let host = format!("ferry-{}.local.", room.room.as_str().to_ascii_lowercase());
        let port = url::Url::parse(&room.server)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(0);
        let mut info = ServiceInfo::new(
            SERVICE_TYPE,
            &room.instance_name(),
            &host,
            "",
            port,
            &room.txt()[..],
        )
        .map_err(|e| NearbyError::Announce(e.to_string()))?
        .enable_addr_auto();
        if !only.is_empty() && only.len() == only_on.len() {
            info.set_interfaces(only);
        }
        let fullname = info.get_fullname().to_string();
        daemon
            .register(info)
            .map_err(|e| NearbyError::Announce(e.to_string()))?;
        tracing::debug!(%fullname, "announcing the room on the local network");
        Ok(Announcer { daemon, fullname })
    }

    /// Says goodbye on the network and stops announcing.
    pub fn stop(self) {
        // Drop does it.
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        // The goodbye tells listeners the room is gone; a bounded wait lets it leave before
        // the responder thread is told to exit.
        if let Ok(rx) = self.daemon.unregister(&self.fullname) {
            let _ = rx.recv_timeout(GOODBYE_WAIT);
        }
        let _ = self.daemon.shutdown();
    }
}

/// Lists the rooms announced on the local network, listening for `wait`. An empty list
/// means none answered in that time, which on a network that drops multicast is all one
/// can know.
pub async fn browse(wait: Duration) -> Result<Vec<NearbyRoom>, NearbyError> {
    tokio::task::spawn_blocking(move || browse_blocking(wait))
        .await
        .map_err(|e| NearbyError::Start(e.to_string()))?
}

fn browse_blocking(wait: Duration) -> Result<Vec<NearbyRoom>, NearbyError> {
    let daemon = ServiceDaemon::new().map_err(|e| NearbyError::Start(e.to_string()))?;
    let events = daemon
        .browse(SERVICE_TYPE)
        .map_err(|e| NearbyError::Start(e.to_string()))?;
    let deadline = Instant::now() + wait;
    let mut found: BTreeMap<String, NearbyRoom> = BTreeMap::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(s)) => {
                match NearbyRoom::from_txt(|k| s.get_property_val_str(k)) {
                    Ok(room) => {
                        found.insert(s.get_fullname().to_string(), room);
                    }
                    Err(e) => tracing::debug!(name = %s.get_fullname(), "skipped: {e}"),
                }
            }
            Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                found.remove(&fullname);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    let _ = daemon.shutdown();
    Ok(collect(found.into_values()))
}

/// One entry per room (a room heard on two interfaces, or under a renamed instance, is
/// still one), in a stable order: by device name, then room.
fn collect(rooms: impl Iterator<Item = NearbyRoom>) -> Vec<NearbyRoom> {
    let mut by_room: BTreeMap<RoomId, NearbyRoom> = BTreeMap::new();
    for r in rooms {
        by_room.insert(r.room, r);
    }
    let mut out: Vec<NearbyRoom> = by_room.into_values().collect();
    out.sort_by(|a, b| a.device.cmp(&b.device).then(a.room.cmp(&b.room)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn room(s: &str) -> RoomId {
        s.parse().unwrap()
    }

    fn lookup<'a>(map: &'a HashMap<&'static str, String>) -> impl Fn(&str) -> Option<&'a str> {
        |k| map.get(k).map(String::as_str)
    }

    #[test]
    fn a_record_carries_the_name_room_and_server_and_nothing_else() {
        let r = NearbyRoom::new("Ana's laptop", room("ABCDE-FGHJK"), "ws://10.0.0.2:9000/ws");
        let txt = r.txt();
        let keys: Vec<&str> = txt.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["v", "dev", "room", "srv"]);
        let map: HashMap<_, _> = txt.into_iter().collect();
        assert_eq!(NearbyRoom::from_txt(lookup(&map)), Ok(r.clone()));
        assert_eq!(r.instance_name(), "Ana's laptop (ABCDE-FGHJK)");
        assert!(r.instance_name().len() <= 63);
        assert_eq!(r.ticket().room, r.room);
        assert!(r.ticket().password.is_none());
        // Every TXT string fits its length byte, with the longest name and server allowed.
        let long = NearbyRoom::new(
            &"é".repeat(99),
            room("ABCDEFGHJK"),
            "ws://".to_string() + &"h".repeat(190),
        );
        for (k, v) in long.txt() {
            assert!(k.len() + 1 + v.len() <= 255, "{k}");
        }
        assert!(long.instance_name().len() <= 63, "{}", long.instance_name());
    }

    #[test]
    fn records_heard_from_others_are_checked_field_by_field() {
        let good: HashMap<&'static str, String> = [
            ("v", "1"),
            ("dev", "x"),
            ("room", "ABCDEFGHJK"),
            ("srv", "wss://relay.example/ws"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        assert!(NearbyRoom::from_txt(lookup(&good)).is_ok());
        let cases: [(&str, Option<&str>, &str); 9] = [
            ("v", Some("2"), "unknown record version"),
            ("v", None, "unknown record version"),
            ("room", None, "no room"),
            ("room", Some("not-a-room"), "bad room id"),
            ("srv", None, "no server"),
            ("srv", Some("http://h/ws"), "bad server URL"),
            ("srv", Some("ws://h/ws\u{1b}[2J"), "bad server URL"),
            ("srv", Some("ws://[::1/ws"), "bad server URL"),
            (
                "srv",
                Some(&*format!("ws://{}/ws", "h".repeat(300))),
                "bad server URL",
            ),
        ];
        for (key, value, why) in cases {
            let mut m = good.clone();
            match value {
                Some(v) => m.insert(key, v.to_string()),
                None => m.remove(key),
            };
            assert_eq!(
                NearbyRoom::from_txt(lookup(&m)),
                Err(NearbyError::BadRecord(why)),
                "{key}={value:?}"
            );
        }
        // A hostile device name is cleaned as the sender's own would be.
        let mut m = good.clone();
        m.insert("dev", "evil\u{1b}[2J\u{202e}name\n\tx".into());
        assert_eq!(
            NearbyRoom::from_txt(lookup(&m)).unwrap().device,
            "evil[2Jname x"
        );
        m.remove("dev");
        assert_eq!(
            NearbyRoom::from_txt(lookup(&m)).unwrap().device,
            "Ferry device"
        );
    }

    #[test]
    fn device_names_lose_control_characters_and_are_bounded() {
        assert_eq!(sanitize_device_name("  Ana's   laptop \n"), "Ana's laptop");
        assert_eq!(sanitize_device_name("a\u{0}b\u{7f}c\u{9b}d"), "abcd");
        assert_eq!(
            sanitize_device_name("pay\u{202e}fdp.exe\u{200b}"),
            "payfdp.exe"
        );
        assert_eq!(sanitize_device_name("\u{1b}\u{7}\r\n"), "Ferry device");
        assert_eq!(sanitize_device_name(""), "Ferry device");
        let long = sanitize_device_name(&"x".repeat(500));
        assert_eq!(long.chars().count(), DEVICE_NAME_MAX_CHARS);
        // Multi-byte names stop at a character boundary within the byte bound.
        let wide = sanitize_device_name(&"日本".repeat(50));
        assert!(wide.len() <= DEVICE_NAME_MAX_BYTES, "{}", wide.len());
        assert_eq!(wide.chars().count(), DEVICE_NAME_MAX_BYTES / 3);
        // A space is never the last character kept.
        let spaced = sanitize_device_name(&format!("{} tail", "y".repeat(DEVICE_NAME_MAX_CHARS)));
        assert_eq!(spaced, "y".repeat(DEVICE_NAME_MAX_CHARS));
        assert!(!default_device_name().is_empty());
        assert!(!default_device_name().contains('.'));
    }

    #[test]
    fn a_room_heard_twice_is_listed_once_in_name_order() {
        let a = NearbyRoom::new("b-dev", room("AAAAAAAAAA"), "ws://h:1/ws");
        let b = NearbyRoom::new("a-dev", room("BBBBBBBBBB"), "ws://h:1/ws");
        let rooms = collect([a.clone(), b.clone(), a.clone()].into_iter());
        assert_eq!(rooms, vec![b, a]);
    }
}
