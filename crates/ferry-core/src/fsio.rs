//! The receiver's disk edge: turning untrusted names into paths inside the output folder,
//! `.part` files, and errors the user can act on.
//!
//! Naming rules (documented in docs/PEER-PROTOCOL.md):
//! - `/` and `\` both separate components; `.` and empty components are dropped; `..`, a
//!   leading separator (absolute or UNC) or a drive prefix (`C:`) reject the whole entry.
//! - Control characters are removed, characters Windows forbids (`<>:"|?*`) become `_`,
//!   trailing dots and spaces are trimmed, components are NFC-normalised so a name sent
//!   from macOS (NFD) lands as the same name everywhere.
//! - Windows device names (`CON`, `NUL`, `COM1`, ...) get a `_` prefix on every OS, so a
//!   transfer lands the same way wherever it is received.
//! - A component is at most 255 bytes, a path at most 4096 bytes and 64 components deep.
//! - No existing component under the output folder may be a symlink (no escape through a
//!   link planted earlier).
//! - An existing file is never replaced unless `overwrite` is set; otherwise the file lands
//!   as `name (1).ext`, `name (2).ext`, ...

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

use crate::transfer::tree::{FileTree, piece_len};

const MAX_COMPONENT: usize = 255;
const MAX_PATH: usize = 4096;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("absolute path not allowed: {0:?}")]
    Absolute(String),
    #[error("parent directory (..) not allowed: {0:?}")]
    ParentDir(String),
    #[error("path too long: {0:?}")]
    TooLong(String),
    #[error("path goes through a symlink: {0}")]
    Symlink(String),
}

fn is_device_name(c: &str) -> bool {
    let stem = c
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem.as_bytes()[3].is_ascii_digit()
        && stem.as_bytes()[3] != b'0')
}

fn clean_component(c: &str) -> String {
    let mut s: String = c
        .nfc()
        .filter(|ch| !ch.is_control())
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
pub fn confine(root: &Path, comps: &[String]) -> Result<PathBuf, PathError> {
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

/// Create the parent directories of `path` (which must be under `root`), re-checking that
/// none of them is a symlink after creation (a racing peer process cannot plant one).
pub fn create_parents(root: &Path, path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
        let mut p = parent;
        while p.starts_with(root) && p != root {
            if fs::symlink_metadata(p)?.file_type().is_symlink() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} is a symlink", p.display()),
                ));
            }
            match p.parent() {
                Some(q) => p = q,
                None => break,
            }
        }
    }
    Ok(())
}

/// `<final>.part`, next to the final file.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    final_path.with_file_name(name)
}

/// Reserve `size` bytes so a full disk shows up now rather than gigabytes later.
pub fn preallocate(f: &File, size: u64) -> io::Result<()> {
    if size == 0 {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        // SAFETY: a valid open fd; posix_fallocate only touches the file's extents.
        let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len) };
        match rc {
            0 => return Ok(()),
            libc::EOPNOTSUPP | libc::EINVAL => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
    f.set_len(size)
}

/// Positional read that fills `buf` or fails (`UnexpectedEof` past the end). Positional
/// I/O lets the reader and writer threads keep one handle without a shared cursor.
pub fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        all_at(
            buf.len(),
            offset,
            io::ErrorKind::UnexpectedEof,
            |done, at| f.seek_read(&mut buf[done..], at),
        )
    }
}

/// Positional read of exactly `len` bytes appended to `buf` (`UnexpectedEof` past the end).
/// On Unix the kernel writes straight into the spare capacity: a chunk frame is 128 KiB of
/// fresh allocation, and zeroing it first cost the sender's reader thread a fifth of its CPU.
pub fn append_exact_at(f: &File, buf: &mut Vec<u8>, len: usize, offset: u64) -> io::Result<()> {
    buf.reserve(len);
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        all_at(len, offset, io::ErrorKind::UnexpectedEof, |done, at| {
            let at = libc::off_t::try_from(at)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
            let spare = &mut buf.spare_capacity_mut()[..len - done];
            // SAFETY: `spare` is allocated, writable and `spare.len()` bytes long; pread
            // writes at most that many bytes into it and reports how many it wrote.
            let n =
                unsafe { libc::pread(f.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at) };
            let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
            // SAFETY: pread initialised the first `n` bytes of the spare capacity.
            unsafe { buf.set_len(buf.len() + n) };
            Ok(n)
        })
    }
    #[cfg(not(unix))]
    {
        let start = buf.len();
        buf.resize(start + len, 0);
        read_exact_at(f, &mut buf[start..], offset)
    }
}

/// Positional write of all of `buf`.
pub fn write_all_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        all_at(buf.len(), offset, io::ErrorKind::WriteZero, |done, at| {
            f.seek_write(&buf[done..], at)
        })
    }
}

/// Repeat a positional `step(done, at)` until `len` bytes moved (Windows has no `*_exact_at`,
/// and std has none that reads into spare capacity); a step that moves nothing ends with
/// `stuck`, an interrupted one is retried.
fn all_at(
    len: usize,
    offset: u64,
    stuck: io::ErrorKind,
    mut step: impl FnMut(usize, u64) -> io::Result<usize>,
) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        match step(done, offset + done as u64) {
            Ok(0) => return Err(stuck.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Feed `tree` (of a `tree.total()`-byte file) from `f` up to `to`, a piece boundary, in
/// subtrees of up to 1 MiB: a resumed prefix that is not sent again but is part of the hash.
pub fn hash_prefix(f: &File, tree: &mut FileTree, to: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    while tree.next_offset() < to {
        let at = tree.next_offset();
        let n = piece_len(at, to, tree.total(), 1 << 20) as usize;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {to} is not a piece boundary"),
            ));
        }
        buf.resize(n, 0);
        read_exact_at(f, &mut buf[..n], at)?;
        tree.push_data(at, &buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    Ok(())
}

/// Open (or create) the `.part` file for a download of `size` bytes and return it with the
/// whole-file hash tree fed the first `resume_from` bytes (a piece boundary: a multiple of
/// 1 KiB, or `size`). If the `.part` file is missing or shorter than `resume_from`, starts
/// over at 0 (returned offset tells where).
pub fn open_part(
    final_path: &Path,
    size: u64,
    resume_from: u64,
) -> io::Result<(File, FileTree, u64)> {
    let part = part_path(final_path);
    if resume_from > 0
        && let Ok(f) = OpenOptions::new().read(true).write(true).open(&part)
        && f.metadata()?.len() >= resume_from
    {
        let mut tree = FileTree::new(size);
        hash_prefix(&f, &mut tree, resume_from, &mut Vec::new())?;
        if f.metadata()?.len() < size {
            preallocate(&f, size)?;
        }
        return Ok((f, tree, resume_from));
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&part)?;
    preallocate(&f, size)?;
    Ok((f, FileTree::new(size), 0))
}

/// Where a finished file lands: `want` itself, or with `overwrite` unset and `want`
/// taken, the first free `stem (n).ext`.
pub fn landing_path(want: &Path, overwrite: bool) -> PathBuf {
    if overwrite || fs::symlink_metadata(want).is_err() {
        return want.to_path_buf();
    }
    let stem = want
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = want
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for n in 1u32.. {
        let cand = want.with_file_name(format!("{stem} ({n}){ext}"));
        if fs::symlink_metadata(&cand).is_err() {
            return cand;
        }
    }
    want.to_path_buf()
}

/// Move a verified `.part` into place. Returns where it landed.
pub fn finish_part(file: File, final_path: &Path, overwrite: bool) -> io::Result<PathBuf> {
    file.sync_all()?;
    drop(file);
    let dest = landing_path(final_path, overwrite);
    if overwrite
        && let Ok(m) = fs::symlink_metadata(&dest)
        && m.is_dir()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is a directory", dest.display()),
        ));
    }
    fs::rename(part_path(final_path), &dest)?;
    Ok(dest)
}

/// What kind of failure an I/O error is, in the user's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    DiskFull,
    PermissionDenied,
    Other,
}

pub fn classify(e: &io::Error) -> IoKind {
    // errno first where there is one: it tells EPERM and EDQUOT apart from the generic kinds.
    #[cfg(unix)]
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => return IoKind::DiskFull,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            return IoKind::PermissionDenied;
        }
        _ => {}
    }
    // Windows reports Win32 codes, which std maps onto these kinds.
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            IoKind::DiskFull
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            IoKind::PermissionDenied
        }
        _ => IoKind::Other,
    }
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
    fn landing_never_overwrites_without_flag() {
        let d = tempfile::tempdir().unwrap();
        let want = d.path().join("a.txt");
        assert_eq!(landing_path(&want, false), want);
        fs::write(&want, b"old").unwrap();
        assert_eq!(landing_path(&want, false), d.path().join("a (1).txt"));
        fs::write(d.path().join("a (1).txt"), b"old").unwrap();
        assert_eq!(landing_path(&want, false), d.path().join("a (2).txt"));
        assert_eq!(landing_path(&want, true), want);
        let noext = d.path().join("README");
        fs::write(&noext, b"x").unwrap();
        assert_eq!(landing_path(&noext, false), d.path().join("README (1)"));
    }

    #[test]
    fn part_resume_rehashes_prefix() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("f.bin");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let held = 60 * 1024;
        {
            let (mut f, _, at) = open_part(&dest, data.len() as u64, 0).unwrap();
            assert_eq!(at, 0);
            assert_eq!(f.metadata().unwrap().len(), data.len() as u64);
            use std::io::Write;
            f.write_all(&data[..held]).unwrap();
        }
        let (f, mut tree, at) = open_part(&dest, data.len() as u64, held as u64).unwrap();
        assert_eq!(at, held as u64);
        assert_eq!(tree.next_offset(), held as u64);
        // The rebuilt prefix and the rest, as chunks would bring it, give the file's hash.
        tree.push_data(held as u64, &data[held..held + 4096])
            .unwrap();
        tree.push_data((held + 4096) as u64, &data[held + 4096..])
            .unwrap();
        assert_eq!(tree.finalize().unwrap(), blake3::hash(&data));
        drop(f);
        // Asking for more than the .part holds starts over.
        fs::remove_file(part_path(&dest)).unwrap();
        let (_, _, at) = open_part(&dest, data.len() as u64, held as u64).unwrap();
        assert_eq!(at, 0);
    }

    #[test]
    fn error_classes() {
        assert_eq!(
            classify(&io::Error::from_raw_os_error(libc::ENOSPC)),
            IoKind::DiskFull
        );
        assert_eq!(
            classify(&io::Error::from_raw_os_error(libc::EACCES)),
            IoKind::PermissionDenied
        );
        assert_eq!(
            classify(&io::Error::from_raw_os_error(libc::EIO)),
            IoKind::Other
        );
    }

    #[test]
    fn append_exact_at_appends_the_range_and_refuses_to_read_past_the_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("src");
        let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();

        let mut buf = vec![7u8; 3];
        append_exact_at(&f, &mut buf, 200_000, 50_000).unwrap();
        assert_eq!(&buf[..3], &[7, 7, 7]);
        assert_eq!(&buf[3..], &data[50_000..250_000]);

        let mut short = Vec::new();
        let err = append_exact_at(&f, &mut short, 100, 299_950).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // What was read before the end stays, so nothing claims bytes the file never had.
        assert_eq!(short, &data[299_950..]);
    }
}
