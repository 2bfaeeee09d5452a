//! Showing events: JSON lines for scripts, text + progress bar + QR for people.
//!
//! Names and messages can come from the other peer (or the server): in text they pass
//! through [`esc`], so none of their characters can drive the terminal or reorder what
//! it shows. JSON escapes control characters itself.

use std::io::Write;

use ferry_core::Event;
use ferry_core::Offer;
use ferry_core::TransferRow;
use ferry_core::escape_display as esc;
use humansize::{DECIMAL, format_size};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

/// The closing line for people. `secs` is the time data moved (the engine leaves out the
/// waits for a peer and for the user's answer); `held` is what the receiver already had when
/// this attempt began, which did not cross the link now and must not lift the rate.
fn done_line(bytes: u64, secs: f64, held: u64) -> String {
    let moved = bytes.saturating_sub(held);
    let rate = if secs > 0.0 { moved as f64 / secs } else { 0.0 };
    format!(
        "Done: {} in {secs:.1} s ({}/s)",
        format_size(bytes, DECIMAL),
        format_size(rate as u64, DECIMAL)
    )
}

/// Where the status lines of [`print_events`] go. A receiver writes them to stderr: its
/// stdout is kept for what it received (a text snippet, exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Stdout,
    Stderr,
}

/// A text snippet as a terminal shows it: its lines as sent, but no character in them can
/// drive the terminal (escape sequences, bidi overrides); a pipe or file gets it exactly.
pub(crate) fn text_for_terminal(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            let (line, cr) = match line.strip_suffix('\r') {
                Some(l) => (l, "\r"),
                None => (line, ""),
            };
            let shown: String = line.split('\t').map(esc).collect::<Vec<_>>().join("\t");
            format!("{shown}{cr}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The browser link for a room's `ferry://` link: `https://SERVER/j/ROOM#password` when the
/// server is `wss://`, and an `http://` one for a plain `ws://` server only when asked
/// (`--web-link`; a page over plain http works on loopback only, see docs/DEPLOY.md).
pub(crate) fn web_link(link: &str, plain_http: bool) -> Option<String> {
    ferry_core::JoinTicket::parse(link)
        .ok()?
        .web_url(plain_http)
}

pub(crate) async fn print_events(
    mut rx: mpsc::UnboundedReceiver<Event>,
    json: bool,
    status: Status,
    web_plain_http: bool,
) {
    // A status line, to stdout or stderr as `status` says.
    macro_rules! say {
        ($($t:tt)*) => {
            if status == Status::Stderr {
                eprintln!($($t)*)
            } else {
                println!($($t)*)
            }
        };
    }
    let mut bar: Option<ProgressBar> = None;
    let mut held = 0;
    while let Some(e) = rx.recv().await {
        if json {
            if let Ok(line) = serde_json::to_string(&e) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            continue;
        }
        match e {
            Event::RoomCreated {
                room,
                password,
                link,
                expires_at,
                capped,
                ..
            } => {
                let web = web_link(&link, web_plain_http);
                say!("Room:     {room}");
                say!("Password: {password}");
                say!("Link:     {link}");
                if let Some(w) = &web {
                    say!("Web link: {w}");
                }
                say!("Expires:  {}", expiry_line(expires_at, now_unix(), capped));
                say!("On the other device: ferry receive '{link}'");
                if let Some(w) = &web {
                    say!("Or in a browser: {w}");
                }
                // A phone's camera opens the browser link; the ferry:// one only with the app.
                let qr_link = web.as_deref().unwrap_or(&link);
                if let Ok(code) = qrcode::QrCode::new(qr_link.as_bytes()) {
                    let qr = code
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build();
                    say!("{qr}");
                }
            }
            Event::RoomExtended { expires_at } => {
                say!("Extended: {}", expiry_line(expires_at, now_unix(), false))
            }
            Event::Waiting => say!("Waiting for the receiver..."),
            Event::PeerJoined => say!("Receiver joined, checking the password..."),
            Event::Connecting => say!("Password accepted, connecting the devices..."),
            Event::WrongPasswordAttempt { attempts_left } => match attempts_left {
                Some(n) => say!("Someone tried a wrong password ({n} attempts left)"),
                None => say!("Someone tried a wrong password"),
            },
            Event::Connected { path, kind } => {
                say!(
                    "Connected ({path}, {})",
                    serde_json::to_string(&kind)
                        .unwrap_or_default()
                        .trim_matches('"')
                )
            }
            Event::Verification { words } => say!("Verification: {}", esc(&words)),
            Event::Offer { files, total, .. } => {
                say!("{} item(s), {}", files.len(), format_size(total, DECIMAL))
            }
            Event::Resuming { bytes_done, total } => {
                held = bytes_done;
                say!(
                    "Resuming: {} of {} already there",
                    format_size(bytes_done, DECIMAL),
                    format_size(total, DECIMAL)
                )
            }
            Event::Progress {
                file,
                bytes_done,
                total,
                ..
            } => {
                let b = bar.get_or_insert_with(|| {
                    let b = ProgressBar::new(total);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                    ) {
                        b.set_style(style);
                    }
                    b
                });
                b.set_length(total);
                b.set_position(bytes_done);
                b.set_message(esc(&file));
            }
            Event::FileDone { path, .. } => {
                let line = format!("done: {}", esc(&path));
                match &bar {
                    Some(b) => b.println(line),
                    None => say!("{line}"),
                }
            }
            Event::FileFailed {
                path,
                code,
                message,
            } => eprintln!("failed: {} ({}): {}", esc(&path), esc(&code), esc(&message)),
            Event::ChunkRejected { file, offset } => {
                eprintln!("corrupt chunk in {} at {offset}; fetched again", esc(&file))
            }
            Event::AttemptFailed { message, .. } => say!(
                "The receiver could not connect ({}); the room stays open.",
                esc(&message)
            ),
            Event::Retrying { message, .. } => {
                say!("Could not connect ({}); trying again...", esc(&message))
            }
            // A room with several receivers prints its own lines (multi.rs).
            Event::Receiver { .. } => {}
            Event::SkippedSymlinks { paths } => {
                let n = paths.len();
                let shown: Vec<String> = paths.iter().take(20).map(|p| esc(p)).collect();
                let more = if n > 20 {
                    format!(" and {} more", n - 20)
                } else {
                    String::new()
                };
                eprintln!(
                    "skipped {n} symlink{} (not sent; name a link itself to send what it points to): {}{more}",
                    if n == 1 { "" } else { "s" },
                    shown.join(", ")
                );
            }
            Event::Paused => say!("Paused"),
            Event::Resumed => say!("Resumed"),
            Event::Reconnecting => say!("Link lost; reconnecting..."),
            Event::Text { text, .. } => {
                use std::io::IsTerminal;
                let mut out = std::io::stdout().lock();
                let shown = if out.is_terminal() {
                    text_for_terminal(&text)
                } else {
                    text
                };
                let _ = out.write_all(shown.as_bytes());
                let _ = out.flush();
            }
            Event::Done { bytes, secs, .. } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                say!("{}", done_line(bytes, secs, held));
            }
            Event::Error { code, message } => {
                if let Some(b) = bar.take() {
                    b.abandon();
                }
                eprintln!("error ({}): {}", esc(&code), esc(&message));
            }
        }
    }
}

/// Unix seconds now.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// When a room ends, for a person: how long from `now` and the UTC clock time, and whether
/// the server shortened what was asked.
pub(crate) fn expiry_line(expires_at: i64, now: i64, capped: bool) -> String {
    let left = ferry_core::format_lifetime(expires_at.saturating_sub(now).max(0) as u64);
    let day = expires_at.rem_euclid(86_400);
    let mut s = format!(
        "in {left}, at {:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    );
    if capped {
        s.push_str(" (capped: the server's longest room lifetime)");
    }
    s
}

/// Peak resident memory of this process (Linux `VmHWM`), for benchmarks.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub(crate) fn print_stats(json: bool) {
    if json && let Some(rss) = peak_rss_bytes() {
        println!(r#"{{"event":"stats","peak_rss_bytes":{rss}}}"#);
    }
}

pub(crate) fn describe_offer(o: &Offer) -> String {
    let mut s = format!(
        "Offer: {} item(s), {}",
        o.files.len(),
        format_size(o.total, DECIMAL)
    );
    for f in o.files.iter().take(20) {
        s.push_str(&format!(
            "\n  {}{}",
            esc(&f.path),
            if f.dir {
                "/".to_string()
            } else {
                format!("  ({})", format_size(f.size, DECIMAL))
            }
        ));
    }
    if o.files.len() > 20 {
        s.push_str(&format!("\n  ... and {} more", o.files.len() - 20));
    }
    if o.resumable > 0 {
        s.push_str(&format!(
            "\n{} already received earlier; will resume",
            format_size(o.resumable, DECIMAL)
        ));
    }
    s
}

pub(crate) fn print_history(rows: &[TransferRow], json: bool) {
    for t in rows {
        if json {
            if let Ok(line) = serde_json::to_string(t) {
                println!("{line}");
            }
        } else {
            println!(
                "{}  {:7}{}  {:9}  {:>10}/{:<10}  room {}{}",
                t.id,
                serde_json::to_string(&t.direction)
                    .unwrap_or_default()
                    .trim_matches('"'),
                if t.kind == ferry_core::TransferKind::Text {
                    " text"
                } else {
                    ""
                },
                t.state,
                format_size(t.done_bytes, DECIMAL),
                format_size(t.total_bytes, DECIMAL),
                esc(&t.room),
                t.error
                    .as_deref()
                    .map(|e| format!("  ({})", esc(e)))
                    .unwrap_or_default()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::peer::FileEntry;

    #[test]
    fn a_snippet_on_a_terminal_keeps_its_lines_but_not_control_sequences() {
        let t = "a\tb\r\n\u{1b}]0;owned\u{7}x\n\u{202e}cba\n";
        let shown = text_for_terminal(t);
        assert!(shown.starts_with("a\tb\r\n"), "{shown:?}");
        assert!(shown.ends_with('\n'), "{shown:?}");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
            "{shown:?}"
        );
        assert_eq!(text_for_terminal("plain\nlines\n"), "plain\nlines\n");
    }

    #[test]
    fn the_expiry_line_says_how_long_when_and_whether_capped() {
        let at = 1_796_000_000 + 3600 + 90;
        assert_eq!(
            expiry_line(at, at - 600, false),
            format!("in 10m, at {} UTC", {
                let d = at.rem_euclid(86_400);
                format!("{:02}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60)
            })
        );
        assert!(
            expiry_line(at, at - 60, true)
                .ends_with("(capped: the server's longest room lifetime)")
        );
        assert!(expiry_line(at, at + 5, false).starts_with("in 0s"));
    }

    #[test]
    fn the_offer_shows_hostile_names_escaped() {
        let o = Offer {
            transfer_id: "t".into(),
            files: vec![FileEntry {
                path: "\u{1b}]0;x\u{7}a\u{202e}fdp.exe".into(),
                size: 1,
                mtime_ms: 0,
                dir: false,
            }],
            total: 1,
            resumable: 0,
        };
        let s = describe_offer(&o);
        assert!(s.contains("\\u{1b}]0;x\\u{7}a\\u{202e}fdp.exe"), "{s}");
        assert!(!s.contains('\u{1b}') && !s.contains('\u{202e}'), "{s:?}");
    }

    #[test]
    fn the_done_rate_counts_only_bytes_that_moved_in_the_time_they_moved() {
        assert_eq!(done_line(3_000_000, 0.5, 0), "Done: 3 MB in 0.5 s (6 MB/s)");
        // A resume: 2 MB were already there; 1 MB crossed in that half second.
        assert_eq!(
            done_line(3_000_000, 0.5, 2_000_000),
            "Done: 3 MB in 0.5 s (2 MB/s)"
        );
        assert_eq!(done_line(10, 0.0, 0), "Done: 10 B in 0.0 s (0 B/s)");
    }
}
