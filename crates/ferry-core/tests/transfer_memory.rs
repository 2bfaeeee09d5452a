//! Transfers over an in-memory link with real files in temp folders: the whole sender and
//! receiver drivers, disk threads and resume store, without sockets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_core::Store;
use ferry_core::link::Link;
use ferry_core::manifest;
use ferry_core::transfer::TransferHandle;
use ferry_core::transfer::receiver::{self, Decision, RecvJob};
use ferry_core::transfer::sender::{self, SendJob};
use ferry_core::{Event, EventSink};
use ferry_testkit::data;
use tokio::sync::mpsc;

fn hash_file(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

struct Run {
    send: Result<sender::SendAttempt, ferry_core::FerryError>,
    recv: Result<receiver::RecvAttempt, ferry_core::FerryError>,
    recv_events: Vec<Event>,
}

async fn run_once(job: &SendJob, rjob: &RecvJob, msg_size: usize) -> Run {
    let (a, b) = Link::memory_pair(32, msg_size);
    let (etx, mut erx) = mpsc::unbounded_channel();
    let (sh, rh) = (TransferHandle::new(), TransferHandle::new());
    let sev = EventSink::none();
    let rev = EventSink::new(etx);
    let mut decide = |_: &receiver::Offer| Decision::Accept;
    let (send, recv) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            sender::run(a, job, &sh, &sev),
            receiver::run(b, rjob, &mut decide, &rh, &rev)
        )
    })
    .await
    .expect("transfer timed out");
    drop(rev);
    let mut recv_events = Vec::new();
    while let Ok(e) = erx.try_recv() {
        recv_events.push(e);
    }
    Run {
        send,
        recv,
        recv_events,
    }
}

fn jobs(paths: &[PathBuf], out: &Path, db: &Path) -> (SendJob, RecvJob) {
    let m = manifest::build(paths).unwrap();
    let id = manifest::transfer_id("TESTROOM", &m.entries);
    let job = SendJob::new(id, m);
    let rjob = RecvJob {
        out_dir: out.to_path_buf(),
        overwrite: false,
        store: Store::open(db).unwrap(),
        room: "TESTROOM".into(),
        server: String::new(),
    };
    (job, rjob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_arrives_intact() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = src.path().join("big.bin");
    std::fs::write(&f, data(3 * 1024 * 1024 + 12345, 1)).unwrap();
    let (job, rjob) = jobs(
        std::slice::from_ref(&f),
        out.path(),
        &src.path().join("r.db"),
    );
    let r = run_once(&job, &rjob, 64 * 1024).await;
    let s = r.send.unwrap();
    let rv = r.recv.unwrap();
    assert_eq!(s.bytes_acked, 3 * 1024 * 1024 + 12345);
    assert_eq!(rv.files.len(), 1);
    assert_eq!(hash_file(&out.path().join("big.bin")), hash_file(&f));
    assert_eq!(rv.files[0].hash, hash_file(&f));
    assert!(!out.path().join("big.bin.part").exists());
    assert!(
        r.recv_events
            .iter()
            .any(|e| matches!(e, Event::FileDone { .. }))
    );
}

/// The receiver answers `Done` when everything is confirmed, so the sender reports done at
/// once even when the receiver's hang-up never reaches it (close packets lost on a real link;
/// here a second handle keeps the receiver's end open). Without the answer it waits 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_finishes_on_the_receivers_done_not_its_close() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = src.path().join("a.bin");
    std::fs::write(&f, data(300_000, 7)).unwrap();
    let (job, rjob) = jobs(
        std::slice::from_ref(&f),
        out.path(),
        &src.path().join("r.db"),
    );
    let (a, b) = Link::memory_pair(32, 64 * 1024);
    let keep_open = b.tx.clone();
    let (sh, rh) = (TransferHandle::new(), TransferHandle::new());
    let ev = EventSink::none();
    let mut decide = |_: &receiver::Offer| Decision::Accept;
    let ((send, sent_at), (recv, received_at)) =
        tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(
                async {
                    (
                        sender::run(a, &job, &sh, &ev).await,
                        std::time::Instant::now(),
                    )
                },
                async {
                    let r = receiver::run(b, &rjob, &mut decide, &rh, &ev).await;
                    (r, std::time::Instant::now())
                }
            )
        })
        .await
        .expect("transfer timed out");
    send.unwrap();
    recv.unwrap();
    let lag = sent_at.saturating_duration_since(received_at);
    assert!(
        lag < Duration::from_secs(2),
        "sender finished {lag:?} after the receiver"
    );
    drop(keep_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_of_small_files_empty_files_and_odd_names() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let root = src.path().join("tree");
    std::fs::create_dir_all(root.join("deep/er/est")).unwrap();
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    for i in 0..120u64 {
        let dir = root.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i}.dat")),
            data((i * 997 % 40_000) as usize, i),
        )
        .unwrap();
    }
    std::fs::write(root.join("deep/er/est/zero"), b"").unwrap();
    std::fs::write(root.join("sp ace & ünï\u{301}cödé ?.txt"), b"odd").unwrap();
    std::fs::write(root.join("CON"), b"device").unwrap();
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"bad\xffname.bin");
        std::fs::write(root.join(raw), b"not utf-8").unwrap();
    }
    let (job, rjob) = jobs(
        std::slice::from_ref(&root),
        out.path(),
        &src.path().join("r.db"),
    );
    let r = run_once(&job, &rjob, 256 * 1024 + 46).await;
    r.send.unwrap();
    let rv = r.recv.unwrap();
    assert!(rv.failed.is_empty(), "{:?}", rv.failed);
    for i in 0..120u64 {
        let rel = format!("tree/d{}/f{i}.dat", i % 7);
        assert_eq!(
            hash_file(&out.path().join(&rel)),
            hash_file(&src.path().join(&rel)),
            "{rel}"
        );
    }
    assert_eq!(
        std::fs::read(out.path().join("tree/deep/er/est/zero")).unwrap(),
        b""
    );
    assert!(out.path().join("tree/empty-dir").is_dir());
    assert_eq!(
        std::fs::read(out.path().join("tree/_CON")).unwrap(),
        b"device"
    );
    assert_eq!(
        std::fs::read(
            out.path()
                .join("tree/sp ace & ünï\u{301}cödé _.txt".nfc_like())
        )
        .unwrap(),
        b"odd"
    );
    #[cfg(target_os = "linux")]
    assert_eq!(
        std::fs::read(out.path().join("tree/bad\u{fffd}name.bin")).unwrap(),
        b"not utf-8"
    );
}

trait NfcLike {
    fn nfc_like(&self) -> String;
}
impl NfcLike for str {
    fn nfc_like(&self) -> String {
        // "ï" + combining acute composes to "ḯ" (U+1E2F) under NFC.
        self.replace("ï\u{301}", "\u{1e2f}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_overwrites_without_flag() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = src.path().join("a.txt");
    std::fs::write(&f, b"new contents").unwrap();
    std::fs::write(out.path().join("a.txt"), b"precious").unwrap();
    let (job, rjob) = jobs(
        std::slice::from_ref(&f),
        out.path(),
        &src.path().join("r.db"),
    );
    let r = run_once(&job, &rjob, 64 * 1024).await;
    r.recv.unwrap();
    assert_eq!(
        std::fs::read(out.path().join("a.txt")).unwrap(),
        b"precious"
    );
    assert_eq!(
        std::fs::read(out.path().join("a (1).txt")).unwrap(),
        b"new contents"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_chunk_is_refetched() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = src.path().join("x.bin");
    std::fs::write(&f, data(2 * 1024 * 1024, 9)).unwrap();
    let (mut job, rjob) = jobs(
        std::slice::from_ref(&f),
        out.path(),
        &src.path().join("r.db"),
    );
    job.hooks.corrupt_chunk = Some(5);
    let r = run_once(&job, &rjob, 64 * 1024).await;
    r.send.unwrap();
    r.recv.unwrap();
    assert!(
        r.recv_events
            .iter()
            .any(|e| matches!(e, Event::ChunkRejected { .. })),
        "the corrupt chunk was not noticed"
    );
    assert_eq!(hash_file(&out.path().join("x.bin")), hash_file(&f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_link_resumes_from_stored_offset() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = src.path().join("r.bin");
    let size = 40 * 1024 * 1024;
    std::fs::write(&f, data(size, 3)).unwrap();
    let (mut job, rjob) = jobs(
        std::slice::from_ref(&f),
        out.path(),
        &src.path().join("r.db"),
    );
    job.hooks.rate_limit_bps = Some(60 * 1024 * 1024);
    // First attempt: cut the link after ~20 MB arrived.
    let (a, b) = Link::memory_pair(32, 64 * 1024);
    let (etx, mut erx) = mpsc::unbounded_channel();
    let rev = EventSink::new(etx);
    let (sh, rh) = (TransferHandle::new(), TransferHandle::new());
    let mut decide = |_: &receiver::Offer| Decision::Accept;
    let mut last_progress = 0;
    {
        let none = EventSink::none();
        let send = sender::run(a, &job, &sh, &none);
        let recv = receiver::run(b, &rjob, &mut decide, &rh, &rev);
        tokio::pin!(send);
        tokio::pin!(recv);
        let watch = async {
            loop {
                match erx.recv().await {
                    Some(Event::Progress { bytes_done, .. }) => {
                        last_progress = bytes_done;
                        if bytes_done > 20 * 1024 * 1024 {
                            break;
                        }
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        };
        tokio::select! {
            _ = watch => {}
            r = &mut send => panic!("sender finished early: {r:?}"),
            r = &mut recv => panic!("receiver finished early: {r:?}"),
        }
        // Dropping both futures drops both link ends: the link is gone.
    }
    // The receiver's writer thread makes its last checkpoint on its way out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(out.path().join("r.bin.part").exists());
    job.hooks.rate_limit_bps = None;
    let r = run_once(&job, &rjob, 64 * 1024).await;
    r.send.unwrap();
    let rv = r.recv.unwrap();
    assert!(rv.resumed_from > 0, "nothing was resumed");
    assert!(
        last_progress.saturating_sub(rv.resumed_from) <= ferry_core::transfer::WINDOW,
        "re-sent {} bytes",
        last_progress.saturating_sub(rv.resumed_from)
    );
    assert_eq!(rv.bytes_written, size as u64 - rv.resumed_from);
    assert_eq!(hash_file(&out.path().join("r.bin")), hash_file(&f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_source_is_refused_others_continue() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let a = src.path().join("a.bin");
    let b = src.path().join("b.bin");
    std::fs::write(&a, data(100_000, 1)).unwrap();
    std::fs::write(&b, data(100_000, 2)).unwrap();
    let (job, rjob) = jobs(
        &[a.clone(), b.clone()],
        out.path(),
        &src.path().join("r.db"),
    );
    std::fs::write(&a, data(100_001, 1)).unwrap();
    let r = run_once(&job, &rjob, 64 * 1024).await;
    let s = r.send.unwrap();
    let rv = r.recv.unwrap();
    assert_eq!(s.failed.len(), 1);
    assert_eq!(s.failed[0].1.code(), "source-changed");
    assert_eq!(rv.failed.len(), 1);
    assert_eq!(rv.failed[0].1.code(), "source-changed");
    assert!(!out.path().join("a.bin").exists());
    assert_eq!(hash_file(&out.path().join("b.bin")), hash_file(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_data_and_resume_finishes() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = src.path().join("p.bin");
    std::fs::write(&f, data(16 * 1024 * 1024, 5)).unwrap();
    let (mut job, rjob) = jobs(
        std::slice::from_ref(&f),
        out.path(),
        &src.path().join("r.db"),
    );
    job.hooks.rate_limit_bps = Some(40 * 1024 * 1024);
    let (a, b) = Link::memory_pair(32, 64 * 1024);
    let (etx, mut erx) = mpsc::unbounded_channel();
    let rev = EventSink::new(etx);
    let (sh, rh) = (TransferHandle::new(), TransferHandle::new());
    let rh2 = rh.clone();
    let mut decide = |_: &receiver::Offer| Decision::Accept;
    let driver = async {
        // Pause from the receiver once data flows; check nothing new arrives beyond the
        // window, then resume.
        let mut at_pause = 0;
        while let Some(e) = erx.recv().await {
            if let Event::Progress { bytes_done, .. } = e
                && bytes_done > 2 * 1024 * 1024
            {
                rh2.pause();
                at_pause = bytes_done;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut during = at_pause;
        while let Ok(e) = erx.try_recv() {
            if let Event::Progress { bytes_done, .. } = e {
                during = bytes_done;
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut later = during;
        while let Ok(e) = erx.try_recv() {
            if let Event::Progress { bytes_done, .. } = e {
                later = later.max(bytes_done);
            }
        }
        assert_eq!(later, during, "data kept flowing while paused");
        assert!(during - at_pause <= ferry_core::transfer::WINDOW);
        rh2.resume();
    };
    let none = EventSink::none();
    let (s, r, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            sender::run(a, &job, &sh, &none),
            receiver::run(b, &rjob, &mut decide, &rh, &rev),
            driver
        )
    })
    .await
    .unwrap();
    s.unwrap();
    r.unwrap();
    assert_eq!(hash_file(&out.path().join("p.bin")), hash_file(&f));
}

/// Engine alone (no WebRTC): throughput of disk → hash → memory link → verify → disk.
/// Opt-in: `FERRY_HEAVY=1 cargo test --release -p ferry-core --test transfer_memory heavy -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_engine_throughput_over_memory_link() {
    if std::env::var("FERRY_HEAVY").ok().as_deref() != Some("1") {
        eprintln!("SKIP heavy_engine_throughput_over_memory_link: set FERRY_HEAVY=1");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = src.path().join("h.bin");
    let piece = data(8 * 1024 * 1024, 77);
    {
        use std::io::Write;
        let mut w = std::fs::File::create(&f).unwrap();
        for _ in 0..64 {
            w.write_all(&piece).unwrap();
        }
    }
    let (job, rjob) = jobs(
        std::slice::from_ref(&f),
        out.path(),
        &src.path().join("r.db"),
    );
    let t = std::time::Instant::now();
    let r = run_once(&job, &rjob, 64 * 1024).await;
    r.recv.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ENGINE 512 MiB over a memory link: {secs:.2} s, {:.0} MB/s",
        512.0 * 1048576.0 / secs / 1e6
    );
}

/// Files at the sizes where the protocol changes what it does (each side of the hash unit,
/// of one and two chunks, of the ack interval and of the window) arrive intact, together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_at_protocol_boundaries_arrive_intact() {
    use ferry_core::transfer::{ACK_EVERY, WINDOW, chunk_size};
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let msg_size = 64 * 1024;
    let sizes = ferry_testkit::boundary_sizes(chunk_size(msg_size) as u64, ACK_EVERY, WINDOW);
    let paths: Vec<PathBuf> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let p = src.path().join(format!("b{i:02}.bin"));
            ferry_testkit::write_file(&p, n as usize, i as u64);
            p
        })
        .collect();
    let (job, rjob) = jobs(&paths, out.path(), &src.path().join("r.db"));
    let r = run_once(&job, &rjob, msg_size).await;
    let s = r.send.unwrap();
    let rv = r.recv.unwrap();
    assert_eq!(s.bytes_acked, sizes.iter().sum::<u64>());
    assert_eq!(rv.files.len(), sizes.len());
    for p in &paths {
        let got = out.path().join(p.file_name().unwrap());
        assert_eq!(hash_file(&got), hash_file(p), "{}", p.display());
    }
}
