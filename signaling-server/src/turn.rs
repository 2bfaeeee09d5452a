//! ICE servers handed to clients: plain STUN URLs plus, when configured, TURN credentials
//! from the TURN REST API scheme coturn implements with `use-auth-secret`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_proto::RoomId;
use ferry_proto::signal::IceServer;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::config::Config;

/// username = `<expiry-unix>:<room>`, credential = base64(HMAC-SHA1(secret, username)).
pub fn turn_credential(secret: &str, expiry_unix: u64, room: &RoomId) -> (String, String) {
    let username = format!("{expiry_unix}:{}", room.as_str());
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return (username, String::new()),
    };
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The ICE server list for a peer of `room`, as of `now_unix`.
pub fn ice_servers(config: &Config, room: &RoomId, now_unix: u64) -> Vec<IceServer> {
    let mut out = Vec::new();
    if !config.stun_urls.is_empty() {
        out.push(IceServer {
            urls: config.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if let Some(t) = &config.turn {
        let expiry = now_unix.saturating_add(t.ttl.as_secs());
        let (username, credential) = turn_credential(&t.secret, expiry, room);
        out.push(IceServer {
            urls: t.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TurnConfig;
    use std::time::Duration;

    #[test]
    fn credential_matches_an_independent_hmac() {
        // Expected value computed outside this code:
        //   printf '1700000000:ABCDEFGHJK' | openssl dgst -sha1 -hmac 'north' -binary | base64
        let room: RoomId = "ABCDE-FGHJK".parse().unwrap();
        let (u, c) = turn_credential("north", 1_700_000_000, &room);
        assert_eq!(u, "1700000000:ABCDEFGHJK");
        assert_eq!(c, "NbQdIuHbPQ3zPr9PSp5WF61IKZE=");
    }

    #[test]
    fn list_has_stun_then_turn() {
        let room: RoomId = "ABCDE-FGHJK".parse().unwrap();
        let mut c = Config::default();
        assert!(ice_servers(&c, &room, 100).is_empty());
        c.stun_urls = vec!["stun:127.0.0.1:3478".into()];
        c.turn = Some(TurnConfig {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            secret: "s".into(),
            ttl: Duration::from_secs(600),
        });
        let l = ice_servers(&c, &room, 100);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].username, None);
        assert_eq!(l[1].username.as_deref(), Some("700:ABCDEFGHJK"));
        assert_eq!(
            l[1].credential.as_deref(),
            Some(turn_credential("s", 700, &room).1.as_str())
        );
    }
}
