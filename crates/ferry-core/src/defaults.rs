//! Every default and tuning number of the engine, in one place, so a change to one is made
//! once and read beside its neighbours. Plain constants: option structs take their
//! `Default`/`new` values from here, and [`Tuning`] is what a binary may override from its
//! environment (the library itself never reads the environment; see [`Tuning::from_vars`]).
//!
//! Sections: connecting, links lost and found, the data channel, TURN over TCP, the
//! signaling client, the resume store. Limits that are part of a protocol or a format stay
//! with it (`ferry_proto`, the path rules in `fsio`, TURN framing in `turn_tcp`).

use std::time::Duration;

use crate::rtc::CongestionControl;

// Connecting

/// Bound on each wait for the other side while connecting (signaling replies, ICE, DTLS,
/// hello): [`crate::ConnectConfig::connect_timeout`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Failed password guesses the host takes before it gives the room up by itself; the same
/// as the server's default room lock ([`crate::ConnectConfig::guess_limit`]).
pub const GUESS_LIMIT: u32 = 3;

/// After the other peer leaves the signaling room mid-ICE (a guest may close its socket as
/// soon as its own side is open), how long we still wait for our channel to open.
pub const PEER_LEFT_GRACE: Duration = Duration::from_secs(5);

/// How long closing a room waits for the server to confirm.
pub const ROOM_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Join attempts a receiver makes before its first link, when the attempts fail in ways a
/// second try can cure (`api::should_rejoin`).
pub const FIRST_CONNECT_TRIES: u32 = 3;

/// Pause between two join attempts of a receiver.
pub const REJOIN_PAUSE: Duration = Duration::from_millis(500);

// Links lost and found

/// How long either side keeps trying after the link drops (the sender keeps its room, the
/// receiver re-joins it) before the transfer fails with `peer-gone`.
pub const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// How long closing a data channel waits for queued frames to be acknowledged before
/// tearing the connection down.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

// The data channel. Measured on loopback and shaped links (docs/BENCHMARKS.md, "Raw
// ceiling"; docs/BENCHMARKS-HISTORY.md, "New `RtcTuning::default()`"); the benchmark knobs
// in [`Tuning::from_vars`] override them.

/// Largest message accepted and advertised (SCTP max-message-size), 64 KiB..=256 KiB: fewer,
/// larger messages lift the raw channel ceiling. Both peers must agree.
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// SCTP receive window (rwnd); caps one association at rwnd / RTT (4 MiB: 40 MB/s at
/// 100 ms). With upstream rtc-sctp a window this large let slow start overshoot a router
/// queue into seconds of timeouts; the vendored patch (vendor/README.md) leaves slow start
/// on rising RTT and recovers bursts in a round trip. Measured: 100 Mbit/s, 40 ms link 84 %
/// of nominal (as 1 MiB); loopback 1 GiB +12 % over 1 MiB; 16 MiB was no faster on loopback
/// and holds four times the memory when the reader lags.
pub const SCTP_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// The sender pauses once this many bytes are outstanding on the channel.
pub const BUFFERED_HIGH: usize = 4 * 1024 * 1024;

/// The channel's low-water mark: half the high one.
pub const BUFFERED_LOW: usize = BUFFERED_HIGH / 2;

/// Frames queued in each direction of a [`crate::link::Link`].
pub const LINK_CAPACITY: usize = 64;

/// `SO_RCVBUF`/`SO_SNDBUF` for the connection's UDP sockets: stops kernel drops.
pub const UDP_BUFFER: usize = 4 * 1024 * 1024;

/// Pause between ICE connectivity checks; also how soon webrtc sends each handshake step,
/// so it sets the time to connect.
pub const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Run each connection's driver on a dedicated reactor thread (measured faster).
pub const DEDICATED_REACTOR: bool = true;

/// SCTP congestion controller: BBR, model-based and paced (vendor/README.md). Reno halves
/// its window on every random loss and carried 1.7 % of a 50 Mbit/s, 150 ms, 0.5 %-loss
/// link; BBR matches it on loopback and clean links (docs/BENCHMARKS.md, "Global paths").
pub const CONGESTION_CONTROL: CongestionControl = CongestionControl::Bbr;

/// Largest SCTP packet path MTU discovery probes for (vendor/README.md); `0` keeps every
/// association at 1191 bytes, which fits any path (`FERRY_SCTP_MAX_MTU=0`). 1400 fits every
/// 1500-byte path, 8192 and 16384 (the largest DTLS record) only loopback and jumbo-frame
/// links. Only direct paths probe: a relayed connection holds it (`rtc::new_peer`).
pub const SCTP_MAX_PROBE_MTU: u32 = 16384;

/// Compress chunks that shrink (the sender tries each one).
pub const COMPRESS: bool = true;

// TURN over TCP/TLS: the local bridge that carries a UDP-only stack to a `turns:` server

/// How long connecting (TCP, and TLS on top) to the TURN server may take.
pub const TURN_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Datagrams queued per bridged connection while it connects or the stream is slow.
pub const TURN_QUEUE: usize = 1024;

/// How long a datagram may wait for room in a full queue before it is dropped, as UDP would
/// drop it (TURN, ICE and SCTP retransmit).
pub const TURN_SEND_WAIT: Duration = Duration::from_millis(500);

/// Socket buffers asked for on the bridge's UDP socket (the kernel may grant less): the
/// same as the connection's own.
pub const TURN_UDP_BUFFER: usize = UDP_BUFFER;

// What is sent

/// Largest text snippet (`ferry send --text`, the app's text box), bytes of UTF-8. Both sides
/// hold it: the sender refuses before opening a room, the receiver refuses a peer that sends
/// more (`too-large`). Enough for a long message or a config file; files go as files.
pub const TEXT_MAX_BYTES: usize = 64 * 1024;

// Signaling client

/// First delay between signaling reconnect attempts; it doubles up to
/// [`SIGNAL_BACKOFF_MAX`].
pub const SIGNAL_BACKOFF_FIRST: Duration = Duration::from_millis(100);

/// Longest delay between signaling reconnect attempts.
pub const SIGNAL_BACKOFF_MAX: Duration = Duration::from_secs(5);

// Resume store

/// How long a store write waits for another process holding the database.
pub const STORE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a binary may tune from outside: the data channel and compression. The defaults are
/// the constants above; the binaries (`ferry`, the app) fill it with
/// [`Tuning::from_vars`] over their environment, tests and embedders build it in code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// Data-channel settings handed to every connection.
    pub rtc: crate::RtcTuning,
    /// Whether the sender compresses chunks that shrink.
    pub compress: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            rtc: crate::RtcTuning::default(),
            compress: COMPRESS,
        }
    }
}

impl Tuning {
    /// The defaults with the benchmark knobs (docs/BENCHMARKS.md) applied, `get` looking a
    /// variable up (a binary passes `|k| std::env::var(k).ok()`): `FERRY_MAX_MESSAGE`,
    /// `FERRY_SCTP_RWND`, `FERRY_BUFFERED_HIGH` (the low mark follows at half),
    /// `FERRY_UDP_BUFFER`, `FERRY_DEDICATED_REACTOR` (`1` on, anything else off),
    /// `FERRY_SCTP_CC` (`reno`/`bbr`), `FERRY_SCTP_MAX_MTU` (path MTU probing up to that size; `0` none),
    /// `FERRY_AGREED_CHANNEL` (`0`: DCEP's in-band open, as older builds) and `FERRY_COMPRESS` (`0` off). A value that does not
    /// parse is ignored and leaves the default.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        fn num<T: std::str::FromStr>(v: Option<String>) -> Option<T> {
            v.and_then(|v| v.parse().ok())
        }
        let mut t = Tuning::default();
        let r = &mut t.rtc;
        if let Some(v) = num(get("FERRY_MAX_MESSAGE")) {
            r.max_message_size = v;
        }
        if let Some(v) = num(get("FERRY_SCTP_RWND")) {
            r.sctp_receive_buffer = v;
        }
        if let Some(v) = num::<usize>(get("FERRY_BUFFERED_HIGH")) {
            r.buffered_high = v;
            r.buffered_low = v / 2;
        }
        if let Some(v) = num(get("FERRY_UDP_BUFFER")) {
            r.udp_buffer = v;
        }
        if let Some(v) = get("FERRY_DEDICATED_REACTOR") {
            r.dedicated_reactor = v == "1";
        }
        if let Some(cc) = crate::rtc::congestion_control_knob(get("FERRY_SCTP_CC").as_deref()) {
            r.congestion_control = cc;
        }
        if let Some(v) = num(get("FERRY_SCTP_MAX_MTU")) {
            r.max_probe_mtu = v;
        }
        if let Some(v) = get("FERRY_AGREED_CHANNEL") {
            r.agreed_channel = v != "0";
        }
        if let Some(v) = get("FERRY_COMPRESS") {
            t.compress = v != "0";
        }
        t
    }
}

// Transfer (the data phase: `transfer`; its drivers and session machines read these)

/// Largest frame a host sends behind its hello before the guest's hello says what it takes:
/// the least any Ferry peer announces (native and browser peers clamp theirs to at least this).
pub const OPENING_FRAME: usize = 16 * 1024;

/// Most frames a host sends behind its hello before the guest's is in. With the hello they
/// stay under what a receiver holds while its channel opens (16 messages, `rtc::wait_open`).
pub const OPENING_FRAMES: usize = 8;

/// Unacknowledged bytes the sender may have out. Also the receiver's fsync/checkpoint
/// interval, so a crash loses (and a resume re-sends) at most one window.
pub const WINDOW: u64 = 8 * 1024 * 1024;

/// The receiver acknowledges after this many written bytes (and at each file's end).
pub const ACK_EVERY: u64 = 1024 * 1024;

/// Reads (sender) or writes (receiver) queued to the disk thread.
pub const PIPELINE: usize = 16;

/// How long one chunk should occupy the link. Large chunks cost less per byte (framing,
/// hashing calls, channel hops); on a slow link they make progress lurch and a re-sent chunk
/// expensive, so the sender aims for chunks of about this much link time.
pub const CHUNK_TIME: Duration = Duration::from_millis(20);

/// Least time between two progress events of a transfer (a file's end always reports).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// After the sender's `Done`, how long it waits for the receiver's: long enough for the
/// receiver to read ours before our end of the link goes, short enough that a receiver
/// which only hangs up (its close lost) does not hold us.
pub const DONE_WAIT: Duration = Duration::from_secs(5);

/// On the way out of a transfer (cancel, fatal error), how long we try to hand the peer
/// what is queued and why we stop: a peer that no longer reads cannot hold us.
pub const PARTING_TIMEOUT: Duration = Duration::from_secs(2);

/// Verified files the receiver moves into place at once (fsync, rename): a journaling file
/// system commits concurrent fsyncs together.
pub const FINISHERS: usize = 4;

/// Window checkpoints (fsync, then the stored offset) queued behind the writer.
pub const CHECKPOINT_QUEUE: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn no_variables_means_the_defaults() {
        assert_eq!(Tuning::from_vars(|_| None), Tuning::default());
        let t = Tuning::default();
        assert!(t.compress);
        assert_eq!(t.rtc.max_message_size, MAX_MESSAGE_SIZE);
        assert_eq!(t.rtc.buffered_low, BUFFERED_LOW);
        assert_eq!(t.rtc.congestion_control, CongestionControl::Bbr);
    }

    #[test]
    fn every_knob_is_read_as_before() {
        let t = Tuning::from_vars(vars(&[
            ("FERRY_MAX_MESSAGE", "65536"),
            ("FERRY_SCTP_RWND", "1048576"),
            ("FERRY_BUFFERED_HIGH", "1000"),
            ("FERRY_UDP_BUFFER", "0"),
            ("FERRY_DEDICATED_REACTOR", "0"),
            ("FERRY_SCTP_CC", "reno"),
            ("FERRY_SCTP_MAX_MTU", "1400"),
            ("FERRY_COMPRESS", "0"),
        ]));
        assert_eq!(t.rtc.max_message_size, 65536);
        assert_eq!(t.rtc.sctp_receive_buffer, 1 << 20);
        assert_eq!((t.rtc.buffered_high, t.rtc.buffered_low), (1000, 500));
        assert_eq!(t.rtc.udp_buffer, 0);
        assert!(!t.rtc.dedicated_reactor);
        assert_eq!(t.rtc.congestion_control, CongestionControl::Reno);
        assert_eq!(t.rtc.max_probe_mtu, 1400);
        assert!(!t.compress);
    }

    /// Settings come in at the edge: the library's own code never reads the environment
    /// (tests may).
    #[test]
    fn the_library_never_reads_the_environment() {
        fn walk(dir: &std::path::Path, hits: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, hits);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let src = std::fs::read_to_string(&p).unwrap();
                    let code = src.split("#[cfg(test)]").next().unwrap_or("");
                    for (i, l) in code.lines().enumerate() {
                        let l = l.trim_start();
                        if !l.starts_with("//") && l.contains("env::var") {
                            hits.push(format!("{}:{}: {l}", p.display(), i + 1));
                        }
                    }
                }
            }
        }
        let mut hits = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut hits,
        );
        assert!(hits.is_empty(), "{hits:#?}");
    }

    #[test]
    fn values_that_do_not_parse_leave_the_default() {
        let t = Tuning::from_vars(vars(&[
            ("FERRY_MAX_MESSAGE", "lots"),
            ("FERRY_SCTP_CC", "cubic"),
            ("FERRY_COMPRESS", "1"),
        ]));
        assert_eq!(t, Tuning::default());
    }
}
