//! Per-address bookkeeping, pure: which key an address is counted under, and a counter of
//! what each key holds right now (sockets, rooms).
//!
//! Keys live in memory only, for as long as their count is non-zero; they are never logged
//! nor stored.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// What per-address limits are keyed on. An IPv6 host usually gets a whole /64 (and can pick
/// any address in it for free), so an IPv6 address counts as its /64; an IPv4-mapped IPv6
/// address counts as the IPv4 address it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpKey(IpAddr);

impl IpKey {
    pub fn of(ip: IpAddr) -> IpKey {
        match ip.to_canonical() {
            v4 @ IpAddr::V4(_) => IpKey(v4),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

impl std::fmt::Display for IpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Concurrent holdings per key, with a cap. Keys are dropped when their count reaches zero,
/// so memory follows what is held now, not who ever came.
#[derive(Debug, Default)]
pub struct PerKey {
    held: HashMap<IpKey, usize>,
}

impl PerKey {
    /// Take one slot for `key` unless it already holds `cap`.
    pub fn try_take(&mut self, key: IpKey, cap: usize) -> bool {
        let n = self.held.entry(key).or_insert(0);
        if *n >= cap {
            if *n == 0 {
                self.held.remove(&key);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// Whether `key` could take another slot.
    pub fn has_room(&self, key: IpKey, cap: usize) -> bool {
        self.held(key) < cap
    }

    /// Give one slot back.
    pub fn give_back(&mut self, key: IpKey) {
        if let Some(n) = self.held.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(&key);
            }
        }
    }

    pub fn held(&self, key: IpKey) -> usize {
        self.held.get(&key).copied().unwrap_or(0)
    }

    /// Number of keys holding anything.
    pub fn keys(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> IpKey {
        IpKey::of(s.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:1234::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.7"), k("192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
        assert_eq!(k("::1"), k("::2"));
        assert_eq!(
            IpKey::of("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            k("2001:db8:1:2::")
        );
    }

    #[test]
    fn counter_caps_and_forgets_empty_keys() {
        let mut c = PerKey::default();
        let a = k("2001:db8::1");
        let a2 = k("2001:db8::2");
        let b = k("192.0.2.1");
        assert!(c.try_take(a, 2));
        assert!(c.try_take(a2, 2), "same /64, second slot");
        assert!(!c.try_take(a, 2), "cap reached for the /64");
        assert!(!c.has_room(a2, 2));
        assert!(c.try_take(b, 2));
        c.give_back(a);
        assert!(c.try_take(a2, 2));
        c.give_back(a);
        c.give_back(a);
        c.give_back(a);
        assert_eq!(c.held(a), 0);
        c.give_back(b);
        assert_eq!(c.keys(), 0);
        assert!(!c.try_take(b, 0));
        assert_eq!(c.keys(), 0);
    }
}
