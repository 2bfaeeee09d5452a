//! The user's settings: a small JSON file in the app's config dir. Missing or broken files
//! give defaults (a bad settings file must never stop the app from starting).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnServer {
    pub urls: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Empty: use the signaling server embedded in the app (LAN, zero setup).
    pub server_url: String,
    pub stun: Vec<String>,
    pub turn: Vec<TurnServer>,
    pub download_dir: String,
    pub theme: Theme,
    /// Announce rooms this device hosts to nearby devices on the local network (device
    /// name, room id, server: never the password or what is offered).
    pub announce: bool,
    /// The name nearby devices see; empty: this machine's host name.
    pub device_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server_url: String::new(),
            stun: Vec::new(),
            turn: Vec::new(),
            download_dir: default_download_dir(),
            theme: Theme::System,
            announce: true,
            device_name: String::new(),
        }
    }
}

fn default_download_dir() -> String {
    directories::UserDirs::new()
        .and_then(|u| u.download_dir().map(Path::to_path_buf))
        .or_else(|| directories::UserDirs::new().map(|u| u.home_dir().to_path_buf()))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid setting: {0}")]
    Invalid(String),
    #[error("could not save settings to {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Settings {
    /// The STUN/TURN servers from Settings, in the shape the engine takes.
    pub fn ice_servers(&self) -> Vec<ferry_proto::signal::IceServer> {
        let stun = self.stun.iter().map(|u| ferry_proto::signal::IceServer {
            urls: vec![u.clone()],
            ..Default::default()
        });
        let turn = self.turn.iter().map(|t| ferry_proto::signal::IceServer {
            urls: vec![t.urls.clone()],
            username: t.username.clone(),
            credential: t.credential.clone(),
        });
        stun.chain(turn).collect()
    }

    pub fn file(config_dir: &Path) -> PathBuf {
        config_dir.join("settings.json")
    }

    pub fn load(config_dir: &Path) -> Settings {
        let path = Self::file(config_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), "ignoring unreadable settings: {e}");
                Settings::default()
            }),
            Err(_) => Settings::default(),
        }
    }

    /// Validate, then write atomically (temp file + rename) so a crash never leaves half a file.
    pub fn save(&self, config_dir: &Path) -> Result<(), SettingsError> {
        self.validate()?;
        let path = Self::file(config_dir);
        let io = |source| SettingsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(config_dir).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        let body =
            serde_json::to_vec_pretty(self).map_err(|e| SettingsError::Invalid(e.to_string()))?;
        std::fs::write(&tmp, body).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let url = self.server_url.trim();
        if !url.is_empty()
            && !["ws://", "wss://", "http://", "https://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return Err(SettingsError::Invalid(format!(
                "server URL must start with ws://, wss://, http:// or https:// (got {url:?})"
            )));
        }
        for s in &self.stun {
            if !(s.starts_with("stun:") || s.starts_with("stuns:")) {
                return Err(SettingsError::Invalid(format!(
                    "STUN server must start with stun: (got {s:?})"
                )));
            }
        }
        for t in &self.turn {
            if !(t.urls.starts_with("turn:") || t.urls.starts_with("turns:")) {
                return Err(SettingsError::Invalid(format!(
                    "TURN server must start with turn: or turns: (got {:?})",
                    t.urls
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_servers_carry_stun_and_turn_with_credentials() {
        let s = Settings {
            stun: vec!["stun:stun.example.net:3478".into()],
            turn: vec![TurnServer {
                urls: "turn:turn.example.net:3478".into(),
                username: Some("u".into()),
                credential: Some("c".into()),
            }],
            ..Settings::default()
        };
        let ice = s.ice_servers();
        assert_eq!(ice.len(), 2);
        assert_eq!(ice[0].urls, vec!["stun:stun.example.net:3478".to_string()]);
        assert_eq!(ice[0].username, None);
        assert_eq!(ice[1].urls, vec!["turn:turn.example.net:3478".to_string()]);
        assert_eq!(ice[1].username.as_deref(), Some("u"));
        assert_eq!(ice[1].credential.as_deref(), Some("c"));
    }

    #[test]
    fn round_trips_through_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(dir.path()), Settings::default());
        let s = Settings {
            server_url: "wss://signal.example".into(),
            stun: vec!["stun:stun.example:3478".into()],
            turn: vec![TurnServer {
                urls: "turn:relay.example:3478".into(),
                username: Some("u".into()),
                credential: Some("p".into()),
            }],
            download_dir: "/data".into(),
            theme: Theme::Dark,
            announce: false,
            device_name: "Ana's laptop".into(),
        };
        s.save(dir.path()).unwrap();
        assert_eq!(Settings::load(dir.path()), s);
        let raw = std::fs::read_to_string(Settings::file(dir.path())).unwrap();
        assert!(raw.contains(r#""theme": "dark""#), "{raw}");
    }

    #[test]
    fn broken_or_partial_files_fall_back_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Settings::file(dir.path()), b"{not json").unwrap();
        assert_eq!(Settings::load(dir.path()), Settings::default());
        std::fs::write(Settings::file(dir.path()), br#"{"theme":"light"}"#).unwrap();
        let s = Settings::load(dir.path());
        assert_eq!(s.theme, Theme::Light);
        assert_eq!(s.server_url, "");
        // A file from before the nearby setting announces, as a fresh install does.
        assert!(s.announce);
    }

    #[test]
    fn rejects_urls_of_the_wrong_kind() {
        let mut s = Settings {
            server_url: "ftp://x".into(),
            ..Settings::default()
        };
        assert!(s.validate().is_err());
        s.server_url = "ws://127.0.0.1:7000".into();
        assert!(s.validate().is_ok());
        s.stun = vec!["turn:x".into()];
        assert!(s.validate().is_err());
    }
}
