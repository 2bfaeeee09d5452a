//! What the sender offers: the files and empty folders under the paths the user picked,
//! named relative to each picked path's parent with `/` separators.
//!
//! Symlinks: a path the user names is followed (they chose it, link or not). Inside a
//! picked folder no symlink is followed, to a file or a folder: a link can point anywhere
//! (`id_rsa -> ~/.ssh/id_rsa`), and the user picked the folder, not what its links reach.
//! Those are left out and listed in [`Manifest::skipped`] for the user to see.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ferry_proto::peer::FileEntry;

/// The offer plus, for the sender only, where each entry's bytes live.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// What the receiver is offered, in order.
    pub entries: Vec<FileEntry>,
    /// `Some(source)` for files, `None` for empty directories. Same order as `entries`.
    pub sources: Vec<Option<PathBuf>>,
    /// Symlinks inside picked folders that were left out, named like entries.
    pub skipped: Vec<String>,
}

impl Manifest {
    /// The bytes offered ([`checked_total`], saturating).
    pub fn total(&self) -> u64 {
        checked_total(&self.entries).unwrap_or(u64::MAX)
    }
}

/// The most a transfer may offer: the store keeps sizes as SQLite's signed 64-bit
/// integers, so 2^63 - 1 bytes (8 EiB), far beyond any real disk.
pub const MAX_TOTAL: u64 = i64::MAX as u64;

/// The sum of the entries' sizes, or `None` past [`MAX_TOTAL`] (a peer's manifest can claim
/// any sizes; a wrapped sum would show the user a small offer).
pub fn checked_total(entries: &[FileEntry]) -> Option<u64> {
    entries
        .iter()
        .try_fold(0u64, |sum, e| sum.checked_add(e.size))
        .filter(|&t| t <= MAX_TOTAL)
}

/// Size and modification time (ms since the epoch): the identity resume checks against.
pub fn stat(path: &Path) -> io::Result<(u64, i64)> {
    Ok(identity(&fs::metadata(path)?))
}

/// [`stat`] of metadata already at hand (an open file's).
pub fn identity(m: &fs::Metadata) -> (u64, i64) {
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (m.len(), mtime)
}

/// Walk `paths` (files or folders, any mix) into a manifest. Entries are sorted within each
/// folder so the same tree always yields the same manifest (and transfer id).
pub fn build(paths: &[PathBuf]) -> io::Result<Manifest> {
    let mut m = Manifest {
        entries: Vec::new(),
        sources: Vec::new(),
        skipped: Vec::new(),
    };
    for p in paths {
        let abs = fs::canonicalize(p)?;
        // A named symlink lands under its own name, as the user sees it; `.` and `..` need
        // the resolved one.
        let name = p
            .file_name()
            .or(abs.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".into());
        walk(&abs, &name, &mut m)?;
    }
    Ok(m)
}

fn walk(path: &Path, rel: &str, m: &mut Manifest) -> io::Result<()> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        let mut kids: Vec<_> = fs::read_dir(path)?.collect::<Result<_, _>>()?;
        kids.sort_by_key(|k| k.file_name());
        let before = m.entries.len();
        for k in kids {
            let child = format!("{rel}/{}", k.file_name().to_string_lossy());
            // Not followed (see the module docs); `file_type` does not follow links itself.
            if k.file_type()?.is_symlink() {
                m.skipped.push(child);
                continue;
            }
            walk(&k.path(), &child, m)?;
        }
        if m.entries.len() == before {
            m.entries.push(FileEntry {
                path: rel.to_string(),
                size: 0,
                mtime_ms: 0,
                dir: true,
            });
            m.sources.push(None);
        }
    } else if meta.is_file() {
        let (size, mtime_ms) = stat(path)?;
        m.entries.push(FileEntry {
            path: rel.to_string(),
            size,
            mtime_ms,
            dir: false,
        });
        m.sources.push(Some(path.to_path_buf()));
    }
    Ok(())
}

/// The transfer's stable id: BLAKE3 over the room and the manifest, hex (128 bits). A
/// resumed transfer keeps its id even when it goes through a new room.
pub fn transfer_id(room: &str, entries: &[FileEntry]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"ferry-transfer-v1\0");
    h.update(room.as_bytes());
    h.update(b"\0");
    for e in entries {
        h.update(e.path.as_bytes());
        h.update(b"\0");
        h.update(&e.size.to_le_bytes());
        h.update(&e.mtime_ms.to_le_bytes());
        h.update(&[u8::from(e.dir)]);
    }
    h.finalize().to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_files_folders_and_empty_dirs() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("tree");
        fs::create_dir_all(root.join("b/empty")).unwrap();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("a/x.txt"), b"xx").unwrap();
        fs::write(root.join("b/y.bin"), b"yyy").unwrap();
        fs::write(d.path().join("single"), b"").unwrap();
        let m = build(&[root.clone(), d.path().join("single")]).unwrap();
        let got: Vec<_> = m
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.size, e.dir))
            .collect();
        assert_eq!(
            got,
            vec![
                ("tree/a/x.txt", 2, false),
                ("tree/b/empty", 0, true),
                ("tree/b/y.bin", 3, false),
                ("single", 0, false),
            ]
        );
        assert_eq!(m.total(), 5);
        assert!(m.sources[1].is_none());
        assert_eq!(
            m.sources[0].as_deref(),
            Some(&*root.join("a/x.txt").canonicalize().unwrap())
        );
        let id = transfer_id("ROOM", &m.entries);
        assert_eq!(id.len(), 32);
        assert_eq!(id, transfer_id("ROOM", &m.entries));
        assert_ne!(id, transfer_id("ROOM2", &m.entries));
        let mut changed = m.entries.clone();
        changed[0].size += 1;
        assert_ne!(id, transfer_id("ROOM", &changed));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_inside_a_tree_are_skipped_and_a_named_one_is_followed() {
        let d = tempfile::tempdir().unwrap();
        let secret = d.path().join("secret");
        fs::write(&secret, b"key").unwrap();
        let root = d.path().join("tree");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/ok.txt"), b"ok").unwrap();
        std::os::unix::fs::symlink(&secret, root.join("id_rsa")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("sub/up")).unwrap();
        std::os::unix::fs::symlink(root.join("gone"), root.join("dangling")).unwrap();
        let named = d.path().join("named");
        std::os::unix::fs::symlink(&secret, &named).unwrap();
        let m = build(&[root, named]).unwrap();
        let got: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(got, ["tree/sub/ok.txt", "named"]);
        assert_eq!(m.skipped, ["tree/dangling", "tree/id_rsa", "tree/sub/up"]);
    }

    #[test]
    fn totals_past_the_bound_are_refused() {
        let e = |size| FileEntry {
            path: "x".into(),
            size,
            mtime_ms: 0,
            dir: false,
        };
        assert_eq!(checked_total(&[e(1), e(2)]), Some(3));
        assert_eq!(checked_total(&[e(MAX_TOTAL)]), Some(MAX_TOTAL));
        assert_eq!(checked_total(&[e(MAX_TOTAL), e(1)]), None);
        assert_eq!(checked_total(&[e(u64::MAX), e(1)]), None);
        assert_eq!(
            checked_total(&[e(u64::MAX / 2 + 1), e(u64::MAX / 2 + 1)]),
            None
        );
    }

    #[test]
    fn missing_path_is_an_error() {
        assert!(build(&[PathBuf::from("/nonexistent/ferry/x")]).is_err());
    }
}
