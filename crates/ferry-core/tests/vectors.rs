//! Test vectors for other implementations of Ferry's wire protocol (the browser peer's web
//! engine, `ui/src/web/`): `tests/vectors/ferry-v1.json`, computed here by the real
//! ferry-core and ferry-proto code with fixed inputs (SPAKE2 scalars, seal nonces, seeded
//! data). The web engine's Vitest suite (`ui/tests/vectors.test.ts`) must reproduce every
//! value byte for byte; this test fails when the committed file no longer matches what
//! the Rust code computes. Format: `tests/vectors/README.md`.
//!
//! To accept a change on purpose: `FERRY_BLESS=1 cargo test -p ferry-core --test vectors`,
//! then `bash scripts/test-web-vectors.sh` and fix the web engine until it passes.

use std::path::PathBuf;

use ferry_proto::peer;
use ferry_proto::signal::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Group};

// The generators, one file per part of the vectors file.
#[path = "vector_gen/crypto.rs"]
mod crypto;
#[path = "vector_gen/frames.rs"]
mod frames;
#[path = "vector_gen/transfer.rs"]
mod transfer;

use crypto::FixedRng;

const BLESS: &str = "FERRY_BLESS=1 cargo test -p ferry-core --test vectors";

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Seeded data as the vectors describe it: inline when small, else generator and digest.
fn data_json(len: usize, seed: u64) -> (Vec<u8>, Value) {
    let d = ferry_testkit::data(len, seed);
    let mut v = json!({ "len": len, "seed": seed, "sha256": sha256_hex(&d) });
    if len <= 2048 {
        v["hex"] = json!(hex(&d));
    }
    (d, v)
}

fn role_name(r: Role) -> &'static str {
    r.as_str()
}

/// Compressible text, the same recipe on both sides (see the README).
fn log_text(lines: u64) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..lines {
        v.extend_from_slice(
            format!(
                "2026-11-25T08:{:02}:{:02}Z INFO request {i} served in {} ms\n",
                i % 60,
                i % 59,
                i % 97
            )
            .as_bytes(),
        );
    }
    v
}

fn constants() -> Value {
    json!({
        "protocol_label": ferry_core::crypto::PROTOCOL_LABEL,
        "pake_msg_prefix": ferry_core::crypto::PAKE_MSG_PREFIX,
        "pake_confirm_prefix": ferry_core::crypto::PAKE_CONFIRM_PREFIX,
        "kind_control": peer::KIND_CONTROL,
        "kind_chunk": peer::KIND_CHUNK,
        "kind_control_part": peer::KIND_CONTROL_PART,
        "flag_last": peer::FLAG_LAST,
        "flag_compressed": peer::FLAG_COMPRESSED,
        "cap_lz4": peer::CAP_LZ4,
        "cap_text": peer::CAP_TEXT,
        "peer_error_codes": frames::peer_error_codes(),
        "chunk_header_len": peer::CHUNK_HEADER_LEN,
        "min_chunk": peer::MIN_CHUNK,
        "max_chunk": peer::MAX_CHUNK,
        "max_frame_len": peer::MAX_FRAME_LEN,
        "max_control_len": peer::MAX_CONTROL_LEN,
        "max_files": peer::MAX_FILES,
    })
}

fn vectors() -> String {
    let (pake, run) = crypto::pake_vectors();
    let mac = run.host.fingerprint_mac("sha-256 AA:BB", "sha-256 CC:DD");
    let v = json!({
        "format": "ferry-test-vectors 1",
        "generated_by": BLESS,
        "constants": constants(),
        "pake": pake,
        "sealed": crypto::sealed_vectors(&run),
        "fingerprint": crypto::fingerprint_vectors(&run),
        "refused": crypto::refusal_vectors(&run, &pake[0]),
        "transfer_id": transfer::transfer_id_vectors(),
        "blake3": transfer::blake3_vectors(),
        "lz4": transfer::lz4_vectors(),
        "frames": frames::frame_vectors(&mac),
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap();
    s.push('\n');
    s
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/ferry-v1.json")
}

#[test]
fn vectors_file_matches_what_the_code_computes() {
    let want = vectors();
    let path = vectors_path();
    if std::env::var_os("FERRY_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    if got == want {
        return;
    }
    let line = got
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
    let show = |s: &str| -> String {
        s.lines()
            .skip(line.saturating_sub(3))
            .take(7)
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "tests/vectors/ferry-v1.json is stale: it differs from what ferry-core computes now, \
         first at line {}.\n--- committed\n{}\n--- computed\n{}\n\n\
         If the change is meant: {BLESS}, then make the web engine reproduce it \
         (bash scripts/test-web-vectors.sh).",
        line + 1,
        show(&got),
        show(&want)
    );
}

#[test]
fn every_control_variant_has_a_sample() {
    let seen: std::collections::BTreeSet<&str> = frames::control_samples("")
        .iter()
        .map(frames::control_variant)
        .collect();
    assert_eq!(seen.len(), frames::CONTROL_VARIANTS, "{seen:?}");
}

#[test]
fn vectors_are_deterministic() {
    assert_eq!(vectors(), vectors());
}

#[test]
fn fixed_rng_gives_the_scalar_the_vectors_describe() {
    // x = the 64 given bytes read little-endian, mod L: what the web engine recomputes.
    let mut bytes = [0u8; 64];
    bytes[0] = 5;
    let s = Ed25519Group::random_scalar(&mut FixedRng(bytes.to_vec()));
    let mut want = [0u8; 32];
    want[0] = 5;
    assert_eq!(s.as_bytes(), &want);
}
