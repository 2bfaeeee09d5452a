//! `ferry`: send and receive files device to device; history; a signaling server.

mod multi;
mod nearby;
mod output;
mod serve;
mod steer;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_core::EventSink;
use ferry_core::Store;
use ferry_core::TransferHandle;
use ferry_core::{ErrorKind, FerryError};
use ferry_core::{Offer, ReceiveOptions, SendOptions};
use tokio::sync::mpsc;

/// `ferry --help`'s epilogue: the exit codes, from the one table ferry-core keeps.
fn exit_help() -> String {
    let rows: Vec<String> = ferry_core::exit_codes()
        .iter()
        .map(|(c, m)| format!("{c:>4} {m}"))
        .collect();
    let mut out = String::from("Exit codes:\n");
    // Two columns keep the list on one screen.
    let half = rows.len().div_ceil(2);
    for (i, left) in rows.iter().take(half).enumerate() {
        let right = rows.get(i + half).map_or("", String::as_str);
        out.push_str(format!("{left:<38}{right}").trim_end());
        out.push('\n');
    }
    out.push_str(
        "\nWith --json, stdin lines `pause`, `resume` and `cancel` steer a running transfer.",
    );
    out
}

#[derive(Parser, Debug)]
#[command(name = "ferry", version, about = "Send files of any size directly between devices", after_help = exit_help())]
struct Cli {
    /// Resume/history database (default: the OS data directory).
    #[arg(long, env = "FERRY_DB", global = true)]
    db: Option<PathBuf>,
    /// Log verbosity on stderr: Ferry's warnings by default, -v info and -vv debug from
    /// every component. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug, Clone)]
struct NetArgs {
    /// Signaling server, ws://host:port/ws (or http://host:port).
    #[arg(long, env = "FERRY_SERVER")]
    server: Option<String>,
    /// Local addresses for WebRTC to bind (repeatable; default all interfaces).
    #[arg(long = "bind", env = "FERRY_BIND", value_delimiter = ',', hide = true)]
    bind: Vec<String>,
    /// Print one JSON event per line instead of progress bars.
    #[arg(long)]
    json: bool,
    /// Connect only through the server's TURN relay, so the other side never sees this
    /// device's IP addresses (slower: every byte takes the relay's path).
    #[arg(long, env = "FERRY_RELAY_ONLY")]
    relay_only: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Offer files and folders (or a text snippet); prints a room, password, link and QR
    /// code, then waits.
    #[command(after_help = steer::SEND_HELP)]
    Send {
        paths: Vec<PathBuf>,
        /// Send this text instead of files (`-` reads it from stdin); the receiver prints it.
        /// At most 64 KiB.
        #[arg(long, conflicts_with_all = ["paths", "resume"])]
        text: Option<String>,
        /// How long the room stays open for the receiver: 30s, 10m, 1h, 1d, 1h30m, ...
        /// (the server caps it at its maximum; default: the server's, usually 1h).
        #[arg(long, value_name = "LIFETIME", value_parser = lifetime)]
        expires: Option<u64>,
        #[arg(long, env = "FERRY_PASSWORD")]
        password: Option<String>,
        /// Continue an earlier transfer by its id (see `ferry history`).
        #[arg(long)]
        resume: Option<String>,
        /// Where the embedded signaling server listens when no --server is given.
        #[arg(long, default_value = "0.0.0.0:0")]
        listen: String,
        /// Keep waiting after a wrong password instead of exiting.
        #[arg(long)]
        keep_waiting: bool,
        /// Also print a browser link (http://SERVER/j/ROOM#password) when the server is plain
        /// ws://, as on loopback; for a wss:// server the https one is always printed.
        #[arg(long)]
        web_link: bool,
        #[command(flatten)]
        many: multi::ManyArgs,
        #[command(flatten)]
        announce: nearby::AnnounceArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Receive from a room id or ferry:// link.
    Receive {
        /// The room id or link (or --nearby to pick a room announced on the local network).
        #[arg(required_unless_present = "nearby", conflicts_with = "nearby")]
        ticket: Option<String>,
        #[command(flatten)]
        nearby: nearby::NearbyArgs,
        #[arg(long, env = "FERRY_PASSWORD")]
        password: Option<String>,
        /// Output folder.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Accept the offer without asking.
        #[arg(long, short)]
        yes: bool,
        /// Replace existing files (default: land as "name (1).ext").
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Past and unfinished transfers.
    History {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Run the signaling server in this process.
    Serve(serve::ServeArgs),
}

/// The log filter when `RUST_LOG` is not set. By default a user sees Ferry's own warnings
/// and anyone's errors: the WebRTC stack warns about routine steps on every connection
/// (`rtc_ice`, `rtc_dtls`), which reads like trouble and is not. `-v` and `-vv` show
/// every crate.
fn default_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "error,ferry=warn,ferry_core=warn,ferry_proto=warn,ferry_signal=warn",
        1 => "info",
        _ => "debug",
    }
}

fn main() {
    ferry_core::tune_allocator();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter(cli.verbose)));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async {
        let code = run(cli).await;
        // A decline, cancel or error queued last must leave before the runtime goes.
        ferry_core::links_closed(Duration::from_secs(2)).await;
        code
    });
    // Background tasks (embedded server, stdin reader) must not hold the exit.
    rt.shutdown_timeout(Duration::from_millis(200));
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    match run_inner(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry: {e:#}");
            1
        }
    }
}

fn open_store(db: &Option<PathBuf>) -> anyhow::Result<Store> {
    let path = match db {
        Some(p) => p.clone(),
        None => Store::default_path()?,
    };
    Store::open(&path).with_context(|| format!("opening {}", path.display()))
}

/// Accept `http://host:port` or `host:port` too: people paste what they see.
fn ws_url(s: &str) -> String {
    let s = s.trim_end_matches('/');
    let base = if let Some(rest) = s.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = s.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if s.starts_with("ws://") || s.starts_with("wss://") {
        s.to_string()
    } else {
        format!("ws://{s}")
    };
    if base.ends_with("/ws") {
        base
    } else {
        format!("{base}/ws")
    }
}

/// The benchmark knobs (`FERRY_SCTP_CC`, `FERRY_COMPRESS`, ...; docs/BENCHMARKS.md) are read
/// here, at the edge: the engine takes them as plain data.
fn tuning_from_env() -> ferry_core::Tuning {
    ferry_core::Tuning::from_vars(|k| std::env::var(k).ok())
}

fn cancel_on_ctrl_c(handle: TransferHandle) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            handle.cancel();
        }
    });
}

fn finish(r: Result<(), FerryError>, json: bool) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            if !json {
                eprintln!("ferry: {}", ferry_core::escape_display(&e.to_string()));
            }
            e.exit_code()
        }
    }
}

async fn run_inner(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        Cmd::Send {
            paths,
            text,
            expires,
            password,
            resume,
            listen,
            keep_waiting,
            web_link,
            many,
            announce,
            net,
        } => {
            if paths.is_empty() && resume.is_none() && text.is_none() {
                anyhow::bail!("nothing to send: give paths, --text or --resume ID");
            }
            let text_from_stdin = text.as_deref() == Some("-");
            let text = match text {
                Some(t) if t == "-" => Some(read_text_stdin()?),
                t => t,
            };
            // Refused here, before a room opens or anything waits.
            if let Some(t) = &text
                && let Err(e) = ferry_core::check_text_size(t)
            {
                eprintln!("ferry: {e}");
                return Ok(e.exit_code());
            }
            let store = open_store(&cli.db)?;
            let mut embedded = None;
            let server = match &net.server {
                Some(s) => ws_url(s),
                None => {
                    let (srv, url) = serve::embedded(&listen).await?;
                    if !net.json {
                        println!(
                            "Signaling server running at {url} (keep this running until the transfer is done)"
                        );
                    }
                    embedded = Some(srv);
                    url
                }
            };
            let mut opts = SendOptions::new(server, store);
            opts.password = password;
            opts.resume = resume;
            opts.ttl_secs = expires;
            opts.stop_on_wrong_password = !keep_waiting;
            opts.bind_addrs = (!net.bind.is_empty()).then(|| net.bind.clone());
            opts.tuning = tuning_from_env();
            opts.tuning.rtc.relay_only = net.relay_only;
            // Hidden fault-test settings, read only by test builds (ferry-core's `test-hooks`).
            ferry_core::with_test_hooks! {
                let env_u64 = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
                opts.test_hooks.corrupt_chunk = env_u64("FERRY_TEST_CORRUPT_CHUNK");
                opts.test_hooks.rate_limit_bps = env_u64("FERRY_TEST_RATE_BPS");
            }
            if many.wanted() {
                let code = multi::send(opts, &paths, many, net.json, &announce, &net.bind).await;
                if let Some(s) = embedded {
                    s.shutdown().await;
                }
                return Ok(code);
            }
            let handle = TransferHandle::new();
            cancel_on_ctrl_c(handle.clone());
            if !text_from_stdin {
                steer::send_from_stdin(handle.clone(), None);
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let rx = nearby::announce_while_open(rx, &announce, &net.bind);
            let printer = tokio::spawn(output::print_events(
                rx,
                net.json,
                output::Status::Stdout,
                web_link,
            ));
            let r = match text {
                Some(t) => ferry_core::send_text(opts, t, &handle, EventSink::new(tx)).await,
                None => ferry_core::send(opts, &paths, &handle, EventSink::new(tx)).await,
            };
            let _ = printer.await;
            let r = r.and_then(|rep| match rep.failed.first() {
                None => Ok(()),
                Some((path, kind)) => Err(failed_file(path, *kind)),
            });
            output::print_stats(net.json);
            if let Some(s) = embedded {
                s.shutdown().await;
            }
            Ok(finish(r, net.json))
        }
        Cmd::Receive {
            ticket,
            nearby,
            password,
            out,
            yes,
            overwrite,
            net,
        } => {
            let ticket = match ticket {
                Some(t) => t,
                None => match nearby::choose(&nearby).await {
                    Ok(room) => room.ticket().to_url(),
                    Err(code) => return Ok(code),
                },
            };
            let store = open_store(&cli.db)?;
            let mut opts = ReceiveOptions::new(out, store);
            opts.server = net.server.as_deref().map(ws_url);
            opts.password = password;
            opts.overwrite = overwrite;
            opts.bind_addrs = (!net.bind.is_empty()).then(|| net.bind.clone());
            opts.tuning = tuning_from_env();
            opts.tuning.rtc.relay_only = net.relay_only;
            let handle = TransferHandle::new();
            cancel_on_ctrl_c(handle.clone());
            if net.json && yes {
                steer::receive_from_stdin(handle.clone());
            }
            let json = net.json;
            let decide = move |offer: &Offer| steer::accept(offer, yes, json);
            let (tx, rx) = mpsc::unbounded_channel();
            let printer = tokio::spawn(output::print_events(
                rx,
                net.json,
                output::Status::Stderr,
                false,
            ));
            let r = ferry_core::receive(opts, &ticket, decide, &handle, EventSink::new(tx)).await;
            let _ = printer.await;
            let r = r.and_then(|rep| match rep.failed.first() {
                None => Ok(()),
                Some((path, kind)) => Err(failed_file(path, *kind)),
            });
            output::print_stats(net.json);
            Ok(finish(r, net.json))
        }
        Cmd::History { json, limit } => {
            let store = open_store(&cli.db)?;
            output::print_history(&store.history(limit)?, json);
            Ok(0)
        }
        Cmd::Serve(args) => {
            serve::run(args).await?;
            Ok(0)
        }
    }
}

/// `--expires`: a humane lifetime, in seconds.
fn lifetime(s: &str) -> Result<u64, String> {
    ferry_core::parse_lifetime(s).map_err(|e| e.to_string())
}

/// `--text -`: the snippet from stdin, read no further than one byte past the limit (so a
/// huge pipe is refused without being held).
fn read_text_stdin() -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(ferry_core::TEXT_MAX_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .context("reading the text from stdin")?;
    if buf.len() > ferry_core::TEXT_MAX_BYTES {
        // Past the limit whatever the rest holds: say so as the size check would.
        return Ok(String::from_utf8_lossy(&buf).into_owned());
    }
    String::from_utf8(buf).context("the text on stdin is not UTF-8")
}

/// A transfer that finished with some files refused ends with the first refusal's kind.
fn failed_file(path: &str, kind: ErrorKind) -> FerryError {
    let msg = path.to_string();
    match kind {
        ErrorKind::SourceChanged => FerryError::SourceChanged(msg),
        ErrorKind::PermissionDenied => FerryError::PermissionDenied(msg),
        ErrorKind::DiskFull => FerryError::DiskFull(msg),
        ErrorKind::Integrity => FerryError::Integrity(msg),
        ErrorKind::Protocol => FerryError::Protocol(format!("refused unsafe name {msg}")),
        _ => FerryError::Io(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalised() {
        assert_eq!(ws_url("http://1.2.3.4:80"), "ws://1.2.3.4:80/ws");
        assert_eq!(ws_url("ws://h:1/ws"), "ws://h:1/ws");
        assert_eq!(ws_url("h:1"), "ws://h:1/ws");
        assert_eq!(ws_url("https://x/"), "wss://x/ws");
    }

    #[test]
    fn help_lists_every_exit_code_from_the_one_table() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for (code, meaning) in ferry_core::exit_codes() {
            assert!(
                help.contains(&format!("{code:>4} {meaning}")),
                "{code} {meaning} missing from:\n{help}"
            );
        }
    }

    #[test]
    fn by_default_only_ferry_warns_and_verbose_shows_everything() {
        let quiet = default_filter(0);
        assert!(quiet.starts_with("error,"), "{quiet}");
        for own in ["ferry", "ferry_core", "ferry_proto", "ferry_signal"] {
            assert!(quiet.contains(&format!(",{own}=warn")), "{own}: {quiet}");
        }
        assert!(!quiet.contains("rtc"), "{quiet}");
        assert_eq!(default_filter(1), "info");
        assert_eq!(default_filter(2), "debug");
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
