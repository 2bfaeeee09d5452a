//! Real `ferry-signal` processes sharing one real redis-server.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::redis::RedisServer;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_ferry-signal");

pub(crate) struct Node {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
}

impl Node {
    /// `ferry-signal --redis URL` on 127.0.0.1:0 with test-friendly rates, plus `extra` flags.
    pub(crate) fn start(redis: &RedisServer, extra: &[&str]) -> Node {
        let defaults = [
            ("--listen", "127.0.0.1:0"),
            ("--metrics-listen", "127.0.0.1:0"),
            ("--log-format", "json"),
            ("--rate-per-sec", "10000"),
            ("--rate-burst", "10000"),
            ("--max-sockets-per-ip", "20000"),
            ("--max-rooms-per-ip", "20000"),
        ];
        let mut args: Vec<String> = Vec::new();
        for (k, v) in defaults {
            if !extra.contains(&k) {
                args.push(k.into());
                args.push(v.into());
            }
        }
        args.push("--redis".into());
        args.push(redis.url());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new(BIN)
            .args(&args)
            .env("FERRY_SIGNAL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ferry-signal starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected output {line:?}"))
            .parse()
            .unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        let metrics = line
            .trim()
            .strip_prefix("metrics on ")
            .unwrap_or_else(|| panic!("unexpected output {line:?}"))
            .parse()
            .unwrap();
        Node {
            child: Some(child),
            addr,
            metrics,
        }
    }

    pub(crate) fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub(crate) fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the node dies without a word to anyone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `/metrics` text.
    pub(crate) async fn metrics(&self) -> String {
        super::http("GET", &format!("http://{}/metrics", self.metrics), None)
            .await
            .1
    }

    /// `/healthz` status code.
    pub(crate) async fn health(&self) -> u16 {
        let m = axum::http::Method::GET;
        match ferry_signal::client::request(
            m,
            &format!("{}/healthz", self.http()),
            None,
            Duration::from_secs(5),
        )
        .await
        {
            Ok((s, _)) => s,
            Err(_) => 0,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A metric's value from `/metrics` text.
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}
