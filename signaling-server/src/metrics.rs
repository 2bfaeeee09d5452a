//! Counters rendered in the Prometheus text format.
//!
//! Plain atomics per server instance rather than the global `metrics` recorder: the library is
//! embedded (several servers in one test process, the app's LAN mode), and a process-global
//! recorder would mix their numbers.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_proto::signal::ErrorCode;

/// Relayed message kinds, in label order.
pub const RELAY_KINDS: [&str; 4] = ["pake", "offer", "answer", "ice-candidate"];

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub rooms_created: AtomicU64,
    pub rooms_expired: AtomicU64,
    pub handshake_failures: AtomicU64,
    relayed: [AtomicU64; 4],
    rejects: [AtomicU64; ErrorCode::ALL.len()],
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn relayed(&self, kind: usize) {
        if let Some(a) = self.relayed.get(kind) {
            inc(a);
        }
    }

    pub fn reject(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            inc(&self.rejects[i]);
        }
    }

    pub fn rejects_of(&self, code: ErrorCode) -> u64 {
        ErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .map(|i| self.rejects[i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    pub fn relayed_total(&self) -> u64 {
        self.relayed.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    /// The exposition text; `rooms` and `peers` are gauges read from the registry by the caller.
    pub fn render(&self, rooms: usize, peers: usize) -> String {
        let mut s = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one("ferry_signal_rooms", "gauge", "Open rooms.", rooms as u64);
        one(
            "ferry_signal_peers",
            "gauge",
            "Peers attached to a room.",
            peers as u64,
        );
        one(
            "ferry_signal_connections",
            "gauge",
            "Open WebSocket connections.",
            get(&self.connections),
        );
        one(
            "ferry_signal_rooms_created_total",
            "counter",
            "Rooms created.",
            get(&self.rooms_created),
        );
        one(
            "ferry_signal_rooms_expired_total",
            "counter",
            "Rooms that reached the end of their lifetime.",
            get(&self.rooms_expired),
        );
        one(
            "ferry_signal_handshake_failures_total",
            "counter",
            "Failed handshakes reported by hosts.",
            get(&self.handshake_failures),
        );
        let _ = writeln!(
            s,
            "# HELP ferry_signal_messages_relayed_total Opaque messages relayed between peers.\n\
             # TYPE ferry_signal_messages_relayed_total counter"
        );
        for (k, a) in RELAY_KINDS.iter().zip(&self.relayed) {
            let _ = writeln!(
                s,
                "ferry_signal_messages_relayed_total{{type=\"{k}\"}} {}",
                get(a)
            );
        }
        let _ = writeln!(
            s,
            "# HELP ferry_signal_rejects_total Requests refused, by error code.\n\
             # TYPE ferry_signal_rejects_total counter"
        );
        for (c, a) in ErrorCode::ALL.iter().zip(&self.rejects) {
            let _ = writeln!(s, "ferry_signal_rejects_total{{reason=\"{c}\"}} {}", get(a));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::default();
        m.relayed(1);
        m.relayed(1);
        m.reject(ErrorCode::RateLimited);
        let t = m.render(3, 5);
        assert!(t.contains("ferry_signal_rooms 3\n"), "{t}");
        assert!(t.contains("ferry_signal_peers 5\n"));
        assert!(t.contains("ferry_signal_messages_relayed_total{type=\"offer\"} 2\n"));
        assert!(t.contains("ferry_signal_rejects_total{reason=\"rate-limited\"} 1\n"));
        assert!(t.contains("ferry_signal_rejects_total{reason=\"room-full\"} 0\n"));
        assert_eq!(m.relayed_total(), 2);
        assert_eq!(m.rejects_of(ErrorCode::RateLimited), 1);
    }
}
