//! What the sender offers: the files and empty folders under the paths the user picked,
//! named relative to each picked path's parent with `/` separators.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ferry_proto::peer::FileEntry;

/// The offer plus, for the sender only, where each entry's bytes live.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub entries: Vec<FileEntry>,
    /// `Some(source)` for files, `None` for empty directories. Same order as `entries`.
    pub sources: Vec<Option<PathBuf>>,
}

impl Manifest {
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// Size and modification time (ms since the epoch): the identity resume checks against.
pub fn stat(path: &Path) -> io::Result<(u64, i64)> {
    let m = fs::metadata(path)?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Ok((m.len(), mtime))
}

/// Walk `paths` (files or folders, any mix) into a manifest. Entries are sorted within each
/// folder so the same tree always yields the same manifest (and transfer id).
pub fn build(paths: &[PathBuf]) -> io::Result<Manifest> {
    let mut m = Manifest {
        entries: Vec::new(),
        sources: Vec::new(),
    };
    for p in paths {
        let abs = fs::canonicalize(p)?;
        let name = abs
            .file_name()
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
            // Symlinked folders inside a tree are skipped: following them can loop or
            // leak files from outside what the user picked.
            let ft = k.file_type()?;
            if ft.is_symlink() && fs::metadata(k.path()).map(|m| m.is_dir()).unwrap_or(true) {
                continue;
            }
            let child = format!("{rel}/{}", k.file_name().to_string_lossy());
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

    #[test]
    fn missing_path_is_an_error() {
        assert!(build(&[PathBuf::from("/nonexistent/ferry/x")]).is_err());
    }
}
