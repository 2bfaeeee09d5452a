//! The nearby-devices flags as a script meets them (the network side runs in
//! scripts/test-nearby.sh, inside network namespaces): the env switch reads like the others,
//! and `--nearby` cannot be mixed with a room id.

// The shared helpers re-export what other tests use and these do not.
#[allow(unused_imports)]
mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn ferry_no_announce_reads_as_a_yes_or_no_like_other_switches() {
    let s = Setup::new();
    for value in ["1", "true", "yes", "0", "false"] {
        let args = [
            "send",
            "--json",
            "--server",
            &s.server.url,
            "--password",
            "pw",
            "--text",
            "hello",
        ];
        let mut snd = Peer::spawn(
            "sender",
            &args,
            &s.path(&format!("send-{value}.db")),
            &[("FERRY_NO_ANNOUNCE", value.to_string())],
        );
        snd.wait_event("room-created", Duration::from_secs(20));
        snd.kill9();
    }
}

#[test]
fn nearby_and_a_room_id_do_not_mix_and_pick_needs_nearby() {
    let db = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(FERRY)
            .args(args)
            .env("FERRY_DB", db.path().join("db"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["receive", "ABCDE-FGHJK", "--nearby"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--nearby"), "{err}");
    let (code, err) = run(&["receive", "ABCDE-FGHJK", "--pick", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--pick"), "{err}");
    let (code, err) = run(&["receive"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["receive", "--nearby", "--nearby-wait", "5m"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at most 60s"), "{err}");
}
