//! The session machines against each other: each case drives [`Sim`] and checks what
//! crossed the link, what each side reported and how each ended.

use std::time::Duration;

use super::{CHUNK, IDLE, K, Sim};
use crate::defaults::DONE_WAIT;
use crate::error::FerryError;
use crate::events::Event;
use crate::transfer::WINDOW;

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[test]
fn files_arrive_and_the_sender_ends_on_the_receivers_done() {
    let sizes = [3 * CHUNK as u64 + 100, 0, K, 1];
    let mut sim = Sim::new(&sizes, &[]);
    sim.run_to_end();
    assert!(sim.s_result().is_ok(), "{:?}", sim.s_result());
    assert!(sim.r_result().is_ok(), "{:?}", sim.r_result());
    sim.assert_arrived();
    // The receiver's `Done` ends the wait at once, not DONE_WAIT later.
    let (s_at, r_at) = (sim.s_end.as_ref().unwrap().0, sim.r_end.as_ref().unwrap().0);
    assert!(s_at - r_at < Duration::from_millis(50), "{:?}", s_at - r_at);
    let total: u64 = sizes.iter().sum();
    assert_eq!(
        count(&sim.s_events, |e| matches!(e, Event::FileDone { .. })),
        4
    );
    let (s, r) = sim.attempts();
    assert_eq!((s.bytes_acked, s.bytes_sent), (total, total));
    assert_eq!((r.bytes_written, r.files.len()), (total, 4));
}

/// Files at each side of the hash unit, one and two chunks, the ack interval and the window.
#[test]
fn files_at_protocol_boundaries_arrive() {
    use crate::transfer::ACK_EVERY;
    let sizes = ferry_testkit::boundary_sizes(CHUNK as u64, ACK_EVERY, WINDOW);
    let mut sim = Sim::new(&sizes, &[]);
    sim.run_to_end();
    assert!(sim.s_result().is_ok(), "{:?}", sim.s_result());
    assert!(sim.r_result().is_ok(), "{:?}", sim.r_result());
    sim.assert_arrived();
}

#[test]
fn pause_from_either_side_holds_the_data_until_both_resume() {
    let size = 40 * CHUNK as u64;
    let mut sim = Sim::new(&[size], &[]);
    sim.run_until(10, |s| s.chunks.len() >= 4);
    let now = sim.now;
    sim.r.set_paused(true);
    // What was read before the pause arrived still goes; then nothing for a long while.
    sim.run_for(Duration::from_secs(2));
    let held = sim.chunks.len();
    assert!(held < 40, "paused after {held} of 40 chunks");
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.chunks.len(), held, "chunks crossed while paused");
    assert_eq!(count(&sim.s_events, |e| *e == Event::Paused), 1);
    assert_eq!(count(&sim.r_events, |e| *e == Event::Paused), 1);
    // The sender pauses too; the receiver resuming alone does not restart the data.
    sim.s.set_paused(sim.now, true);
    sim.r.set_paused(false);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.chunks.len(),
        held,
        "chunks crossed while the sender paused"
    );
    assert_eq!(count(&sim.s_events, |e| *e == Event::Resumed), 1);
    sim.s.set_paused(sim.now, false);
    sim.run_to_end();
    assert!(sim.s_result().is_ok() && sim.r_result().is_ok());
    sim.assert_arrived();
    assert!(sim.now - now >= Duration::from_secs(42));
    assert_eq!(count(&sim.r_events, |e| *e == Event::Resumed), 2);
}

#[test]
fn the_sender_cancelling_ends_both_sides() {
    let mut sim = Sim::new(&[20 * CHUNK as u64], &[]);
    sim.run_until(10, |s| s.chunks.len() >= 4);
    sim.s.cancel();
    sim.run_to_end();
    assert!(
        matches!(sim.s_result(), Err(FerryError::Cancelled(m)) if m == "by the user"),
        "{:?}",
        sim.s_result()
    );
    assert!(
        matches!(sim.r_result(), Err(FerryError::Cancelled(m)) if m == "by the sender: sender cancelled"),
        "{:?}",
        sim.r_result()
    );
    assert!(sim.chunks.len() < 20);
}

#[test]
fn the_receiver_cancelling_ends_both_sides() {
    let mut sim = Sim::new(&[20 * CHUNK as u64], &[]);
    sim.run_until(10, |s| s.chunks.len() >= 4);
    sim.r.cancel();
    sim.run_to_end();
    assert!(
        matches!(sim.r_result(), Err(FerryError::Cancelled(m)) if m == "by the user"),
        "{:?}",
        sim.r_result()
    );
    assert!(
        matches!(sim.s_result(), Err(FerryError::Cancelled(m)) if m == "by the receiver: receiver cancelled"),
        "{:?}",
        sim.s_result()
    );
}

#[test]
fn a_damaged_chunk_is_asked_for_again_and_stale_reads_are_dropped() {
    let size = 12 * CHUNK as u64 + 5;
    let mut sim = Sim::new(&[size], &[]);
    sim.damage = Some(3);
    sim.run_to_end();
    assert!(sim.s_result().is_ok(), "{:?}", sim.s_result());
    assert!(sim.r_result().is_ok(), "{:?}", sim.r_result());
    sim.assert_arrived();
    let bad = 2 * CHUNK as u64;
    let rejected = |e: &Event| matches!(e, Event::ChunkRejected { offset, .. } if *offset == bad);
    assert_eq!(count(&sim.r_events, rejected), 1);
    assert_eq!(count(&sim.s_events, rejected), 1);
    // From the rewind on, the file goes again from the damaged chunk, in order: chunks read
    // before the rewind (an older generation) are dropped, not sent.
    assert_eq!(sim.rewinds.len(), 1);
    let again: Vec<u64> = sim.chunks[sim.rewinds[0]..].iter().map(|c| c.1).collect();
    let expect: Vec<u64> = (2..13).map(|i| i * CHUNK as u64).collect();
    assert_eq!(again, expect);
    assert_eq!(sim.chunks.iter().filter(|c| c.1 == 0).count(), 1);
    let (s, _) = sim.attempts();
    assert!(s.bytes_sent > size, "{}", s.bytes_sent);
    assert_eq!(s.bytes_acked, size);
}

#[test]
fn a_link_that_closes_mid_transfer_ends_both_sides_as_peer_gone() {
    let mut sim = Sim::new(&[20 * CHUNK as u64], &[]);
    sim.run_until(10, |s| s.chunks.len() >= 4);
    sim.cut = true;
    sim.run_to_end();
    assert!(
        matches!(sim.s_result(), Err(FerryError::PeerGone(_))),
        "{:?}",
        sim.s_result()
    );
    assert!(
        matches!(sim.r_result(), Err(FerryError::PeerGone(_))),
        "{:?}",
        sim.r_result()
    );
}

/// The receiver confirmed everything and went away without its `Done` or its close reaching
/// the sender: the sender reports success once [`DONE_WAIT`] has passed, not before.
#[test]
fn a_receiver_that_vanishes_after_confirming_is_waited_for_a_bounded_time() {
    let mut sim = Sim::new(&[2 * CHUNK as u64], &[]);
    sim.receiver_vanishes = true;
    sim.run_until(60, |s| s.done_sent.is_some());
    let done_at = sim.done_sent.unwrap();
    sim.run_until(60, |s| {
        s.s_end.is_some() || s.now >= done_at + DONE_WAIT - IDLE
    });
    assert!(sim.s_end.is_none(), "ended before the wait was over");
    sim.run_until(60, |s| s.s_end.is_some());
    let (at, r) = sim.s_end.as_ref().unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(*at >= done_at + DONE_WAIT && *at <= done_at + DONE_WAIT + IDLE);
}

#[test]
fn a_resumed_file_starts_at_its_offset() {
    // Off the chunk grid (on BLAKE3's 1 KiB one): the next chunks realign to the hash tree.
    let start = 2 * CHUNK as u64 + 3 * K;
    let size = 5 * CHUNK as u64 + 100;
    let mut sim = Sim::new(&[size, K], &[(0, start)]);
    sim.run_to_end();
    assert!(sim.s_result().is_ok(), "{:?}", sim.s_result());
    assert!(sim.r_result().is_ok(), "{:?}", sim.r_result());
    sim.assert_arrived();
    assert_eq!(sim.chunks.first(), Some(&(0, start)));
    assert!(sim.chunks.iter().all(|&(f, o)| f != 0 || o >= start));
    assert!(sim.s_events.iter().any(|e| matches!(
        e,
        Event::Resuming { bytes_done, total } if *bytes_done == start && *total == size + K
    )));
    let (s, r) = sim.attempts();
    assert_eq!(s.bytes_sent, size - start + K);
    assert_eq!(s.bytes_acked, size + K);
    assert_eq!(r.bytes_written, size - start + K);
}

/// A source that changed after the offer fails alone: both sides report it, the other file
/// still arrives, and both end well.
#[test]
fn a_changed_source_fails_that_file_only() {
    let mut sim = Sim::new(&[3 * CHUNK as u64, 2 * CHUNK as u64], &[]);
    let changed = sim.src[0].0.clone();
    std::fs::write(&changed, b"something else").unwrap();
    sim.run_to_end();
    assert!(sim.s_result().is_ok(), "{:?}", sim.s_result());
    assert!(sim.r_result().is_ok(), "{:?}", sim.r_result());
    let failed = |e: &Event| matches!(e, Event::FileFailed { path, .. } if path == "f0.bin");
    assert_eq!(count(&sim.s_events, failed), 1);
    assert_eq!(count(&sim.r_events, failed), 1);
    assert!(sim.chunks.iter().all(|c| c.0 == 1), "{:?}", sim.chunks);
    let got = std::fs::read(sim.out.join("f1.bin")).unwrap();
    assert!(got == sim.src[1].1);
    assert!(!sim.out.join("f0.bin").exists());
    let (s, r) = sim.attempts();
    assert_eq!(s.failed.len(), 1);
    assert!(matches!(s.failed[0], (0, FerryError::SourceChanged(_))));
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.files.len(), 1);
}
