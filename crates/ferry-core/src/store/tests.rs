use super::fixtures::{file, row};
use super::*;

#[test]
fn a_new_database_opened_at_once_from_many_threads_migrates_once() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let start = std::sync::Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Store::open(&path).map(|_| ())
                })
            })
            .collect();
        for o in openers {
            let opened = o.join().unwrap();
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }
}

/// Databases written before the states were typed hold the same words: each reads back as
/// its state, and what is written now is the same word.
#[test]
fn states_in_the_database_are_the_words_they_always_were() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ferry.db");
    let s = Store::open(&p).unwrap();
    for (i, st) in TransferState::ALL.iter().enumerate() {
        let id = format!("t{i}");
        s.insert_if_new(&row(&id), &[file(0), file(1)]).unwrap();
        s.set_transfer_state(&id, *st, None, None).unwrap();
        s.set_file_state(&id, 1, FileState::Done, None, None)
            .unwrap();
    }
    let raw = Connection::open(&p).unwrap();
    let words: Vec<String> = raw
        .prepare("SELECT state FROM transfers ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(words, ["active", "done", "failed", "cancelled"]);
    let files: Vec<String> = raw
        .prepare("SELECT state FROM files WHERE transfer_id = 't0' ORDER BY idx")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(files, ["pending", "done"]);
    // A row an older Ferry wrote by hand reads back typed.
    raw.execute(
        "UPDATE transfers SET state = 'cancelled' WHERE id = 't0'",
        [],
    )
    .unwrap();
    let (t, f) = s.transfer("t0").unwrap().unwrap();
    assert_eq!(t.state, TransferState::Cancelled);
    assert_eq!(
        f.iter().map(|f| f.state).collect::<Vec<_>>(),
        [FileState::Pending, FileState::Done]
    );
}

#[test]
fn offsets_survive_reopen_and_history_lists() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("sub/ferry.db");
    {
        let s = Store::open(&p).unwrap();
        assert!(s.insert_if_new(&row("t1"), &[file(0), file(1)]).unwrap());
        assert!(!s.insert_if_new(&row("t1"), &[file(0)]).unwrap());
        s.set_offset("t1", 1, 3).unwrap();
        s.set_file_state("t1", 0, FileState::Done, Some("abc"), Some("/tmp/f0"))
            .unwrap();
        // A checkpoint that lands after its file finished must not lower the offset.
        s.set_offset("t1", 0, 2).unwrap();
    }
    let s = Store::open(&p).unwrap();
    let (t, files) = s.transfer("t1").unwrap().unwrap();
    assert_eq!(t.state, TransferState::Active);
    assert_eq!(files.len(), 2);
    assert_eq!(
        (files[0].verified_offset, files[0].hash.as_deref()),
        (5, Some("abc"))
    );
    assert_eq!(files[1].verified_offset, 3);
    let h = s.history(10).unwrap();
    assert_eq!(h[0].done_bytes, 5 + 3, "history counts what is durable");
    s.set_transfer_state("t1", TransferState::Done, None, Some(10))
        .unwrap();
    s.insert_if_new(&row("t2"), &[]).unwrap();
    let h = s.history(10).unwrap();
    assert_eq!(h.len(), 2);
    assert!(
        h.iter()
            .any(|t| t.id == "t1" && t.state == TransferState::Done && t.done_bytes == 10)
    );
    assert!(s.transfer("nope").unwrap().is_none());
}
