//! The only place that knows `ferry-core`'s API: start transfers, hold their handles,
//! read the history. Commands stay thin by going through here.

use std::path::PathBuf;
use std::sync::{Mutex, mpsc as std_mpsc};
use std::time::Duration;

use ferry_core::FerryError;
use ferry_core::TransferHandle;
use ferry_core::{Decision, Offer, ReceiveOptions, SendOptions};
use ferry_core::{Direction, Store, TransferKind, TransferState};
use ferry_core::{Event, EventSink};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::commands::CmdError;
use crate::settings::Settings;

/// How long an offer waits for the user before it is declined.
const DECIDE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One row of the History screen (shape mirrored in `ui/src/ipc.ts`).
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub transfer_id: String,
    pub direction: Direction,
    /// Files, or a text snippet (its text is never stored: `name` only says what it was).
    pub kind: TransferKind,
    pub name: String,
    pub files: usize,
    pub bytes: u64,
    pub bytes_done: u64,
    pub peer: Option<String>,
    pub state: TransferState,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub secs: Option<f64>,
    pub resumable: bool,
    /// Receive side: the folder it went to (a resume must use the same one).
    pub out_dir: Option<String>,
}

/// A transfer the UI can steer.
pub(crate) struct Running {
    handle: TransferHandle,
    /// Receive side: answers the offer (dropping it declines).
    decide: Option<std_mpsc::SyncSender<Decision>>,
    /// A room serving several receivers: stops one by its number.
    stop: Option<UnboundedSender<u32>>,
}

impl Running {
    pub(crate) fn accept(&mut self) -> Result<(), CmdError> {
        let tx = self
            .decide
            .take()
            .ok_or_else(|| CmdError::new("no-offer", "There is no offer to accept."))?;
        tx.send(Decision::Accept)
            .map_err(|_| CmdError::new("no-offer", "The offer is no longer open."))
    }
    pub(crate) fn pause(&mut self) {
        self.handle.pause();
    }
    pub(crate) fn resume(&mut self) {
        self.handle.resume();
    }
    /// Sender: a new room lifetime of `ttl_secs` from now (the server caps it).
    pub(crate) fn extend_room(&mut self, ttl_secs: u64) {
        self.handle.extend_room(ttl_secs);
    }
    /// Sender: close the waiting room now.
    pub(crate) fn close_room(&mut self) {
        self.handle.close_room();
    }
    /// Sender of a room serving several receivers: stop receiver `n`; the others carry on.
    pub(crate) fn stop_receiver(&mut self, n: u32) -> Result<(), CmdError> {
        let tx = self.stop.as_ref().ok_or_else(|| {
            CmdError::new(
                "not-shared",
                "This room serves one receiver; cancel it instead.",
            )
        })?;
        tx.send(n)
            .map_err(|_| CmdError::new("not-running", "The room has ended."))
    }
    pub(crate) fn cancel(&mut self) {
        if let Some(tx) = self.decide.take() {
            let _ = tx.send(Decision::Decline);
        }
        self.handle.cancel();
    }
}

pub(crate) struct Engine {
    store: Mutex<Option<Store>>,
    embedded: tokio::sync::OnceCell<crate::signal::Embedded>,
}

/// WebRTC UDP binds: `FERRY_BIND` (comma-separated, tests use `127.0.0.1:0`), else all.
fn bind_addrs() -> Option<Vec<String>> {
    std::env::var("FERRY_BIND").ok().map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// The benchmark knobs (`FERRY_SCTP_CC`, `FERRY_COMPRESS`, ...) the CLI reads too; the
/// engine itself never looks at the environment.
fn tuning() -> ferry_core::Tuning {
    ferry_core::Tuning::from_vars(|k| std::env::var(k).ok())
}

/// The store's path: `FERRY_DB` (tests, scripts), else the one the CLI uses by default.
fn store_path() -> Result<PathBuf, FerryError> {
    match std::env::var_os("FERRY_DB") {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(Store::default_path()?),
    }
}

/// The engine reports its own failures as `error` events; a command only fails for what
/// happens before the transfer starts.
fn run_detached<F>(fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tauri::async_runtime::spawn(fut);
}

impl Engine {
    pub(crate) fn new() -> Self {
        Self {
            store: Mutex::new(None),
            embedded: tokio::sync::OnceCell::new(),
        }
    }

    /// The history/resume store shared with the CLI (`FERRY_DB` overrides its path).
    fn store(&self) -> Result<Store, FerryError> {
        let mut g = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = g.as_ref() {
            return Ok(s.clone());
        }
        let s = Store::open(&store_path()?)?;
        *g = Some(s.clone());
        Ok(s)
    }

    pub(crate) async fn signal_url(&self, settings: &Settings) -> Result<String, CmdError> {
        let url = settings.server_url.trim();
        if !url.is_empty() {
            return Ok(url.to_string());
        }
        let embedded = self
            .embedded
            .get_or_try_init(crate::signal::start)
            .await
            .map_err(|e| CmdError::new("server-unreachable", format!("built-in server: {e}")))?;
        Ok(embedded.url().to_string())
    }

    async fn send_options(
        &self,
        settings: &Settings,
        password: Option<String>,
        ttl_secs: Option<u64>,
    ) -> Result<SendOptions, CmdError> {
        let mut opts = SendOptions::new(self.signal_url(settings).await?, self.store()?);
        opts.password = password;
        opts.ttl_secs = ttl_secs;
        opts.bind_addrs = bind_addrs();
        opts.tuning = tuning();
        opts.ice_servers = settings.ice_servers();
        // The app keeps the room open after a wrong guess and shows a notice instead.
        opts.stop_on_wrong_password = false;
        Ok(opts)
    }

    /// Send a text snippet; what the `send_text` command runs. Over the limit it fails here,
    /// before a room opens.
    pub(crate) async fn send_text(
        &self,
        settings: &Settings,
        text: String,
        password: Option<String>,
        ttl_secs: Option<u64>,
        events: UnboundedSender<Event>,
    ) -> Result<Running, CmdError> {
        ferry_core::check_text_size(&text)?;
        let opts = self.send_options(settings, password, ttl_secs).await?;
        let events = crate::nearby::announcing(settings, opts.bind_addrs.as_deref(), events);
        let handle = TransferHandle::new();
        let h = handle.clone();
        run_detached(async move {
            if let Err(e) = ferry_core::send_text(opts, text, &h, EventSink::new(events)).await {
                tracing::info!("text send ended: {e}");
            }
        });
        Ok(Running {
            handle,
            decide: None,
            stop: None,
        })
    }

    /// Send to several receivers through one room (`receivers`: how many in all, 0 for any
    /// number until the room is closed or expires); what the `send_many_start` command runs.
    pub(crate) async fn send_many(
        &self,
        settings: &Settings,
        paths: Vec<PathBuf>,
        password: Option<String>,
        ttl_secs: Option<u64>,
        receivers: u32,
        events: UnboundedSender<Event>,
    ) -> Result<Running, CmdError> {
        let opts = self.send_options(settings, password, ttl_secs).await?;
        let events = crate::nearby::announcing(settings, opts.bind_addrs.as_deref(), events);
        let handle = TransferHandle::new();
        let h = handle.clone();
        let (stop_tx, stop_rx) = tokio::sync::mpsc::unbounded_channel();
        let many = ferry_core::ManyOptions {
            total: (receivers > 0).then_some(receivers),
            at_once: ferry_core::DEFAULT_RECEIVERS_AT_ONCE,
            stop: Some(stop_rx),
        };
        run_detached(async move {
            let sink = EventSink::new(events);
            if let Err(e) = ferry_core::send_many(opts, &paths, many, &h, sink).await {
                tracing::info!("send to several ended: {e}");
            }
        });
        Ok(Running {
            handle,
            decide: None,
            stop: Some(stop_tx),
        })
    }

    pub(crate) async fn send(
        &self,
        settings: &Settings,
        paths: Vec<PathBuf>,
        password: Option<String>,
        resume: Option<String>,
        ttl_secs: Option<u64>,
        events: UnboundedSender<Event>,
    ) -> Result<Running, CmdError> {
        let mut opts = self.send_options(settings, password, ttl_secs).await?;
        opts.resume = resume;
        let events = crate::nearby::announcing(settings, opts.bind_addrs.as_deref(), events);
        let handle = TransferHandle::new();
        let h = handle.clone();
        run_detached(async move {
            if let Err(e) = ferry_core::send(opts, &paths, &h, EventSink::new(events)).await {
                tracing::info!("send ended: {e}");
            }
        });
        Ok(Running {
            handle,
            decide: None,
            stop: None,
        })
    }

    pub(crate) async fn receive(
        &self,
        settings: &Settings,
        ticket: String,
        password: String,
        server: Option<String>,
        out_dir: PathBuf,
        events: UnboundedSender<Event>,
    ) -> Result<Running, CmdError> {
        let mut opts = ReceiveOptions::new(out_dir, self.store()?);
        opts.server = Some(match server.filter(|s| !s.trim().is_empty()) {
            Some(s) => s,
            None => self.signal_url(settings).await?,
        });
        opts.password = Some(password);
        opts.bind_addrs = bind_addrs();
        opts.tuning = tuning();
        opts.ice_servers = settings.ice_servers();
        let handle = TransferHandle::new();
        let (tx, rx) = std_mpsc::sync_channel::<Decision>(1);
        // The engine asks synchronously; the answer comes from the UI's Accept button. The
        // wait leaves the runtime's other tasks running (block_in_place).
        let decide = move |_: &Offer| {
            tokio::task::block_in_place(|| {
                rx.recv_timeout(DECIDE_TIMEOUT).unwrap_or(Decision::Decline)
            })
        };
        let h = handle.clone();
        run_detached(async move {
            if let Err(e) =
                ferry_core::receive(opts, &ticket, decide, &h, EventSink::new(events)).await
            {
                tracing::info!("receive ended: {e}");
            }
        });
        Ok(Running {
            handle,
            decide: Some(tx),
            stop: None,
        })
    }

    pub(crate) fn history(&self) -> Result<Vec<HistoryEntry>, FerryError> {
        let store = self.store()?;
        let rows = store.history(200)?;
        let mut out = Vec::with_capacity(rows.len());
        for t in rows {
            let files = store.transfer(&t.id)?.map(|(_, f)| f).unwrap_or_default();
            let real: Vec<_> = files.iter().filter(|f| !f.is_dir).collect();
            let name = match t.kind {
                TransferKind::Text => "Text snippet".to_string(),
                TransferKind::Files => real
                    .first()
                    .map(|f| f.path.clone())
                    .or_else(|| files.first().map(|f| f.path.clone()))
                    .unwrap_or_else(|| t.id.chars().take(8).collect()),
            };
            let finished = t.state.is_finished();
            out.push(HistoryEntry {
                resumable: t.state != TransferState::Done && t.done_bytes < t.total_bytes,
                transfer_id: t.id,
                direction: t.direction,
                kind: t.kind,
                name,
                files: match t.kind {
                    TransferKind::Text => 0,
                    TransferKind::Files => real.len().max(1),
                },
                bytes: t.total_bytes,
                bytes_done: t.done_bytes,
                peer: Some(t.peer).filter(|p| !p.is_empty()),
                state: t.state,
                started_at: t.created_at,
                finished_at: finished.then_some(t.updated_at),
                secs: finished.then(|| (t.updated_at - t.created_at).max(0) as f64),
                out_dir: Some(t.out_dir).filter(|d| !d.is_empty()),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    async fn next_matching(
        rx: &mut UnboundedReceiver<Event>,
        what: &str,
        mut f: impl FnMut(&Event) -> bool,
    ) -> Event {
        let wait = async {
            while let Some(e) = rx.recv().await {
                if f(&e) {
                    return Some(e);
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(Some(e)) => e,
            other => panic!("no {what} event: {other:?}"),
        }
    }

    /// The environment is one per process, so every test here shares one history database;
    /// the store is safe to open from concurrent tests.
    fn loopback_env() {
        static DB: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
        let db = DB
            .get_or_init(|| tempfile::tempdir().unwrap())
            .path()
            .join("ferry.db");
        // SAFETY: every test in this binary sets these to the same values.
        unsafe {
            std::env::set_var("FERRY_SIGNAL_BIND", "127.0.0.1:0");
            std::env::set_var("FERRY_BIND", "127.0.0.1:0");
            std::env::set_var("FERRY_DB", db);
        }
    }

    /// The adapter end to end: the built-in server, a send, a wrong password that keeps the
    /// room open, a receive that waits for Accept, the bytes on disk, and the history.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_wrong_password_then_receive_through_the_adapter() {
        let dir = tempfile::tempdir().unwrap();
        loopback_env();
        let engine = Engine::new();
        let settings = Settings::default();
        let src = dir.path().join("notes.bin");
        let data: Vec<u8> = (0..700_001u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();

        let (tx, mut send_ev) = unbounded_channel();
        let _sending = engine
            .send(&settings, vec![src.clone()], None, None, None, tx)
            .await
            .unwrap();
        let Event::RoomCreated {
            room,
            password,
            server,
            ..
        } = next_matching(&mut send_ev, "room-created", |e| {
            matches!(e, Event::RoomCreated { .. })
        })
        .await
        else {
            unreachable!()
        };
        assert_eq!(server, engine.signal_url(&settings).await.unwrap());

        let out = dir.path().join("out");
        let (tx, mut bad_ev) = unbounded_channel();
        let _bad = engine
            .receive(
                &settings,
                room.clone(),
                format!("{password}x"),
                None,
                out.clone(),
                tx,
            )
            .await
            .unwrap();
        let err = next_matching(&mut bad_ev, "error", |e| matches!(e, Event::Error { .. })).await;
        assert!(
            matches!(&err, Event::Error { code, .. } if code == "wrong-password"),
            "{err:?}"
        );
        next_matching(&mut send_ev, "wrong-password-attempt", |e| {
            matches!(e, Event::WrongPasswordAttempt { .. })
        })
        .await;

        let (tx, mut recv_ev) = unbounded_channel();
        let mut receiving = engine
            .receive(&settings, room, password, None, out.clone(), tx)
            .await
            .unwrap();
        next_matching(&mut recv_ev, "offer", |e| matches!(e, Event::Offer { .. })).await;
        // Nothing is written before the user accepts.
        assert!(!out.join("notes.bin").exists());
        receiving.accept().unwrap();
        next_matching(&mut recv_ev, "done", |e| matches!(e, Event::Done { .. })).await;
        next_matching(&mut send_ev, "done", |e| matches!(e, Event::Done { .. })).await;
        assert_eq!(std::fs::read(out.join("notes.bin")).unwrap(), data);

        let history = engine.history().unwrap();
        assert!(
            history
                .iter()
                .any(|h| matches!(h.direction, Direction::Receive)
                    && h.state == TransferState::Done
                    && h.name == "notes.bin"),
            "{history:?}"
        );
    }

    /// The app's text path: what the `send_text` command runs, over the built-in server, to a
    /// receiver running the engine's `receive` as `ferry receive` does. The snippet arrives
    /// exactly; nothing lands in the folder; history shows it as text. Over the limit, the
    /// command fails before a room opens.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_text_snippet_from_the_app_arrives_exactly() {
        let dir = tempfile::tempdir().unwrap();
        loopback_env();
        let engine = Engine::new();
        let settings = Settings::default();
        let snippet = "from the app: ünïcödé 🚢\r\nline two\n\n".to_string();
        let (tx, mut send_ev) = unbounded_channel();
        let _s = engine
            .send_text(
                &settings,
                snippet.clone(),
                Some("pw-app-text".into()),
                None,
                tx,
            )
            .await
            .unwrap();
        let Event::RoomCreated { room, server, .. } =
            next_matching(&mut send_ev, "room-created", |e| {
                matches!(e, Event::RoomCreated { .. })
            })
            .await
        else {
            unreachable!()
        };
        let out = dir.path().join("out");
        let mut opts = ReceiveOptions::new(&out, Store::open(&dir.path().join("r.db")).unwrap());
        opts.server = Some(server);
        opts.password = Some("pw-app-text".into());
        opts.bind_addrs = bind_addrs();
        let report = ferry_core::receive(
            opts,
            &room,
            |_: &Offer| Decision::Decline,
            &TransferHandle::new(),
            EventSink::none(),
        )
        .await
        .unwrap();
        assert_eq!(report.text.as_deref(), Some(snippet.as_str()));
        assert!(report.files.is_empty());
        assert!(!out.exists(), "a snippet is never written to disk");
        next_matching(&mut send_ev, "done", |e| matches!(e, Event::Done { .. })).await;
        let history = engine.history().unwrap();
        assert!(
            history.iter().any(|h| h.kind == TransferKind::Text
                && h.direction == Direction::Send
                && h.state == TransferState::Done
                && h.bytes == snippet.len() as u64),
            "{history:?}"
        );

        let (tx, _rx) = unbounded_channel();
        let refused = engine
            .send_text(
                &settings,
                "x".repeat(ferry_core::TEXT_MAX_BYTES + 1),
                None,
                None,
                tx,
            )
            .await;
        let Err(e) = refused else {
            panic!("over the limit must fail")
        };
        assert_eq!(e.code, "too-large");
    }

    /// What the room screen's picker, Extend and Close run: the lifetime asked for, a new
    /// one from now, and the room gone at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_room_lifetime_is_picked_extended_and_closed_through_the_adapter() {
        loopback_env();
        let engine = Engine::new();
        let settings = Settings::default();
        let (tx, mut ev) = unbounded_channel();
        let mut running = engine
            .send_text(&settings, "hi".into(), None, Some(120), tx)
            .await
            .unwrap();
        let Event::RoomCreated { expires_at, .. } = next_matching(&mut ev, "room-created", |e| {
            matches!(e, Event::RoomCreated { .. })
        })
        .await
        else {
            unreachable!()
        };
        running.extend_room(1800);
        let Event::RoomExtended { expires_at: later } =
            next_matching(&mut ev, "room-extended", |e| {
                matches!(e, Event::RoomExtended { .. })
            })
            .await
        else {
            unreachable!()
        };
        assert!(later >= expires_at + 1600, "{expires_at} -> {later}");
        running.close_room();
        let e = next_matching(&mut ev, "error", |e| matches!(e, Event::Error { .. })).await;
        assert!(
            matches!(&e, Event::Error { code, .. } if code == "cancelled"),
            "{e:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn declining_by_cancel_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        loopback_env();
        let engine = Engine::new();
        let settings = Settings::default();
        let src = dir.path().join("a.txt");
        std::fs::write(&src, b"hello").unwrap();
        let (tx, mut send_ev) = unbounded_channel();
        let _s = engine
            .send(&settings, vec![src], None, None, None, tx)
            .await
            .unwrap();
        let Event::RoomCreated { room, password, .. } =
            next_matching(&mut send_ev, "room-created", |e| {
                matches!(e, Event::RoomCreated { .. })
            })
            .await
        else {
            unreachable!()
        };
        let out = dir.path().join("out");
        let (tx, mut recv_ev) = unbounded_channel();
        let mut r = engine
            .receive(&settings, room, password, None, out.clone(), tx)
            .await
            .unwrap();
        next_matching(&mut recv_ev, "offer", |e| matches!(e, Event::Offer { .. })).await;
        r.cancel();
        let e = next_matching(&mut recv_ev, "error", |e| matches!(e, Event::Error { .. })).await;
        assert!(
            matches!(&e, Event::Error { code, .. } if code == "declined" || code == "cancelled"),
            "{e:?}"
        );
        assert!(!out.join("a.txt").exists());
    }
}
