//! Drive real `ferry` processes against a real signaling server (`ferry serve` on
//! 127.0.0.1:0) and read their `--json` events.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

pub(crate) use ferry_testkit::write_file as random_file;

pub(crate) fn hash(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap())
        .to_hex()
        .to_string()
}

pub(crate) struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub(crate) fn start() -> Server {
        Server::start_with(&[])
    }

    /// `ferry serve` on 127.0.0.1:0 with extra flags (e.g. TURN).
    pub(crate) fn start_with(extra: &[&str]) -> Server {
        let mut child = Command::new(FERRY)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected serve output {line:?}"))
            .to_string();
        Server { child, url }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `ferry` process with its JSON events arriving on a channel.
pub(crate) struct Peer {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Value>,
    pub events: Vec<Value>,
    pub name: &'static str,
}

impl Peer {
    pub(crate) fn spawn(
        name: &'static str,
        args: &[&str],
        db: &Path,
        env: &[(&str, String)],
    ) -> Peer {
        let mut cmd = Command::new(FERRY);
        cmd.args(args)
            .env("FERRY_DB", db)
            .env("FERRY_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("[non-json] {line}"),
                }
            }
        });
        Peer {
            child,
            stdin,
            rx,
            events: Vec::new(),
            name,
        }
    }

    /// Wait for an event matching `pred`, keeping everything seen.
    pub(crate) fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.events.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "{}: no {what} within {timeout:?}; saw {:#?}",
                    self.name, self.events
                ),
            }
        }
    }

    pub(crate) fn wait_event(&mut self, name: &str, timeout: Duration) -> Value {
        self.wait_for(name, timeout, |v| v["event"] == name)
    }

    pub(crate) fn say(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            writeln!(s, "{line}").unwrap();
            s.flush().unwrap();
        }
    }

    /// Wait for exit; returns the exit code and drains remaining events.
    pub(crate) fn finish(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                while let Ok(v) = self.rx.try_recv() {
                    self.events.push(v);
                }
                return st.code().unwrap_or(-1);
            }
            while let Ok(v) = self.rx.try_recv() {
                self.events.push(v);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{}: did not exit within {timeout:?}; saw {:#?}",
                    self.name, self.events
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Take whatever events arrived so far without waiting.
    pub(crate) fn drain(&mut self) {
        while let Ok(v) = self.rx.try_recv() {
            self.events.push(v);
        }
    }

    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(v) = self.rx.try_recv() {
            self.events.push(v);
        }
    }

    pub(crate) fn all(&self, name: &str) -> Vec<&Value> {
        self.events.iter().filter(|v| v["event"] == name).collect()
    }

    pub(crate) fn last_progress(&self) -> u64 {
        self.all("progress")
            .last()
            .and_then(|v| v["bytes_done"].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Setup {
    pub dir: tempfile::TempDir,
    pub server: Server,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            server: Server::start(),
        }
    }
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub(crate) fn sender(&self, paths: &[PathBuf], password: &str, env: &[(&str, String)]) -> Peer {
        let mut args: Vec<String> = vec![
            "send".into(),
            "--json".into(),
            "--server".into(),
            self.server.url.clone(),
            "--password".into(),
            password.into(),
        ];
        args.extend(paths.iter().map(|p| p.display().to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        Peer::spawn("sender", &a, &self.path("send.db"), env)
    }

    pub(crate) fn sender_resume(&self, id: &str, password: &str, env: &[(&str, String)]) -> Peer {
        let a = [
            "send",
            "--json",
            "--server",
            &self.server.url,
            "--password",
            password,
            "--resume",
            id,
        ];
        Peer::spawn("sender", &a, &self.path("send.db"), env)
    }

    pub(crate) fn receiver(&self, room: &str, password: &str, out: &Path, extra: &[&str]) -> Peer {
        let out = out.display().to_string();
        let mut a = vec![
            "receive",
            room,
            "--json",
            "--yes",
            "--server",
            &self.server.url,
            "--password",
            password,
            "--out",
            &out,
        ];
        a.extend_from_slice(extra);
        Peer::spawn("receiver", &a, &self.path("recv.db"), &[])
    }

    /// Poll `ferry history` on `db` until its latest transfer has durable bytes; returns them.
    pub(crate) fn durable_bytes(&self, db: &str, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let out = Command::new(FERRY)
                .args(["history", "--json", "--limit", "1"])
                .env("FERRY_DB", self.path(db))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let done = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["done_bytes"].as_u64())
                .next()
                .unwrap_or(0);
            if done > 0 {
                return done;
            }
            assert!(
                Instant::now() < deadline,
                "{db}: nothing durable within {timeout:?}; history said {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub(crate) const T: Duration = Duration::from_secs(60);

/// Start a sender and wait for its room.
pub(crate) fn room_of(s: &mut Peer) -> (String, String) {
    let v = s.wait_event("room-created", T);
    (
        v["room"].as_str().unwrap().to_string(),
        v["transfer_id"].as_str().unwrap().to_string(),
    )
}
