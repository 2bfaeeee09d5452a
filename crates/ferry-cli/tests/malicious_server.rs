//! A malicious signaling server, end to end: two real `ferry` processes talk to a real
//! `ferry-signal` (run in this process) through a WebSocket man in the middle that flips,
//! swaps, replays, reflects and drops the relayed `pake` / `offer` / `answer` /
//! `ice-candidate` messages. Whatever it does, no file byte may reach the receiver's disk,
//! both sides must stop within a bound and say why, and only a failed key confirmation may
//! count as a password guess.
//!
//! All scenarios run at once (most of their time is the peers' 30 s connect timeout), in one
//! test so that the harness's thread count does not serialise them. One scenario alone:
//! `FERRY_MITM_ONLY=flip-spake2,control cargo test -p ferry-cli --test malicious_server`.

mod common;
#[path = "common/mitm.rs"]
mod mitm;
#[path = "common/mitm_run.rs"]
mod mitm_run;

use std::time::Instant;

use mitm::{Dir, Frame, Out, Policy, Role, flip_sealed, flip_spake2, relay};
use mitm_run::{
    BOUND, FILE_LEN, Run, confirms_sent, files_under, host_counted, rcv_error, report,
    run_scenario, sender_said, sender_settled, server_told,
};

/// Events that would mean the peers got past the signaling stage.
const PAST_SIGNALING: &[&str] = &[
    "connected",
    "verification",
    "offer",
    "progress",
    "file-done",
    "done",
];

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

fn snd_timed_out_or_waiting(r: &mut Run) {
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
                // Its own timeout, or the guest's leave at the same moment (`waiting`).
                snd_timed_out_or_waiting(r);
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
                // Its own timeout, or the guest's leave at the same moment (`waiting`).
                snd_timed_out_or_waiting(r);
                nobody_counted(r);
            },
        },
    ]
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
                let mut run =
                    run_scenario(sc.name, &h, (sc.policy)(), sc.sender_extra, sc.receivers);
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
