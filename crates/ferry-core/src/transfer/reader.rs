//! The sender's disk thread: reads the chunks the machine asks for, hashes each into its
//! chaining value (and the file's hash tree, once, in order), compresses what shrinks, and
//! hands finished frames back to the async driver in `sender.rs`.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

use bytes::Bytes;
use ferry_proto::peer::{self, FileEntry};
use tokio::sync::mpsc;

use super::compress::Compressor;
use super::machine::{ReadIn, ReadOut};
use super::tree::{self, FileTree};
use crate::error::FerryError;
use crate::fsio;
use crate::manifest;

struct OpenSrc {
    f: File,
    /// The whole-file hash, built from the chunks' chaining values in order.
    tree: FileTree,
    /// This file's own LZ4 back-off: one random file must not make the sender skip
    /// compressing the text file whose chunks are read in between (a shared state did,
    /// whenever the pipeline interleaved the two).
    compressor: Option<Compressor>,
}

/// The reading itself, on whatever thread calls it. Each file's whole-file hash is fed once,
/// in order, no matter how often a range is re-read after a rewind.
pub(super) struct Reader {
    entries: Vec<FileEntry>,
    sources: Vec<Option<PathBuf>>,
    compressor: Option<Compressor>,
    open: HashMap<u32, OpenSrc>,
    /// Reused for hashing a resumed file's prefix.
    buf: Vec<u8>,
}

impl Reader {
    pub(super) fn new(
        entries: Vec<FileEntry>,
        sources: Vec<Option<PathBuf>>,
        compressor: Option<Compressor>,
    ) -> Self {
        Self {
            entries,
            sources,
            compressor,
            open: HashMap::new(),
            buf: Vec::new(),
        }
    }

    pub(super) fn read(&mut self, req: ReadIn) -> ReadOut {
        let file = match &req {
            ReadIn::Chunk { file, .. } | ReadIn::End { file, .. } => *file,
        };
        match read_one(
            &self.entries,
            &self.sources,
            &mut self.open,
            &mut self.buf,
            &self.compressor,
            req,
        ) {
            Ok(o) => o,
            Err(err) => {
                self.open.remove(&file);
                ReadOut::Failed { file, err }
            }
        }
    }
}

/// The reader thread: reads run here, off the async executor, until either channel closes.
pub(super) fn reader(
    mut r: Reader,
    mut rx: mpsc::UnboundedReceiver<ReadIn>,
    tx: mpsc::Sender<ReadOut>,
) {
    while let Some(req) = rx.blocking_recv() {
        if tx.blocking_send(r.read(req)).is_err() {
            return;
        }
    }
}

fn open_src(entry: &FileEntry, src: &Option<PathBuf>) -> Result<OpenSrc, FerryError> {
    let path = src
        .as_ref()
        .ok_or_else(|| FerryError::Protocol(format!("{} is a folder", entry.path)))?;
    // Never through a symlink (see `manifest`): one swapped in since the manifest was made
    // could point anywhere.
    let f = fsio::open_source(path).map_err(|e| FerryError::io(&entry.path, &e))?;
    // The resume identity, of the file actually opened: a file that changed since the
    // manifest was made would splice old and new bytes together on the receiver.
    let meta = f.metadata().map_err(|e| FerryError::io(&entry.path, &e))?;
    let (size, mtime) = manifest::identity(&meta);
    if size != entry.size || mtime != entry.mtime_ms {
        return Err(FerryError::SourceChanged(format!(
            "{} (size {} -> {size}, mtime {} -> {mtime})",
            entry.path, entry.size, entry.mtime_ms
        )));
    }
    Ok(OpenSrc {
        f,
        tree: FileTree::new(entry.size),
        compressor: None,
    })
}

/// Feed the whole-file hash up to `to` (a resumed transfer's prefix, which is not sent),
/// reading what it has not seen yet.
fn hash_upto(s: &mut OpenSrc, to: u64, buf: &mut Vec<u8>, name: &str) -> Result<(), FerryError> {
    fsio::hash_prefix(&s.f, &mut s.tree, to, buf).map_err(|e| FerryError::io(name, &e))
}

fn read_one(
    entries: &[FileEntry],
    sources: &[Option<PathBuf>],
    open: &mut HashMap<u32, OpenSrc>,
    buf: &mut Vec<u8>,
    compressor: &Option<Compressor>,
    req: ReadIn,
) -> Result<ReadOut, FerryError> {
    let file = match &req {
        ReadIn::Chunk { file, .. } | ReadIn::End { file, .. } => *file,
    };
    let entry = entries
        .get(file as usize)
        .ok_or_else(|| FerryError::Protocol(format!("no file {file}")))?;
    let s = match open.entry(file) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => {
            let mut src = open_src(entry, &sources[file as usize])?;
            src.compressor = compressor.clone();
            v.insert(src)
        }
    };
    match req {
        ReadIn::Chunk {
            offset,
            len,
            generation,
            ..
        } => {
            hash_upto(s, offset, buf, &entry.path)?;
            if !tree::valid_piece(offset, len as u64, entry.size) {
                return Err(FerryError::Protocol(format!(
                    "{}: chunk {offset}+{len} does not fit the hash tree",
                    entry.path
                )));
            }
            let mut frame = Vec::with_capacity(peer::CHUNK_HEADER_LEN + len);
            frame.resize(peer::CHUNK_HEADER_LEN, 0);
            fsio::append_exact_at(&s.f, &mut frame, len, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    FerryError::SourceChanged(format!("{} shrank while sending", entry.path))
                } else {
                    FerryError::io(&entry.path, &e)
                }
            })?;
            let data = &frame[peer::CHUNK_HEADER_LEN..];
            let cv = tree::piece_cv(offset, data);
            // A re-read after a rewind is already part of the tree.
            if s.tree.next_offset() == offset {
                s.tree
                    .push(offset, data, cv)
                    .map_err(|e| FerryError::Protocol(format!("{}: {e}", entry.path)))?;
            }
            frame[0] = peer::KIND_CHUNK;
            frame[1] = 0;
            frame[2..6].copy_from_slice(&file.to_be_bytes());
            frame[6..14].copy_from_slice(&offset.to_be_bytes());
            frame[14..46].copy_from_slice(&cv);
            if let Some(wire) = s
                .compressor
                .as_mut()
                .and_then(|c| c.compress(&frame[peer::CHUNK_HEADER_LEN..]))
            {
                let mut small = Vec::with_capacity(peer::CHUNK_HEADER_LEN + wire.len());
                small.extend_from_slice(&frame[..peer::CHUNK_HEADER_LEN]);
                small[1] = peer::FLAG_COMPRESSED;
                small.extend_from_slice(wire);
                frame = small;
            }
            Ok(ReadOut::Frame {
                file,
                generation,
                frame: Bytes::from(frame),
            })
        }
        ReadIn::End { generation, .. } => {
            hash_upto(s, entry.size, buf, &entry.path)?;
            let hash = s
                .tree
                .finalize()
                .map_err(|e| FerryError::Protocol(format!("{}: {e}", entry.path)))?
                .to_hex()
                .to_string();
            Ok(ReadOut::End {
                file,
                generation,
                hash,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of the manifest replaced by a symlink (same size and mtime as the original,
    /// pointing at a key) is refused, not read.
    #[cfg(unix)]
    #[test]
    fn a_source_swapped_for_a_symlink_is_not_read() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("a.txt"), b"public").unwrap();
        let m = manifest::build(std::slice::from_ref(&tree)).unwrap();
        let key = d.path().join("id_rsa");
        std::fs::write(&key, b"SECRET").unwrap();
        let src = m.sources[0].clone().unwrap();
        let mtime = std::fs::metadata(&src).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&key)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(open_src(&m.entries[0], &m.sources[0]).is_ok());
        std::fs::remove_file(&src).unwrap();
        std::os::unix::fs::symlink(&key, &src).unwrap();
        let err = open_src(&m.entries[0], &m.sources[0]).err().unwrap();
        assert_eq!(err.code(), "io", "{err}");
    }

    /// Chunks of a random file read in between a text file's chunks (the pipeline
    /// interleaves files) must not make the text go uncompressed: each file backs off on
    /// its own. With one shared back-off, under load, half of an 8 MB log crossed raw.
    #[test]
    fn a_random_file_does_not_stop_the_next_file_compressing() {
        let d = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..400_000u32)
            .flat_map(|i| format!("GET /api/items/{i} 200\n").into_bytes())
            .take(1 << 20)
            .collect();
        std::fs::write(d.path().join("a.log"), &text).unwrap();
        ferry_testkit::write_file(&d.path().join("b.bin"), 1 << 20, 5);
        let m = manifest::build(&[d.path().join("a.log"), d.path().join("b.bin")]).unwrap();
        let mut r = Reader::new(
            m.entries.clone(),
            m.sources.clone(),
            Some(Compressor::new()),
        );
        let chunk = 64 * 1024;
        let read = |r: &mut Reader, file: u32, k: u64| {
            let offset = k * chunk as u64;
            r.read(ReadIn::Chunk {
                file,
                offset,
                len: chunk,
                generation: 0,
            })
        };
        let mut text_flags = vec![];
        // The random file's chunks run ahead (the window interleaves files), then the text.
        for k in 0..16u64 {
            read(&mut r, 1, k);
        }
        for k in 0..16u64 {
            if let ReadOut::Frame { frame, .. } = read(&mut r, 0, k) {
                text_flags.push(frame[1]);
            }
        }
        let compressed = text_flags
            .iter()
            .filter(|f| **f == peer::FLAG_COMPRESSED)
            .count();
        assert_eq!(
            compressed,
            text_flags.len(),
            "text chunks sent raw: {text_flags:?}"
        );
    }
}
