//! `ferry-signal`: run the signaling server, or check one's health (for images without a shell).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ferry_signal::{Config, DbLocation, RateLimit, TurnConfig};

#[derive(Parser, Debug)]
#[command(name = "ferry-signal", version, about = "Ferry signaling server")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// GET /healthz and exit 0 when healthy, 1 otherwise.
    Healthcheck {
        #[arg(
            long,
            env = "FERRY_SIGNAL_HEALTH_URL",
            default_value = "http://127.0.0.1:8080/healthz"
        )]
        url: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Json,
    Pretty,
}

fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("expected whole seconds: {e}"))
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Address to listen on.
    #[arg(long, env = "FERRY_SIGNAL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Session database file, or `:memory:`.
    #[arg(long, env = "FERRY_SIGNAL_DB", default_value = "ferry-signal.db")]
    db: String,
    /// Keep rooms in Redis (`redis://[:password@]host:port[/db]`, `rediss://` for TLS), shared
    /// by every ferry-signal pointed at it, instead of in this process and --db. Unset: one
    /// node, SQLite.
    #[arg(long, env = "FERRY_SIGNAL_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// Default room lifetime, seconds.
    #[arg(long, env = "FERRY_SIGNAL_ROOM_TTL", default_value = "3600", value_parser = secs)]
    room_ttl: Duration,
    /// Largest lifetime a client may ask for, seconds.
    #[arg(long, env = "FERRY_SIGNAL_MAX_ROOM_TTL", default_value = "86400", value_parser = secs)]
    max_room_ttl: Duration,
    #[arg(long, env = "FERRY_SIGNAL_MAX_ROOMS", default_value_t = 10_000)]
    max_rooms: usize,
    #[arg(long, env = "FERRY_SIGNAL_MAX_CONNECTIONS", default_value_t = 20_000)]
    max_connections: usize,
    /// WebSocket sockets open at once from one address (IPv6: one /64).
    #[arg(long, env = "FERRY_SIGNAL_MAX_SOCKETS_PER_IP", default_value_t = 64)]
    max_sockets_per_ip: usize,
    /// Rooms open at once created from one address (IPv6: one /64).
    #[arg(long, env = "FERRY_SIGNAL_MAX_ROOMS_PER_IP", default_value_t = 32)]
    max_rooms_per_ip: usize,
    /// A room without a host socket for this long is removed, seconds.
    #[arg(long, env = "FERRY_SIGNAL_HOST_GRACE", default_value = "120", value_parser = secs)]
    host_grace: Duration,
    /// Server-wide room creations per second, whatever the addresses.
    #[arg(long, env = "FERRY_SIGNAL_GLOBAL_CREATE_RATE", default_value_t = 500)]
    global_create_rate: u32,
    /// Server-wide room creation burst.
    #[arg(long, env = "FERRY_SIGNAL_GLOBAL_CREATE_BURST", default_value_t = 2000)]
    global_create_burst: u32,
    /// Bytes queued for one socket before it is closed as too slow (1008).
    #[arg(long, env = "FERRY_SIGNAL_MAX_QUEUE_BYTES", default_value_t = 256 * 1024)]
    max_queue_bytes: usize,
    /// Longest one write to a socket may take, seconds.
    #[arg(long, env = "FERRY_SIGNAL_WRITE_TIMEOUT", default_value = "5", value_parser = secs)]
    write_timeout: Duration,
    /// Time to send complete HTTP request headers, seconds.
    #[arg(long, env = "FERRY_SIGNAL_HEADER_READ_TIMEOUT", default_value = "10", value_parser = secs)]
    header_read_timeout: Duration,
    /// Time for a WebSocket's first message after the upgrade, seconds.
    #[arg(long, env = "FERRY_SIGNAL_FIRST_MESSAGE_TIMEOUT", default_value = "10", value_parser = secs)]
    first_message_timeout: Duration,
    /// Serve /metrics on this address (e.g. 127.0.0.1:9090). Unset: no metrics endpoint.
    #[arg(long, env = "FERRY_SIGNAL_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Largest text frame, bytes; a larger one closes the socket with 1009.
    #[arg(long, env = "FERRY_SIGNAL_MAX_FRAME_BYTES", default_value_t = 65_536)]
    max_frame_bytes: usize,
    /// Failed handshakes before a room locks.
    #[arg(long, env = "FERRY_SIGNAL_HANDSHAKE_FAIL_LIMIT", default_value_t = 3)]
    handshake_fail_limit: u32,
    /// Per-IP create/join rate, per second.
    #[arg(long, env = "FERRY_SIGNAL_RATE_PER_SEC", default_value_t = 5)]
    rate_per_sec: u32,
    /// Per-IP create/join burst.
    #[arg(long, env = "FERRY_SIGNAL_RATE_BURST", default_value_t = 20)]
    rate_burst: u32,
    #[arg(long, env = "FERRY_SIGNAL_IDLE_TIMEOUT", default_value = "60", value_parser = secs)]
    idle_timeout: Duration,
    #[arg(long, env = "FERRY_SIGNAL_PING_INTERVAL", default_value = "20", value_parser = secs)]
    ping_interval: Duration,
    /// Browser origin allowed to connect (repeat, or comma-separated in env). Unset: no
    /// browser origin (native clients send none and are always served); `*`: any.
    #[arg(
        long = "allowed-origin",
        env = "FERRY_SIGNAL_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// Proxy whose X-Forwarded-For is trusted for rate limiting (repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "FERRY_SIGNAL_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<IpAddr>,
    /// TURN URL handed to clients (repeatable), e.g. turn:turn.example:3478?transport=udp.
    #[arg(
        long = "turn-url",
        env = "FERRY_SIGNAL_TURN_URLS",
        value_delimiter = ','
    )]
    turn_urls: Vec<String>,
    /// Shared secret with coturn's `static-auth-secret`.
    #[arg(long, env = "FERRY_SIGNAL_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// Lifetime of issued TURN credentials, seconds.
    #[arg(long, env = "FERRY_SIGNAL_TURN_TTL", default_value = "3600", value_parser = secs)]
    turn_ttl: Duration,
    /// STUN URL handed to clients (repeatable).
    #[arg(
        long = "stun-url",
        env = "FERRY_SIGNAL_STUN_URLS",
        value_delimiter = ','
    )]
    stun_urls: Vec<String>,
    /// Serve the browser page built by `npm run build:web` (ui/dist-web) from this directory
    /// at / and /j/ROOM. Unset: the page embedded at build time, if any.
    #[arg(long, env = "FERRY_SIGNAL_WEB_DIR")]
    web_dir: Option<PathBuf>,
    #[arg(
        long,
        env = "FERRY_SIGNAL_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    log_format: LogFormat,
}

impl RunArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let db = if self.db == ":memory:" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(self.db))
        };
        let turn = TurnConfig::from_flags(self.turn_urls, self.turn_secret, self.turn_ttl)?;
        anyhow::ensure!(
            self.room_ttl <= self.max_room_ttl,
            "--room-ttl must not exceed --max-room-ttl"
        );
        Ok(Config {
            listen: self.listen,
            db,
            room_ttl: self.room_ttl,
            max_room_ttl: self.max_room_ttl,
            max_rooms: self.max_rooms,
            max_connections: self.max_connections,
            max_sockets_per_ip: self.max_sockets_per_ip,
            max_rooms_per_ip: self.max_rooms_per_ip,
            host_grace: self.host_grace,
            global_create_rate: RateLimit {
                per_second: self.global_create_rate,
                burst: self.global_create_burst,
            },
            max_queue_bytes: self.max_queue_bytes,
            write_timeout: self.write_timeout,
            header_read_timeout: self.header_read_timeout,
            first_message_timeout: self.first_message_timeout,
            metrics_listen: self.metrics_listen,
            max_frame_bytes: self.max_frame_bytes,
            handshake_fail_limit: self.handshake_fail_limit,
            rate_limit: RateLimit {
                per_second: self.rate_per_sec,
                burst: self.rate_burst,
            },
            idle_timeout: self.idle_timeout,
            ping_interval: self.ping_interval,
            allowed_origins: self.allowed_origins,
            turn,
            stun_urls: self.stun_urls,
            trusted_proxies: self.trusted_proxies,
            redis: self.redis,
            web_dir: self.web_dir,
            ..Config::default()
        })
    }
}

fn init_logs(format: LogFormat) {
    // Logs on stderr; stdout carries only the "listening on" line scripts read.
    let b = tracing_subscriber::fmt()
        .with_env_filter(ferry_signal::log_filter("info"))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Pretty => b.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Healthcheck { url }) = cli.cmd {
        let ok = ferry_signal::client::healthy(&url).await;
        std::process::exit(if ok { 0 } else { 1 });
    }
    init_logs(cli.run.log_format);
    let config = cli.run.into_config()?;
    let server = ferry_signal::spawn(config)
        .await
        .context("starting the signaling server")?;
    // Printed on stdout so scripts that pass port 0 can find the address.
    println!("listening on {}", server.local_addr());
    if let Some(m) = server.metrics_addr() {
        println!("metrics on {m}");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
