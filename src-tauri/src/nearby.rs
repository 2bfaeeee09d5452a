//! Nearby devices in the app: rooms this device hosts are announced on the local network
//! while they are open (unless Settings turn it off), and the Receive screen lists the rooms
//! announced around it. What goes on the network is ferry-core's `nearby` module.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_core::{Announcer, Event, NearbyRoom};
use tokio::sync::mpsc::{self, UnboundedSender};

use crate::commands::CmdError;
use crate::settings::Settings;

/// How long the Receive screen listens when it does not say.
const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// The longest it may ask for: the screen waits on the answer.
const MAX_WAIT: Duration = Duration::from_secs(15);

/// Events for the UI pass through; once the room exists it is announced, until the send
/// ends (the engine drops its sender) and the goodbye goes out.
pub(crate) fn announcing(
    settings: &Settings,
    bind: Option<&[String]>,
    ui: UnboundedSender<Event>,
) -> UnboundedSender<Event> {
    // FERRY_NO_ANNOUNCE: the test suite keeps every process to loopback (scripts/test.sh).
    if !settings.announce
        || env_says_no_announce(std::env::var("FERRY_NO_ANNOUNCE").ok().as_deref())
    {
        return ui;
    }
    let name = match settings.device_name.trim() {
        "" => ferry_core::default_device_name(),
        n => n.to_string(),
    };
    let only_on: Vec<IpAddr> = bind
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b.parse::<SocketAddr>().map(|a| a.ip()).ok())
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tauri::async_runtime::spawn(async move {
        let mut announcer: Option<Announcer> = None;
        while let Some(e) = rx.recv().await {
            if let Event::RoomCreated { room, server, .. } = &e
                && let Ok(room) = room.parse()
            {
                match Announcer::start(&NearbyRoom::new(&name, room, server.clone()), &only_on) {
                    Ok(a) => announcer = Some(a),
                    Err(e) => tracing::warn!("not announced to nearby devices: {e}"),
                }
            }
            if ui.send(e).is_err() {
                break;
            }
        }
        drop(announcer);
    });
    tx
}

/// The rooms announced on the local network, listening `wait_secs` (default 3 s).
#[tauri::command]
pub(crate) async fn nearby_rooms(wait_secs: Option<u64>) -> Result<Vec<NearbyRoom>, CmdError> {
    let wait = wait_secs
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WAIT)
        .min(MAX_WAIT);
    ferry_core::nearby_rooms(wait)
        .await
        .map_err(|e| CmdError::new("nearby", e.to_string()))
}

/// `FERRY_NO_ANNOUNCE` read as the CLI reads it: 1/true/yes/on turn announcing off.
fn env_says_no_announce(v: Option<&str>) -> bool {
    v.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off" | "n" | "f"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_switch_reads_like_the_cli_flag() {
        for yes in ["1", "true", "YES", "on"] {
            assert!(env_says_no_announce(Some(yes)), "{yes}");
        }
        for no in ["0", "false", "no", "off", ""] {
            assert!(!env_says_no_announce(Some(no)), "{no}");
        }
        assert!(!env_says_no_announce(None));
    }
}
