//! `ferry send --receivers N`: one room, several receivers (ferry-core's `send_many`), with
//! its own output, one line per receiver's step. Stdin steers it as any send (`steer.rs`),
//! plus `stop <n>`.

use std::path::PathBuf;

use ferry_core::{Event, EventSink, FerryError, ManyOptions, SendOptions, TransferHandle};
use tokio::sync::mpsc;

/// What `ferry send` takes for a room that serves several receivers.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ManyArgs {
    /// Serve N receivers in all, each with its own connection and resume, then close the
    /// room; 0 serves any number until Ctrl-C, `close` on stdin, or the room's expiry. Without
    /// this flag the room is single-use: one receiver, then it closes (a second one is
    /// refused). A receiver counts when it finishes; one that drops may join again and resume.
    /// On stdin, `stop <n>` stops receiver n (the others carry on), `close` lets no one new
    /// in and ends once those in flight finish, `cancel` stops everyone.
    #[arg(long, value_name = "N", conflicts_with_all = ["text", "resume"])]
    receivers: Option<u32>,
    /// With --receivers: how many are served at the same time; one more that joins is told
    /// the room is busy (it retries on its own after a dropped link).
    #[arg(long, value_name = "K", default_value_t = ferry_core::DEFAULT_RECEIVERS_AT_ONCE, requires = "receivers")]
    at_once: u32,
}

impl ManyArgs {
    /// Whether this send serves several receivers.
    pub(crate) fn wanted(&self) -> bool {
        self.receivers.is_some()
    }
}

/// Run the send; returns the exit code.
pub(crate) async fn send(
    opts: SendOptions,
    paths: &[PathBuf],
    args: ManyArgs,
    json: bool,
    announce: &crate::nearby::AnnounceArgs,
    bind: &[String],
) -> i32 {
    let handle = TransferHandle::new();
    let (stop_tx, stop_rx) = mpsc::unbounded_channel();
    crate::steer::send_from_stdin(handle.clone(), Some(stop_tx));
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                handle.cancel();
            }
        });
    }
    let many = ManyOptions {
        total: args.receivers.filter(|n| *n > 0),
        at_once: args.at_once,
        stop: Some(stop_rx),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    // Nearby devices see the room while it is open, as for a single-receiver send.
    let rx = crate::nearby::announce_while_open(rx, announce, bind);
    let printer = tokio::spawn(print(rx, json));
    let r = ferry_core::send_many(opts, paths, many, &handle, EventSink::new(tx)).await;
    let _ = printer.await;
    match r {
        Ok(_) => 0,
        Err(e) => {
            if !json {
                eprintln!("ferry: {}", ferry_core::escape_display(&e.to_string()));
            }
            exit_code(&e)
        }
    }
}

fn exit_code(e: &FerryError) -> i32 {
    e.exit_code()
}

/// One JSON object a line, or one short line per step a person cares about.
async fn print(mut rx: mpsc::UnboundedReceiver<Event>, json: bool) {
    while let Some(e) = rx.recv().await {
        if json {
            if let Ok(s) = serde_json::to_string(&e) {
                println!("{s}");
            }
            continue;
        }
        match e {
            Event::RoomCreated {
                room,
                password,
                link,
                ..
            } => {
                println!("Room: {room}\nPassword: {password}\nLink: {link}");
                println!("Waiting for receivers (stop one with `stop <n>` on stdin)...");
            }
            Event::Receiver { receiver, inner } => {
                let what = match *inner {
                    Event::PeerJoined => "joined; checking the password".to_string(),
                    Event::Connected { path, .. } => format!("connected ({path})"),
                    Event::Verification { words } => format!("verification {words}"),
                    Event::WrongPasswordAttempt { .. } => "wrong password".to_string(),
                    Event::Done { bytes, secs, .. } => {
                        format!("done: {bytes} bytes in {secs:.1} s")
                    }
                    Event::Error { message, .. } => {
                        format!("ended: {}", ferry_core::escape_display(&message))
                    }
                    _ => continue,
                };
                println!("receiver {receiver}: {what}");
            }
            Event::Done { .. } => println!("Room closed."),
            _ => {}
        }
    }
}
