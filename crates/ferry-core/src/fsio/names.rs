//! Turning untrusted names into paths inside the output folder: every path in a received
//! manifest goes through [`sanitize_rel_path`] and [`confine`] before anything touches the
//! disk, and [`escape_display`] is how a sender-chosen name is shown to a person.
//!
//! Naming rules (documented in docs/PEER-PROTOCOL.md):
//! - `/` and `\` both separate components; `.` and empty components are dropped; `..`, a
//!   leading separator (absolute or UNC) or a drive prefix (`C:`) reject the whole entry.
//! - Control characters, bidi controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F,
//!   U+061C) and zero-width characters (U+200B-U+200D, U+2060, U+FEFF) are removed,
//!   characters Windows forbids (`<>:"|?*`) become `_`,
//!   trailing dots and spaces are trimmed, components are NFC-normalised so a name sent
//!   from macOS (NFD) lands as the same name everywhere.
//! - Windows device names (`CON`, `NUL`, `COM1`, `COM¹`, ...) get a `_` prefix on every OS, so a
//!   transfer lands the same way wherever it is received.
//! - A component is at most 255 bytes, a path at most 4096 bytes and 64 components deep.
//! - No existing component under the output folder may be a symlink (no escape through a
//!   link planted earlier): [`confine`] checks the path, and the folders are created by
//!   `fsio::create_dirs`, which re-checks each one after creating it.
//! - An existing file is never replaced unless `overwrite` is set; otherwise the file lands
//!   as `name (1).ext`, `name (2).ext`, ... (`landing_path` and `finish_part` in `fsio/part.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

const MAX_COMPONENT: usize = 255;
const MAX_PATH: usize = 4096;
const MAX_DEPTH: usize = 64;

/// Why an offered path is refused (docs/PEER-PROTOCOL.md, "Names on the receiver").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(unreachable_pub)] // public for the fuzz targets, which mount `fsio` (fuzz/src/lib.rs)
pub enum PathError {
    /// Nothing left once empty, `.` and blank components are dropped.
    #[error("empty path")]
    Empty,
    /// Rooted (`/`, `\`) or starting with a drive letter.
    #[error("absolute path not allowed: {0:?}")]
    Absolute(String),
    /// A `..` component.
    #[error("parent directory (..) not allowed: {0:?}")]
    ParentDir(String),
    /// Past the component, path or depth bounds.
    #[error("path too long: {0:?}")]
    TooLong(String),
    /// A component under the output folder is a symlink.
    #[error("path goes through a symlink: {0}")]
    Symlink(String),
}

fn is_device_name(c: &str) -> bool {
    let stem: Vec<char> = c
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches([' ', '.'])
        .chars()
        .map(|ch| ch.to_ascii_uppercase())
        .collect();
    let s: String = stem.iter().collect();
    // Windows counts the superscripts ¹²³ as digits here: `COM¹` opens a serial port too.
    matches!(
        s.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || (stem.len() == 4
        && (s.starts_with("COM") || s.starts_with("LPT"))
        && matches!(stem[3], '1'..='9' | '\u{b9}' | '\u{b2}' | '\u{b3}'))
}

/// Characters that change how a name is shown without being visible themselves: bidi
/// embeddings, overrides, isolates and marks (`report\u{202e}fdp.exe` shows as
/// `reportexe.pdf`), and zero-width characters (two names that look the same).
pub(crate) fn is_invisible(ch: char) -> bool {
    matches!(
        ch,
        '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
            | '\u{200b}'..='\u{200d}'
            | '\u{2060}'
            | '\u{feff}'
    )
}

/// A sender-chosen name as it may be shown to a person: control characters (C0, DEL, C1),
/// the invisible characters of `is_invisible` and line/paragraph separators become
/// `\u{..}`, so nothing in a name can move the cursor, recolour or clear a terminal, or
/// reorder what is shown around it. JSON output needs none of this (it escapes itself).
pub fn escape_display(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars() {
        if ch.is_control() || is_invisible(ch) || matches!(ch, '\u{2028}' | '\u{2029}') {
            out.push_str(&format!("\\u{{{:x}}}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    out
}

fn clean_component(c: &str) -> String {
    // Controls (and invisibles) go first: one between a letter and its accent would keep
    // NFC from joining them.
    let mut s: String = c
        .chars()
        .filter(|ch| !ch.is_control() && !is_invisible(*ch))
        .nfc()
        .map(|ch| match ch {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            other => other,
        })
        .collect();
    while s.ends_with('.') || s.ends_with(' ') {
        s.pop();
    }
    if is_device_name(&s) {
        s.insert(0, '_');
    }
    s
}

/// Sanitise a sender-supplied relative path into safe components (see the module docs).
#[allow(unreachable_pub)] // public for the fuzz targets, which mount `fsio` (fuzz/src/lib.rs)
pub fn sanitize_rel_path(raw: &str) -> Result<Vec<String>, PathError> {
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err(PathError::Absolute(raw.into()));
    }
    let b = raw.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(PathError::Absolute(raw.into()));
    }
    let mut out = Vec::new();
    for comp in raw.split(['/', '\\']) {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp == ".." {
            return Err(PathError::ParentDir(raw.into()));
        }
        let c = clean_component(comp);
        // All dots, spaces or control characters: names nothing once cleaned (and never
        // becomes `..`, which was rejected above).
        if c.is_empty() {
            continue;
        }
        if c.len() > MAX_COMPONENT {
            return Err(PathError::TooLong(raw.into()));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(PathError::Empty);
    }
    if out.len() > MAX_DEPTH || out.iter().map(|c| c.len() + 1).sum::<usize>() > MAX_PATH {
        return Err(PathError::TooLong(raw.into()));
    }
    Ok(out)
}

/// Join sanitised components under `root`, refusing any existing component that is a
/// symlink. Creates no directories.
pub(crate) fn confine(root: &Path, comps: &[String]) -> Result<PathBuf, PathError> {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(c);
        if let Ok(m) = fs::symlink_metadata(&p)
            && m.file_type().is_symlink()
        {
            return Err(PathError::Symlink(p.display().to_string()));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        sanitize_rel_path(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .join("/")
    }

    #[test]
    fn sanitisation_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("a.txt", Ok("a.txt")),
            ("dir/sub/a.txt", Ok("dir/sub/a.txt")),
            ("dir\\sub\\a.txt", Ok("dir/sub/a.txt")),
            ("./a//b/./c", Ok("a/b/c")),
            ("../etc/passwd", Err("parent")),
            ("a/../../b", Err("parent")),
            ("a\\..\\b", Err("parent")),
            ("/etc/passwd", Err("absolute")),
            ("\\\\server\\share\\x", Err("absolute")),
            ("C:\\Windows\\x", Err("absolute")),
            ("c:x", Err("absolute")),
            ("CON", Ok("_CON")),
            ("nul.txt", Ok("_nul.txt")),
            ("dir/com1.log", Ok("dir/_com1.log")),
            ("com0", Ok("com0")),
            ("console.txt", Ok("console.txt")),
            ("bell\u{7}\nname", Ok("bellname")),
            ("what?<>|*\".txt", Ok("what______.txt")),
            ("a:b", Err("absolute")),
            ("ab:c", Ok("ab_c")),
            ("trail. . ", Ok("trail")),
            ("e\u{301}t\u{e9}", Ok("\u{e9}t\u{e9}")),
            ("\u{fffd}bad\u{fffd}.bin", Ok("\u{fffd}bad\u{fffd}.bin")),
            ("", Err("empty")),
            ("./.", Err("empty")),
            ("\u{1}\u{2}", Err("empty")),
            ("ok/. .", Ok("ok")),
            ("...", Err("empty")),
            // Windows reads the superscripts ¹²³ as digits in device names.
            ("COM\u{b9}", Ok("_COM\u{b9}")),
            ("lpt\u{b2}.txt", Ok("_lpt\u{b2}.txt")),
            ("dir/Com\u{b3}. .", Ok("dir/_Com\u{b3}")),
            ("COM\u{b3} .log", Ok("_COM\u{b3} .log")),
            ("COM\u{b9}\u{b9}", Ok("COM\u{b9}\u{b9}")),
            ("COM\u{2074}", Ok("COM\u{2074}")),
            // Bidi controls and zero-width characters are dropped.
            ("report\u{202e}fdp.exe", Ok("reportfdp.exe")),
            (
                "a\u{200b}b\u{200d}c\u{2060}d\u{feff}e\u{2067}f\u{200f}g\u{61c}.txt",
                Ok("abcdefg.txt"),
            ),
            ("\u{202a}\u{200b}", Err("empty")),
            ("C\u{200b}ON", Ok("_CON")),
        ];
        for (raw, want) in cases {
            let got = sanitize_rel_path(raw);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(&g.join("/"), w, "{raw:?}"),
                (Err("parent"), Err(PathError::ParentDir(_))) => {}
                (Err("absolute"), Err(PathError::Absolute(_))) => {}
                (Err("empty"), Err(PathError::Empty)) => {}
                _ => panic!("{raw:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn length_limits() {
        assert!(matches!(
            sanitize_rel_path(&"x".repeat(256)),
            Err(PathError::TooLong(_))
        ));
        assert_eq!(ok(&"x".repeat(255)).len(), 255);
        let deep = vec!["d"; 65].join("/");
        assert!(matches!(
            sanitize_rel_path(&deep),
            Err(PathError::TooLong(_))
        ));
        let long = vec!["y".repeat(200); 25].join("/");
        assert!(matches!(
            sanitize_rel_path(&long),
            Err(PathError::TooLong(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_under_root_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
        let comps = sanitize_rel_path("evil/x.txt").unwrap();
        assert!(matches!(
            confine(root.path(), &comps),
            Err(PathError::Symlink(_))
        ));
        let comps = sanitize_rel_path("fine/x.txt").unwrap();
        assert_eq!(
            confine(root.path(), &comps).unwrap(),
            root.path().join("fine/x.txt")
        );
    }

    #[test]
    fn display_escapes_controls_and_invisible_characters() {
        assert_eq!(escape_display("plain name.txt"), "plain name.txt");
        assert_eq!(
            escape_display("\u{1b}[2Jx\u{7}\u{7f}\u{9b}\n"),
            "\\u{1b}[2Jx\\u{7}\\u{7f}\\u{9b}\\u{a}"
        );
        assert_eq!(
            escape_display("report\u{202e}fdp.exe\u{200b}\u{2028}"),
            "report\\u{202e}fdp.exe\\u{200b}\\u{2028}"
        );
        assert_eq!(
            escape_display("d\u{e9}j\u{e0} \u{1f600}"),
            "d\u{e9}j\u{e0} \u{1f600}"
        );
    }

    /// Found by fuzz/fuzz_targets/rel_path.rs: a control character between a letter and its
    /// combining accent hid the pair from NFC, then was removed, leaving a decomposed name.
    #[test]
    fn control_characters_go_before_normalising() {
        assert_eq!(ok("e\u{7f}\u{301}"), "\u{e9}");
        assert_eq!(ok("cafe\u{0}\u{301}/x"), "caf\u{e9}/x");
    }
}
