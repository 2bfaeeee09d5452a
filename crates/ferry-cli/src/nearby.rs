//! Nearby devices on the command line: `ferry send` announces its room on the local network
//! (unless `--no-announce`), and `ferry receive --nearby` lists what is announced and joins
//! the room picked. What goes on the network is ferry-core's `nearby` module's business; this
//! file holds the flags, the list and the choice.

use std::io::{BufRead, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_core::{Announcer, Event, NearbyRoom};
use tokio::sync::mpsc;

/// `ferry send`'s announcement flags.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct AnnounceArgs {
    /// Do not announce the room to nearby devices on the local network. The announcement
    /// carries only the device name, the room id and the server, never the password or
    /// what is offered.
    #[arg(long, env = "FERRY_NO_ANNOUNCE", value_parser = clap::builder::BoolishValueParser::new())]
    no_announce: bool,
    /// The name nearby devices see (default: this machine's host name; control characters
    /// are dropped and it is cut to 32 characters).
    #[arg(long, env = "FERRY_DEVICE_NAME", value_name = "NAME")]
    device_name: Option<String>,
}

/// `ferry receive`'s nearby flags.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct NearbyArgs {
    /// List the rooms announced on the local network and join one (its password is still
    /// needed: --password or the prompt).
    #[arg(long)]
    pub(crate) nearby: bool,
    /// With --nearby: the room to join, by its number in the list or its device name,
    /// without asking.
    // `requires` is met by --nearby's default (false) too: the conflict refuses a room id.
    #[arg(
        long,
        requires = "nearby",
        conflicts_with = "ticket",
        value_name = "N|NAME"
    )]
    pick: Option<String>,
    /// With --nearby: how long to listen for announcements (3s, 10s, ...).
    #[arg(long, requires = "nearby", value_name = "TIME", default_value = "3s", value_parser = wait_time)]
    nearby_wait: Duration,
}

fn wait_time(s: &str) -> Result<Duration, String> {
    match ferry_core::parse_lifetime(s) {
        Ok(secs) if secs <= 60 => Ok(Duration::from_secs(secs)),
        Ok(_) => Err("listen at most 60s".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Passes `events` through to the printer and, once the room exists, announces it on the
/// local network until the send ends (the returned receiver closes then).
pub(crate) fn announce_while_open(
    mut events: mpsc::UnboundedReceiver<Event>,
    args: &AnnounceArgs,
    bind: &[String],
) -> mpsc::UnboundedReceiver<Event> {
    // `--bind` addresses: announce only where the transfer can be reached.
    let only_on: Vec<IpAddr> = bind
        .iter()
        .filter_map(|b| {
            b.parse::<SocketAddr>()
                .map(|a| a.ip())
                .or_else(|_| b.parse::<IpAddr>())
                .ok()
        })
        .collect();
    let (tx, rx) = mpsc::unbounded_channel();
    let name = (!args.no_announce).then(|| {
        args.device_name
            .clone()
            .unwrap_or_else(ferry_core::default_device_name)
    });
    tokio::spawn(async move {
        let mut announcer: Option<Announcer> = None;
        while let Some(e) = events.recv().await {
            if let (Some(name), Event::RoomCreated { room, server, .. }) = (&name, &e) {
                announcer = start(name, room, server, &only_on);
            }
            if tx.send(e).is_err() {
                break;
            }
        }
        // The goodbye goes out before the printer's channel closes and the process exits.
        drop(announcer);
    });
    rx
}

fn start(name: &str, room: &str, server: &str, only_on: &[IpAddr]) -> Option<Announcer> {
    let room = match room.parse() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("not announcing {room}: {e}");
            return None;
        }
    };
    let nearby = NearbyRoom::new(name, room, server);
    match Announcer::start(&nearby, only_on) {
        Ok(a) => {
            eprintln!(
                "Nearby:   announced as \"{}\" on the local network (--no-announce turns it off)",
                nearby.device
            );
            Some(a)
        }
        Err(e) => {
            eprintln!("ferry: {e}; nearby devices will not list this room");
            None
        }
    }
}

/// The message for an empty list: on a network that drops multicast, silence is all a
/// listener hears, so it says that may be why.
pub(crate) const NONE_FOUND: &str = "no nearby rooms found; multicast may be blocked on this network (or the sender used --no-announce)";

/// Lists the nearby rooms and returns the one chosen, or the exit code to end with.
pub(crate) async fn choose(args: &NearbyArgs) -> Result<NearbyRoom, i32> {
    eprintln!(
        "Looking for nearby rooms ({}s)...",
        args.nearby_wait.as_secs()
    );
    let rooms = match ferry_core::nearby_rooms(args.nearby_wait).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry: {e}");
            return Err(ferry_core::ErrorKind::RoomNotFound.exit_code());
        }
    };
    if rooms.is_empty() {
        eprintln!("ferry: {NONE_FOUND}");
        return Err(ferry_core::ErrorKind::RoomNotFound.exit_code());
    }
    eprint!("{}", list(&rooms));
    let answer = match &args.pick {
        Some(p) => p.clone(),
        None if std::io::stdin().is_terminal() => {
            eprint!("Join which room? [1-{}] ", rooms.len());
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            line.trim().to_string()
        }
        None => {
            eprintln!("ferry: choose a room with --pick N or --pick NAME");
            return Err(USAGE);
        }
    };
    match pick(&rooms, &answer) {
        Ok(r) => Ok(r.clone()),
        Err(why) => {
            eprintln!("ferry: {why}");
            Err(USAGE)
        }
    }
}

/// clap's exit status for a command line that cannot be acted on.
const USAGE: i32 = 2;

/// The numbered list a person picks from.
pub(crate) fn list(rooms: &[NearbyRoom]) -> String {
    let width = rooms
        .iter()
        .map(|r| r.device.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Nearby rooms:\n");
    for (i, r) in rooms.iter().enumerate() {
        out.push_str(&format!(
            "  {:>2}. {:<width$}  {}  {}\n",
            i + 1,
            ferry_core::escape_display(&r.device),
            r.room.display(),
            r.server
        ));
    }
    out
}

/// The room `answer` names: its number in the list, or its device name (ignoring case) when
/// exactly one room has it.
pub(crate) fn pick<'a>(rooms: &'a [NearbyRoom], answer: &str) -> Result<&'a NearbyRoom, String> {
    let answer = answer.trim();
    if let Ok(n) = answer.parse::<usize>() {
        return n
            .checked_sub(1)
            .and_then(|i| rooms.get(i))
            .ok_or_else(|| format!("no room number {n}: the list has 1 to {}", rooms.len()));
    }
    let matches: Vec<&NearbyRoom> = rooms
        .iter()
        .filter(|r| r.device.to_lowercase() == answer.to_lowercase())
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no nearby room from a device named {answer:?}")),
        _ => Err(format!(
            "{} rooms come from devices named {answer:?}; pick one by its number",
            matches.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms() -> Vec<NearbyRoom> {
        vec![
            NearbyRoom::new(
                "Ana's laptop",
                "AAAAAAAAAA".parse().unwrap(),
                "ws://10.0.0.2:1/ws",
            ),
            NearbyRoom::new("desk", "BBBBBBBBBB".parse().unwrap(), "ws://10.0.0.3:1/ws"),
            NearbyRoom::new("Desk", "CCCCCCCCCC".parse().unwrap(), "ws://10.0.0.4:1/ws"),
        ]
    }

    #[test]
    fn a_room_is_picked_by_number_or_by_a_name_only_one_has() {
        let r = rooms();
        assert_eq!(pick(&r, "1").unwrap().device, "Ana's laptop");
        assert_eq!(pick(&r, " 3 ").unwrap().room.as_str(), "CCCCCCCCCC");
        assert_eq!(
            pick(&r, "ana's LAPTOP").unwrap().room.as_str(),
            "AAAAAAAAAA"
        );
        assert!(pick(&r, "0").unwrap_err().contains("1 to 3"));
        assert!(pick(&r, "4").unwrap_err().contains("1 to 3"));
        assert!(pick(&r, "desk").unwrap_err().contains("by its number"));
        assert!(pick(&r, "phone").unwrap_err().contains("\"phone\""));
    }

    #[test]
    fn the_list_numbers_each_room_with_its_device_and_id() {
        let text = list(&rooms());
        assert!(
            text.contains(" 1. Ana's laptop  AAAAA-AAAAA  ws://10.0.0.2:1/ws"),
            "{text}"
        );
        assert!(text.contains(" 3. Desk"), "{text}");
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn the_listening_time_is_bounded() {
        assert_eq!(wait_time("3s"), Ok(Duration::from_secs(3)));
        assert!(wait_time("2m").is_err());
        assert!(wait_time("soon").is_err());
    }
}
