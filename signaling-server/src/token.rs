//! Host tokens: 256 random bits shown to the host once; the server keeps only an argon2id hash.
//!
//! The token is not a password: with 256 bits of entropy nobody guesses it, so the hash's only
//! job is to make a copied database useless. That is why the argon2 cost is modest (8 MiB,
//! one pass): it keeps room creation cheap under load without weakening anything.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

fn hasher() -> Argon2<'static> {
    // Constant, valid parameters: the fallback is never taken, but no panic path either.
    let params = Params::new(8 * 1024, 1, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A fresh host token (URL-safe base64 of 32 random bytes).
pub fn generate() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// argon2id PHC string of `token`, with a random salt.
pub fn hash(token: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(hasher().hash_password(token.as_bytes(), &salt)?.to_string())
}

/// Constant-time check of `token` against a stored PHC string; false on any malformed input.
pub fn verify(token: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => hasher().verify_password(token.as_bytes(), &h).is_ok(),
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
        let h = hash(&t).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains(&t));
        assert!(verify(&t, &h));
        assert!(!verify(&generate(), &h));
        assert!(!verify(&t, "not a hash"));
    }
}
