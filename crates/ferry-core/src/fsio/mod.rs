//! The receiver's disk edge: turning untrusted names into paths inside the output folder,
//! `.part` files, and errors the user can act on.
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

/// Why an offered path is refused (docs/PEER-PROTOCOL.md, "Names on the receiver").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(unreachable_pub)] // public for the fuzz targets, which mount this file (fuzz/src/lib.rs)
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
#[allow(unreachable_pub)] // public for the fuzz targets, which mount this file (fuzz/src/lib.rs)
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

fn symlink_err(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{} is a symlink", p.display()),
    )
}

/// Create `dir` (which must be under `root`) and the folders above it, one at a time,
/// refusing any that is a symlink: a link planted inside the output folder is never
/// followed out of it, not even to create an empty folder.
pub(crate) fn create_dirs(root: &Path, dir: &Path) -> io::Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is outside the output folder", dir.display()),
        )
    })?;
    let mut p = root.to_path_buf();
    for c in rel.components() {
        p.push(c);
        if let Err(e) = fs::create_dir(&p)
            && e.kind() != io::ErrorKind::AlreadyExists
        {
            return Err(e);
        }
        // Checked after creating, so a link that appears in between is caught too.
        let m = fs::symlink_metadata(&p)?;
        if m.file_type().is_symlink() {
            return Err(symlink_err(&p));
        }
        if !m.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a file, not a folder", p.display()),
            ));
        }
    }
    Ok(())
}

/// Create the parent folders of `path` (under `root`) as [`create_dirs`] does.
pub(crate) fn create_parents(root: &Path, path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => create_dirs(root, parent),
        None => Ok(()),
    }
}

/// `<final>.part`, next to the final file.
pub(crate) fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    final_path.with_file_name(name)
}

/// Reserve `size` bytes so a full disk shows up now rather than gigabytes later.
pub(crate) fn preallocate(f: &File, size: u64) -> io::Result<()> {
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
pub(crate) fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
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
pub(crate) fn append_exact_at(
    f: &File,
    buf: &mut Vec<u8>,
    len: usize,
    offset: u64,
) -> io::Result<()> {
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
pub(crate) fn write_all_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
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
pub(crate) fn hash_prefix(
    f: &File,
    tree: &mut FileTree,
    to: u64,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
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

/// Options that never open through a symlink in the last component (`O_NOFOLLOW`; on
/// Windows the reparse point itself is opened, and [`check_plain`] refuses it).
fn no_follow(o: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
        o.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    }
    o
}

/// A file opened under the output folder must be a plain file, not a link, folder or pipe.
fn check_plain(f: &File, p: &Path) -> io::Result<()> {
    let m = f.metadata()?;
    if m.file_type().is_symlink() {
        return Err(symlink_err(p));
    }
    if !m.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is not a plain file", p.display()),
        ));
    }
    Ok(())
}

/// Open a file to send, read-only, refusing a symlink in its last component: the manifest
/// records real files, so a link found there now was swapped in after the user picked.
pub(crate) fn open_source(p: &Path) -> io::Result<File> {
    let f = no_follow(OpenOptions::new().read(true)).open(p)?;
    check_plain(&f, p)?;
    Ok(f)
}

fn open_existing(p: &Path) -> io::Result<File> {
    let f = no_follow(OpenOptions::new().read(true).write(true)).open(p)?;
    check_plain(&f, p)?;
    Ok(f)
}

/// How many stand-in `.part` names are tried before giving up.
const PART_NAMES: u32 = 100;

/// Create a fresh `.part` file for `final_path`: `name.part`, or when that name is taken
/// (by anything: a file, a folder, a symlink, dangling or not) `name.2.part`,
/// `name.3.part`, ... Created exclusively, so nothing already there is ever truncated.
fn create_part(final_path: &Path) -> io::Result<(File, PathBuf)> {
    let first = part_path(final_path);
    let name = final_path.file_name().unwrap_or_default().to_os_string();
    for n in 1..=PART_NAMES {
        let cand = if n == 1 {
            first.clone()
        } else {
            let mut s = name.clone();
            s.push(format!(".{n}.part"));
            final_path.with_file_name(s)
        };
        match no_follow(OpenOptions::new().read(true).write(true).create_new(true)).open(&cand) {
            Ok(f) => return Ok((f, cand)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} and {PART_NAMES} other .part names are taken",
            first.display()
        ),
    ))
}

/// The `.part` file a download writes into.
#[derive(Debug)]
pub(crate) struct Part {
    /// The open file, written at offsets.
    pub file: File,
    /// Where it is (beside the destination).
    pub path: PathBuf,
    /// The whole-file hash tree, fed the bytes already verified in the file.
    pub tree: FileTree,
    /// Where writing starts: `resume_from`, or 0 when that could not be kept.
    pub at: u64,
}

/// Open the `.part` file for a download of `size` bytes. `ours` is the `.part` this store's
/// resume record says the transfer wrote; no other existing file is reused. With
/// `resume_from` > 0 (a piece boundary: a multiple of 1 KiB, or `size`) and `ours` holding
/// at least that much, the hash tree is fed those bytes and writing resumes there;
/// otherwise it starts over at 0 in `ours` or, without one, in a freshly created file.
/// Never opens through a symlink.
pub(crate) fn open_part(
    final_path: &Path,
    size: u64,
    resume_from: u64,
    ours: Option<&Path>,
) -> io::Result<Part> {
    if let Some(p) = ours
        && let Ok(f) = open_existing(p)
    {
        let mut tree = FileTree::new(size);
        let at = if resume_from > 0 && f.metadata()?.len() >= resume_from {
            hash_prefix(&f, &mut tree, resume_from, &mut Vec::new())?;
            resume_from
        } else {
            f.set_len(0)?;
            0
        };
        if f.metadata()?.len() < size {
            preallocate(&f, size)?;
        }
        return Ok(Part {
            file: f,
            path: p.to_path_buf(),
            tree,
            at,
        });
    }
    let (f, path) = create_part(final_path)?;
    preallocate(&f, size)?;
    Ok(Part {
        file: f,
        path,
        tree: FileTree::new(size),
        at: 0,
    })
}

/// Where a finished file lands: `want` itself, or with `overwrite` unset and `want`
/// taken, the first free `stem (n).ext`.
pub(crate) fn landing_path(want: &Path, overwrite: bool) -> PathBuf {
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

/// Rename `from` to `to` unless `to` exists (as anything, a dangling symlink included):
/// then `AlreadyExists`, and nothing moved. A plain rename would replace a file that
/// appeared after [`landing_path`] looked.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Only a file system (or kernel) without RENAME_NOREPLACE falls through.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(e);
        }
    }
    // A hard link is created only where nothing is, atomically; then the old name goes.
    match fs::hard_link(from, to) {
        Ok(()) => return fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    // No hard links here (FAT, some shares): look, then rename; racy, but only against
    // something local creating the same name in that instant.
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    fs::rename(from, to)
}

/// Move a verified `.part` (at `part`) into place. Returns where it landed. Without
/// `overwrite` an existing name is never replaced (the file lands as `name (n).ext`);
/// with it, a file or symlink at the destination is replaced (a symlink itself, never
/// its target), a folder is not.
pub(crate) fn finish_part(
    file: File,
    part: &Path,
    final_path: &Path,
    overwrite: bool,
) -> io::Result<PathBuf> {
    file.sync_all()?;
    drop(file);
    if overwrite {
        if let Ok(m) = fs::symlink_metadata(final_path)
            && m.is_dir()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a directory", final_path.display()),
            ));
        }
        fs::rename(part, final_path)?;
        return Ok(final_path.to_path_buf());
    }
    let mut last = None;
    // Bounded: each miss means another file took the name we picked just then.
    for _ in 0..PART_NAMES {
        let dest = landing_path(final_path, false);
        match rename_no_replace(part, &dest) {
            Ok(()) => return Ok(dest),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AlreadyExists.into()))
}

/// What kind of failure an I/O error is, in the user's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoKind {
    /// No space left (or over quota).
    DiskFull,
    /// Not allowed to read or write there.
    PermissionDenied,
    /// Anything else.
    Other,
}

/// Sort `e` into the kinds a user acts on differently.
pub(crate) fn classify(e: &io::Error) -> IoKind {
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

    #[cfg(unix)]
    #[test]
    fn folders_are_not_created_through_a_planted_symlink() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("evil")).unwrap();
        let err = create_parents(&root, &root.join("evil/sub/deeper/x.txt")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(!outside.path().join("sub").exists(), "created outside");
        create_parents(&root, &root.join("fine/sub/x.txt")).unwrap();
        assert!(root.join("fine/sub").is_dir());
        create_dirs(&root, &root.join("fine/sub/empty")).unwrap();
        assert!(root.join("fine/sub/empty").is_dir());
        assert!(create_dirs(&root, outside.path()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_part_file_that_is_not_ours_is_never_truncated_or_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        fs::write(&target, b"untouched").unwrap();
        let dest = d.path().join("a.txt");
        fs::write(d.path().join("a.txt.part"), b"mine").unwrap();
        std::os::unix::fs::symlink(&target, d.path().join("a.txt.2.part")).unwrap();
        let p = open_part(&dest, 10, 0, None).unwrap();
        assert_eq!(p.path, d.path().join("a.txt.3.part"));
        assert_eq!(fs::read(d.path().join("a.txt.part")).unwrap(), b"mine");
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        // A record naming a symlink does not make it ours to write through either.
        let link = d.path().join("a.txt.2.part");
        let q = open_part(&dest, 10, 0, Some(&link)).unwrap();
        assert_eq!(q.path, d.path().join("a.txt.4.part"));
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        // The recorded one is reused, from the start when nothing verified is kept.
        write_all_at(&p.file, b"0123456789", 0).unwrap();
        let r = open_part(&dest, 10, 0, Some(&p.path)).unwrap();
        assert_eq!((r.path.as_path(), r.at), (p.path.as_path(), 0));
        // Moving into place does not replace what appeared at the destination meanwhile.
        fs::write(&dest, b"user file").unwrap();
        std::os::unix::fs::symlink(&target, d.path().join("a (1).txt")).unwrap();
        let landed = finish_part(r.file, &r.path, &dest, false).unwrap();
        assert_eq!(landed, d.path().join("a (2).txt"));
        assert_eq!(fs::read(&dest).unwrap(), b"user file");
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        assert!(rename_no_replace(&landed, &dest).is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"user file");
        // Overwriting replaces a symlink itself, never what it points at.
        let s = open_part(&dest, 3, 0, None).unwrap();
        write_all_at(&s.file, b"new", 0).unwrap();
        let link_dest = d.path().join("a (1).txt");
        finish_part(s.file, &s.path, &link_dest, true).unwrap();
        assert_eq!(fs::read(&link_dest).unwrap(), b"new");
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
    }

    #[test]
    fn part_resume_rehashes_prefix() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("f.bin");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let held = 60 * 1024;
        let part = {
            let p = open_part(&dest, data.len() as u64, 0, None).unwrap();
            assert_eq!(p.at, 0);
            assert_eq!(p.path, part_path(&dest));
            assert_eq!(p.file.metadata().unwrap().len(), data.len() as u64);
            write_all_at(&p.file, &data[..held], 0).unwrap();
            p.path
        };
        let p = open_part(&dest, data.len() as u64, held as u64, Some(&part)).unwrap();
        let mut tree = p.tree;
        assert_eq!(p.at, held as u64);
        assert_eq!(tree.next_offset(), held as u64);
        // The rebuilt prefix and the rest, as chunks would bring it, give the file's hash.
        tree.push_data(held as u64, &data[held..held + 4096])
            .unwrap();
        tree.push_data((held + 4096) as u64, &data[held + 4096..])
            .unwrap();
        assert_eq!(tree.finalize().unwrap(), blake3::hash(&data));
        drop(p.file);
        // Asking for more than the .part holds starts over.
        fs::remove_file(&part).unwrap();
        let p = open_part(&dest, data.len() as u64, held as u64, Some(&part)).unwrap();
        assert_eq!(p.at, 0);
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

    /// Found by fuzz/fuzz_targets/rel_path.rs: a control character between a letter and its
    /// combining accent hid the pair from NFC, then was removed, leaving a decomposed name.
    #[test]
    fn control_characters_go_before_normalising() {
        assert_eq!(ok("e\u{7f}\u{301}"), "\u{e9}");
        assert_eq!(ok("cafe\u{0}\u{301}/x"), "caf\u{e9}/x");
    }
}
