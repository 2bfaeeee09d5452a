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
mod tests;
