//! A hostile sender end to end: a hand-driven peer on a real WebRTC link (through a real
//! `ferry-signal` on loopback) attacks the real receiver on the other end. Each attack must
//! end in a specific error, leave the tree beside the output folder untouched, claim nothing
//! finished that is not, and keep memory bounded. Attacks through the manifest's size:
//! `hostile_manifest.rs`; a hostile receiver against the real sender: `hostile_receiver.rs`.

mod hostile;
mod session_common;

use ferry_core::Event;
use ferry_core::FerryError;
use ferry_core::link::Link;
use ferry_core::transfer::receiver::Decision;
use ferry_core::transfer::tree;
use ferry_proto::peer::{self, Control, FileEntry};
use hostile::{
    Hostile, MIB, SERIAL, Victim, accepted, connect, entry, peak_growth, protocol_error,
    receive_against,
};

fn file_done(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::FileDone { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect()
}

/// Names that point outside the folder, at devices, or hide what they are: refused or made
/// harmless one by one, while the good file beside them arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_land_inside_the_folder_or_nowhere() {
    let _serial = SERIAL.lock().await;
    let p = connect().await;
    let v = Victim::new();
    let long_component = "a".repeat(300);
    let long_path = format!("{}f", "dir/".repeat(1100));
    let names: Vec<String> = [
        "ok.txt",
        "../x",
        "a/../../x",
        "/etc/x",
        "C:\\x",
        "C:x",
        "\\\\server\\share\\x",
        "//server/share/x",
        "../sentinel/a.txt",
        "CON",
        "nul.txt",
        "COM1",
        "sub/aux.log",
        long_component.as_str(),
        long_path.as_str(),
        "ctl\u{1}\u{7}\u{1b}[2Jname.txt",
        "bidi\u{202e}txt.exe",
        "new\nline.txt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let files: Vec<FileEntry> = names.iter().map(|n| entry(n, 5)).collect();
    let mut h = Hostile::new(p.host);
    let (r, events, acc) = receive_against(&v, p.guest, Decision::Accept, 60, async {
        let a = h.offer(files).await;
        let acc = accepted(&a);
        // Whatever was accepted gets its data: if a name escaped, its bytes land there.
        for &i in &acc {
            assert!(h.send_file(i, b"owned").await);
        }
        // Done only once every accepted file is confirmed, as an honest sender does.
        let mut confirmed = 0;
        while confirmed < acc.len() {
            match h.recv(20).await {
                Some(Control::FileDone { .. }) => confirmed += 1,
                Some(_) => {}
                None => break,
            }
        }
        assert!(h.control(&Control::Done).await);
        let _ = h.drain(10).await;
        acc
    })
    .await;
    let acc = acc.expect("script finished");
    let r = r.expect("the good files arrive");
    assert!(acc.contains(&0), "ok.txt accepted: {acc:?}");
    for bad in [1, 2, 3, 4, 5, 6, 7, 8, 13, 14] {
        assert!(
            !acc.contains(&bad),
            "{:?} was accepted",
            names[bad as usize]
        );
    }
    let failed: Vec<&str> = r.failed.iter().map(|(p, _)| p.as_str()).collect();
    for (path, err) in &r.failed {
        assert_eq!(err.code(), "protocol", "{path:?}: {err}");
    }
    for bad in [1, 2, 3, 4, 5, 6, 7, 8, 13, 14] {
        assert!(
            failed.contains(&names[bad].as_str()),
            "{:?} not reported as refused: {failed:?}",
            names[bad]
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::FileFailed { path, code, .. }
                if path == &names[bad] && code == "protocol")),
            "no file-failed event for {:?}",
            names[bad]
        );
    }
    v.assert_untouched();
    let out = v.out_files();
    assert!(out.contains(&"ok.txt".to_string()), "{out:?}");
    for f in &out {
        for comp in f.split('/') {
            let stem = comp.split('.').next().unwrap_or("").to_ascii_uppercase();
            assert!(
                !["CON", "NUL", "AUX", "COM1", "PRN"].contains(&stem.as_str()),
                "device name {f:?} written"
            );
            assert!(
                !comp.chars().any(|c| c.is_control()
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c)),
                "control or bidi character in {f:?}"
            );
            assert!(comp.len() <= 255, "{f:?}");
        }
        assert_eq!(
            std::fs::read(v.out.join(f)).unwrap(),
            b"owned",
            "{f:?} is not what was sent"
        );
    }
}

/// Data for a file the receiver refused (its name was unsafe) ends the transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_for_a_refused_file_are_a_protocol_error() {
    let _serial = SERIAL.lock().await;
    let p = connect().await;
    let v = Victim::new();
    let mut h = Hostile::new(p.host);
    let (r, events, _) = receive_against(&v, p.guest, Decision::Accept, 60, async {
        let acc = accepted(&h.offer(vec![entry("ok.txt", 5), entry("../x", 5)]).await);
        assert_eq!(acc, vec![0]);
        h.send_file(1, b"owned").await;
        h.drain(10).await
    })
    .await;
    protocol_error(&r, "data for file 1, which was not accepted");
    assert!(file_done(&events).is_empty());
    v.assert_untouched();
    v.assert_nothing_finished();

    // Declined: data sent straight after the offer, without waiting, lands nowhere.
    let p = connect().await;
    let v = Victim::new();
    let h = Hostile::new(p.host);
    let (r, _, _) = receive_against(&v, p.guest, Decision::Decline, 60, async {
        h.control(&Control::Manifest {
            transfer_id: hostile::TRANSFER_ID.into(),
            files: vec![entry("a.txt", 5), entry("../x", 5)],
        })
        .await;
        h.send_file(0, b"owned").await;
        h.send_file(1, b"owned").await;
    })
    .await;
    assert!(matches!(r, Err(FerryError::Declined(_))), "{r:?}");
    v.assert_untouched();
    assert!(v.out_files().is_empty(), "{:?}", v.out_files());
}

/// A chunk for a file index past the manifest, then (new connection) one past a file's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_outside_the_offer_or_past_eof_are_protocol_errors() {
    let _serial = SERIAL.lock().await;
    let p = connect().await;
    let v = Victim::new();
    let mut h = Hostile::new(p.host);
    let (r, _, _) = receive_against(&v, p.guest, Decision::Accept, 60, async {
        accepted(&h.offer(vec![entry("a.bin", 1000)]).await);
        let cv = tree::piece_cv(0, b"x");
        h.raw(peer::encode_chunk(7, 0, 0, &cv, b"x")).await;
        h.drain(10).await
    })
    .await;
    protocol_error(&r, "data for file 7, which was not accepted");
    v.assert_untouched();
    v.assert_nothing_finished();

    for (offset, len) in [(0u64, 2048usize), (4096, 1024), (u64::MAX - 511, 1024)] {
        let p = connect().await;
        let v = Victim::new();
        let mut h = Hostile::new(p.host);
        let (r, events, _) = receive_against(&v, p.guest, Decision::Accept, 60, async {
            accepted(&h.offer(vec![entry("a.bin", 1000)]).await);
            let data = vec![1u8; len];
            let cv = tree::piece_cv(0, &data);
            h.raw(peer::encode_chunk(0, offset, 0, &cv, &data)).await;
            // And an end, as if the file were complete.
            h.control(&Control::FileEnd {
                file: 0,
                hash: "00".repeat(32),
            })
            .await;
            h.drain(10).await
        })
        .await;
        protocol_error(&r, "outside a 1000-byte file");
        assert!(file_done(&events).is_empty());
        v.assert_untouched();
        v.assert_nothing_finished();
    }
}

/// Bad chunks are asked for again, a bounded number of times, then the receiver gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_bad_chunks_end_in_a_clear_error() {
    let _serial = SERIAL.lock().await;
    let p = connect().await;
    let v = Victim::new();
    let mut h = Hostile::new(p.host);
    let (r, events, got) = receive_against(&v, p.guest, Decision::Accept, 60, async {
        accepted(&h.offer(vec![entry("a.bin", 4096)]).await);
        let data = vec![1u8; 4096];
        for _ in 0..1000 {
            if !h.raw(peer::encode_chunk(0, 0, 0, &[0u8; 32], &data)).await {
                break;
            }
        }
        h.drain(10).await
    })
    .await;
    protocol_error(&r, "too many corrupt chunks");
    let resends = got
        .unwrap_or_default()
        .iter()
        .filter(|c| matches!(c, Control::Resend { file: 0, offset: 0 }))
        .count();
    assert!(resends >= 1, "bad chunks were not asked for again");
    assert!(file_done(&events).is_empty());
    v.assert_untouched();
    v.assert_nothing_finished();
}

/// LZ4 chunks that claim (or expand to) far more than a chunk: refused without allocating
/// what they claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lz4_bombs_are_refused_in_bounded_memory() {
    let _serial = SERIAL.lock().await;
    // LZ4 expands at most about 255 times, so a block that fits one link message decodes to
    // at most about 64 MiB: the bomb below expands to 32 MiB, and one variant claims 4 GiB.
    let zeros = vec![0u8; 32 * MIB as usize];
    let block = ferry_core::transfer::compress::Compressor::new()
        .compress(&zeros)
        .expect("zeros compress")[4..]
        .to_vec();
    drop(zeros);
    assert!(block.len() < 256 * 1024, "{}", block.len());
    for claim in [u32::MAX, 64 * 1024] {
        let p = connect().await;
        assert!(p.host.info.caps.iter().any(|c| c == peer::CAP_LZ4));
        let v = Victim::new();
        let mut h = Hostile::new(p.host);
        let block = &block[..block.len().min(p.guest.info.max_message_size - 100)];
        let ((r, events, _), grew) =
            peak_growth(receive_against(&v, p.guest, Decision::Accept, 60, async {
                accepted(&h.offer(vec![entry("a.bin", 64 * 1024)]).await);
                let mut payload = claim.to_le_bytes().to_vec();
                payload.extend_from_slice(block);
                for _ in 0..40 {
                    let f = peer::encode_chunk(0, 0, peer::FLAG_COMPRESSED, &[0; 32], &payload);
                    if !h.raw(f).await {
                        break;
                    }
                }
                h.drain(10).await
            }))
            .await;
        if claim == u32::MAX {
            protocol_error(&r, "above the 262144-byte chunk limit");
        } else {
            protocol_error(&r, "too many corrupt chunks");
        }
        assert!(file_done(&events).is_empty());
        v.assert_untouched();
        v.assert_nothing_finished();
        println!(
            "lz4 bomb claiming {claim} bytes: peak RSS growth {} MiB",
            grew / MIB
        );
        assert!(grew < 48 * MIB, "peak RSS grew {} MiB", grew / MIB);
    }
}

/// A single control frame far over any message a link carries (a peer with its own WebRTC
/// stack is not held to ours; a memory link stands in for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_control_frames_are_refused() {
    let _serial = SERIAL.lock().await;
    let v = Victim::new();
    let (a, b) = Link::memory_pair(32, 256 * 1024);
    let mut h = Hostile::new(a);
    let (r, _, _) = receive_against(&v, b, Decision::Accept, 60, async {
        accepted(&h.offer(vec![entry("a.bin", 4096)]).await);
        // `pause`, padded with 8 MiB of JSON whitespace.
        let mut f = vec![peer::KIND_CONTROL, 0];
        f.extend(std::iter::repeat_n(b' ', 8 * MIB as usize));
        f.extend_from_slice(br#"{"type":"pause"}"#);
        h.raw(f).await;
        h.drain(5).await
    })
    .await;
    protocol_error(&r, "exceeds");
    v.assert_untouched();
    v.assert_nothing_finished();
}

/// A sender repeating a per-file error (each with a message near the frame limit) cannot
/// grow the receiver's list of failures; the first one fails the file, the second is a
/// protocol error, and what the user sees of the peer's message is clipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_file_errors_are_refused_in_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let p = connect().await;
    let v = Victim::new();
    let mut h = Hostile::new(p.host);
    let big = "e".repeat(200 * 1024);
    let ((r, events, _), grew) =
        peak_growth(receive_against(&v, p.guest, Decision::Accept, 60, async {
            accepted(
                &h.offer(vec![entry("a.bin", 4096), entry("b.bin", 4096)])
                    .await,
            );
            h.repeat_file_error(1000, &big).await;
            h.control(&Control::Done).await;
            h.drain(10).await
        }))
        .await;
    protocol_error(&r, "error for file 0, which is not in progress");
    let shown: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::FileFailed { message, .. } => Some(message.len()),
            _ => None,
        })
        .collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0] < 1024, "a {}-byte message shown", shown[0]);
    v.assert_untouched();
    v.assert_nothing_finished();
    println!(
        "1000 per-file errors of 200 KiB: peak RSS growth {} MiB",
        grew / MIB
    );
    // Both peers live in this process, so the bound holds both sides' queues: per side a
    // link of 64 frames up to 256 KiB and 4 MiB of SCTP buffer (~40 MiB together), plus
    // allocator slack. Kept messages would be 1000 x 200 KiB = 200 MiB.
    assert!(grew < 96 * MIB, "peak RSS grew {} MiB", grew / MIB);
}
