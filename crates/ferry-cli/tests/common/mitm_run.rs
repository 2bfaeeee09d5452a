//! Runs two real `ferry` processes through a [`Mitm`] to a real signaling server and
//! collects what each side said, what the man in the middle did and what the server counted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Peer, random_file, room_of};
use crate::mitm::{Dir, Mitm, Out, Policy, Role, Seen};

/// Longest a scenario may take from the receiver's start to both peers ended. The peers'
/// connect timeout is 30 s and the CLI cannot shorten it; a receiver whose sender gave up
/// waits 5 s for the link, tries once more and then waits those 30 s again.
pub(crate) const BOUND: Duration = Duration::from_secs(60);
pub(crate) const PW: &str = "gladly-brave-otter";
pub(crate) const FILE_LEN: usize = 6 * 1024 + 321;

pub(crate) struct Run {
    pub name: &'static str,
    pub snd: Peer,
    pub snd_exit: Option<i32>,
    pub rcvs: Vec<(Peer, Option<i32>)>,
    /// From the first receiver's start until both peers had ended.
    pub elapsed: Duration,
    pub seen: Vec<Seen>,
    pub out: PathBuf,
    pub payload: Vec<u8>,
    pub file_name: String,
    /// Peer connections the man in the middle accepted.
    pub connections: usize,
    /// `ferry_signal_handshake_failures_total` on the real server afterwards.
    pub server_failures: u64,
    pub failures: Vec<String>,
    /// Kept so the files stay until the checks ran.
    _dir: tempfile::TempDir,
}

impl Run {
    pub(crate) fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    pub(crate) fn rcv(&self) -> &Peer {
        &self.rcvs[0].0
    }

    pub(crate) fn rcv_exit(&self) -> Option<i32> {
        self.rcvs[0].1
    }
}

pub(crate) fn sender(dir: &Path, url: &str, file: &Path, extra: &[&str]) -> Peer {
    let f = file.display().to_string();
    let mut a = vec!["send", "--json", "--server", url, "--password", PW];
    a.extend_from_slice(extra);
    a.push(&f);
    Peer::spawn("sender", &a, &dir.join("send.db"), &[])
}

pub(crate) fn receiver(dir: &Path, url: &str, room: &str, out: &Path) -> Peer {
    let out = out.display().to_string();
    let a = [
        "receive",
        room,
        "--json",
        "--yes",
        "--server",
        url,
        "--password",
        PW,
        "--out",
        &out,
    ];
    Peer::spawn("receiver", &a, &dir.join("recv.db"), &[])
}

/// The exit code, or `None` (and the process killed) if it was still running at `until`.
pub(crate) fn wait_exit(p: &mut Peer, until: Instant) -> Option<i32> {
    loop {
        p.drain();
        if let Some(st) = p.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(50));
            p.drain();
            return Some(st.code().unwrap_or(-1));
        }
        if Instant::now() >= until {
            p.kill9();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sender has finished with the last receiver: it reported the attempt's end and is
/// back to waiting with its room open.
pub(crate) fn sender_settled(p: &Peer) -> bool {
    let Some(joined) = p.events.iter().rposition(|v| v["event"] == "peer-joined") else {
        return false;
    };
    p.events[joined..].iter().any(|v| {
        matches!(
            v["event"].as_str(),
            Some("attempt-failed" | "waiting" | "wrong-password-attempt" | "error")
        )
    })
}

/// A counter from the server's `/metrics` (its own listener); `u64::MAX` if unreadable.
pub(crate) fn metric(srv: &ferry_signal::RunningServer, name: &str) -> u64 {
    let read = || -> Option<u64> {
        let addr = srv.metrics_addr()?;
        let mut tcp = std::net::TcpStream::connect(addr).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(tcp, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut body = String::new();
        tcp.read_to_string(&mut body).ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    read().unwrap_or(u64::MAX)
}

/// Start a real signaling server (in this process, for its failure counter), the man in the
/// middle, a sender, then `receivers` receivers one after another; wait (bounded) until each
/// has ended and the sender has exited or gone back to waiting, then stop the sender.
pub(crate) fn run_scenario(
    name: &'static str,
    rt: &tokio::runtime::Handle,
    policy: Policy,
    sender_extra: &[&str],
    receivers: usize,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = ferry_signal::Config {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ferry_signal::Config::default()
    };
    let srv = rt.block_on(ferry_signal::spawn(cfg)).unwrap();
    let mitm = Mitm::start(rt, &srv.ws_url(), policy);
    let file_name = format!("secret-{name}.bin");
    let f = d.join(format!("src/{file_name}"));
    random_file(&f, FILE_LEN, name.len() as u64 * 7919);
    let payload = std::fs::read(&f).unwrap();
    let mut snd = sender(d, &mitm.url, &f, sender_extra);
    let (room, _) = room_of(&mut snd);
    let out = d.join("out");
    let start = Instant::now();
    let until = start + BOUND;
    let mut rcvs = Vec::new();
    for _ in 0..receivers {
        let mut r = receiver(d, &mitm.url, &room, &out);
        let code = wait_exit(&mut r, until);
        rcvs.push((r, code));
    }
    let mut snd_exit = None;
    loop {
        snd.drain();
        if let Some(st) = snd.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(50));
            snd.drain();
            snd_exit = Some(st.code().unwrap_or(-1));
            break;
        }
        if sender_settled(&snd) || Instant::now() >= until {
            // Anything it would still say about this attempt (a late `connected`?) shows now.
            std::thread::sleep(Duration::from_millis(500));
            if let Some(st) = snd.child.try_wait().unwrap() {
                snd_exit = Some(st.code().unwrap_or(-1));
            }
            snd.kill9();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    let server_failures = metric(&srv, "ferry_signal_handshake_failures_total");
    rt.block_on(srv.shutdown());
    Run {
        name,
        snd,
        snd_exit,
        rcvs,
        elapsed,
        seen: mitm.seen(),
        connections: mitm.connections(),
        out,
        payload,
        file_name,
        server_failures,
        failures: Vec::new(),
        _dir: dir,
    }
}

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return v;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(files_under(&p));
        } else {
            v.push(p);
        }
    }
    v
}

pub(crate) fn error_text(v: &Value) -> String {
    format!(
        "{}: {}",
        v["code"].as_str().unwrap_or(""),
        v["message"].as_str().unwrap_or("")
    )
    .to_lowercase()
}

/// The receiver's last `error` event as "code: message".
pub(crate) fn rcv_error(p: &Peer) -> String {
    p.all("error")
        .last()
        .map(|v| error_text(v))
        .unwrap_or_default()
}

/// `attempts_left` of each `wrong-password-attempt` the sender reported.
pub(crate) fn host_counted(p: &Peer) -> Vec<i64> {
    p.all("wrong-password-attempt")
        .iter()
        .map(|v| v["attempts_left"].as_i64().unwrap_or(-1))
        .collect()
}

/// `attempts_left` of each `handshake-failed` the server sent to a peer of `role`.
pub(crate) fn server_told(seen: &[Seen], role: Role) -> Vec<i64> {
    seen.iter()
        .filter(|s| s.frame.is(role, Dir::Down, "handshake-failed"))
        .map(|s| {
            serde_json::from_str::<Value>(&s.frame.raw).unwrap()["attempts_left"]
                .as_i64()
                .unwrap_or(-1)
        })
        .collect()
}

/// What the sender said about the attempt's end (an error or an attempt-failed), lowercased.
pub(crate) fn sender_said(p: &Peer) -> String {
    p.events
        .iter()
        .filter(|v| matches!(v["event"].as_str(), Some("error" | "attempt-failed")))
        .map(error_text)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Which peer sent a `confirm:` tag up to the server, in order.
pub(crate) fn confirms_sent(seen: &[Seen]) -> Vec<Role> {
    seen.iter()
        .filter(|s| s.frame.dir == Dir::Up && s.frame.ty == "pake")
        .filter(|s| s.frame.payload_starts("confirm:"))
        .filter_map(|s| s.frame.role)
        .collect()
}

/// One line per frame the man in the middle changed.
pub(crate) fn tampering(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| !s.untouched())
        .map(|s| {
            let f = &s.frame;
            let outs: Vec<String> = s
                .out
                .iter()
                .map(|o| {
                    let (d, t) = match o {
                        Out::Up(t) => ("up", t),
                        Out::Down(t) => ("down", t),
                    };
                    let ty = serde_json::from_str::<Value>(t).unwrap_or_default()["type"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    format!("{d} {ty}")
                })
                .collect();
            format!(
                "conn {} {:?} {:?} {} at {:.2}s -> [{}]",
                f.conn,
                f.role,
                f.dir,
                f.ty,
                f.at.as_secs_f64(),
                outs.join(", ")
            )
        })
        .collect()
}

pub(crate) fn report(r: &Run) -> String {
    let rcvs: Vec<String> = r
        .rcvs
        .iter()
        .map(|(p, c)| format!("exit {c:?} [{}]", rcv_error(p)))
        .collect();
    format!(
        "== {} ({:.1} s) ==\n receiver: {}\n sender:   exit {:?} [{}]; wrong-password-attempt {:?}\n server:   handshake-failed to host {:?}, to guest {:?}; failures metric {:?}\n confirms: {:?}; connections {}\n tampered: {:?}\n result:   {}\n",
        r.name,
        r.elapsed.as_secs_f64(),
        rcvs.join("; "),
        r.snd_exit,
        sender_said(&r.snd),
        host_counted(&r.snd),
        server_told(&r.seen, Role::Host),
        server_told(&r.seen, Role::Guest),
        r.server_failures,
        confirms_sent(&r.seen),
        r.connections,
        tampering(&r.seen),
        if r.failures.is_empty() {
            "ok".to_string()
        } else {
            format!("FAILED\n   - {}", r.failures.join("\n   - "))
        }
    )
}

/// Events that would mean the peers got past the signaling stage.
pub(crate) const PAST_SIGNALING: &[&str] = &[
    "connected",
    "verification",
    "offer",
    "progress",
    "file-done",
    "done",
];

/// What holds whatever the man in the middle did: nothing written, nothing leaked, both
/// ended within the bound, the receiver with a non-zero exit.
pub(crate) fn nothing_got_through(r: &mut Run) {
    for f in files_under(&r.out) {
        let data = std::fs::read(&f).unwrap_or_default();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        r.check(data.is_empty() && !name.starts_with("secret-"), || {
            format!("receiver wrote {} ({} bytes)", f.display(), data.len())
        });
        for at in [0, FILE_LEN / 2, FILE_LEN - 32] {
            let window = &r.payload[at..at + 32];
            let found = data.windows(32).any(|w| w == window);
            r.check(!found, || {
                format!("payload bytes at {at} found in {}", f.display())
            });
        }
    }
    let mut leaked = Vec::new();
    for (who, p) in
        std::iter::once(("sender", &r.snd)).chain(r.rcvs.iter().map(|(p, _)| ("receiver", p)))
    {
        for e in PAST_SIGNALING {
            if !p.all(e).is_empty() {
                leaked.push(format!("{who} said {e}"));
            }
        }
    }
    r.check(leaked.is_empty(), || {
        format!("got past signaling: {leaked:?}")
    });
    let plain = r.seen.iter().any(|s| s.frame.raw.contains(&r.file_name));
    r.check(!plain, || {
        "the file name crossed the server in clear".into()
    });
    let exits: Vec<Option<i32>> = r.rcvs.iter().map(|(_, c)| *c).collect();
    r.check(
        exits.iter().all(|c| matches!(c, Some(c) if *c != 0)),
        || format!("receiver exits {exits:?}: each should end, non-zero, by itself"),
    );
    let settled =
        r.snd_exit.is_some_and(|c| c != 0) || (r.snd_exit.is_none() && sender_settled(&r.snd));
    let snd_exit = r.snd_exit;
    r.check(settled, || {
        format!("sender neither failed nor went back to waiting (exit {snd_exit:?})")
    });
    let elapsed = r.elapsed;
    r.check(elapsed <= BOUND, || format!("took {elapsed:?}"));
}

pub(crate) fn rcv_says(r: &mut Run, words: &[&str], tag: &str) {
    let said = rcv_error(r.rcv());
    r.check(words.iter().any(|w| said.contains(w)), || {
        format!("{tag}receiver said {said:?}, expected one of {words:?}")
    });
}

pub(crate) fn snd_says(r: &mut Run, words: &[&str]) {
    let said = sender_said(&r.snd);
    r.check(words.iter().any(|w| said.contains(w)), || {
        format!("sender said {said:?}, expected one of {words:?}")
    });
}

pub(crate) fn snd_timed_out_or_waiting(r: &mut Run) {
    let said = sender_said(&r.snd);
    let timed_out = ["timeout", "timed out", "did not open in time"]
        .iter()
        .any(|w| said.contains(w));
    let waiting = r.snd.events.last().is_some_and(|v| v["event"] == "waiting");
    r.check(timed_out || waiting, || {
        format!("sender said {said:?}, neither a timeout nor back to waiting")
    });
}

/// No side counted a password guess: the tampering was not with SPAKE2.
pub(crate) fn nobody_counted(r: &mut Run) {
    let host = host_counted(&r.snd);
    let server = server_told(&r.seen, Role::Host);
    let metric = r.server_failures;
    r.check(host.is_empty(), || {
        format!("sender counted a wrong password: {host:?}")
    });
    r.check(server.is_empty() && metric == 0, || {
        format!("server counted a failure: told host {server:?}, metric {metric:?}")
    });
}
