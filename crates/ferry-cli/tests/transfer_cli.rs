//! End to end: two real `ferry` processes, a real signaling server, real WebRTC on loopback.

mod common;

use std::time::Duration;

use common::*;

const MB: usize = 1024 * 1024;
/// Same as ferry-core's `WINDOW` (defaults.rs): the most a crash may cost.
const WINDOW: u64 = 8 * 1024 * 1024;

#[test]
fn single_file() {
    let s = Setup::new();
    let f = s.path("src/one.bin");
    random_file(&f, 3 * MB + 777, 1);
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-single", &[]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-single", &out, &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("one.bin")), hash(&f));
    let done = rcv.all("file-done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["hash"], hash(&f));
    assert_eq!(snd.all("file-done")[0]["hash"], hash(&f));
    assert!(rcv.all("connected").iter().any(|c| c["path"] == "direct"));
    // History records both sides.
    let h = std::process::Command::new(FERRY)
        .args(["history", "--json"])
        .env("FERRY_DB", s.path("recv.db"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&h.stdout);
    assert!(text.contains("\"state\":\"done\""), "{text}");
}

#[test]
fn many_files_and_folders() {
    let s = Setup::new();
    let root = s.path("src/tree");
    for i in 0..60u64 {
        random_file(
            &root.join(format!("d{}/sub{}/f{i}.dat", i % 4, i % 3)),
            (i as usize * 3001) % 50_000,
            i,
        );
    }
    std::fs::create_dir_all(root.join("empty/inner")).unwrap();
    std::fs::write(root.join("zero.bin"), b"").unwrap();
    std::fs::write(root.join("we?ird:na*me.txt"), b"odd").unwrap();
    let single = s.path("src/loose.txt");
    std::fs::write(&single, b"loose").unwrap();
    let mut snd = s.sender(&[root.clone(), single.clone()], "pw-tree", &[]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-tree", &out, &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0);
    for i in 0..60u64 {
        let rel = format!("tree/d{}/sub{}/f{i}.dat", i % 4, i % 3);
        assert_eq!(
            hash(&out.join(&rel)),
            hash(&s.path("src").join(&rel)),
            "{rel}"
        );
    }
    assert!(out.join("tree/empty/inner").is_dir());
    assert_eq!(std::fs::read(out.join("tree/zero.bin")).unwrap(), b"");
    assert_eq!(
        std::fs::read(out.join("tree/we_ird_na_me.txt")).unwrap(),
        b"odd"
    );
    assert_eq!(std::fs::read(out.join("loose.txt")).unwrap(), b"loose");
}

/// Regression: a folder of thousands of small files has a manifest (and accept) far larger
/// than one data-channel message; it used to be dropped silently and both sides waited forever.
#[test]
fn thousands_of_small_files() {
    const N: u64 = 3000;
    let s = Setup::new();
    let root = s.path("src/many");
    for i in 0..N {
        let body = format!("file {i} {}", "x".repeat((i as usize * 37) % 900));
        let p = root.join(format!("d{:02}/a-rather-long-name-{i:05}.txt", i % 50));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let mut snd = s.sender(std::slice::from_ref(&root), "pw-many", &[]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-many", &out, &[]);
    rcv.wait_event("connected", T);
    let start = std::time::Instant::now();
    let limit = Duration::from_secs(20);
    assert_eq!(rcv.finish(limit), 0, "{:#?}", rcv.events.last());
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(snd.finish(T), 0);
    println!("{N} small files in {secs:.2} s");
    assert!(secs < 20.0, "{N} small files took {secs:.1} s");
    assert_eq!(rcv.all("file-done").len(), N as usize);
    for i in 0..N {
        let rel = format!("many/d{:02}/a-rather-long-name-{i:05}.txt", i % 50);
        assert_eq!(
            std::fs::read(out.join(&rel)).unwrap(),
            std::fs::read(s.path("src").join(&rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn wrong_password_fails_both_sides() {
    let s = Setup::new();
    let f = s.path("src/secret.bin");
    random_file(&f, 1000, 2);
    let mut snd = s.sender(&[f], "right-password", &[]);
    let (room, _) = room_of(&mut snd);
    let mut rcv = s.receiver(&room, "wrong-password", &s.path("out"), &[]);
    assert_eq!(rcv.finish(T), 10, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 10, "{:#?}", snd.events);
    assert!(rcv.all("offer").is_empty(), "file metadata leaked");
    assert!(!s.path("out/secret.bin").exists());
}

#[test]
fn tampered_chunk_is_detected_and_refetched() {
    let s = Setup::new();
    let f = s.path("src/t.bin");
    random_file(&f, 2 * MB, 3);
    let mut snd = s.sender(
        std::slice::from_ref(&f),
        "pw-tamper",
        &[("FERRY_TEST_CORRUPT_CHUNK", "4".into())],
    );
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-tamper", &out, &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0);
    assert_eq!(rcv.all("chunk-rejected").len(), 1, "{:#?}", rcv.events);
    assert_eq!(hash(&out.join("t.bin")), hash(&f));
}

/// Log-like text: what compresses in real life.
fn text_file(path: &std::path::Path, len: usize) {
    let mut v = Vec::with_capacity(len + 100);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(
            format!(
                "2026-11-25T08:{:02}:{:02}Z INFO GET /api/items/{i} 200 {} ms\n",
                i % 60,
                i % 59,
                i % 89
            )
            .as_bytes(),
        );
        i += 1;
    }
    v.truncate(len);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, v).unwrap();
}

#[test]
fn compressible_data_crosses_compressed_and_random_data_does_not_grow() {
    let s = Setup::new();
    let text = s.path("src/app.log");
    text_file(&text, 8 * MB);
    let noise = s.path("src/noise.bin");
    random_file(&noise, MB, 9);
    // Chunk 62 of the text's 64: damaging its LZ4 block must cost a resend, not the
    // transfer. Near the end, so the resend (which replays the file from the bad chunk)
    // replays a few chunks whatever the link's speed: with chunk 3, how much of the text
    // had gone out before the resend request arrived, and went again, decided the result.
    let mut snd = s.sender(
        &[text.clone(), noise.clone()],
        "pw-lz4",
        &[("FERRY_TEST_CORRUPT_CHUNK", "62".into())],
    );
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-lz4", &out, &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("app.log")), hash(&text));
    assert_eq!(hash(&out.join("noise.bin")), hash(&noise));
    assert_eq!(rcv.all("chunk-rejected").len(), 1, "{:#?}", rcv.events);
    let done = snd.all("done");
    let link = done[0]["link_bytes"].as_u64().unwrap();
    let total = (9 * MB) as u64;
    // The text shrinks several times over; the random megabyte is sent as it is.
    assert!(link < total / 2, "{link} bytes on the link for {total}");
    assert!(link >= MB as u64, "{link}");
}

#[test]
fn receiver_killed_and_restarted_resumes() {
    let s = Setup::new();
    let f = s.path("src/k.bin");
    random_file(&f, 40 * MB, 4);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-kill-r", &[rate]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-r", &out, &[]);
    rcv.wait_for("progress past 12 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 12 * MB as u64
    });
    // Checkpoints are made durable off the writer's thread, so on a slow disk the first one
    // may land after 12 MB are written: kill once history shows it saved.
    let saved = s.durable_bytes("recv.db", T);
    rcv.kill9();
    let before = rcv.last_progress();
    let mut rcv2 = s.receiver(&room, "pw-kill-r", &out, &[]);
    let resumed = rcv2.wait_event("resuming", Duration::from_secs(90));
    let from = resumed["bytes_done"].as_u64().unwrap();
    assert!(from >= saved, "resumed at {from}, but {saved} were saved");
    // The window being written plus, at most, the one whose sync was still running.
    assert!(
        before.saturating_sub(from) <= 2 * WINDOW,
        "re-sent {} bytes",
        before - from
    );
    assert_eq!(
        rcv2.finish(Duration::from_secs(90)),
        0,
        "{:#?}",
        rcv2.events
    );
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("k.bin")), hash(&f));
    assert!(!out.join("k.bin.part").exists());
}

#[test]
fn sender_killed_and_resumed() {
    let s = Setup::new();
    let f = s.path("src/s.bin");
    random_file(&f, 40 * MB, 5);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(
        std::slice::from_ref(&f),
        "pw-kill-s",
        std::slice::from_ref(&rate),
    );
    let (room, id) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-s", &out, &[]);
    rcv.wait_for("progress past 12 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 12 * MB as u64
    });
    snd.kill9();
    let mut snd2 = s.sender_resume(&id, "pw-kill-s", &[]);
    let (room2, id2) = room_of(&mut snd2);
    assert_eq!(id2, id);
    assert_eq!(
        room2, room,
        "the room should be reattached with the host token"
    );
    let resumed = rcv.wait_event("resuming", Duration::from_secs(90));
    let before = rcv
        .events
        .iter()
        .filter(|v| v["event"] == "progress")
        .filter_map(|v| v["bytes_done"].as_u64())
        .max()
        .unwrap_or(0);
    let from = resumed["bytes_done"].as_u64().unwrap();
    assert!(from > 0);
    assert!(
        before.saturating_sub(from) <= WINDOW,
        "re-sent {} bytes",
        before - from
    );
    assert_eq!(rcv.finish(Duration::from_secs(90)), 0, "{:#?}", rcv.events);
    assert_eq!(snd2.finish(T), 0, "{:#?}", snd2.events);
    assert_eq!(hash(&out.join("s.bin")), hash(&f));
}

/// A sender that dies while the devices are still connecting (the app crashed, the laptop
/// slept) is not the end for a receiver that already typed the password: it tries again,
/// says so, and gets the files from the restarted sender.
///
/// The kill waits for `connecting`, i.e. for the password to be proved: a sender that dies
/// after the receiver's confirmation tag went out and before its own came back looks exactly
/// like a server that took the tag to test a password offline, so there the receiver stops
/// with `wrong-password` instead of retrying (docs/CRYPTO.md §3).
#[test]
fn sender_killed_mid_handshake_the_receiver_tries_again() {
    let s = Setup::new();
    let f = s.path("src/h.bin");
    random_file(&f, MB, 6);
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-kill-h", &[]);
    let (room, id) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-h", &out, &[]);
    // `connecting` is printed as the sender's tag is queued, not written: a few milliseconds
    // let it reach the receiver. ICE, DTLS and SCTP take tens of milliseconds after that; the
    // kill lands in them.
    snd.wait_event("connecting", T);
    std::thread::sleep(Duration::from_millis(15));
    snd.kill9();
    let retry = rcv.wait_event("retrying", T);
    assert_eq!(retry["code"], "peer-gone", "{retry}");
    let mut snd2 = s.sender_resume(&id, "pw-kill-h", &[]);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd2.finish(T), 0, "{:#?}", snd2.events);
    assert_eq!(hash(&out.join("h.bin")), hash(&f));
    assert!(
        rcv.all("connected").len() == 1 && rcv.all("reconnecting").is_empty(),
        "the first attempt should have failed before a link: {:#?}",
        rcv.events
    );
}

/// A sender that dies before the receiver's password is proved: the receiver's tag may have
/// gone unanswered, which it must treat as a failed attempt, never retried into more guesses.
#[test]
fn sender_killed_during_the_password_check_is_not_retried_into_more_guesses() {
    let s = Setup::new();
    let f = s.path("src/g.bin");
    random_file(&f, MB, 7);
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-kill-g", &[]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-kill-g", &out, &[]);
    snd.wait_event("peer-joined", T);
    snd.kill9();
    let next = rcv.wait_for("retrying or an error", T, |v| {
        v["event"] == "retrying" || v["event"] == "error"
    });
    // Either the kill beat the receiver's tag (a plain peer-gone, retried) or it did not.
    if next["event"] == "error" {
        assert_eq!(next["code"], "wrong-password", "{next}");
        assert!(rcv.all("retrying").is_empty(), "{:#?}", rcv.events);
        assert_eq!(rcv.finish(T), 10);
    } else {
        assert_eq!(next["code"], "peer-gone", "{next}");
        rcv.kill9();
    }
    assert!(!out.join("g.bin").exists());
}

#[test]
fn pause_then_resume() {
    let s = Setup::new();
    let f = s.path("src/p.bin");
    random_file(&f, 24 * MB, 6);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-pause", &[rate]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-pause", &out, &[]);
    rcv.wait_for("progress past 4 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 4 * MB as u64
    });
    rcv.say("pause");
    rcv.wait_event("paused", T);
    snd.wait_event("paused", T);
    std::thread::sleep(Duration::from_millis(1500));
    rcv.drain();
    let at = rcv.last_progress();
    std::thread::sleep(Duration::from_millis(1000));
    rcv.drain();
    assert_eq!(rcv.last_progress(), at, "bytes kept arriving while paused");
    assert!(at < 24 * MB as u64);
    rcv.say("resume");
    snd.wait_event("resumed", T);
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0);
    assert_eq!(hash(&out.join("p.bin")), hash(&f));
}

#[test]
fn server_gone_after_connect_does_not_stop_the_transfer() {
    let mut s = Setup::new();
    let f = s.path("src/g.bin");
    random_file(&f, 16 * MB, 7);
    let rate = ("FERRY_TEST_RATE_BPS", (8 * MB).to_string());
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-gone", &[rate]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-gone", &out, &[]);
    rcv.wait_event("progress", T);
    s.server.kill();
    assert_eq!(rcv.finish(T), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("g.bin")), hash(&f));
}

#[test]
fn changed_source_refuses_resume_for_that_file() {
    let s = Setup::new();
    let a = s.path("src/a.bin");
    let b = s.path("src/b.bin");
    random_file(&a, 24 * MB, 8);
    random_file(&b, MB, 9);
    let rate = ("FERRY_TEST_RATE_BPS", (16 * MB).to_string());
    let mut snd = s.sender(&[a.clone(), b.clone()], "pw-changed", &[rate]);
    let (room, id) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-changed", &out, &[]);
    rcv.wait_for("progress past 4 MB", T, |v| {
        v["event"] == "progress" && v["bytes_done"].as_u64().unwrap_or(0) > 4 * MB as u64
    });
    snd.kill9();
    // The user edits the file before the transfer is resumed.
    std::thread::sleep(Duration::from_millis(20));
    random_file(&a, 24 * MB + 1, 10);
    let mut snd2 = s.sender_resume(&id, "pw-changed", &[]);
    assert_eq!(rcv.finish(Duration::from_secs(90)), 18, "{:#?}", rcv.events);
    assert_eq!(snd2.finish(T), 18, "{:#?}", snd2.events);
    let failed = rcv.all("file-failed");
    assert!(
        failed
            .iter()
            .any(|v| v["path"] == "a.bin" && v["code"] == "source-changed"),
        "{failed:#?}"
    );
    assert!(!out.join("a.bin").exists());
    assert_eq!(hash(&out.join("b.bin")), hash(&b));
}

#[test]
fn disk_full_is_reported_on_both_sides() {
    // A small tmpfs needs root; elsewhere this test says so and passes.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP disk_full_is_reported_on_both_sides: needs root for mount -t tmpfs");
        return;
    }
    let s = Setup::new();
    let mnt = s.path("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|st| st.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP disk_full_is_reported_on_both_sides: mount -t tmpfs failed");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let f = s.path("src/huge.bin");
    random_file(&f, 20 * MB, 11);
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-full", &[]);
    let (room, _) = room_of(&mut snd);
    let mut rcv = s.receiver(&room, "pw-full", &mnt, &[]);
    assert_eq!(rcv.finish(T), 16, "{:#?}", rcv.events);
    assert_eq!(snd.finish(T), 16, "{:#?}", snd.events);
    assert!(rcv.all("file-done").is_empty() && snd.all("file-done").is_empty());
    assert!(rcv.all("done").is_empty() && snd.all("done").is_empty());
    assert!(!mnt.join("huge.bin").exists());
    let err = &rcv.all("error")[0];
    assert_eq!(err["code"], "disk-full");
}

/// 1 GiB (or FERRY_BENCH_MB) end to end; prints throughput and both sides' peak RSS.
/// Opt-in: `FERRY_HEAVY=1 cargo test --release -p ferry-cli --test transfer_cli heavy -- --nocapture`.
#[test]
fn heavy_transfer_throughput_and_memory() {
    if std::env::var("FERRY_HEAVY").ok().as_deref() != Some("1") {
        eprintln!("SKIP heavy_transfer_throughput_and_memory: set FERRY_HEAVY=1");
        return;
    }
    let mb: usize = std::env::var("FERRY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let s = Setup::new();
    let f = s.path("src/heavy.bin");
    {
        // Written in pieces so the test itself stays small in memory.
        use std::io::Write;
        std::fs::create_dir_all(s.path("src")).unwrap();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&f).unwrap());
        let piece = s.path("piece");
        random_file(&piece, 8 * MB, 42);
        let block = std::fs::read(&piece).unwrap();
        for i in 0..mb.div_ceil(8) {
            let mut b = block.clone();
            b[..8].copy_from_slice(&(i as u64).to_le_bytes());
            out.write_all(&b[..(mb * MB - i * 8 * MB).min(8 * MB)])
                .unwrap();
        }
    }
    let mut snd = s.sender(std::slice::from_ref(&f), "pw-heavy", &[]);
    let (room, _) = room_of(&mut snd);
    let out = s.path("out");
    let mut rcv = s.receiver(&room, "pw-heavy", &out, &[]);
    rcv.wait_event("connected", T);
    let start = std::time::Instant::now();
    let long = Duration::from_secs(600);
    assert_eq!(rcv.finish(long), 0);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(snd.finish(T), 0);
    let rss = |p: &Peer| {
        p.all("stats")
            .first()
            .and_then(|v| v["peak_rss_bytes"].as_u64())
            .unwrap_or(0)
    };
    let bytes = (mb * MB) as f64;
    println!(
        "BENCH {mb} MiB: {secs:.2} s, {:.1} MB/s; peak RSS sender {:.1} MB, receiver {:.1} MB",
        bytes / secs / 1e6,
        rss(&snd) as f64 / 1e6,
        rss(&rcv) as f64 / 1e6
    );
    assert_eq!(
        rcv.all("file-done")[0]["hash"],
        snd.all("file-done")[0]["hash"]
    );
    assert_eq!(hash(&out.join("heavy.bin")), hash(&f));
}
