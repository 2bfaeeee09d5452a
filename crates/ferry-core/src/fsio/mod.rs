//! The receiver's (and sender's) disk edge: folders created one at a time without following
//! a symlink, files opened without following one, positional I/O shared by the reader and
//! writer threads, re-hashing a kept prefix, and I/O errors sorted into what a user can act
//! on.
//!
//! How an untrusted name becomes a path inside the output folder (the naming rules) is in
//! [`names`]; `.part` files, from creation to landing under a free name, are in [`part`].

mod names;
mod part;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use crate::transfer::tree::{FileTree, piece_len};

pub use names::escape_display;
// Public for the fuzz targets, which mount this module from its source (fuzz/src/lib.rs).
#[allow(unreachable_pub)]
pub use names::sanitize_rel_path;
pub(crate) use names::{confine, is_invisible};
pub(crate) use part::{finish_part, open_part, part_path};

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
