//! ferry-core's (and ferry-signal's) pure modules that take untrusted input, compiled from
//! their own source files.
//!
//! Depending on ferry-core itself would build webrtc, the signaling server and SQLite with
//! fuzzing instrumentation: over 7 minutes from clean on CI's 2 cores, for code none of these
//! targets reach. These modules only need the small crates listed in Cargo.toml, so the fuzz
//! targets exercise exactly the engine's source at a fraction of the build. If one of these
//! files starts using another engine module, mount that module here too (or the build will
//! say which path is missing).
#![allow(dead_code, unused_imports)]

#[path = "../../crates/ferry-core/src/crypto.rs"]
pub mod crypto;
#[path = "../../crates/ferry-core/src/fsio/mod.rs"]
pub mod fsio;
#[path = "../../crates/ferry-core/src/password.rs"]
pub mod password;

// The signaling server's pure frame checks: relay caps and confirm-tag detection, and the
// per-run password-guess counter they feed.
#[path = "../../signaling-server/src/guess.rs"]
pub mod guess;
#[path = "../../signaling-server/src/relay.rs"]
pub mod relay;

#[path = "../../crates/ferry-core/src/transfer/compress.rs"]
#[doc(hidden)]
pub mod compress_src;
#[path = "../../crates/ferry-core/src/transfer/tree.rs"]
#[doc(hidden)]
pub mod tree_src;

/// Same paths as in ferry-core (`crate::transfer::tree` is how fsio names the tree).
pub mod transfer {
    pub use super::compress_src as compress;
    pub use super::tree_src as tree;
}
