//! `tun-netem`: a userspace stand-in for `tc netem` (delay, rate, loss) for kernels built
//! without `sch_netem`. It owns one TUN device, reads every IP packet the kernel routes into
//! it, and writes each back into the same device after the emulated link's serialization
//! time and one-way delay (or never: random loss, full queue). The kernel then routes the
//! packet on as if it had arrived on the TUN. One instance shapes one direction; the bench
//! topology (bench/shaped_link.py) policy-routes each direction into its own TUN.
//!
//! Single thread, non-blocking fd, `ppoll` with a nanosecond timeout until the next release
//! (and with it every packet due within `--release-slack-us`, so they share one wake): at
//! 1 Gbit/s that is ~85k packets/s each way.
//! Prints one JSON line when the device is ready and one with counters on SIGTERM/SIGINT.

mod link;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

use link::{DelayLine, Link, Nanos, Shape, Verdict};

#[derive(Parser, Debug)]
#[command(about = "Userspace link emulator on a TUN device: delay, rate, loss")]
struct Args {
    /// TUN device to create or attach to (in the current network namespace).
    #[arg(long)]
    dev: String,
    /// One-way delay added to every packet.
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
    /// Bottleneck rate (IP bytes); 0 = unlimited.
    #[arg(long, default_value_t = 0.0)]
    rate_mbit: f64,
    /// Random loss before the queue, in percent.
    #[arg(long, default_value_t = 0.0)]
    loss_pct: f64,
    /// Bottleneck queue in bytes; 0 = twice the rate x (2 x delay) product, at least 128 KiB.
    #[arg(long, default_value_t = 0)]
    queue_bytes: u64,
    /// Seed for the loss draws (same seed, same loss pattern for the same packet sequence).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// SCHED_FIFO priority (1-99; 0 = normal scheduling). A kernel qdisc runs in softirq,
    /// ahead of every process; an emulator descheduled for 30 ms by a busy neighbour stalls
    /// the link instead, because packets are timestamped when read, not when they arrived.
    #[arg(long, default_value_t = 0)]
    rt_priority: i32,
    /// Every this many ms, print a `tick` line (bytes released, drops in the interval), so
    /// stalls of whatever uses the link show up; 0 = none.
    #[arg(long, default_value_t = 0)]
    timeline_ms: u64,
    /// Release packets up to this many microseconds before they are due, all that fall in
    /// the window at once, instead of sleeping until each one. At 1 Gbit/s a 1.2 KB packet
    /// is due every 10 us; one timer wake per packet cost the emulator a whole core, taken
    /// from the peers it measures on the same two cores. 50 us is under a switch's buffer
    /// burst and a NIC's interrupt coalescing; the rate over any longer span is unchanged.
    #[arg(long, default_value_t = 50)]
    release_slack_us: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn open_tun(name: &str) -> Result<OwnedFd> {
    let cname = CString::new(name).context("device name")?;
    let bytes = cname.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        bail!(
            "device name {name:?} longer than {} bytes",
            libc::IFNAMSIZ - 1
        );
    }
    // SAFETY: plain open(2) of a constant NUL-terminated path; the fd is owned right after.
    let raw = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error()).context("open /dev/net/tun");
    }
    // SAFETY: raw is a fresh, valid fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error()).context(format!("TUNSETIFF {name}"));
    }
    Ok(fd)
}

#[derive(Default)]
struct Out {
    packets_out: u64,
    bytes_out: u64,
    write_errors: u64,
    max_backlog_bytes: u64,
    max_in_flight: usize,
    /// How late releases were against their due time: shows whether the emulator kept up.
    late_max_ns: u64,
    late_sum_ns: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(0.0..=100.0).contains(&args.loss_pct) || args.delay_ms < 0.0 || args.rate_mbit < 0.0 {
        bail!("--loss-pct must be 0..100, --delay-ms and --rate-mbit non-negative");
    }
    let delay_ns = (args.delay_ms * 1e6).round() as Nanos;
    let rate_bps = (args.rate_mbit > 0.0).then_some(args.rate_mbit * 1e6);
    let queue_bytes = match (args.queue_bytes, rate_bps) {
        (0, Some(bps)) => ((bps / 8.0 * 4.0 * delay_ns as f64 / 1e9) as u64).max(128 << 10),
        (q, _) => q,
    };
    let shape = Shape {
        delay_ns,
        rate_bps,
        loss: args.loss_pct / 100.0,
        queue_bytes,
    };
    let fd = open_tun(&args.dev)?;
    if args.rt_priority > 0 {
        let param = libc::sched_param {
            sched_priority: args.rt_priority,
        };
        // SAFETY: sets this process's policy from a valid sched_param.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            return Err(io::Error::last_os_error()).context("SCHED_FIFO (needs root)");
        }
    }
    // The default 50 us timer slack would add itself to every release at 1 ms RTT.
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    println!(
        "{}",
        serde_json::json!({"event": "ready", "dev": args.dev, "delay_ms": args.delay_ms,
            "rate_mbit": args.rate_mbit, "loss_pct": args.loss_pct, "queue_bytes": queue_bytes})
    );

    let mut link = Link::new(shape, args.seed);
    let mut line = DelayLine::new();
    let mut out = Out::default();
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    let now = || start.elapsed().as_nanos() as Nanos;
    let raw = fd.as_raw_fd();
    let tick_ns = args.timeline_ms * 1_000_000;
    let slack_ns: Nanos = args.release_slack_us * 1000;
    let mut next_tick = tick_ns;
    let mut last = (0u64, 0u64, 0u64); // bytes out, queue drops, lost at the previous tick

    while !STOP.load(Ordering::Relaxed) {
        let t = now();
        while let Some(due) = line.next_due() {
            let Some(pkt) = line.pop_due(t + slack_ns) else {
                break;
            };
            let late = t.saturating_sub(due);
            out.late_max_ns = out.late_max_ns.max(late);
            out.late_sum_ns += late;
            // SAFETY: writes pkt.len() initialized bytes from a live buffer.
            let n = unsafe { libc::write(raw, pkt.as_ptr().cast(), pkt.len()) };
            if n < 0 {
                out.write_errors += 1;
            } else {
                out.packets_out += 1;
                out.bytes_out += pkt.len() as u64;
            }
            line.recycle(pkt);
        }
        if tick_ns > 0 && t >= next_tick {
            let c = link.counters;
            println!(
                "{}",
                serde_json::json!({"event": "tick", "t_ms": next_tick / 1_000_000,
                    "bytes_out": out.bytes_out - last.0, "queue_drops": c.queue_drops - last.1,
                    "lost": c.lost - last.2})
            );
            last = (out.bytes_out, c.queue_drops, c.lost);
            next_tick += tick_ns * ((t - next_tick) / tick_ns + 1);
        }

        // Sleep until the next release (or a while, to notice signals), or a packet arrives.
        // Until it is due, not until it enters the slack window: waking then would release it
        // alone, one wake per packet again, where waking at its due time releases the slack's
        // worth of packets behind it too.
        let mut wait_ns = line
            .next_due()
            .map_or(500_000_000, |d| d.saturating_sub(now()));
        if tick_ns > 0 {
            wait_ns = wait_ns.min(next_tick.saturating_sub(now()));
        }
        let ts = libc::timespec {
            tv_sec: (wait_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (wait_ns % 1_000_000_000) as libc::c_long,
        };
        let mut pfd = libc::pollfd {
            fd: raw,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd and timespec, both outliving the call.
        let ready = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err).context("ppoll");
        }
        if ready == 0 || pfd.revents & libc::POLLIN == 0 {
            continue;
        }
        // A bounded batch, so releases that fall due meanwhile are not starved.
        for _ in 0..256 {
            // SAFETY: reads at most buf.len() bytes into a live buffer.
            let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break; // EAGAIN: drained (other errors resurface on the next poll)
            }
            let pkt = &buf[..n as usize];
            let t = now();
            if let Verdict::Release(at) = link.offer(t, pkt.len()) {
                line.push(at, pkt);
                out.max_in_flight = out.max_in_flight.max(line.len());
                out.max_backlog_bytes = out.max_backlog_bytes.max(link.backlog_bytes(t));
            }
        }
    }

    let wall = start.elapsed().as_secs_f64();
    // SAFETY: getrusage fills one rusage struct that outlives the call.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
    let c = link.counters;
    let released = out.packets_out.max(1);
    println!(
        "{}",
        serde_json::json!({"event": "stats", "dev": args.dev, "packets_in": c.packets_in,
            "bytes_in": c.bytes_in, "lost": c.lost, "queue_drops": c.queue_drops,
            "packets_out": out.packets_out, "bytes_out": out.bytes_out,
            "write_errors": out.write_errors, "in_flight_at_exit": line.len(),
            "max_in_flight": out.max_in_flight, "max_backlog_bytes": out.max_backlog_bytes,
            "late_max_us": out.late_max_ns / 1000, "late_mean_us": out.late_sum_ns / released / 1000,
            "cpu_secs": cpu, "wall_secs": wall})
    );
    Ok(())
}
