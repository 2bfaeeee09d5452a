//! Cross-node load run: `--rooms` rooms (two WebSocket clients each) over `--nodes`
//! `ferry-signal --redis` processes sharing one redis-server this tool starts, every host on
//! one node and its guest on the next, each client relaying one message per `--every-ms` for
//! `--secs`. Then the same clients against one node on its own (SQLite), in the same run.
//! Prints errors, p50/p99 relay latency, each process's peak RSS and CPU time, the load
//! generator's own CPU time and lag (how late its sends left against their schedule), and
//! how busy the whole machine was. Clients send at seeded random phases spread over the
//! period (`--sync`: all at the same instant, as bursts).
//!
//!   cargo build -p ferry-signal --bin ferry-signal
//!   cargo run -p ferry-signal --example signal_load -- --rooms 5000 --secs 60
//!
//! Needs redis-server (scripts/install-deps.sh). Raises its own descriptor limit to the hard
//! limit; 10,000 clients need about 20,000 descriptors here and 7,000 per node.

#[path = "../tests/common/load.rs"]
mod load;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 5000)]
    rooms: usize,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// How long each client relays.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// One message per client this often.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,
    /// Skip the single-node run.
    #[arg(long)]
    no_single: bool,
    /// Every client sends at the same instant (bursts) instead of at spread phases.
    #[arg(long)]
    sync: bool,
    /// Seed of the clients' phases.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runtime worker threads of each node in the multi-node run (0: one per core). The single
    /// node always gets one per core.
    #[arg(long, default_value_t = 0)]
    node_threads: usize,
}

/// Busy and total jiffies of the whole machine (all cores), from `/proc/stat`.
fn machine() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle + iowait
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// What the generator and the machine spent during one run.
struct Spent {
    gen_cpu: f64,
    /// CPU seconds the whole machine spent, and could have spent, over the run.
    busy_cpu: f64,
    avail_cpu: f64,
}

async fn measured(
    urls: &[String],
    a: &Args,
    msgs: usize,
    pace: load::Pace,
) -> (load::Report, Spent) {
    let me = std::process::id();
    let (cpu0, m0) = (usage(me).1, machine());
    let r = load::run_paced(urls, a.rooms, msgs, pace).await;
    let (cpu1, m1) = (usage(me).1, machine());
    let (busy, total) = (m1.0 - m0.0, (m1.1 - m0.1).max(1));
    // Jiffies are 1/100 s, summed over every core.
    let busy_cpu = busy as f64 / 100.0;
    let spent = Spent {
        gen_cpu: cpu1 - cpu0,
        busy_cpu,
        avail_cpu: total as f64 / 100.0,
    };
    (r, spent)
}

/// Peak RSS (KiB) and CPU seconds (user + system) of a process.
fn usage(pid: u32) -> (u64, f64) {
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let t: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(t as f64 / 100.0)
        })
        .unwrap_or(0.0);
    (hwm, cpu)
}

fn raise_nofile() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
    l.rlim_cur
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node(bin: &Path, redis: Option<&str>, threads: usize) -> anyhow::Result<(Proc, String)> {
    let mut cmd = Command::new(bin);
    if threads > 0 {
        cmd.env("TOKIO_WORKER_THREADS", threads.to_string());
    }
    cmd.args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(["--max-connections", "100000", "--max-rooms", "100000"])
        // Every client comes from 127.0.0.1: lift the per-address caps this run is not about.
        .args([
            "--max-sockets-per-ip",
            "100000",
            "--max-rooms-per-ip",
            "100000",
        ])
        .args(["--rate-per-sec", "100000", "--rate-burst", "100000"])
        .args([
            "--global-create-rate",
            "100000",
            "--global-create-burst",
            "100000",
        ])
        .env("FERRY_SIGNAL_LOG", "warn")
        .stdout(Stdio::piped());
    if let Some(r) = redis {
        cmd.args(["--redis", r]);
    }
    let mut child = cmd.spawn()?;
    let mut line = String::new();
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    BufReader::new(out).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow::anyhow!("unexpected {line:?}"))?
        .to_string();
    Ok((Proc(child), format!("ws://{addr}/ws")))
}

fn print(label: &str, r: &load::Report, s: &Spent, procs: &[(&str, u32)]) {
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{label}: clients {} relayed {} errors {} p50 {:.2} ms p99 {:.2} ms max {:.2} ms wall {:.1} s",
        r.clients,
        r.relayed,
        r.errors,
        ms(r.p50_us),
        ms(r.p99_us),
        ms(r.max_us),
        r.wall.as_secs_f64()
    );
    println!(
        "  per second: {} slices, {} with p99 > 50 ms, median slice p99 {:.2} ms",
        r.slices,
        r.slices_over_50ms,
        ms(r.slice_p99_median_us)
    );
    if !r.slow_slices.is_empty() {
        println!("  slow seconds (second: p99 ms): {:?}", r.slow_slices);
    }
    println!(
        "  generator: CPU {:.1} s, send lag p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        s.gen_cpu,
        ms(r.lag_p50_us),
        ms(r.lag_p99_us),
        ms(r.lag_max_us)
    );
    let servers: f64 = procs.iter().map(|(_, pid)| usage(*pid).1).sum();
    println!(
        "  machine: {:.0}% busy; CPU s over the run: generator {:.1} + servers {servers:.1} + everything else {:.1} = {:.1} of {:.1} available",
        s.busy_cpu / s.avail_cpu * 100.0,
        s.gen_cpu,
        (s.busy_cpu - s.gen_cpu - servers).max(0.0),
        s.busy_cpu,
        s.avail_cpu
    );
    for (name, pid) in procs {
        let (hwm, cpu) = usage(*pid);
        println!(
            "  {name}: peak RSS {:.1} MiB, CPU {cpu:.1} s",
            hwm as f64 / 1024.0
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let nofile = raise_nofile();
    println!("descriptor limit raised to {nofile}");
    let exe = std::env::current_exe()?;
    let bin: PathBuf = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("ferry-signal"))
        .ok_or_else(|| anyhow::anyhow!("cannot locate ferry-signal"))?;
    anyhow::ensure!(bin.exists(), "build it first: cargo build -p ferry-signal");
    let msgs = (a.secs * 1000 / a.every_ms.max(1)) as usize;
    let pace = load::Pace {
        every: Duration::from_millis(a.every_ms),
        spread: !a.sync,
        seed: a.seed,
    };

    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let redis = Proc(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--dir", &dir.path().display().to_string()])
            .args(["--save", "", "--appendonly", "yes", "--maxclients", "10000"])
            .stdout(Stdio::null())
            .spawn()?,
    );
    let url = format!("redis://127.0.0.1:{port}/");
    let t0 = Instant::now();
    let nodes = loop {
        let mut v = Vec::new();
        let mut ok = true;
        for _ in 0..a.nodes {
            match node(&bin, Some(&url), a.node_threads) {
                Ok(n) => v.push(n),
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && v.len() == a.nodes {
            break v;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(10),
            "nodes did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let urls: Vec<String> = nodes.iter().map(|n| n.1.clone()).collect();
    let (r, spent) = measured(&urls, &a, msgs, pace).await;
    let mut procs: Vec<(String, u32)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("node {}", i + 1), n.0.0.id()))
        .collect();
    procs.push(("redis-server".into(), redis.0.id()));
    let p: Vec<(&str, u32)> = procs.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    let threads = match a.node_threads {
        0 => "a worker thread per core".to_string(),
        n => format!("{n} worker thread(s)"),
    };
    print(
        &format!("{} nodes ({threads} each) + redis", a.nodes),
        &r,
        &spent,
        &p,
    );
    drop(nodes);
    drop(redis);

    if !a.no_single {
        let (one, url) = node(&bin, None, 0)?;
        let (r, spent) = measured(&[url], &a, msgs, pace).await;
        print("1 node (SQLite)", &r, &spent, &[("node", one.0.id())]);
    }
    Ok(())
}
