//! `.part` files, from creation to landing: a download is written into `name.part` (or a
//! stand-in `name.n.part` when that is taken by anything), created exclusively and opened
//! without following links; a resumed one has its verified prefix re-hashed; a finished
//! one is synced and moved into place without replacing what is there (`name (1).ext`)
//! unless `overwrite` is set.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{hash_prefix, no_follow, open_existing};
use crate::transfer::tree::FileTree;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsio::write_all_at;

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
}
