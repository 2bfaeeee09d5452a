//! Room identifiers: server-assigned, random, human-typable.
//!
//! 10 symbols of Crockford base32 = 50 bits of randomness, shown as `ABCDE-FGHJK`.
//! Crockford's alphabet has no I, L, O or U, and its decoding rules fold the
//! look-alikes (`O`→`0`, `I`/`L`→`1`), so a room id read aloud or off a screen
//! parses however it is typed.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Number of base32 symbols in a room id.
pub const ROOM_ID_LEN: usize = 10;
/// Bits of randomness in a room id.
pub const ROOM_ID_BITS: u32 = 5 * ROOM_ID_LEN as u32;

/// A room id, stored in canonical form (10 upper-case Crockford symbols, no separator).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId([u8; ROOM_ID_LEN]);

/// Why a string is not a room id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomIdError {
    /// Too few or too many symbols once separators are dropped.
    #[error("a room id has {expected} letters or digits, this one has {found}")]
    Length {
        /// How many a room id has.
        expected: usize,
        /// How many this one has.
        found: usize,
    },
    /// A character outside the alphabet.
    #[error("'{0}' cannot appear in a room id")]
    BadChar(char),
}

impl RoomId {
    /// A fresh random room id from the OS-seeded thread RNG.
    pub fn random() -> Self {
        Self::random_from(&mut rand::thread_rng())
    }

    /// A random room id drawn from `rng`.
    pub fn random_from<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut out = [0u8; ROOM_ID_LEN];
        for b in &mut out {
            *b = ALPHABET[rng.gen_range(0..32)];
        }
        RoomId(out)
    }

    /// Canonical form without separator, e.g. `ABCDEFGHJK`.
    pub fn as_str(&self) -> &str {
        // The bytes only ever come from ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Display form with a hyphen in the middle, e.g. `ABCDE-FGHJK`.
    pub fn display(&self) -> String {
        let s = self.as_str();
        format!("{}-{}", &s[..5], &s[5..])
    }
}

fn decode_symbol(c: char) -> Result<u8, RoomIdError> {
    let up = c.to_ascii_uppercase();
    let folded = match up {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    if folded.is_ascii() && ALPHABET.contains(&(folded as u8)) {
        Ok(folded as u8)
    } else {
        Err(RoomIdError::BadChar(c))
    }
}

impl FromStr for RoomId {
    type Err = RoomIdError;

    /// Accepts any case, hyphens and spaces anywhere, and Crockford look-alikes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; ROOM_ID_LEN];
        let mut n = 0usize;
        for c in s.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let sym = decode_symbol(c)?;
            if n < ROOM_ID_LEN {
                out[n] = sym;
            }
            n += 1;
        }
        if n != ROOM_ID_LEN {
            return Err(RoomIdError::Length {
                expected: ROOM_ID_LEN,
                found: n,
            });
        }
        Ok(RoomId(out))
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.display())
    }
}

impl Serialize for RoomId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display())
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_and_parse_agree() {
        let id: RoomId = "abcde-fghjk".parse().unwrap();
        assert_eq!(id.as_str(), "ABCDEFGHJK");
        assert_eq!(id.to_string(), "ABCDE-FGHJK");
    }

    #[test]
    fn look_alikes_fold() {
        let a: RoomId = "O1IL0-ooooo".parse().unwrap();
        assert_eq!(a.as_str(), "0111000000");
        let b: RoomId = " 0111 0000 00 ".parse().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            "ABCDE".parse::<RoomId>(),
            Err(RoomIdError::Length {
                expected: 10,
                found: 5
            })
        );
        assert_eq!(
            "ABCDE-FGHJU".parse::<RoomId>(),
            Err(RoomIdError::BadChar('U'))
        );
        assert!("ABCDE-FGHJ!".parse::<RoomId>().is_err());
        assert!("ÅBCDE-FGHJK".parse::<RoomId>().is_err());
        assert!("ABCDE-FGHJK-1".parse::<RoomId>().is_err());
    }

    #[test]
    fn enough_entropy() {
        const { assert!(ROOM_ID_BITS >= 40) };
        let ids: std::collections::HashSet<RoomId> =
            (0..10_000).map(|_| RoomId::random()).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn serde_uses_display_form() {
        let id: RoomId = "ABCDEFGHJK".parse().unwrap();
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, "\"ABCDE-FGHJK\"");
        let back: RoomId = serde_json::from_str("\"abcdefghjk\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<RoomId>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn roundtrip_any_random(seed in any::<u64>()) {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let id = RoomId::random_from(&mut rng);
            prop_assert_eq!(id.to_string().parse::<RoomId>().unwrap(), id);
            prop_assert_eq!(id.as_str().to_lowercase().parse::<RoomId>().unwrap(), id);
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<RoomId>();
        }
    }
}
