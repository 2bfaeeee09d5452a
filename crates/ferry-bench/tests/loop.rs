//! The ceiling tool must really move the bytes it claims: run it as a user would and check
//! its report against what was asked for.

use std::process::Command;

fn run(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_raw-ceiling"))
        .args(args)
        .output()
        .expect("raw-ceiling runs");
    assert!(
        out.status.success(),
        "raw-ceiling failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8 report");
    let line = stdout.lines().last().expect("a report line");
    serde_json::from_str(line).expect("JSON report")
}

#[test]
fn two_processes_move_every_byte() {
    let r = run(&["--bytes=3MiB", "--msg-size=48KiB", "--timeout-secs=60"]);
    assert_eq!(r["bytes"], 3 << 20);
    // 3 MiB / 48 KiB = 64 messages, exactly: nothing lost, nothing merged.
    assert_eq!(r["messages"], 64);
    assert!(r["mb_per_s"].as_f64().unwrap() > 0.0);
    assert!(r["receiver_rss_peak_kib"].as_u64().unwrap() > 0);
}

#[test]
fn in_process_with_large_messages_and_two_connections() {
    let r = run(&[
        "--bytes=4000000",
        "--msg-size=256KiB",
        "--max-message-size=256KiB",
        "--recv-buffer=4MiB",
        "--connections=2",
        "--mode=in-process",
        "--timeout-secs=60",
    ]);
    assert_eq!(r["bytes"], 4_000_000);
    assert_eq!(r["knobs"]["connections"], 2);
}
