//! The peer protocol's transfer logic as plain state machines: no I/O, no clocks of their
//! own (time comes in as a parameter). Two layers:
//!
//! - per file: [`SendMachine`] picks which bytes go out next within the window, and
//!   [`RecvFile`] judges each arriving chunk and file end;
//! - per attempt: [`SendSession`] and [`RecvSession`] hold the rest of the protocol (pause and
//!   cancel, per-file errors, `Done` bookkeeping, generations after a rewind, progress) and
//!   say what to send, read, write and report.
//!
//! The async drivers in `sender.rs` / `receiver.rs` only pump between a session, the link
//! and the disk threads; `sim` (tests) wires the two sessions together in memory on a
//! simulated clock.

mod io;
mod progress;
mod recv_file;
mod recv_session;
mod send_files;
mod send_session;
#[cfg(test)]
mod sim;

pub(crate) use io::{ReadIn, ReadOut, WriteIn, WriteOut};
pub use recv_file::{ChunkVerdict, EndVerdict, MAX_BAD_CHUNKS, MAX_RESENDS, RecvFile};
pub(crate) use recv_session::{RecvOutput, RecvSession};
pub use send_files::{SendMachine, SendStep};
pub(crate) use send_session::{SendOutput, SendSession, SendSetup};

/// A peer broke the protocol (the transfer cannot continue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol violation: {0}")]
pub struct ProtoViolation(pub String);

fn violation<T>(msg: impl Into<String>) -> Result<T, ProtoViolation> {
    Err(ProtoViolation(msg.into()))
}
