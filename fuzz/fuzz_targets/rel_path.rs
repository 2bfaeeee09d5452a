//! The receiver's name sanitiser (`fsio::sanitize_rel_path`), which turns every path in a
//! received manifest into components under the output folder.
//! Invariants on any accepted name: not empty; no component is empty, `.` or `..`; no
//! component holds a separator, a drive or stream colon, a control character or a character
//! Windows forbids; no trailing dot or space (Windows strips them, which could merge names);
//! never a Windows device name; NFC; within the length and depth limits; joining it under a
//! root adds exactly one path component per name component; sanitising the result again
//! gives the same components.
#![no_main]

use std::path::{Component, Path};

use ferry_fuzz::fsio::sanitize_rel_path;
use libfuzzer_sys::fuzz_target;
use unicode_normalization::is_nfc;

/// Independent of fsio's own check, and stricter: Windows also treats the superscript
/// digits ¹ ² ³ as digits in `COM#`/`LPT#`, and ignores anything from the first dot on and
/// trailing spaces before it.
fn is_windows_device(comp: &str) -> bool {
    let stem = comp.split('.').next().unwrap_or("").trim_end_matches(' ');
    let up = stem.to_ascii_uppercase();
    if matches!(
        up.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let mut chars = up.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    (prefix == "COM" || prefix == "LPT")
        && rest.len() == 1
        && matches!(rest[0], '1'..='9' | '¹' | '²' | '³')
}

fuzz_target!(|data: &[u8]| {
    // Manifest paths arrive as JSON strings, so always valid UTF-8; lossy decoding lets the
    // fuzzer's byte mutations still land somewhere.
    let raw = String::from_utf8_lossy(data);
    let Ok(comps) = sanitize_rel_path(&raw) else {
        return;
    };
    assert!(!comps.is_empty(), "{raw:?}: no components");
    assert!(comps.len() <= 64, "{raw:?}: too deep");
    assert!(
        comps.iter().map(|c| c.len() + 1).sum::<usize>() <= 4096,
        "{raw:?}: too long"
    );
    for c in &comps {
        assert!(!c.is_empty(), "{raw:?}: empty component");
        assert!(c != "." && c != "..", "{raw:?}: dot component {c:?}");
        assert!(c.len() <= 255, "{raw:?}: component too long");
        assert!(
            !c.chars().any(|ch| ch.is_control()
                || matches!(ch, '/' | '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*')),
            "{raw:?}: forbidden character in {c:?}"
        );
        assert!(
            !c.ends_with('.') && !c.ends_with(' '),
            "{raw:?}: trailing dot or space in {c:?}"
        );
        assert!(!is_windows_device(c), "{raw:?}: Windows device name {c:?}");
        assert!(is_nfc(c), "{raw:?}: not NFC: {c:?}");
    }

    let root = Path::new("/out");
    let mut p = root.to_path_buf();
    for c in &comps {
        p.push(c);
    }
    assert!(!Path::new(&comps.join("/")).is_absolute());
    assert!(p.starts_with(root));
    let extra: Vec<_> = p.components().skip(root.components().count()).collect();
    assert_eq!(extra.len(), comps.len(), "{raw:?}: {comps:?} re-splits");
    assert!(extra.iter().all(|c| matches!(c, Component::Normal(_))));

    assert_eq!(
        sanitize_rel_path(&comps.join("/")).as_ref(),
        Ok(&comps),
        "{raw:?}: not idempotent"
    );
});
