//! The signaling server in-process: `ferry serve`, and the embedded LAN server `ferry send`
//! starts when no --server is given.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_signal::{Config, DbLocation, RunningServer};

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FERRY_SIGNAL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Session database file, or `:memory:` (`--db` is the client's resume store).
    #[arg(
        long = "signal-db",
        env = "FERRY_SIGNAL_DB",
        default_value = ":memory:"
    )]
    signal_db: String,
    /// Default room lifetime, seconds.
    #[arg(long, env = "FERRY_SIGNAL_ROOM_TTL", default_value_t = 3600)]
    room_ttl: u64,
    /// Largest room lifetime a client may ask for, seconds.
    #[arg(long, env = "FERRY_SIGNAL_MAX_ROOM_TTL", default_value_t = 86400)]
    max_room_ttl: u64,
    /// Failed handshakes before a room locks.
    #[arg(long, env = "FERRY_SIGNAL_HANDSHAKE_FAIL_LIMIT", default_value_t = 3)]
    handshake_fail_limit: u32,
    /// STUN server URL handed to clients (repeatable).
    #[arg(long = "stun", env = "FERRY_SIGNAL_STUN", value_delimiter = ',')]
    stun: Vec<String>,
    /// TURN URL handed to clients with short-lived credentials (repeatable), e.g.
    /// turn:relay.example:3478?transport=udp; needs --turn-secret.
    #[arg(
        long = "turn-url",
        env = "FERRY_SIGNAL_TURN_URLS",
        value_delimiter = ','
    )]
    turn_urls: Vec<String>,
    /// Shared secret with coturn's `static-auth-secret`.
    #[arg(long, env = "FERRY_SIGNAL_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// Serve the browser page built by `npm run build:web` (ui/dist-web) from this directory
    /// at / and /j/ROOM, as `ferry-signal --web-dir` does.
    #[arg(long, env = "FERRY_SIGNAL_WEB_DIR")]
    web_dir: Option<PathBuf>,
}

fn db(s: &str) -> DbLocation {
    if s == ":memory:" {
        DbLocation::Memory
    } else {
        DbLocation::File(PathBuf::from(s))
    }
}

pub(crate) async fn run(a: ServeArgs) -> anyhow::Result<()> {
    let turn = ferry_signal::TurnConfig::from_flags(
        a.turn_urls,
        a.turn_secret,
        ferry_signal::TurnConfig::DEFAULT_TTL,
    )?;
    let cfg = Config {
        listen: a.listen,
        db: db(&a.signal_db),
        room_ttl: Duration::from_secs(a.room_ttl),
        max_room_ttl: Duration::from_secs(a.max_room_ttl),
        handshake_fail_limit: a.handshake_fail_limit,
        stun_urls: a.stun,
        turn,
        web_dir: a.web_dir,
        ..Config::default()
    };
    let srv = ferry_signal::spawn(cfg)
        .await
        .context("starting the signaling server")?;
    // Tests and scripts read this line to learn the port when listening on :0.
    println!("listening on {}", srv.ws_url());
    let _ = tokio::signal::ctrl_c().await;
    srv.shutdown().await;
    Ok(())
}

/// This machine's address on the LAN: the source address the OS would pick for an outside
/// destination. `connect` on UDP sends nothing.
fn lan_ip() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Start the embedded server; returns it and the URL a receiver on the LAN can use.
pub(crate) async fn embedded(listen: &str) -> anyhow::Result<(RunningServer, String)> {
    let addr: SocketAddr = listen.parse().context("--listen")?;
    let srv = ferry_signal::spawn(Config {
        listen: addr,
        ..Config::default()
    })
    .await
    .context("starting the embedded signaling server")?;
    let mut a = srv.local_addr();
    if a.ip().is_unspecified() {
        a.set_ip(lan_ip().unwrap_or(IpAddr::from([127, 0, 0, 1])));
    }
    Ok((srv, format!("ws://{a}/ws")))
}
