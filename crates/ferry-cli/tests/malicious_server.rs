//! A malicious signaling server, end to end: two real `ferry` processes talk to a real
//! `ferry serve` through a WebSocket man in the middle that flips, swaps, replays, reflects
//! and drops the relayed `pake` / `offer` / `answer` / `ice-candidate` messages. Whatever it
//! does, no file byte may reach the receiver's disk, both sides must stop within a bound and
//! say why, and only a failed key confirmation may count as a password guess.
//!
//! All scenarios run at once (most of their time is the peers' 30 s connect timeout), in one
//! test so that the harness's thread count does not serialise them. One scenario alone:
//! `FERRY_MITM_ONLY=flip-spake2,control cargo test -p ferry-cli --test malicious_server`.

mod common;
#[path = "common/mitm.rs"]
mod mitm;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Peer, random_file, room_of};
use mitm::{Dir, Frame, Mitm, Out, Policy, Role, Seen, flip_sealed, flip_spake2, relay};
use serde_json::Value;

/// Longest a scenario may take from the receiver's start to both peers ended. The peers'
/// connect timeout is 30 s and the CLI cannot shorten it; a receiver whose sender gave up
/// waits 5 s for the link, tries once more and then waits those 30 s again.
const BOUND: Duration = Duration::from_secs(60);
const PW: &str = "gladly-brave-otter";
const FILE_LEN: usize = 6 * 1024 + 321;

/// Events that would mean the peers got past the signaling stage.
const PAST_SIGNALING: &[&str] = &[
    "connected",
    "verification",
    "offer",
    "progress",
    "file-done",
    "done",
];

struct Run {
    name: &'static str,
    snd: Peer,
    snd_exit: Option<i32>,
    rcvs: Vec<(Peer, Option<i32>)>,
    /// From the first receiver's start until both peers had ended.
    elapsed: Duration,
    seen: Vec<Seen>,
    out: PathBuf,
    payload: Vec<u8>,
    file_name: String,
    /// Peer connections the man in the middle accepted.
    connections: usize,
    /// `ferry_signal_handshake_failures_total` on the real server afterwards.
    server_failures: u64,
    failures: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Run {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    fn rcv(&self) -> &Peer {
        &self.rcvs[0].0
    }

    fn rcv_exit(&self) -> Option<i32> {
        self.rcvs[0].1
    }
}

fn sender(dir: &Path, url: &str, file: &Path, extra: &[&str]) -> Peer {
    let f = file.display().to_string();
    let mut a = vec!["send", "--json", "--server", url, "--password", PW];
    a.extend_from_slice(extra);
    a.push(&f);
    Peer::spawn("sender", &a, &dir.join("send.db"), &[])
}

fn receiver(dir: &Path, url: &str, room: &str, out: &Path) -> Peer {
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
fn wait_exit(p: &mut Peer, until: Instant) -> Option<i32> {
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
fn sender_settled(p: &Peer) -> bool {
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
fn metric(srv: &ferry_signal::RunningServer, name: &str) -> u64 {
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

/// Start a real signaling server (in this process, for its failure counter), the man in the middle, a sender, then `receivers` receivers one after
/// another; wait (bounded) until each has ended and the sender has exited or gone back to
/// waiting, then stop the sender.
fn scenario(
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

fn files_under(dir: &Path) -> Vec<PathBuf> {
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

fn error_text(v: &Value) -> String {
    format!(
        "{}: {}",
        v["code"].as_str().unwrap_or(""),
        v["message"].as_str().unwrap_or("")
    )
    .to_lowercase()
}

/// The receiver's last `error` event as "code: message".
fn rcv_error(p: &Peer) -> String {
    p.all("error")
        .last()
        .map(|v| error_text(v))
        .unwrap_or_default()
}

/// `attempts_left` of each `wrong-password-attempt` the sender reported.
fn host_counted(p: &Peer) -> Vec<i64> {
    p.all("wrong-password-attempt")
        .iter()
        .map(|v| v["attempts_left"].as_i64().unwrap_or(-1))
        .collect()
}

/// `attempts_left` of each `handshake-failed` the server sent to a peer of `role`.
fn server_told(seen: &[Seen], role: Role) -> Vec<i64> {
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
fn sender_said(p: &Peer) -> String {
    p.events
        .iter()
        .filter(|v| matches!(v["event"].as_str(), Some("error" | "attempt-failed")))
        .map(error_text)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Which peer sent a `confirm:` tag up to the server, in order.
fn confirms_sent(seen: &[Seen]) -> Vec<Role> {
    seen.iter()
        .filter(|s| s.frame.dir == Dir::Up && s.frame.ty == "pake")
        .filter(|s| s.frame.payload_starts("confirm:"))
        .filter_map(|s| s.frame.role)
        .collect()
}

/// What holds whatever the man in the middle did: nothing written, nothing leaked, both
/// ended within the bound, the receiver with a non-zero exit.
fn nothing_got_through(r: &mut Run) {
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

fn rcv_says(r: &mut Run, words: &[&str], tag: &str) {
    let said = rcv_error(r.rcv());
    r.check(words.iter().any(|w| said.contains(w)), || {
        format!("{tag}receiver said {said:?}, expected one of {words:?}")
    });
}

fn snd_says(r: &mut Run, words: &[&str]) {
    let said = sender_said(&r.snd);
    r.check(words.iter().any(|w| said.contains(w)), || {
        format!("sender said {said:?}, expected one of {words:?}")
    });
}

/// No side counted a password guess: the tampering was not with SPAKE2.
fn nobody_counted(r: &mut Run) {
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

fn pass_all() -> Policy {
    Box::new(|f: &Frame| f.pass())
}

/// `tamper` the first frame `pick` chooses; pass everything else.
fn once(
    pick: impl Fn(&Frame) -> bool + Send + 'static,
    tamper: impl Fn(&Frame) -> Vec<Out> + Send + 'static,
) -> Policy {
    let mut done = false;
    Box::new(move |f: &Frame| {
        if !done && pick(f) {
            done = true;
            tamper(f)
        } else {
            f.pass()
        }
    })
}

/// `tamper` every frame `pick` chooses.
fn every(
    pick: impl Fn(&Frame) -> bool + Send + 'static,
    tamper: impl Fn(&Frame) -> Vec<Out> + Send + 'static,
) -> Policy {
    Box::new(move |f: &Frame| if pick(f) { tamper(f) } else { f.pass() })
}

fn host_spake2_to_guest(f: &Frame) -> bool {
    f.is(Role::Guest, Dir::Down, "pake") && f.payload_starts("spake2:")
}

fn flip_payload(f: &Frame, flip: fn(&str) -> String) -> Vec<Out> {
    vec![f.onward(relay(&f.ty, &flip(f.payload.as_deref().unwrap())))]
}

/// The guest's answer is held back until its first candidate; then each goes out under the
/// other's type.
fn swap_answer_and_candidate() -> Policy {
    let mut held: Option<String> = None;
    let mut done = false;
    Box::new(move |f: &Frame| {
        if done {
            return f.pass();
        }
        if f.is(Role::Host, Dir::Down, "answer") {
            held = f.payload.clone();
            return Vec::new();
        }
        if f.is(Role::Host, Dir::Down, "ice-candidate")
            && let Some(answer) = held.take()
        {
            done = true;
            return vec![
                Out::Down(relay("answer", f.payload.as_deref().unwrap())),
                Out::Down(relay("ice-candidate", &answer)),
            ];
        }
        f.pass()
    })
}

struct Scenario {
    name: &'static str,
    policy: fn() -> Policy,
    sender_extra: &'static [&'static str],
    receivers: usize,
    check: fn(&mut Run),
}

const V2: &str = "[v2] ";

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "control",
            policy: pass_all,
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                let (rc, sc) = (r.rcv_exit(), r.snd_exit);
                r.check(rc == Some(0) && sc == Some(0), || {
                    format!("transparent relay: exits receiver {rc:?}, sender {sc:?}")
                });
                let got = std::fs::read(r.out.join(&r.file_name)).unwrap_or_default();
                r.check(got == r.payload, || "received file differs".into());
                let touched = r.seen.iter().filter(|s| !s.untouched()).count();
                r.check(touched == 0, || format!("{touched} frames changed"));
                let order = confirms_sent(&r.seen);
                r.check(order == [Role::Guest, Role::Host], || {
                    format!("{V2}confirm tags sent in order {order:?}, guest first expected")
                });
                nobody_counted(r);
            },
        },
        Scenario {
            name: "flip-spake2",
            policy: || once(host_spake2_to_guest, |f| flip_payload(f, flip_spake2)),
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                let (rc, sc) = (r.rcv_exit(), r.snd_exit);
                r.check(rc == Some(10) && sc == Some(10), || {
                    format!("exits receiver {rc:?}, sender {sc:?}; 10 (wrong-password) expected")
                });
                rcv_says(r, &["wrong-password"], "");
                let host = host_counted(&r.snd);
                r.check(host == [2], || {
                    format!("sender counted {host:?}, [2] expected")
                });
                let server = server_told(&r.seen, Role::Host);
                let metric = r.server_failures;
                r.check(server == [2] && metric == 1, || {
                    format!("server told host {server:?}, metric {metric:?}; one failure expected")
                });
                let order = confirms_sent(&r.seen);
                r.check(order == [Role::Guest], || {
                    format!("{V2}confirm tags sent {order:?}: the host must not reveal its tag to a guest whose tag failed")
                });
            },
        },
        Scenario {
            name: "flip-spake2-locks",
            policy: || every(host_spake2_to_guest, |f| flip_payload(f, flip_spake2)),
            sender_extra: &["--keep-waiting"],
            receivers: 4,
            check: |r| {
                nothing_got_through(r);
                let exits: Vec<Option<i32>> = r.rcvs.iter().map(|(_, c)| *c).collect();
                // The fourth finds the room locked (14), or gone (12) if the host closed it.
                let refused = matches!(exits[3], Some(12 | 14));
                r.check(exits[..3] == [Some(10); 3] && refused, || {
                    format!(
                        "receiver exits {exits:?}; three wrong-password (10), then refused (12/14)"
                    )
                });
                let sc = r.snd_exit;
                r.check(sc == Some(14), || {
                    format!("sender exit {sc:?}; 14 (room-locked) expected")
                });
                let host = host_counted(&r.snd);
                r.check(host == [2, 1, 0], || format!("sender counted {host:?}"));
                let metric = r.server_failures;
                r.check(metric == 3, || {
                    format!("server metric {metric:?}, 3 expected")
                });
            },
        },
        Scenario {
            name: "flip-sealed-offer",
            policy: || {
                once(
                    |f| f.is(Role::Guest, Dir::Down, "offer"),
                    |f| flip_payload(f, flip_sealed),
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["failed authentication"], "");
                nobody_counted(r);
            },
        },
        Scenario {
            name: "flip-sealed-answer",
            policy: || {
                once(
                    |f| f.is(Role::Host, Dir::Down, "answer"),
                    |f| flip_payload(f, flip_sealed),
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                snd_says(r, &["failed authentication"]);
                nobody_counted(r);
            },
        },
        Scenario {
            name: "flip-sealed-ice",
            policy: || {
                once(
                    |f| f.is(Role::Guest, Dir::Down, "ice-candidate"),
                    |f| flip_payload(f, flip_sealed),
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["failed authentication"], "");
                nobody_counted(r);
            },
        },
        Scenario {
            name: "swap-offer-as-candidate",
            policy: || {
                once(
                    |f| f.is(Role::Guest, Dir::Down, "offer"),
                    |f| vec![f.onward(relay("ice-candidate", f.payload.as_deref().unwrap()))],
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["failed authentication"], "");
                nobody_counted(r);
            },
        },
        Scenario {
            name: "swap-answer-and-candidate",
            policy: swap_answer_and_candidate,
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                snd_says(r, &["failed authentication"]);
                nobody_counted(r);
            },
        },
        Scenario {
            name: "replay-candidate",
            policy: || {
                once(
                    |f| f.is(Role::Guest, Dir::Down, "ice-candidate"),
                    |f| vec![f.onward(f.raw.clone()), f.onward(f.raw.clone())],
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["replayed"], "");
                nobody_counted(r);
            },
        },
        Scenario {
            name: "reflect-offer",
            policy: || {
                once(
                    |f| f.is(Role::Host, Dir::Up, "offer"),
                    |f| vec![f.back(relay("answer", f.payload.as_deref().unwrap()))],
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                snd_says(r, &["failed authentication"]);
                nobody_counted(r);
            },
        },
        Scenario {
            name: "drop-host-confirm",
            policy: || {
                once(
                    |f| f.is(Role::Guest, Dir::Down, "pake") && f.payload_starts("confirm:"),
                    |_| Vec::new(),
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["wrong-password", "interfered"], V2);
                let host = host_counted(&r.snd);
                let server = server_told(&r.seen, Role::Host);
                let metric = r.server_failures;
                r.check(host.is_empty() && server.is_empty() && metric == 0, || {
                    format!("the guest's tag was good: sender counted {host:?}, server told it {server:?}, metric {metric}")
                });
            },
        },
        Scenario {
            name: "drop-guest-confirm",
            policy: || {
                once(
                    |f| f.is(Role::Host, Dir::Down, "pake") && f.payload_starts("confirm:"),
                    |_| Vec::new(),
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["wrong-password", "interfered"], V2);
                let host = host_counted(&r.snd);
                r.check(host.is_empty(), || {
                    format!("the sender never saw a tag, yet counted {host:?}")
                });
                snd_says(r, &["timeout", "timed out", "did not open in time"]);
                // The server relayed a guest tag the host never answered: one guess.
                let metric = r.server_failures;
                r.check(metric == 1, || {
                    format!("{V2}server counted {metric}, 1 expected")
                });
            },
        },
        Scenario {
            name: "drop-offers",
            policy: || every(|f| f.is(Role::Guest, Dir::Down, "offer"), |_| Vec::new()),
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["timed out"], "");
                snd_says(r, &["timeout", "timed out", "did not open in time"]);
                nobody_counted(r);
            },
        },
    ]
}

/// One line per frame the man in the middle changed.
fn tampering(seen: &[Seen]) -> Vec<String> {
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

fn report(r: &Run) -> String {
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

#[test]
fn malicious_signaling_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("FERRY_MITM_ONLY").unwrap_or_default();
    let chosen: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| only.is_empty() || only.split(',').any(|n| n.trim() == s.name))
        .collect();
    assert!(
        !chosen.is_empty(),
        "no scenario named in FERRY_MITM_ONLY={only}"
    );
    let started = Instant::now();
    let threads: Vec<_> = chosen
        .into_iter()
        .map(|sc| {
            let h = rt.handle().clone();
            let t = std::thread::spawn(move || {
                let mut run = scenario(sc.name, &h, (sc.policy)(), sc.sender_extra, sc.receivers);
                (sc.check)(&mut run);
                let text = report(&run);
                (run.failures.is_empty(), text)
            });
            (sc.name, t)
        })
        .collect();
    let mut failed = Vec::new();
    for (name, t) in threads {
        match t.join() {
            Ok((ok, text)) => {
                println!("{text}");
                if !ok {
                    failed.push(name);
                }
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("== {name} ==\n PANICKED: {msg}\n");
                failed.push(name);
            }
        }
    }
    println!("all scenarios: {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        failed.is_empty(),
        "scenarios failed: {failed:?} (details above)"
    );
}
