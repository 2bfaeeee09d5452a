//! The receiver's checkpoint thread: makes written data durable (fdatasync) and only then
//! raises the stored resume offset, off the writer's thread.
//!
//! An fdatasync of a window takes ~16 ms on this kind of disk (up to 70 ms seen). Done inline,
//! the writer stopped verifying and writing for that long every window, the link backed up,
//! and the sender idled: 137 syncs held a 1 GiB receive for 2.4 s. Here the writer hands over
//! a duplicate handle and the offset it has written up to, and goes on. The invariant is
//! unchanged: an offset is stored only after a sync that began after its data was written.
//!
//! The queue is bounded, so a disk slower than the network holds the writer back instead of
//! piling up handles; checkpoints that queued up while a sync ran are coalesced per file (the
//! latest one covers the earlier ones, since one fdatasync flushes everything written before
//! it).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::error::FerryError;
use crate::store::Store;

// Checkpoints that may wait for the thread before the writer blocks.
use crate::defaults::CHECKPOINT_QUEUE as QUEUE;

pub(super) struct Checkpoint {
    pub(super) file: u32,
    /// A duplicate of the `.part` handle: it stays valid if the file is renamed meanwhile.
    pub(super) handle: File,
    /// Every byte below this was written (and verified) before the checkpoint was queued.
    pub(super) offset: u64,
    /// For error messages.
    pub(super) dest: PathBuf,
}

/// Durable checkpoints on a thread of their own.
pub(super) struct Checkpointer {
    tx: Option<SyncSender<Checkpoint>>,
    thread: Option<JoinHandle<()>>,
    /// A sync failed. Linux may report a later fsync of the same file as a success although
    /// the pages it lost were never written, so nothing may be checkpointed after that.
    failed: Arc<AtomicBool>,
}

impl Checkpointer {
    /// `report` receives the first error; checkpointing stops after it (the transfer is
    /// ending anyway, and a later offset must not be stored past a failed sync).
    pub(super) fn start(
        store: Store,
        transfer_id: String,
        report: impl Fn(FerryError) + Send + 'static,
    ) -> Self {
        let (tx, rx) = sync_channel::<Checkpoint>(QUEUE);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let thread = std::thread::Builder::new()
            .name("ferry-ckpt".into())
            .spawn(move || {
                if let Err(e) = run(&store, &transfer_id, &rx) {
                    flag.store(true, Ordering::SeqCst);
                    report(e);
                }
            });
        match thread {
            Ok(t) => Checkpointer {
                tx: Some(tx),
                thread: Some(t),
                failed,
            },
            Err(e) => {
                tracing::warn!(%e, "no checkpoint thread; checkpoints run on the writer");
                Checkpointer {
                    tx: None,
                    thread: None,
                    failed,
                }
            }
        }
    }

    /// Queue `c`. `Ok(Some(c))` gives it back when there is no thread (the caller syncs it);
    /// an error means an earlier checkpoint failed and no offset may be stored any more.
    pub(super) fn submit(&self, c: Checkpoint) -> Result<Option<Checkpoint>, FerryError> {
        if self.failed() {
            return Err(sync_failed(&c));
        }
        match &self.tx {
            Some(tx) => match tx.send(c) {
                Ok(()) => Ok(None),
                Err(e) => Err(sync_failed(&e.0)),
            },
            None => Ok(Some(c)),
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Wait until every queued checkpoint is durable and stored.
    pub(super) fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn sync_failed(c: &Checkpoint) -> FerryError {
    FerryError::Io(format!(
        "{}: an earlier sync to disk failed; not recording progress past it",
        c.dest.display()
    ))
}

/// Sync `c`'s file and record its offset.
pub(super) fn apply(store: &Store, transfer_id: &str, c: &Checkpoint) -> Result<(), FerryError> {
    c.handle
        .sync_data()
        .map_err(|e| FerryError::io(&c.dest.display().to_string(), &e))?;
    store.set_offset(transfer_id, c.file, c.offset)?;
    Ok(())
}

fn run(store: &Store, transfer_id: &str, rx: &Receiver<Checkpoint>) -> Result<(), FerryError> {
    while let Ok(first) = rx.recv() {
        // Whatever queued behind the last sync: the latest per file supersedes the rest.
        let mut batch = BTreeMap::new();
        batch.insert(first.file, first);
        while let Ok(c) = rx.try_recv() {
            batch.insert(c.file, c);
        }
        for c in batch.values() {
            apply(store, transfer_id, c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn store_with_file(dir: &std::path::Path) -> Store {
        use crate::store::fixtures::{file, row};
        let store = Store::open(&dir.join("s.sqlite")).unwrap();
        let f = crate::store::FileRow {
            size: 100,
            ..file(0)
        };
        store.insert_if_new(&row("t1"), &[f]).unwrap();
        store
    }

    #[test]
    fn queued_checkpoints_land_in_order_and_the_latest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_file(dir.path());
        let path = dir.path().join("a.part");
        let mut f = File::create(&path).unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let errs = errors.clone();
        let mut ck = Checkpointer::start(store.clone(), "t1".into(), move |e| {
            errs.lock().unwrap().push(e.to_string())
        });
        for offset in [10u64, 20, 30, 40, 50, 60] {
            f.write_all(&[7u8; 10]).unwrap();
            let c = Checkpoint {
                file: 0,
                handle: f.try_clone().unwrap(),
                offset,
                dest: path.clone(),
            };
            assert!(
                ck.submit(c).unwrap().is_none(),
                "the thread takes every checkpoint"
            );
        }
        ck.finish();
        assert!(errors.lock().unwrap().is_empty());
        let (_, files) = store.transfer("t1").unwrap().unwrap();
        assert_eq!(files[0].verified_offset, 60);
    }
}
