//! The sender's per-file machine: which bytes go out next, bounded by a window of
//! unacknowledged bytes, and how acks, rewinds and confirmations move it.

use ferry_proto::peer::FileAccept;

use super::super::tree::{self, UNIT};
use super::recv_file::MAX_RESENDS;
use super::{ProtoViolation, violation};

#[derive(Debug, Clone, Default)]
struct SendFile {
    size: u64,
    accepted: bool,
    /// Next byte to read and send.
    sent: u64,
    /// Everything below is written on the receiver (cumulative ack).
    acked: u64,
    end_sent: bool,
    done: bool,
    failed: bool,
    /// Bumped on every rewind so reads issued before it can be recognised and dropped.
    generation: u32,
    /// Rewinds the receiver asked for (bounded by [`MAX_RESENDS`]).
    resends: u32,
}

impl SendFile {
    fn finished(&self) -> bool {
        !self.accepted || self.done || self.failed
    }
}

/// What the sender should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendStep {
    /// Read `len` bytes of `file` at `offset` and send them as one chunk.
    Chunk {
        file: u32,
        offset: u64,
        len: usize,
        generation: u32,
    },
    /// All of `file` has been handed out: send its final hash.
    End { file: u32, generation: u32 },
    /// Every accepted file is confirmed (or failed): send `Done`.
    Done,
    /// Nothing now: window full, paused, or waiting for confirmations.
    Wait,
}

/// Sender side: which bytes go out next, bounded by a window of unacknowledged bytes.
#[derive(Debug, Clone)]
pub struct SendMachine {
    files: Vec<SendFile>,
    window: u64,
    /// Preferred chunk payload; actual chunks follow the hash tree's shape (`tree::piece_len`).
    chunk: u64,
    cursor: usize,
    /// Every file before `low` is finished, and no file from `high` on has been sent from:
    /// in-flight bytes live in `low..high`, so a step costs the window, not the file count
    /// (it was O(files) per step: 5 % of all CPU for 10,000 small files).
    low: usize,
    high: usize,
    paused_local: bool,
    paused_remote: bool,
    done_sent: bool,
}

impl SendMachine {
    pub fn new(sizes: &[u64], window: u64, chunk: usize) -> Self {
        Self {
            files: sizes
                .iter()
                .map(|&size| SendFile {
                    size,
                    ..Default::default()
                })
                .collect(),
            window: window.max(chunk as u64),
            chunk: (chunk as u64).max(UNIT),
            cursor: 0,
            low: 0,
            high: 0,
            paused_local: false,
            paused_remote: false,
            done_sent: false,
        }
    }

    /// Apply the receiver's accept: listed files start at their offset, others are skipped.
    pub fn accept(&mut self, accepts: &[FileAccept]) -> Result<(), ProtoViolation> {
        for a in accepts {
            let Some(f) = self.files.get_mut(a.file as usize) else {
                return violation(format!("accept names unknown file {}", a.file));
            };
            if a.offset > f.size {
                return violation(format!(
                    "accept offset {} past the end of file {}",
                    a.offset, a.file
                ));
            }
            if !a.offset.is_multiple_of(UNIT) && a.offset != f.size {
                return violation(format!(
                    "accept offset {} of file {} is not on a {UNIT}-byte boundary",
                    a.offset, a.file
                ));
            }
            f.accepted = true;
            f.sent = a.offset;
            f.acked = a.offset;
        }
        Ok(())
    }

    pub fn is_accepted(&self, file: u32) -> bool {
        self.files.get(file as usize).is_some_and(|f| f.accepted)
    }

    pub fn generation(&self, file: u32) -> Option<u32> {
        self.files.get(file as usize).map(|f| f.generation)
    }

    /// Change the preferred chunk size from the next chunk on (the driver adapts it to the
    /// measured rate).
    pub fn set_chunk(&mut self, chunk: usize) {
        self.chunk = (chunk as u64).max(UNIT);
    }

    pub fn chunk(&self) -> usize {
        self.chunk as usize
    }

    pub fn set_paused_local(&mut self, p: bool) {
        self.paused_local = p;
    }
    pub fn set_paused_remote(&mut self, p: bool) {
        self.paused_remote = p;
    }
    pub fn paused_remote(&self) -> bool {
        self.paused_remote
    }
    pub fn paused(&self) -> bool {
        self.paused_local || self.paused_remote
    }

    /// Bytes handed out but not yet acknowledged (what the window bounds).
    pub fn in_flight(&self) -> u64 {
        self.files
            .iter()
            .take(self.high)
            .skip(self.low)
            .filter(|f| !f.finished())
            .map(|f| f.sent - f.acked)
            .sum()
    }

    /// Bytes the receiver has confirmed, across all accepted files.
    pub fn acked_total(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| f.accepted && !f.failed)
            .map(|f| if f.done { f.size } else { f.acked })
            .sum()
    }

    pub fn next_step(&mut self) -> SendStep {
        while self.cursor < self.files.len() {
            let f = &self.files[self.cursor];
            if f.finished() || (f.end_sent && f.sent == f.size) {
                self.cursor += 1;
            } else {
                break;
            }
        }
        while self.low < self.files.len() && self.files[self.low].finished() {
            self.low += 1;
        }
        let Some(idx) = (self.cursor < self.files.len()).then_some(self.cursor) else {
            let all = self.low == self.files.len();
            if all && !self.done_sent {
                self.done_sent = true;
                return SendStep::Done;
            }
            return SendStep::Wait;
        };
        if self.paused() {
            return SendStep::Wait;
        }
        let in_flight = self.in_flight();
        self.high = self.high.max(idx + 1);
        let f = &mut self.files[idx];
        if f.sent < f.size {
            let len = tree::piece_len(f.sent, f.size, f.size, self.chunk);
            if in_flight > 0 && in_flight + len > self.window {
                return SendStep::Wait;
            }
            let step = SendStep::Chunk {
                file: idx as u32,
                offset: f.sent,
                len: len as usize,
                generation: f.generation,
            };
            f.sent += len;
            step
        } else {
            f.end_sent = true;
            SendStep::End {
                file: idx as u32,
                generation: f.generation,
            }
        }
    }

    fn file_mut(&mut self, file: u32) -> Result<&mut SendFile, ProtoViolation> {
        match self.files.get_mut(file as usize) {
            Some(f) if f.accepted => Ok(f),
            _ => violation(format!("message names file {file} that was not accepted")),
        }
    }

    pub fn on_ack(&mut self, file: u32, offset: u64) -> Result<(), ProtoViolation> {
        let f = self.file_mut(file)?;
        if offset > f.sent.max(f.acked) {
            return violation(format!("ack {offset} beyond what was sent of file {file}"));
        }
        f.acked = f.acked.max(offset);
        Ok(())
    }

    /// The receiver rejected a chunk: rewind `file` to `offset`. Returns the new generation.
    pub fn on_resend(&mut self, file: u32, offset: u64) -> Result<u32, ProtoViolation> {
        let f = self.file_mut(file)?;
        if f.done || offset > f.sent || (!offset.is_multiple_of(UNIT) && offset != f.size) {
            return violation(format!("resend of file {file} at {offset} is out of range"));
        }
        f.resends += 1;
        if f.resends > MAX_RESENDS {
            return violation(format!(
                "receiver asked for file {file} again more than {MAX_RESENDS} times"
            ));
        }
        f.sent = offset;
        f.acked = f.acked.min(offset);
        f.end_sent = false;
        f.generation += 1;
        let generation = f.generation;
        self.cursor = self.cursor.min(file as usize);
        Ok(generation)
    }

    pub fn on_file_done(&mut self, file: u32) -> Result<(), ProtoViolation> {
        let f = self.file_mut(file)?;
        if f.done {
            return violation(format!("file {file} confirmed twice"));
        }
        if !f.end_sent || f.sent != f.size {
            return violation(format!("file {file} confirmed before it was all sent"));
        }
        f.done = true;
        f.acked = f.size;
        Ok(())
    }

    /// Accepted and neither confirmed nor failed: what a per-file error may name.
    pub fn in_progress(&self, file: u32) -> bool {
        self.files.get(file as usize).is_some_and(|f| !f.finished())
    }

    /// This file will not be sent (e.g. its source changed).
    pub fn fail_file(&mut self, file: u32) {
        if let Some(f) = self.files.get_mut(file as usize) {
            f.failed = true;
        }
    }

    pub fn all_finished(&self) -> bool {
        self.files.iter().all(SendFile::finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes in the tests are in KiB: chunk boundaries must sit on BLAKE3's 1 KiB chunks.
    const K: u64 = 1024;

    fn acc(file: u32, offset: u64) -> FileAccept {
        FileAccept { file, offset }
    }

    /// The windowed count equals a count over every file through sends, acks, rewinds of
    /// files behind the cursor, confirmations and failures.
    #[test]
    fn in_flight_matches_a_count_over_all_files() {
        let sizes: Vec<u64> = (0..40).map(|i| (i % 5) * K + 300 * (i % 3)).collect();
        let mut m = SendMachine::new(&sizes, 6 * K, K as usize);
        let accepts: Vec<_> = (0..40).filter(|i| i % 7 != 3).map(|i| acc(i, 0)).collect();
        m.accept(&accepts).unwrap();
        let full = |m: &SendMachine| -> u64 {
            m.files
                .iter()
                .filter(|f| !f.finished())
                .map(|f| f.sent - f.acked)
                .sum()
        };
        let mut x = 12345u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let file = ((x >> 33) % 40) as u32;
            let f = m.files[file as usize].clone();
            match (x >> 20) % 6 {
                0 if f.accepted && !f.finished() && f.sent > f.acked => {
                    m.on_ack(file, f.sent).unwrap();
                }
                1 if f.accepted
                    && !f.finished()
                    && f.sent > 0
                    && f.sent.is_multiple_of(K)
                    && f.resends < MAX_RESENDS =>
                {
                    m.on_resend(file, f.sent - K).unwrap();
                }
                2 if f.accepted && !f.finished() && f.end_sent && f.sent == f.size => {
                    m.on_file_done(file).unwrap();
                }
                3 if (x >> 40).is_multiple_of(50) => m.fail_file(file),
                _ => {
                    if m.next_step() == SendStep::Done {
                        break;
                    }
                }
            }
            assert_eq!(m.in_flight(), full(&m));
        }
    }

    #[test]
    fn sender_walks_files_within_window() {
        let mut m = SendMachine::new(&[2 * K + 512, 0, K], 2 * K, K as usize);
        m.accept(&[acc(0, 0), acc(1, 0)]).unwrap();
        let c = |file, offset, len| SendStep::Chunk {
            file,
            offset,
            len,
            generation: 0,
        };
        assert_eq!(m.next_step(), c(0, 0, K as usize));
        assert_eq!(m.next_step(), c(0, K, K as usize));
        // Window (2 KiB) full.
        assert_eq!(m.next_step(), SendStep::Wait);
        assert_eq!(m.in_flight(), 2 * K);
        m.on_ack(0, K).unwrap();
        assert_eq!(m.next_step(), c(0, 2 * K, 512));
        assert_eq!(
            m.next_step(),
            SendStep::End {
                file: 0,
                generation: 0
            }
        );
        // Empty file: straight to its end.
        assert_eq!(
            m.next_step(),
            SendStep::End {
                file: 1,
                generation: 0
            }
        );
        // File 2 was not accepted; waiting for confirmations.
        assert_eq!(m.next_step(), SendStep::Wait);
        m.on_file_done(1).unwrap();
        assert_eq!(m.next_step(), SendStep::Wait);
        m.on_file_done(0).unwrap();
        assert_eq!(m.acked_total(), 2 * K + 512);
        assert_eq!(m.next_step(), SendStep::Done);
        assert_eq!(m.next_step(), SendStep::Wait);
    }

    #[test]
    fn sender_chunks_follow_the_hash_tree_as_the_chunk_size_changes() {
        let size = 1 << 20;
        let mut m = SendMachine::new(&[size], size, 16 * K as usize);
        m.accept(&[acc(0, 0)]).unwrap();
        let mut at = 0;
        let mut lens = Vec::new();
        while let SendStep::Chunk { offset, len, .. } = m.next_step() {
            assert_eq!(offset, at);
            assert!(
                tree::valid_piece(offset, len as u64, size),
                "{offset}+{len}"
            );
            at += len as u64;
            lens.push(len);
            // Grow after the first chunk: the next ones stay aligned until they may be big.
            m.set_chunk(256 * K as usize);
        }
        assert_eq!(at, size);
        assert_eq!(
            &lens[..3],
            &[16 * K as usize, 16 * K as usize, 32 * K as usize]
        );
        assert_eq!(*lens.last().unwrap(), 256 * K as usize);
    }

    #[test]
    fn sender_resumes_at_offsets_and_rewinds_on_resend() {
        let mut m = SendMachine::new(&[3 * K + 100], 10 * K, K as usize);
        m.accept(&[acc(0, 2 * K)]).unwrap();
        let c = |offset, len, generation| SendStep::Chunk {
            file: 0,
            offset,
            len,
            generation,
        };
        assert_eq!(m.next_step(), c(2 * K, K as usize, 0));
        assert_eq!(m.next_step(), c(3 * K, 100, 0));
        assert_eq!(
            m.next_step(),
            SendStep::End {
                file: 0,
                generation: 0
            }
        );
        assert_eq!(m.on_resend(0, 3 * K).unwrap(), 1);
        assert_eq!(m.next_step(), c(3 * K, 100, 1));
        assert_eq!(
            m.next_step(),
            SendStep::End {
                file: 0,
                generation: 1
            }
        );
        m.on_file_done(0).unwrap();
        assert_eq!(m.next_step(), SendStep::Done);
    }

    #[test]
    fn sender_pause_and_failures() {
        let mut m = SendMachine::new(&[K, K], 10 * K, K as usize);
        m.accept(&[acc(0, 0), acc(1, 0)]).unwrap();
        m.set_paused_remote(true);
        assert_eq!(m.next_step(), SendStep::Wait);
        m.set_paused_remote(false);
        m.fail_file(0);
        assert!(matches!(m.next_step(), SendStep::Chunk { file: 1, .. }));
        assert!(matches!(m.next_step(), SendStep::End { file: 1, .. }));
        m.on_file_done(1).unwrap();
        assert!(m.all_finished());
        assert_eq!(m.next_step(), SendStep::Done);
    }

    #[test]
    fn sender_rejects_nonsense() {
        let mut m = SendMachine::new(&[4 * K], 10 * K, K as usize);
        assert!(m.accept(&[acc(3, 0)]).is_err());
        assert!(m.accept(&[acc(0, 4 * K + 1)]).is_err());
        assert!(m.accept(&[acc(0, 100)]).is_err(), "off the 1 KiB grid");
        m.accept(&[acc(0, 0)]).unwrap();
        assert!(m.on_ack(0, 50).is_err(), "ack beyond sent");
        assert!(m.on_file_done(0).is_err(), "done before sent");
        assert!(m.on_ack(1, 0).is_err());
        m.next_step();
        assert!(m.on_resend(0, 100).is_err(), "resend off the grid");
        assert!(m.on_resend(0, 8 * K).is_err(), "resend past what was sent");
    }

    #[test]
    fn sender_takes_one_confirmation_or_error_per_file() {
        let mut m = SendMachine::new(&[K, K, K], 10 * K, K as usize);
        m.accept(&[acc(0, 0), acc(1, 0)]).unwrap();
        while matches!(m.next_step(), SendStep::Chunk { .. } | SendStep::End { .. }) {}
        assert!(m.in_progress(0) && m.in_progress(1));
        assert!(!m.in_progress(2), "not accepted");
        assert!(!m.in_progress(9), "not offered");
        m.on_file_done(0).unwrap();
        assert!(!m.in_progress(0));
        let err = m.on_file_done(0).unwrap_err();
        assert!(err.0.contains("confirmed twice"), "{err}");
        m.fail_file(1);
        assert!(!m.in_progress(1));
    }

    #[test]
    fn sender_grants_a_bounded_number_of_rewinds() {
        let mut m = SendMachine::new(&[4 * K], 10 * K, K as usize);
        m.accept(&[acc(0, 0)]).unwrap();
        for i in 0..MAX_RESENDS {
            assert!(matches!(m.next_step(), SendStep::Chunk { offset: 0, .. }));
            assert_eq!(m.on_resend(0, 0).unwrap(), i + 1);
        }
        m.next_step();
        let err = m.on_resend(0, 0).unwrap_err();
        assert!(err.0.contains("again more than 17 times"), "{err}");
    }
}
