//! The receiver's plan: where each offered file lands and from which byte it resumes, from
//! the manifest, the output folder and the resume store. Apart from the driver because it
//! is the one part that touches the file system before the user has accepted (it only looks
//! then; see `plan`).

use std::collections::{HashMap, HashSet};

use ferry_proto::peer::FileEntry;

use super::receiver::RecvJob;
use crate::error::FerryError;
use crate::fsio;
use crate::store::{self, Direction, FileRow, TransferRow};
use crate::transfer::tree;

pub(super) struct PlanFile {
    pub(super) dest: std::path::PathBuf,
    /// The resume offset: verified bytes already in its `.part`.
    pub(super) start: u64,
    /// False for a file already done (and for folders).
    pub(super) accepted: bool,
}

/// Per manifest entry (None: refused name), and the refusals.
pub(super) type Plan = (Vec<Option<PlanFile>>, Vec<(String, FerryError)>);

/// Map the manifest onto the output folder and the resume store. Only with `commit` (the
/// user accepted) does it create folders or store rows: before that it only looks.
fn plan(
    job: &RecvJob,
    transfer_id: &str,
    entries: &[FileEntry],
    commit: bool,
) -> Result<Plan, FerryError> {
    if commit {
        std::fs::create_dir_all(&job.out_dir).map_err(|e| FerryError::io("output folder", &e))?;
    }
    let root = match job.out_dir.canonicalize() {
        Ok(r) => r,
        // Not there yet (nothing in it to resume): where it will be.
        Err(e) if !commit && e.kind() == std::io::ErrorKind::NotFound => {
            std::path::absolute(&job.out_dir).map_err(|e| FerryError::io("output folder", &e))?
        }
        Err(e) => return Err(FerryError::io("output folder", &e)),
    };
    let mut failed = Vec::new();
    let mut used = HashSet::new();
    // Per clashing name, the next suffix to try: a hostile manifest of one name repeated
    // 100,000 times must not cost 100,000 tries per entry.
    let mut next_suffix: HashMap<String, u32> = HashMap::new();
    let mut dests = Vec::with_capacity(entries.len());
    for e in entries {
        let comps = fsio::sanitize_rel_path(&e.path).and_then(|mut comps| {
            // Two names that sanitise to the same path must not share a `.part` file.
            let base = comps.pop().unwrap_or_default();
            let mut name = base.clone();
            let key = format!("{}/{base}", comps.join("/")).to_lowercase();
            if !used.insert(key.clone()) {
                let n = next_suffix.entry(key).or_insert(1);
                loop {
                    name = format!("{base} ({n})");
                    *n += 1;
                    if used.insert(format!("{}/{name}", comps.join("/")).to_lowercase()) {
                        break;
                    }
                }
            }
            comps.push(name);
            fsio::confine(&root, &comps)
        });
        match comps {
            Ok(p) => dests.push(Some(p)),
            Err(err) => {
                tracing::warn!(path = %e.path, %err, "refusing unsafe name");
                failed.push((e.path.clone(), FerryError::Protocol(err.to_string())));
                dests.push(None);
            }
        }
    }
    // `run` checked that the sizes add up (see `manifest::checked_total`).
    let total = crate::manifest::checked_total(entries).unwrap_or(u64::MAX);
    let row = TransferRow {
        id: transfer_id.to_string(),
        direction: Direction::Receive,
        kind: store::TransferKind::Files,
        room: job.room.clone(),
        peer: String::new(),
        server: job.server.clone(),
        host_token: String::new(),
        out_dir: root.display().to_string(),
        state: store::TransferState::Active,
        created_at: store::now(),
        updated_at: store::now(),
        total_bytes: total,
        done_bytes: 0,
        error: None,
    };
    let rows: Vec<FileRow> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| FileRow {
            idx: i as u32,
            path: e.path.clone(),
            size: e.size,
            mtime_ms: e.mtime_ms,
            is_dir: e.dir,
            source: None,
            dest: dests[i].as_ref().map(|d| d.display().to_string()),
            verified_offset: 0,
            hash: None,
            state: store::FileState::Pending,
        })
        .collect();
    if commit {
        job.store.insert_if_new(&row, &rows)?;
        job.store
            .set_transfer_state(transfer_id, store::TransferState::Active, None, None)?;
    }
    let stored = job
        .store
        .transfer(transfer_id)?
        .map(|(_, f)| f)
        .unwrap_or_default();

    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let Some(dest) = dests[i].take() else {
            out.push(None);
            continue;
        };
        if e.dir {
            if commit {
                fsio::create_dirs(&root, &dest).map_err(|err| FerryError::io(&e.path, &err))?;
            }
            out.push(Some(PlanFile {
                dest,
                start: 0,
                accepted: false,
            }));
            continue;
        }
        let row = stored.iter().find(|r| r.idx == i as u32);
        let done = row.is_some_and(|r| r.state == store::FileState::Done);
        let mut start = row.map(|r| r.verified_offset).unwrap_or(0).min(e.size);
        // Chunks start on the hash tree's 1 KiB grid; a row from an older version may not.
        if start != e.size {
            start -= start % tree::UNIT;
        }
        if start > 0 {
            // The `.part` this transfer recorded (older records: the default name), and only
            // as a plain file: the writer will not open a symlink either.
            let part = job
                .store
                .part(transfer_id, i as u32)?
                .unwrap_or_else(|| fsio::part_path(&dest));
            let have = std::fs::symlink_metadata(part)
                .ok()
                .filter(|m| m.is_file())
                .map_or(0, |m| m.len());
            if have < start {
                start = 0;
            }
        }
        out.push(Some(PlanFile {
            dest,
            start,
            accepted: !done,
        }));
    }
    Ok((out, failed))
}

pub(super) async fn plan_blocking(
    job: &RecvJob,
    transfer_id: &str,
    entries: &[FileEntry],
    commit: bool,
) -> Result<Plan, FerryError> {
    let (job, id, entries) = (job.clone(), transfer_id.to_string(), entries.to_vec());
    tokio::task::spawn_blocking(move || plan(&job, &id, &entries, commit))
        .await
        .map_err(|e| FerryError::Io(e.to_string()))?
}

/// Bytes already held: finished files whole, the rest up to their resume offsets.
pub(super) fn resumable_of(plan: &[Option<PlanFile>], entries: &[FileEntry]) -> u64 {
    plan.iter()
        .zip(entries)
        .map(|(p, e)| match p {
            Some(p) if !p.accepted && !e.dir => e.size,
            Some(p) => p.start,
            None => 0,
        })
        .sum()
}
