//! Room crypto, no I/O: SPAKE2 between host and guest, key schedule, key confirmation,
//! sealing of SDP/ICE for the relay, and the fingerprint MAC of the first data-channel message.
//! Design and wire formats: `docs/CRYPTO.md`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ferry_proto::RoomId;
use ferry_proto::signal::Role;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Spake2};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::password::Password;

type HmacSha256 = Hmac<Sha256>;

/// Domain label bound into every identity, KDF and MAC, so keys from another protocol or
/// version can never be confused with ours.
pub const PROTOCOL_LABEL: &str = "ferry/v1";

pub use ferry_proto::signal::{PAKE_CONFIRM_PREFIX, PAKE_MSG_PREFIX};

const NONCE_LEN: usize = 24;
const CTR_LEN: usize = 8;

/// What the room crypto refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The peer's SPAKE2 message could not be read.
    #[error("malformed PAKE message")]
    BadPakeMessage,
    /// The peer's confirmation tag does not match ours: a different password.
    #[error("key confirmation failed (wrong password)")]
    ConfirmationFailed,
    /// A sealed message is not counter, nonce and ciphertext in base64.
    #[error("sealed message is malformed")]
    Malformed,
    /// A sealed message did not decrypt: altered, or sealed under another key or kind.
    #[error("sealed message failed authentication")]
    Unauthentic,
    /// A sealed message's counter is not past the last one accepted.
    #[error("sealed message replayed or reordered")]
    Replay,
}

/// What a sealed relay message is; bound into the AEAD's associated data so the server
/// cannot turn an ICE candidate into an answer or replay one direction into the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealKind {
    /// The host's SDP offer.
    Offer,
    /// The guest's SDP answer.
    Answer,
    /// A trickled ICE candidate.
    Ice,
}

impl SealKind {
    fn label(self) -> &'static str {
        match self {
            SealKind::Offer => "offer",
            SealKind::Answer => "answer",
            SealKind::Ice => "ice-candidate",
        }
    }
}

fn identity(role: Role, room: &RoomId) -> Identity {
    Identity::new(format!("{PROTOCOL_LABEL} {} {}", role.as_str(), room.as_str()).as_bytes())
}

/// One side of a SPAKE2 run. The host is SPAKE2 side A, the guest side B.
pub struct Pake {
    state: Spake2<Ed25519Group>,
    role: Role,
    room: RoomId,
    my_msg: Vec<u8>,
}

impl Pake {
    /// Start a run; returns the state and the `pake` relay payload to send.
    pub fn start(role: Role, room: &RoomId, password: &Password) -> (Pake, String) {
        Self::start_rng(role, room, password, OsRng)
    }

    /// [`Pake::start`] with the SPAKE2 scalar drawn from `rng`: fixed scalars for the test
    /// vectors another implementation checks itself against (`tests/vectors/`).
    #[cfg(feature = "test-hooks")]
    pub fn start_with_rng(
        role: Role,
        room: &RoomId,
        password: &Password,
        rng: impl CryptoRng + RngCore,
    ) -> (Pake, String) {
        Self::start_rng(role, room, password, rng)
    }

    fn start_rng(
        role: Role,
        room: &RoomId,
        password: &Password,
        rng: impl CryptoRng + RngCore,
    ) -> (Pake, String) {
        let pw = spake2::Password::new(password.pake_bytes());
        let (id_a, id_b) = (identity(Role::Host, room), identity(Role::Guest, room));
        let (state, msg) = match role {
            Role::Host => Spake2::<Ed25519Group>::start_a_with_rng(&pw, &id_a, &id_b, rng),
            Role::Guest => Spake2::<Ed25519Group>::start_b_with_rng(&pw, &id_a, &id_b, rng),
        };
        let payload = format!("{PAKE_MSG_PREFIX}{}", B64.encode(&msg));
        (
            Pake {
                state,
                role,
                room: *room,
                my_msg: msg,
            },
            payload,
        )
    }

    /// Finish with the peer's `spake2:` payload. The keys are not yet trusted: the peer must
    /// still prove it holds them ([`RoomKeys::verify_confirmation`]).
    pub fn finish(self, peer_payload: &str) -> Result<RoomKeys, CryptoError> {
        self.finish_seen(peer_payload, |_| {})
    }

    /// [`Pake::finish`] that also hands back the SPAKE2 output, for the test vectors.
    #[cfg(feature = "test-hooks")]
    pub fn finish_with_secret(
        self,
        peer_payload: &str,
    ) -> Result<(RoomKeys, Vec<u8>), CryptoError> {
        let mut secret = Vec::new();
        let keys = self.finish_seen(peer_payload, |s| secret = s.to_vec())?;
        Ok((keys, secret))
    }

    fn finish_seen(
        self,
        peer_payload: &str,
        see: impl FnOnce(&[u8]),
    ) -> Result<RoomKeys, CryptoError> {
        let b64 = peer_payload
            .strip_prefix(PAKE_MSG_PREFIX)
            .ok_or(CryptoError::BadPakeMessage)?;
        let peer_msg = B64.decode(b64).map_err(|_| CryptoError::BadPakeMessage)?;
        let shared = Zeroizing::new(
            self.state
                .finish(&peer_msg)
                .map_err(|_| CryptoError::BadPakeMessage)?,
        );
        see(&shared);
        let (msg_a, msg_b) = match self.role {
            Role::Host => (self.my_msg.as_slice(), peer_msg.as_slice()),
            Role::Guest => (peer_msg.as_slice(), self.my_msg.as_slice()),
        };
        let mut transcript = Sha256::new();
        for part in [
            PROTOCOL_LABEL.as_bytes(),
            self.room.as_str().as_bytes(),
            msg_a,
            msg_b,
        ] {
            transcript.update((part.len() as u32).to_be_bytes());
            transcript.update(part);
        }
        Ok(RoomKeys::derive(
            self.role,
            &self.room,
            &shared,
            transcript.finalize().into(),
        ))
    }
}

/// Keys derived from one successful SPAKE2 run. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RoomKeys {
    #[zeroize(skip)]
    role: Role,
    seal_host_to_guest: [u8; 32],
    seal_guest_to_host: [u8; 32],
    confirm: [u8; 32],
    fingerprint_mac: [u8; 32],
    verification: [u8; 32],
    transcript: [u8; 32],
}

impl RoomKeys {
    fn derive(role: Role, room: &RoomId, shared: &[u8], transcript: [u8; 32]) -> RoomKeys {
        let salt = format!("{PROTOCOL_LABEL} room {}", room.as_str());
        let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), shared);
        let key = |label: &str| {
            let mut out = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
            let _ = hk.expand(format!("{PROTOCOL_LABEL} {label}").as_bytes(), &mut out);
            out
        };
        RoomKeys {
            role,
            seal_host_to_guest: key("seal host->guest"),
            seal_guest_to_host: key("seal guest->host"),
            confirm: key("confirm"),
            fingerprint_mac: key("fingerprint mac"),
            verification: key("verification code"),
            transcript,
        }
    }

    /// Which side these keys belong to.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Every derived key by its HKDF label, then the transcript hash, for the test vectors.
    #[cfg(feature = "test-hooks")]
    pub fn schedule(&self) -> Vec<(&'static str, [u8; 32])> {
        vec![
            ("seal host->guest", self.seal_host_to_guest),
            ("seal guest->host", self.seal_guest_to_host),
            ("confirm", self.confirm),
            ("fingerprint mac", self.fingerprint_mac),
            ("verification code", self.verification),
            ("transcript", self.transcript),
        ]
    }

    fn confirm_tag(&self, role: Role) -> [u8; 32] {
        let mut m = hmac(&self.confirm);
        m.update(b"key confirmation ");
        m.update(role.as_str().as_bytes());
        m.update(&self.transcript);
        m.finalize().into_bytes().into()
    }

    /// Our `confirm:` payload for the `pake` relay.
    pub fn confirmation(&self) -> String {
        format!(
            "{PAKE_CONFIRM_PREFIX}{}",
            B64.encode(self.confirm_tag(self.role))
        )
    }

    /// Check the peer's `confirm:` payload (constant time). A mismatch means the passwords differ.
    pub fn verify_confirmation(&self, payload: &str) -> Result<(), CryptoError> {
        let tag = payload
            .strip_prefix(PAKE_CONFIRM_PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .ok_or(CryptoError::BadPakeMessage)?;
        let mut m = hmac(&self.confirm);
        m.update(b"key confirmation ");
        m.update(self.role.other().as_str().as_bytes());
        m.update(&self.transcript);
        m.verify_slice(&tag)
            .map_err(|_| CryptoError::ConfirmationFailed)
    }

    /// A sealer/opener for the relay, one per handshake.
    pub fn sealer(&self) -> Sealer {
        let (send, recv) = match self.role {
            Role::Host => (self.seal_host_to_guest, self.seal_guest_to_host),
            Role::Guest => (self.seal_guest_to_host, self.seal_host_to_guest),
        };
        Sealer {
            role: self.role,
            send: XChaCha20Poly1305::new(&send.into()),
            recv: XChaCha20Poly1305::new(&recv.into()),
            send_ctr: 0,
            recv_ctr: 0,
        }
    }

    /// MAC for our `hello`: binds our role and both DTLS fingerprints to the room key.
    pub fn fingerprint_mac(&self, local_fp: &str, remote_fp: &str) -> [u8; 32] {
        fp_mac(&self.fingerprint_mac, self.role, local_fp, remote_fp)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Check the peer's `hello` MAC. From the peer's point of view its local fingerprint is
    /// the one we see on the wire (`remote_fp`) and its remote fingerprint is ours.
    pub fn verify_fingerprint_mac(&self, local_fp: &str, remote_fp: &str, mac: &[u8]) -> bool {
        fp_mac(
            &self.fingerprint_mac,
            self.role.other(),
            remote_fp,
            local_fp,
        )
        .verify_slice(mac)
        .is_ok()
    }

    /// A short code both users can compare: 9 digits in groups of three. Equal on both sides
    /// exactly when both derived the same key.
    pub fn verification_code(&self) -> String {
        let mut n = u64::from_be_bytes(self.verification[..8].try_into().unwrap_or_default());
        n %= 1_000_000_000;
        format!(
            "{:03} {:03} {:03}",
            n / 1_000_000,
            (n / 1000) % 1000,
            n % 1000
        )
    }
}

fn hmac(key: &[u8; 32]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn fp_mac(key: &[u8; 32], role: Role, local_fp: &str, remote_fp: &str) -> HmacSha256 {
    let mut m = hmac(key);
    for part in [
        b"dtls fingerprints".as_slice(),
        role.as_str().as_bytes(),
        normalize_fp(local_fp).as_bytes(),
        normalize_fp(remote_fp).as_bytes(),
    ] {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part);
    }
    m
}

/// `sha-256 AB:CD:..`, case-folded, so SDP spelling differences do not break the MAC.
pub fn normalize_fp(fp: &str) -> String {
    fp.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// `sha-256 AB:CD:...` of a DER certificate, as SDP writes it.
pub fn cert_fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha-256 {}", hex.join(":"))
}

/// Seals and opens the relay payloads of one handshake.
/// Envelope: base64(counter u64 BE || 24-byte random nonce || ciphertext+tag);
/// AAD = label || direction || kind || counter. Counters start at 1 and must strictly increase.
pub struct Sealer {
    role: Role,
    send: XChaCha20Poly1305,
    recv: XChaCha20Poly1305,
    send_ctr: u64,
    recv_ctr: u64,
}

fn aad(from: Role, kind: SealKind, ctr: u64) -> Vec<u8> {
    let mut a = format!(
        "{PROTOCOL_LABEL} sealed {}->{} {}",
        from.as_str(),
        from.other().as_str(),
        kind.label()
    )
    .into_bytes();
    a.extend_from_slice(&ctr.to_be_bytes());
    a
}

impl Sealer {
    /// Encrypt `plaintext` as the next message of `kind` from this side (base64).
    pub fn seal(&mut self, kind: SealKind, plaintext: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        self.seal_nonce(kind, plaintext, &nonce)
    }

    /// [`Sealer::seal`] with a given nonce, for the test vectors (a real run never repeats one).
    #[cfg(feature = "test-hooks")]
    pub fn seal_with_nonce(&mut self, kind: SealKind, plaintext: &[u8], nonce: [u8; 24]) -> String {
        self.seal_nonce(kind, plaintext, XNonce::from_slice(&nonce))
    }

    /// The associated data of a sealed message (see [`Sealer`]), for the test vectors.
    #[cfg(feature = "test-hooks")]
    pub fn aad(from: Role, kind: SealKind, ctr: u64) -> Vec<u8> {
        aad(from, kind, ctr)
    }

    fn seal_nonce(&mut self, kind: SealKind, plaintext: &[u8], nonce: &XNonce) -> String {
        self.send_ctr += 1;
        let ctr = self.send_ctr;
        let aad = aad(self.role, kind, ctr);
        // Encryption with a valid key and in-memory buffers does not fail.
        let ct = self
            .send
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(CTR_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&ctr.to_be_bytes());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    /// Decrypt the peer's next message of `kind`, refusing a replay or a reorder.
    pub fn open(
        &mut self,
        kind: SealKind,
        payload: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let raw = B64.decode(payload).map_err(|_| CryptoError::Malformed)?;
        if raw.len() < CTR_LEN + NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let mut c = [0u8; CTR_LEN];
        c.copy_from_slice(&raw[..CTR_LEN]);
        let ctr = u64::from_be_bytes(c);
        let nonce = XNonce::from_slice(&raw[CTR_LEN..CTR_LEN + NONCE_LEN]);
        let aad = aad(self.role.other(), kind, ctr);
        let pt = self
            .recv
            .decrypt(
                nonce,
                Payload {
                    msg: &raw[CTR_LEN + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Unauthentic)?;
        // Checked after authentication so a forged counter cannot burn the window.
        if ctr <= self.recv_ctr {
            return Err(CryptoError::Replay);
        }
        self.recv_ctr = ctr;
        Ok(Zeroizing::new(pt))
    }
}

// The fuzz crate mounts this file by `#[path]`, which would look for `tests.rs` beside it.
#[cfg(test)]
#[path = "crypto/tests.rs"]
mod tests;
