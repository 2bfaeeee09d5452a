//! Command line of `raw-ceiling`: every transport knob the engine exposes in `RtcTuning`,
//! so a sweep here maps one-to-one onto engine defaults.

use clap::{Parser, ValueEnum};
use serde::Serialize;

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "raw-ceiling",
    about = "Minimal two-peer webrtc 0.21 data-channel throughput loop on 127.0.0.1 (no disk). \
             Prints one JSON line: bytes, secs, MB/s."
)]
pub(crate) struct Knobs {
    /// Total payload to move (suffixes: K, M, G, KiB, MiB, GiB; bare = bytes).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub bytes: u64,
    /// Size of each data-channel message. Unset knobs take the engine's `RtcTuning` defaults
    /// (so the ceiling is measured with Ferry's transport settings), or webrtc's own defaults
    /// with `--webrtc-defaults`.
    #[arg(long, value_parser = parse_size)]
    pub msg_size: Option<u64>,
    /// SCTP max-message-size advertised in SDP (webrtc: 64 KiB; capped at 256 KiB).
    #[arg(long, value_parser = parse_size)]
    pub max_message_size: Option<u64>,
    /// SCTP receive buffer (a_rwnd) in bytes (default: `RtcTuning`'s).
    #[arg(long, value_parser = parse_size)]
    pub recv_buffer: Option<u64>,
    /// SCTP MTU: bytes per outbound DATA packet (webrtc default 1191).
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Dedicated reactor pool size; 0 = connection driver runs on the ambient tokio runtime.
    #[arg(long)]
    pub reactor: Option<usize>,
    /// SO_RCVBUF/SO_SNDBUF of the UDP sockets; 0 = OS default (webrtc's behaviour).
    #[arg(long, value_parser = parse_size)]
    pub udp_buffer: Option<u64>,
    /// Fill unset knobs with webrtc's defaults instead of Ferry's.
    #[arg(long)]
    pub webrtc_defaults: bool,
    /// Leave glibc's malloc thresholds alone instead of applying the ones `ferry` sets
    /// (`ferry_core::tune_allocator`).
    #[arg(long)]
    pub malloc_defaults: bool,
    /// Buffered-amount high threshold: the sender pauses at or above it.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub high: u64,
    /// Buffered-amount low threshold: the sender resumes at or below it.
    #[arg(long, default_value = "512KiB", value_parser = parse_size)]
    pub low: u64,
    /// Use webrtc's built-in send back-pressure (blocking `send`) with this limit instead of
    /// the high/low threshold events.
    #[arg(long, value_parser = parse_size)]
    pub send_buffer_limit: Option<u64>,
    /// Parallel peer connections, the payload striped evenly across them.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Worker threads of the tokio runtime in each process (0 = tokio's default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// `two-process`: the receiver is a child process, SDP over its stdin/stdout (the engine's
    /// shape: each side has its own runtime and allocator). `in-process`: both peers share one.
    #[arg(long, value_enum, default_value_t = Mode::TwoProcess)]
    pub mode: Mode,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Internal: set on the child process that plays the receiving peer.
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub answerer: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Mode {
    TwoProcess,
    InProcess,
}

impl Knobs {
    /// Arguments that recreate these knobs in the child process.
    pub(crate) fn child_args(&self) -> Vec<String> {
        let mut args = vec![
            "--answerer".to_string(),
            format!("--bytes={}", self.bytes),
            "--webrtc-defaults".to_string(),
            format!("--threads={}", self.threads),
            format!("--high={}", self.high),
            format!("--low={}", self.low),
            format!("--connections={}", self.connections),
            format!("--timeout-secs={}", self.timeout_secs),
        ];
        if self.malloc_defaults {
            args.push("--malloc-defaults".to_string());
        }
        if let Some(v) = self.msg_size {
            args.push(format!("--msg-size={v}"));
        }
        if let Some(v) = self.reactor {
            args.push(format!("--reactor={v}"));
        }
        if let Some(v) = self.udp_buffer {
            args.push(format!("--udp-buffer={v}"));
        }
        if let Some(v) = self.max_message_size {
            args.push(format!("--max-message-size={v}"));
        }
        if let Some(v) = self.recv_buffer {
            args.push(format!("--recv-buffer={v}"));
        }
        if let Some(v) = self.mtu {
            args.push(format!("--mtu={v}"));
        }
        if let Some(v) = self.send_buffer_limit {
            args.push(format!("--send-buffer-limit={v}"));
        }
        args
    }

    /// Fill every unset knob, so the child (which gets `--webrtc-defaults`) and the report see
    /// exactly what ran.
    pub(crate) fn resolve(&mut self) {
        if self.webrtc_defaults {
            self.msg_size.get_or_insert(64 * 1024);
            self.reactor.get_or_insert(0);
            self.udp_buffer.get_or_insert(0);
            return;
        }
        let t = ferry_core::RtcTuning::default();
        self.msg_size.get_or_insert(t.max_message_size as u64);
        self.max_message_size
            .get_or_insert(t.max_message_size as u64);
        self.recv_buffer.get_or_insert(t.sctp_receive_buffer as u64);
        if self.mtu.is_none() {
            self.mtu = t.mtu.map(|m| m as u32);
        }
        self.reactor
            .get_or_insert(if t.dedicated_reactor { 2 } else { 0 });
        self.send_buffer_limit.get_or_insert(t.buffered_high as u64);
        self.udp_buffer.get_or_insert(t.udp_buffer as u64);
    }

    pub(crate) fn msg(&self) -> u64 {
        self.msg_size.unwrap_or(64 * 1024)
    }

    /// Bytes carried by connection `index`: an even split, the remainder on the first.
    pub(crate) fn share(&self, index: usize) -> u64 {
        let n = self.connections.max(1) as u64;
        let base = self.bytes / n;
        if index == 0 {
            base + self.bytes % n
        } else {
            base
        }
    }
}

/// Parses `65536`, `64K`, `64KiB`, `1.5G`, `1GiB`. Decimal suffixes (K, M, G) mean powers of
/// 1024 too: nobody sizing a buffer means 1000.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("bad size unit {other:?} in {s:?}")),
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5M"), Ok(3 << 19));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn shares_cover_every_byte() {
        let mut k = Knobs::parse_from(["raw-ceiling", "--bytes=1000003", "--connections=4"]);
        let total: u64 = (0..4).map(|i| k.share(i)).sum();
        assert_eq!(total, 1_000_003);
        k.connections = 1;
        assert_eq!(k.share(0), 1_000_003);
    }

    #[test]
    fn child_args_round_trip() {
        let k = Knobs::parse_from([
            "raw-ceiling",
            "--bytes=16MiB",
            "--msg-size=256KiB",
            "--max-message-size=256KiB",
            "--recv-buffer=4MiB",
            "--mtu=1400",
            "--reactor=1",
            "--udp-buffer=1MiB",
            "--send-buffer-limit=8MiB",
            "--connections=2",
            "--malloc-defaults",
        ]);
        let mut argv = vec!["raw-ceiling".to_string()];
        argv.extend(k.child_args());
        let c = Knobs::parse_from(argv);
        assert!(c.answerer);
        assert_eq!(c.bytes, k.bytes);
        assert_eq!(c.msg_size, k.msg_size);
        assert_eq!(c.udp_buffer, k.udp_buffer);
        assert_eq!(c.max_message_size, k.max_message_size);
        assert_eq!(c.recv_buffer, k.recv_buffer);
        assert_eq!(c.mtu, k.mtu);
        assert_eq!(c.reactor, k.reactor);
        assert_eq!(c.send_buffer_limit, k.send_buffer_limit);
        assert_eq!(c.connections, k.connections);
        assert!(c.malloc_defaults);
    }

    #[test]
    fn unset_knobs_take_the_engine_defaults() {
        let mut k = Knobs::parse_from(["raw-ceiling", "--recv-buffer=2MiB"]);
        k.resolve();
        let t = ferry_core::RtcTuning::default();
        assert_eq!(k.recv_buffer, Some(2 * 1024 * 1024));
        assert_eq!(k.max_message_size, Some(t.max_message_size as u64));
        assert_eq!(k.send_buffer_limit, Some(t.buffered_high as u64));
        assert_eq!(k.udp_buffer, Some(t.udp_buffer as u64));
        let mut w = Knobs::parse_from(["raw-ceiling", "--webrtc-defaults"]);
        w.resolve();
        assert_eq!((w.max_message_size, w.send_buffer_limit), (None, None));
        assert_eq!((w.msg(), w.udp_buffer), (64 * 1024, Some(0)));
    }
}
