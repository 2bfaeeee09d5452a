//! What the server knows about relayed messages, pure: their kind, how big each kind may be,
//! and whether a `pake` payload is a key-confirmation tag (its prefix only, nothing past it).

use ferry_proto::signal::{ClientMsg, PAKE_CONFIRM_PREFIX};

/// Largest `pake` payload: a SPAKE2 message or a confirmation tag, base64 with a short prefix,
/// is 60-100 bytes.
pub const MAX_PAKE_PAYLOAD: usize = 512;
/// Largest sealed `offer`/`answer`: a sealed SDP is a few KiB.
pub const MAX_SDP_PAYLOAD: usize = 16 * 1024;
/// Largest sealed `ice-candidate`: a few hundred bytes.
pub const MAX_ICE_PAYLOAD: usize = 2 * 1024;

/// What the server notes about a message it forwards to the other peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// Index into [`crate::metrics::RELAY_KINDS`].
    pub kind: usize,
    /// `Some(true)` for a `pake` carrying a confirmation tag, `Some(false)` for another `pake`.
    pub pake_confirm: Option<bool>,
}

/// Whether a `pake` payload is a confirmation tag. Looks at the prefix and nothing else.
pub fn is_confirm(payload: &str) -> bool {
    payload
        .as_bytes()
        .starts_with(PAKE_CONFIRM_PREFIX.as_bytes())
}

/// `Ok(Some(..))` for a relayed message within its kind's cap, `Ok(None)` for a control
/// message, `Err(reason)` for a payload bigger than its kind ever needs.
pub fn check(msg: &ClientMsg) -> Result<Option<Relayed>, &'static str> {
    let (kind, cap, len, why) = match msg {
        ClientMsg::Pake { payload } => {
            (0, MAX_PAKE_PAYLOAD, payload.len(), "pake payload too large")
        }
        ClientMsg::Offer { payload } => {
            (1, MAX_SDP_PAYLOAD, payload.len(), "offer payload too large")
        }
        ClientMsg::Answer { payload } => (
            2,
            MAX_SDP_PAYLOAD,
            payload.len(),
            "answer payload too large",
        ),
        ClientMsg::IceCandidate { payload } => (
            3,
            MAX_ICE_PAYLOAD,
            payload.len(),
            "ice-candidate payload too large",
        ),
        _ => return Ok(None),
    };
    if len > cap {
        return Err(why);
    }
    let pake_confirm = match msg {
        ClientMsg::Pake { payload } => Some(is_confirm(payload)),
        _ => None,
    };
    Ok(Some(Relayed { kind, pake_confirm }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_is_the_prefix_only() {
        assert!(is_confirm("confirm:AAAA"));
        assert!(is_confirm("confirm:"));
        assert!(!is_confirm("spake2:confirm:AAAA"));
        assert!(!is_confirm("confir"));
        assert!(!is_confirm(""));
    }

    #[test]
    fn caps_per_kind() {
        let pake = |n| ClientMsg::Pake {
            payload: "x".repeat(n),
        };
        let r = check(&pake(MAX_PAKE_PAYLOAD)).unwrap().unwrap();
        assert_eq!((r.kind, r.pake_confirm), (0, Some(false)));
        assert_eq!(
            check(&pake(MAX_PAKE_PAYLOAD + 1)),
            Err("pake payload too large")
        );
        let c = ClientMsg::Pake {
            payload: "confirm:tag".into(),
        };
        assert_eq!(check(&c).unwrap().unwrap().pake_confirm, Some(true));
        let offer = |n| ClientMsg::Offer {
            payload: "x".repeat(n),
        };
        assert_eq!(check(&offer(MAX_SDP_PAYLOAD)).unwrap().unwrap().kind, 1);
        assert!(check(&offer(MAX_SDP_PAYLOAD + 1)).is_err());
        let answer = ClientMsg::Answer {
            payload: "x".repeat(MAX_SDP_PAYLOAD + 1),
        };
        assert_eq!(check(&answer), Err("answer payload too large"));
        let ice = |n| ClientMsg::IceCandidate {
            payload: "x".repeat(n),
        };
        assert_eq!(check(&ice(MAX_ICE_PAYLOAD)).unwrap().unwrap().kind, 3);
        assert!(check(&ice(MAX_ICE_PAYLOAD + 1)).is_err());
        assert_eq!(check(&ClientMsg::Leave), Ok(None));
    }
}
