//! Real `ferry` transfers through several `ferry-signal` nodes sharing one redis-server: host
//! and guest on different nodes, and a host whose node dies mid-handshake reconnecting through
//! another node. The `ferry` binary is the workspace's (`cargo build -p ferry-cli`); these
//! tests skip, saying so, where it or redis-server is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::nodes::Node;
use common::redis::start_or_skip;
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn ferry_bin(test: &str) -> Option<PathBuf> {
    if common::redis::suite_on_redis() {
        eprintln!("SKIP {test}: ran in the default pass (it always uses Redis)");
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("ferry");
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "SKIP {test}: no ferry binary at {} (cargo build -p ferry-cli)",
            bin.display()
        );
        None
    }
}

struct Peer {
    child: Child,
    rx: mpsc::Receiver<Value>,
    events: Vec<Value>,
}

impl Peer {
    fn spawn(bin: &Path, args: &[&str], db: &Path) -> Peer {
        let mut child = Command::new(bin)
            .args(args)
            .env("FERRY_DB", db)
            .env("FERRY_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Peer {
            child,
            rx,
            events: Vec::new(),
        }
    }

    fn wait_event(&mut self, name: &str) -> Value {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.events.push(v.clone());
                    if v["event"] == name {
                        return v;
                    }
                }
                Err(_) => panic!("no {name} within {T:?}; saw {:#?}", self.events),
            }
        }
    }

    fn finish(&mut self) -> i32 {
        let deadline = Instant::now() + T;
        loop {
            while let Ok(v) = self.rx.try_recv() {
                self.events.push(v);
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("did not exit within {T:?}; saw {:#?}", self.events);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn random_file(path: &Path, len: usize) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(path, v).unwrap();
}

fn hash(p: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(p).unwrap())
}

/// One sender and one receiver with their own stores under `dir`.
fn transfer(bin: &Path, dir: &Path, send_via: &str, recv_via: &str) -> (Peer, PathBuf, PathBuf) {
    let f = dir.join("payload.bin");
    random_file(&f, 2 * 1024 * 1024 + 13);
    let fs = f.display().to_string();
    let snd = Peer::spawn(
        bin,
        &[
            "send",
            "--json",
            "--server",
            send_via,
            "--password",
            "pw-nodes",
            &fs,
        ],
        &dir.join("send.db"),
    );
    let _ = recv_via;
    (snd, f, dir.join("out"))
}

fn receiver(bin: &Path, dir: &Path, room: &str, via: &str) -> Peer {
    let out = dir.join("out").display().to_string();
    Peer::spawn(
        bin,
        &[
            "receive",
            room,
            "--json",
            "--yes",
            "--server",
            via,
            "--password",
            "pw-nodes",
            "--out",
            &out,
        ],
        &dir.join("recv.db"),
    )
}

#[test]
fn ferry_transfer_with_host_and_guest_on_different_nodes() {
    let name = "ferry_transfer_with_host_and_guest_on_different_nodes";
    let Some(bin) = ferry_bin(name) else { return };
    let Some(redis) = start_or_skip(name) else {
        return;
    };
    let n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let dir = tempfile::tempdir().unwrap();
    let (mut snd, f, out) = transfer(&bin, dir.path(), &n[0].ws(), &n[1].ws());
    let room = snd.wait_event("room-created")["room"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rcv = receiver(&bin, dir.path(), &room, &n[1].ws());
    assert_eq!(rcv.finish(), 0, "{:#?}", rcv.events);
    assert_eq!(snd.finish(), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("payload.bin")), hash(&f));
}

/// A TCP relay whose upstream can be switched: the host's one `--server` URL, pointed at node 1
/// and then at node 3 (as a load balancer would after node 1 dies).
struct Switch {
    addr: SocketAddr,
    to: Arc<Mutex<SocketAddr>>,
}

impl Switch {
    fn start(rt: &tokio::runtime::Runtime, to: SocketAddr) -> Switch {
        let l = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = l.local_addr().unwrap();
        let to = Arc::new(Mutex::new(to));
        let target = to.clone();
        rt.spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                let up_addr = *target.lock().unwrap();
                tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(up_addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
        Switch { addr, to }
    }
}

#[test]
fn host_whose_node_dies_mid_handshake_reconnects_through_another_node() {
    let name = "host_whose_node_dies_mid_handshake_reconnects_through_another_node";
    let Some(bin) = ferry_bin(name) else { return };
    let Some(redis) = start_or_skip(name) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let sw = Switch::start(&rt, n[0].addr);
    let dir = tempfile::tempdir().unwrap();
    let via = format!("ws://{}/ws", sw.addr);
    let (mut snd, f, out) = transfer(&bin, dir.path(), &via, &n[1].ws());
    let room = snd.wait_event("room-created")["room"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rcv = receiver(&bin, dir.path(), &room, &n[1].ws());
    // The password is proved and the sealed offer/answer/ICE are on their way through node 1
    // when it dies (as in ferry-cli's single-node kill test, after `connecting`: a kill between
    // the guest's tag and the host's answer reads as a wrong password by design).
    snd.wait_event("connecting");
    std::thread::sleep(Duration::from_millis(15));
    n[0].kill();
    *sw.to.lock().unwrap() = n[2].addr;
    let code = rcv.finish();
    while let Ok(v) = snd.rx.try_recv() {
        snd.events.push(v);
    }
    assert_eq!(code, 0, "{:#?}\nsender: {:#?}", rcv.events, snd.events);
    assert_eq!(snd.finish(), 0, "{:#?}", snd.events);
    assert_eq!(hash(&out.join("payload.bin")), hash(&f));
    drop(rt);
}
