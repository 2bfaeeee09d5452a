//! Room passwords: what the two users share out of band and feed into the PAKE.
//!
//! Generated passwords are 4 words from `petname`'s medium lists (adverb adverb adjective
//! noun, e.g. `gladly-wildly-brave-otter`), about 41 bits (see [`Password::GENERATED_BITS`]
//! and the test that recomputes it). That is plenty for an online-only guess: SPAKE2 gives an
//! attacker one guess per handshake and the server locks the room after a few failures.

use std::fmt;

use petname::Generator;
use zeroize::Zeroizing;

/// A room password. Never logged: `Debug` prints `***`.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

/// Words in a generated password.
const GENERATED_WORDS: u8 = 4;

impl Password {
    /// Lower bound of the entropy of [`Password::generate`], in bits (checked by a test).
    pub const GENERATED_BITS: u32 = 40;

    /// A fresh random password from the OS-seeded thread RNG.
    pub fn generate() -> Password {
        let words = petname::Petnames::medium();
        let mut rng = rand::thread_rng();
        let name = words
            .generate(&mut rng, GENERATED_WORDS, "-")
            // The medium lists are compiled in and non-empty; fall back to random hex anyway.
            .unwrap_or_else(|| {
                use rand::RngCore;
                let mut b = [0u8; 8];
                rng.fill_bytes(&mut b);
                data_encoding::HEXLOWER.encode(&b)
            });
        Password(Zeroizing::new(name))
    }

    /// A password the user chose or typed.
    pub fn new(s: impl Into<String>) -> Password {
        Password(Zeroizing::new(s.into()))
    }

    /// The password as typed. Leading/trailing whitespace is not part of it (see
    /// `Password::pake_bytes`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What goes into SPAKE2: the password with surrounding whitespace trimmed, so a copy/paste
    /// with a trailing newline still matches.
    pub(crate) fn pake_bytes(&self) -> &[u8] {
        self.0.trim().as_bytes()
    }

    /// Nothing but whitespace.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        self.pake_bytes() == other.pake_bytes()
    }
}
impl Eq for Password {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_have_enough_entropy() {
        let card = petname::Petnames::medium().cardinality(GENERATED_WORDS);
        let bits = (card as f64).log2();
        assert!(
            bits >= Password::GENERATED_BITS as f64,
            "only {bits:.1} bits"
        );
        let p = Password::generate();
        assert_eq!(p.expose().split('-').count(), GENERATED_WORDS as usize);
        let many: std::collections::HashSet<String> = (0..2000)
            .map(|_| Password::generate().expose().to_owned())
            .collect();
        assert_eq!(many.len(), 2000);
    }

    #[test]
    fn debug_hides_the_secret() {
        let p = Password::new("correct-horse");
        assert_eq!(format!("{p:?}"), "***");
        assert_eq!(p.expose(), "correct-horse");
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(Password::new(" a-b\n"), Password::new("a-b"));
        assert_ne!(Password::new("a-b"), Password::new("a-c"));
        assert!(Password::new("  ").is_empty());
    }
}
