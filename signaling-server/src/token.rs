//! Host tokens: 256 random bits shown to the host once; the server keeps only a hash.
//!
//! The token is not a password: with 256 bits of entropy nobody guesses it, so a fast hash is
//! all it needs (the hash only has to make a copied database useless, and a preimage of
//! BLAKE3 is out of reach). A password hash here cost memory and CPU per create for nothing
//! (argon2 at 8 MiB a hash: 428 MB RSS after a create burst).
//!
//! Rows written by older servers hold argon2id PHC strings (`$argon2...`); they are still
//! verified (never created) so a host does not lose its room across an upgrade. Those rows
//! expire with their rooms (24 h at most), after which the argon2 path is dead code.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

const PREFIX: &str = "blake3:";

/// A fresh host token (URL-safe base64 of 32 random bytes).
pub fn generate() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The stored form of `token`: `blake3:<hex>`.
pub fn hash(token: &str) -> String {
    format!("{PREFIX}{}", blake3::hash(token.as_bytes()).to_hex())
}

/// Whether verifying `stored` needs the slow legacy path (run it off the async threads).
pub fn is_legacy(stored: &str) -> bool {
    stored.starts_with("$argon2")
}

/// Constant-time check of `token` against a stored hash; false on any malformed input.
pub fn verify(token: &str, stored: &str) -> bool {
    if let Some(hex) = stored.strip_prefix(PREFIX) {
        return match blake3::Hash::from_hex(hex) {
            // `blake3::Hash` compares in constant time.
            Ok(want) => blake3::hash(token.as_bytes()) == want,
            Err(_) => false,
        };
    }
    if is_legacy(stored) {
        return verify_argon2(token, stored);
    }
    false
}

fn verify_argon2(token: &str, phc: &str) -> bool {
    // The parameters older servers hashed with; the PHC string's own ones take precedence.
    let params = Params::new(8 * 1024, 1, 1, None).unwrap_or_default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    match PasswordHash::new(phc) {
        Ok(h) => argon.verify_password(token.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_token() {
        let t = generate();
        assert_eq!(t.len(), 43);
        assert_ne!(t, generate());
        let h = hash(&t);
        assert!(h.starts_with("blake3:"));
        assert_eq!(h.len(), 7 + 64);
        assert!(!h.contains(&t));
        assert!(verify(&t, &h));
        assert!(!verify(&generate(), &h));
        assert!(!verify(&t, "not a hash"));
        assert!(!verify(&t, "blake3:zz"));
        assert!(!verify(&t, ""));
        assert!(!is_legacy(&h));
    }

    /// A row an older server wrote (argon2id, m = 8 MiB, t = 1, p = 1) still verifies.
    #[test]
    fn legacy_argon2_rows_still_verify() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let t = generate();
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(t.as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert!(is_legacy(&phc));
        assert!(verify(&t, &phc));
        assert!(!verify(&generate(), &phc));
        assert!(!verify(&t, "$argon2id$broken"));
    }
}
