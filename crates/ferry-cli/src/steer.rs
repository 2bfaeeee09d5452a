//! Lines on `ferry send`'s stdin that steer the room and the transfer while it runs:
//! `extend 10m` gives the waiting room a new lifetime from now (the server caps it), `close`
//! closes it at once, and `pause`, `resume`, `cancel` steer the transfer; with `--receivers`,
//! `stop 2` stops the second receiver alone. A person types them at the terminal; scripts and
//! tests write them to a pipe. `ferry receive` reads its accept prompt's answer there, and
//! with `--json --yes` the same `pause`, `resume`, `cancel`.

use std::io::{BufRead, IsTerminal, Write};

use ferry_core::{Decision, Offer, TransferHandle};
use tokio::sync::mpsc;

/// What `ferry send --help` says about them.
pub(crate) const SEND_HELP: &str = "While `ferry send` runs (and stdin is not the text of --text -), it reads commands \
on stdin, one a line: `extend 10m` gives the waiting room a new lifetime from now (capped by \
the server; the new deadline is printed), `close` closes the room at once (a receiver is told \
it is closed; the send ends with exit code 19), and `pause`, `resume`, `cancel` steer the transfer; \
with --receivers, `stop <n>` stops receiver n alone.";

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Extend(u64),
    Close,
    Pause,
    Resume,
    Cancel,
    /// Stop one receiver of a `--receivers` room.
    Stop(u32),
    Nothing,
}

/// Reads one line; `Err` says what is wrong with it, for the person who typed it.
pub(crate) fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let plain = |c| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(format!("`{word}` takes nothing after it"))
        }
    };
    match word.to_ascii_lowercase().as_str() {
        "" => Ok(Command::Nothing),
        "extend" if rest.is_empty() => Err("extend by how long? e.g. `extend 10m`".into()),
        "extend" => ferry_core::parse_lifetime(rest)
            .map(Command::Extend)
            .map_err(|e| e.to_string()),
        "close" => plain(Command::Close),
        "pause" => plain(Command::Pause),
        "resume" => plain(Command::Resume),
        "cancel" => plain(Command::Cancel),
        "stop" => rest
            .parse()
            .map(Command::Stop)
            .map_err(|_| "stop which receiver? e.g. `stop 2`".into()),
        _ => Err(format!(
            "unknown command {line:?}; try `extend 10m`, `close`, `pause`, `resume`, `cancel` \
             or (with --receivers) `stop 2`"
        )),
    }
}

/// Steers the send with stdin's lines until stdin ends; `stop` goes to `receivers` (a
/// `--receivers` room) and is refused without one.
pub(crate) fn send_from_stdin(
    handle: TransferHandle,
    receivers: Option<mpsc::UnboundedSender<u32>>,
) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match parse(&line) {
                Ok(Command::Stop(n)) => match &receivers {
                    Some(tx) => {
                        let _ = tx.send(n);
                    }
                    None => {
                        eprintln!("ferry: `stop` needs a room with several receivers (--receivers)")
                    }
                },
                Ok(Command::Extend(secs)) => handle.extend_room(secs),
                Ok(Command::Close) => handle.close_room(),
                Ok(Command::Pause) => handle.pause(),
                Ok(Command::Resume) => handle.resume(),
                Ok(Command::Cancel) => handle.cancel(),
                Ok(Command::Nothing) => {}
                Err(why) => eprintln!("ferry: {why}"),
            }
        }
    });
}

/// `ferry receive`'s answer to an offer: yes with `--yes`; else asked on the terminal, or
/// read as one line from a pipe. A `--json` run with nobody to ask declines.
pub(crate) fn accept(offer: &Offer, yes: bool, json: bool) -> Decision {
    if yes {
        return Decision::Accept;
    }
    if !std::io::stdin().is_terminal() && json {
        return Decision::Decline;
    }
    eprintln!("{}", crate::output::describe_offer(offer));
    eprint!("Accept? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    // Answered from a pipe, nothing echoed the newline: end the prompt's line so the
    // status lines that follow on stderr start their own.
    if !std::io::stdin().is_terminal() {
        eprintln!();
    }
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Decision::Accept
    } else {
        Decision::Decline
    }
}

/// `ferry receive --json --yes`: stdin `pause` / `resume` / `cancel` lines steer the transfer
/// (scripts and tests).
pub(crate) fn receive_from_stdin(handle: TransferHandle) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "pause" => handle.pause(),
                "resume" => handle.resume(),
                "cancel" => handle.cancel(),
                _ => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_and_transfer_commands_read() {
        assert_eq!(parse("extend 10m"), Ok(Command::Extend(600)));
        assert_eq!(parse("  EXTEND 1h30m \n"), Ok(Command::Extend(5400)));
        assert_eq!(parse("extend 2 hours"), Ok(Command::Extend(7200)));
        assert_eq!(parse("close"), Ok(Command::Close));
        assert_eq!(parse("pause"), Ok(Command::Pause));
        assert_eq!(parse("resume"), Ok(Command::Resume));
        assert_eq!(parse("cancel"), Ok(Command::Cancel));
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("stop 3"), Ok(Command::Stop(3)));
        assert_eq!(parse("  stop   12 "), Ok(Command::Stop(12)));
    }

    #[test]
    fn a_wrong_line_says_what_works() {
        assert!(parse("extend").unwrap_err().contains("extend 10m"));
        assert!(parse("extend soon").unwrap_err().contains("30s, 10m"));
        assert!(parse("close now").unwrap_err().contains("nothing after"));
        assert!(parse("stop x").unwrap_err().contains("stop 2"));
        assert!(parse("stop 1 2").unwrap_err().contains("stop 2"));
        assert!(
            parse("shutdown")
                .unwrap_err()
                .contains("`extend 10m`, `close`")
        );
    }
}
