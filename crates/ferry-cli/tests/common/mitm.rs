//! A man in the middle of the signaling path: a WebSocket endpoint on loopback that peers use
//! as their server. Each peer connection gets its own upstream connection to the real server;
//! every text frame passes through a policy that may forward, change, drop, repeat or send a
//! frame back where it came from. What a malicious server could do to relayed messages, done
//! to real `ferry` processes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;

/// `Up`: from a peer towards the server. `Down`: from the server towards a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Up,
    Down,
}

/// Which peer a connection belongs to, learnt from its first request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Host,
    Guest,
}

/// One text frame as the man in the middle received it.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    /// Since the man in the middle started.
    pub at: Duration,
    /// Connections are numbered in accept order, from 0.
    pub conn: usize,
    pub role: Option<Role>,
    pub dir: Dir,
    /// The frame's `type`, or "" when it is not JSON.
    pub ty: String,
    pub payload: Option<String>,
    pub raw: String,
}

impl Frame {
    pub(crate) fn is(&self, role: Role, dir: Dir, ty: &str) -> bool {
        self.role == Some(role) && self.dir == dir && self.ty == ty
    }

    pub(crate) fn payload_starts(&self, prefix: &str) -> bool {
        self.payload
            .as_deref()
            .is_some_and(|p| p.starts_with(prefix))
    }

    /// Forward unchanged.
    pub(crate) fn pass(&self) -> Vec<Out> {
        vec![self.onward(self.raw.clone())]
    }

    /// `text` in the frame's own direction.
    pub(crate) fn onward(&self, text: String) -> Out {
        match self.dir {
            Dir::Up => Out::Up(text),
            Dir::Down => Out::Down(text),
        }
    }

    /// `text` back to where the frame came from.
    pub(crate) fn back(&self, text: String) -> Out {
        match self.dir {
            Dir::Up => Out::Down(text),
            Dir::Down => Out::Up(text),
        }
    }
}

/// Where a frame goes on the same peer's connection.
#[derive(Clone, Debug)]
pub(crate) enum Out {
    Up(String),
    Down(String),
}

pub(crate) type Policy = Box<dyn FnMut(&Frame) -> Vec<Out> + Send>;

/// Forward everything unchanged.
pub(crate) fn pass_all() -> Policy {
    Box::new(|f: &Frame| f.pass())
}

/// `tamper` the first frame `pick` chooses; pass everything else.
pub(crate) fn once(
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
pub(crate) fn every(
    pick: impl Fn(&Frame) -> bool + Send + 'static,
    tamper: impl Fn(&Frame) -> Vec<Out> + Send + 'static,
) -> Policy {
    Box::new(move |f: &Frame| if pick(f) { tamper(f) } else { f.pass() })
}

/// A frame and what the policy made of it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub frame: Frame,
    pub out: Vec<Out>,
}

impl Seen {
    /// Whether the policy forwarded the frame exactly as it came, the way it was going.
    pub(crate) fn untouched(&self) -> bool {
        let onward = |o: &Out| {
            matches!(
                (o, self.frame.dir),
                (Out::Up(_), Dir::Up) | (Out::Down(_), Dir::Down)
            )
        };
        matches!(self.out.as_slice(), [o] if onward(o) && out_text(o) == self.frame.raw)
    }
}

pub(crate) fn out_text(o: &Out) -> &str {
    match o {
        Out::Up(t) | Out::Down(t) => t,
    }
}

struct Shared {
    policy: Mutex<Policy>,
    log: Mutex<Vec<Seen>>,
    start: Instant,
    conns: AtomicUsize,
    tasks: Mutex<Vec<AbortHandle>>,
}

pub(crate) struct Mitm {
    /// What peers give as `--server`.
    pub url: String,
    shared: Arc<Shared>,
}

impl Mitm {
    /// Listen on 127.0.0.1:0 and relay to `upstream` (`ws://.../ws`) through `policy`.
    pub(crate) fn start(rt: &Handle, upstream: &str, policy: Policy) -> Mitm {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            policy: Mutex::new(policy),
            log: Mutex::new(Vec::new()),
            start: Instant::now(),
            conns: AtomicUsize::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let upstream = upstream.to_string();
        let rt2 = rt.clone();
        let accept = rt.spawn(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let conn = sh.conns.fetch_add(1, Ordering::SeqCst);
                let task = rt2.spawn(pipe(tcp, conn, upstream.clone(), sh.clone()));
                sh.tasks.lock().unwrap().push(task.abort_handle());
            }
        });
        shared.tasks.lock().unwrap().push(accept.abort_handle());
        Mitm {
            url: format!("ws://127.0.0.1:{port}/ws"),
            shared,
        }
    }

    /// Every frame so far, in the order the policy saw them.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    pub(crate) fn connections(&self) -> usize {
        self.shared.conns.load(Ordering::SeqCst)
    }
}

impl Drop for Mitm {
    fn drop(&mut self) {
        for t in self.shared.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

fn role_of_request(ty: &str) -> Option<Role> {
    match ty {
        "create-room" | "reconnect-host" => Some(Role::Host),
        "join-room" => Some(Role::Guest),
        _ => None,
    }
}

/// One peer connection: accept it, open our own to the server, and shuttle frames through
/// the policy until either side closes.
async fn pipe(tcp: TcpStream, conn: usize, upstream: String, sh: Arc<Shared>) {
    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let Ok((server, _)) = tokio_tungstenite::connect_async(upstream.as_str()).await else {
        return;
    };
    let (mut c_tx, mut c_rx) = client.split();
    let (mut s_tx, mut s_rx) = server.split();
    let mut role = None;
    loop {
        let (dir, msg) = tokio::select! {
            m = c_rx.next() => (Dir::Up, m),
            m = s_rx.next() => (Dir::Down, m),
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.as_str().to_string(),
            // Pings are answered hop by hop by the WebSocket library.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(b))) => {
                let r = match dir {
                    Dir::Up => s_tx.send(Message::Binary(b)).await,
                    Dir::Down => c_tx.send(Message::Binary(b)).await,
                };
                if r.is_err() {
                    break;
                }
                continue;
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
        };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ty = v["type"].as_str().unwrap_or_default().to_string();
        if dir == Dir::Up && role.is_none() {
            role = role_of_request(&ty);
        }
        let frame = Frame {
            at: sh.start.elapsed(),
            conn,
            role,
            dir,
            ty,
            payload: v["payload"].as_str().map(str::to_string),
            raw: text,
        };
        let out = {
            let mut policy = sh.policy.lock().unwrap();
            (*policy)(&frame)
        };
        sh.log.lock().unwrap().push(Seen {
            frame,
            out: out.clone(),
        });
        for o in out {
            let r = match o {
                Out::Up(t) => s_tx.send(Message::text(t)).await,
                Out::Down(t) => c_tx.send(Message::text(t)).await,
            };
            if r.is_err() {
                break;
            }
        }
    }
    let _ = s_tx.close().await;
    let _ = c_tx.close().await;
}

/// A relay frame as a peer or the server writes it.
pub(crate) fn relay(ty: &str, payload: &str) -> String {
    serde_json::json!({ "type": ty, "payload": payload }).to_string()
}

/// `spake2:<b64>` with the sign bit of the group element flipped: still a valid point (its
/// negation), so both sides finish SPAKE2, with different keys.
pub(crate) fn flip_spake2(payload: &str) -> String {
    let b64 = payload.strip_prefix("spake2:").unwrap();
    let mut msg = B64.decode(b64).unwrap();
    let last = msg.len() - 1;
    msg[last] ^= 0x80;
    format!("spake2:{}", B64.encode(msg))
}

/// A sealed payload (counter 8 bytes, nonce 24, ciphertext + tag) with one ciphertext bit
/// flipped; the counter and nonce stay as they were.
pub(crate) fn flip_sealed(payload: &str) -> String {
    let mut raw = B64.decode(payload).unwrap();
    raw[8 + 24 + 3] ^= 0x01;
    B64.encode(raw)
}

/// `confirm:<b64>` with one bit of the tag flipped.
pub(crate) fn flip_confirm(payload: &str) -> String {
    let b64 = payload.strip_prefix("confirm:").unwrap();
    let mut tag = B64.decode(b64).unwrap();
    tag[0] ^= 0x01;
    format!("confirm:{}", B64.encode(tag))
}
