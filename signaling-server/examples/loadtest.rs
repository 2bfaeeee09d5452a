//! Heavier load run with the server in its own process, so its peak RSS can be read:
//!   cargo run --release -p ferry-signal --example loadtest -- --clients 1000 --rooms 500
//! Needs `ulimit -n` above ~2 × clients. Prints p50/p99 relay latency, errors and VmHWM.

#[path = "../tests/common/load.rs"]
mod load;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 500)]
    rooms: usize,
    /// Messages each client sends (and receives).
    #[arg(long, default_value_t = 20)]
    msgs: usize,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.clients == args.rooms * 2,
        "--clients must be 2 × --rooms"
    );
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("ferry-signal"))
        .ok_or_else(|| anyhow::anyhow!("cannot locate the ferry-signal binary"))?;
    {
        // `cargo run --example` builds only the example; build (or refresh) the server binary.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "ferry-signal",
                "--bin",
                "ferry-signal",
            ])
            .status()?
            .success();
        anyhow::ensure!(ok && bin.exists(), "could not build {}", bin.display());
    }
    let mut child = Command::new(&bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--rate-per-sec",
            "100000",
        ])
        .args([
            "--rate-burst",
            "100000",
            "--max-connections",
            "100000",
            "--max-rooms",
            "100000",
        ])
        // Every client comes from 127.0.0.1: lift the per-address caps this run is not about.
        .args([
            "--max-sockets-per-ip",
            "100000",
            "--max-rooms-per-ip",
            "100000",
            "--global-create-rate",
            "100000",
            "--global-create-burst",
            "100000",
        ])
        .env("FERRY_SIGNAL_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    )
    .read_line(&mut line)?;
    let addr = line.trim().trim_start_matches("listening on ").to_string();
    let idle_rss = vm_hwm_kib(child.id());
    let report = load::run(&format!("ws://{addr}/ws"), args.rooms, args.msgs).await;
    let peak = vm_hwm_kib(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    println!(
        "clients={} rooms={} relayed={} errors={} p50={:.2}ms p99={:.2}ms max={:.2}ms wall={:.1}s server_VmHWM_start={}KiB server_VmHWM_peak={}KiB",
        report.clients,
        args.rooms,
        report.relayed,
        report.errors,
        report.p50_us as f64 / 1000.0,
        report.p99_us as f64 / 1000.0,
        report.max_us as f64 / 1000.0,
        report.wall.as_secs_f64(),
        idle_rss.unwrap_or(0),
        peak.unwrap_or(0),
    );
    anyhow::ensure!(report.errors == 0, "{} errors", report.errors);
    Ok(())
}
