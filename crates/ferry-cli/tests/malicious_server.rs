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

use mitm::{
    Dir, Frame, Out, Policy, Role, every, flip_confirm, flip_sealed, flip_spake2, once, pass_all,
    relay,
};
use mitm_run::{
    Run, confirms_sent, host_counted, nobody_counted, nothing_got_through, rcv_says, report,
    run_scenario, server_told, snd_says, snd_timed_out_or_waiting,
};

fn host_spake2_to_guest(f: &Frame) -> bool {
    f.is(Role::Guest, Dir::Down, "pake") && f.payload_starts("spake2:")
}

fn flip_payload(f: &Frame, flip: fn(&str) -> String) -> Vec<Out> {
    vec![f.onward(relay(&f.ty, &flip(f.payload.as_deref().unwrap())))]
}

/// Every guess fails (flipped SPAKE2), and the host is told it has plenty of attempts left
/// and never that the room locked.
fn server_hides_the_lock() -> Policy {
    Box::new(|f: &Frame| {
        if host_spake2_to_guest(f) {
            return flip_payload(f, flip_spake2);
        }
        if f.is(Role::Host, Dir::Down, "handshake-failed") {
            return vec![f.onward(r#"{"type":"handshake-failed","attempts_left":1000}"#.into())];
        }
        if f.is(Role::Host, Dir::Down, "error") && f.raw.contains("room-locked") {
            return Vec::new();
        }
        f.pass()
    })
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

/// Marks checks of signaling v2 (guest tag first, a revealed tag without a valid answer is a
/// failed guess): the ones a v1 peer fails.
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
                r.check(exits == [Some(10), Some(10), Some(10), Some(14)], || {
                    format!(
                        "receiver exits {exits:?}; three wrong-password (10), then room-locked (14)"
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
            name: "server-hides-the-lock",
            policy: server_hides_the_lock,
            sender_extra: &["--keep-waiting"],
            receivers: 3,
            check: |r| {
                // The host's own count ends the room whatever the server claims.
                nothing_got_through(r);
                let exits: Vec<Option<i32>> = r.rcvs.iter().map(|(_, c)| *c).collect();
                r.check(exits == [Some(10); 3], || {
                    format!("receiver exits {exits:?}; three wrong-password (10)")
                });
                let sc = r.snd_exit;
                r.check(sc == Some(14), || {
                    format!("sender exit {sc:?}; 14 (room-locked) by its own count expected")
                });
                let host = host_counted(&r.snd);
                r.check(host == [2, 1, 0], || format!("sender counted {host:?}"));
                let closed = r
                    .seen
                    .iter()
                    .any(|s| s.frame.is(Role::Host, Dir::Up, "close-room"));
                r.check(closed, || "the host did not close the room itself".into());
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
            name: "flip-guest-confirm",
            policy: || {
                once(
                    |f| f.is(Role::Host, Dir::Down, "pake") && f.payload_starts("confirm:"),
                    |f| flip_payload(f, flip_confirm),
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                // Indistinguishable from a wrong password, so it counts as one: a server
                // can burn the room's attempts (denial of service), never learn the password.
                nothing_got_through(r);
                let (rc, sc) = (r.rcv_exit(), r.snd_exit);
                r.check(rc == Some(10) && sc == Some(10), || {
                    format!("exits receiver {rc:?}, sender {sc:?}; 10 (wrong-password) expected")
                });
                let host = host_counted(&r.snd);
                let metric = r.server_failures;
                r.check(host == [2] && metric == 1, || {
                    format!("sender counted {host:?}, server {metric}; one failure expected")
                });
                let order = confirms_sent(&r.seen);
                r.check(order == [Role::Guest], || {
                    format!("{V2}confirm tags sent {order:?}: no host tag for a failed guest tag")
                });
            },
        },
        Scenario {
            name: "reflect-guest-confirm",
            policy: || {
                once(
                    |f| f.is(Role::Guest, Dir::Up, "pake") && f.payload_starts("confirm:"),
                    |f| vec![f.back(f.raw.clone())],
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                // Tags bind the sender's role: the guest's own tag is not the host's.
                nothing_got_through(r);
                rcv_says(r, &["wrong-password"], "");
                // The tag never reached the server or the host: nobody else counts.
                nobody_counted(r);
            },
        },
        Scenario {
            name: "drop-guest-confirm-early",
            policy: || {
                once(
                    |f| f.is(Role::Guest, Dir::Up, "pake") && f.payload_starts("confirm:"),
                    |_| Vec::new(),
                )
            },
            sender_extra: &[],
            receivers: 1,
            check: |r| {
                nothing_got_through(r);
                rcv_says(r, &["wrong-password", "interfered"], V2);
                // Neither the server nor the host saw the tag: only the guest counts it.
                nobody_counted(r);
                snd_timed_out_or_waiting(r);
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
